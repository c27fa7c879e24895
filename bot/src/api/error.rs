//! The API's one error type: every failure of an `/api_3/` request answers JSON
//! `{"error": "..."}` with the status copr-cli branches on (REFERENCE §4). copr-cli reports any
//! non-JSON error body as a server bug, so even axum's own rejections are turned into these.
//!
//! The caller's mistakes carry a text for them; our own failures ([`ApiError::Internal`]) are
//! logged once with their details and shown only as "internal error".

use crate::texts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum ApiError {
    /// 400: the body, query or path does not say what the endpoint needs.
    BadRequest(String),
    /// 401: no credentials, or wrong or expired ones.
    Unauthorized(String),
    /// 403: the caller is known but may not do this.
    Forbidden(String),
    /// 404: no such project, build or endpoint.
    NotFound(String),
    /// 405: the endpoint exists for another method.
    MethodNotAllowed,
    /// 409: what is to be made exists already.
    Conflict(String),
    /// 413: the body is larger than the endpoint takes.
    TooLarge,
    /// 500: ours; the details go to the log only.
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn text(&self) -> &str {
        match self {
            ApiError::BadRequest(t)
            | ApiError::Unauthorized(t)
            | ApiError::Forbidden(t)
            | ApiError::NotFound(t)
            | ApiError::Conflict(t) => t,
            ApiError::MethodNotAllowed => texts::API_METHOD_NOT_ALLOWED,
            ApiError::TooLarge => texts::API_TOO_LARGE,
            ApiError::Internal(_) => texts::INTERNAL_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "API request failed");
        }
        let body = serde_json::json!({ "error": self.text() });
        (self.status(), axum::Json(body)).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::Internal(e)
    }
}

impl From<ferrocopr_schema::db::DbError> for ApiError {
    fn from(e: ferrocopr_schema::db::DbError) -> ApiError {
        ApiError::Internal(e.into())
    }
}

impl From<crate::submit::SubmitError> for ApiError {
    fn from(e: crate::submit::SubmitError) -> ApiError {
        match e {
            crate::submit::SubmitError::Invalid(text) => ApiError::BadRequest(text),
            crate::submit::SubmitError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::users::AuthenticateError> for ApiError {
    fn from(e: crate::users::AuthenticateError) -> ApiError {
        match e {
            crate::users::AuthenticateError::Auth(e) => ApiError::Unauthorized(e.to_string()),
            crate::users::AuthenticateError::Internal(e) => ApiError::Internal(e),
        }
    }
}
