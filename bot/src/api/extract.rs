//! The API's extractors: axum's own, with their rejections turned into [`ApiError`]s (JSON, the
//! right status), and the door every writing endpoint passes: who the caller is
//! ([`crate::users::authenticate`]) and whether they may act on the project
//! ([`ferrocopr_schema::permissions::permits`]).

use super::error::{ApiError, ApiResult};
use crate::{BotState, texts};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use ferrocopr_schema::ProjectRef;
use ferrocopr_schema::db::{Project, User};
use ferrocopr_schema::permissions::{Action, Caller, permits};
use serde::de::DeserializeOwned;

/// The whole request body, within the route's `DefaultBodyLimit`.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Body> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(r) => Err(ApiError::BadRequest(r.body_text())),
        }
    }
}

impl Body {
    /// The body as the JSON object python-copr sends (`requests`' `json=`); an empty body is
    /// an empty object, since every field of a request has a default.
    pub fn json<T: DeserializeOwned>(&self) -> ApiResult<T> {
        let bytes: &[u8] = if self.0.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.0
        };
        serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(texts::bad_api_body(&e)))
    }
}

/// The query string as `T`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<ApiQuery<T>> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|r| ApiError::BadRequest(r.body_text()))
    }
}

/// The path's parameters as `T`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<ApiPath<T>> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| ApiError::BadRequest(r.body_text()))
    }
}

/// The user the request's `Authorization` header names.
pub async fn user(state: &BotState, headers: &HeaderMap) -> ApiResult<User> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    Ok(crate::users::authenticate(&state.db, authorization).await?)
}

/// The project, or a 404 naming it.
pub async fn project(state: &BotState, project: &ProjectRef) -> ApiResult<Project> {
    state
        .db
        .project(project)
        .await?
        .ok_or_else(|| ApiError::NotFound(texts::api_project_not_found(project)))
}

/// Checks that `user` may do `action` to `project`: 403 when not.
pub async fn allow(
    state: &BotState,
    user: &User,
    project: &ProjectRef,
    action: Action,
) -> ApiResult<()> {
    let groups = state.db.user_groups(user).await?;
    let granted = state.db.granted_role(project, user).await?;
    let caller = Caller {
        name: &user.name,
        instance_admin: user.admin,
        groups: &groups,
        granted,
    };
    if permits(&caller, &project.owner, action) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(texts::api_forbidden(
            &user.name, project,
        )))
    }
}
