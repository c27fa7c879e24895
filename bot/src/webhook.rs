//! Forge webhooks: the entry of seed step 1 for forge events.
//!
//! A delivery is verified before anything parses it (GitHub: HMAC-SHA256 of the raw body;
//! GitLab: the `X-Gitlab-Token` secret itself; both compared in constant time, against any of
//! several secrets, so one can be rotated), then recorded durably and answered 202 at once. The event worker ([`crate::events`]) does the rest, so a
//! slow forge API never makes the webhook time out, and a redelivery is recorded only once.

use crate::forge::{GITHUB, GITLAB};
use crate::{BotState, texts};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bodies above this are refused with 413; GitHub caps payloads at 25 MB, and ours need far
/// less (a push with many commits is a few hundred KB).
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;

/// Answers 413 at once when `Content-Length` announces more than [`BODY_LIMIT`], before a byte
/// of the body is read; a body that lies about its length is still cut at the limit by
/// `DefaultBodyLimit`.
pub async fn refuse_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > BODY_LIMIT as u64) {
        return (StatusCode::PAYLOAD_TOO_LARGE, texts::TOO_LARGE).into_response();
    }
    next.run(request).await
}

/// A webhook secret; never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Refuses an empty secret: anyone can compute an HMAC under an empty key.
    pub fn new(value: String) -> anyhow::Result<Secret> {
        anyhow::ensure!(!value.is_empty(), "a secret must not be empty");
        Ok(Secret(value))
    }

    /// The secret itself, for the one place that must send it (an API token header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// True when `signature` (`sha256=<hex>`) is the HMAC of `body` under one of `secrets`.
pub fn verify_github_signature(secrets: &[Secret], body: &[u8], signature: &str) -> bool {
    let Some(hex_digest) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    secrets.iter().any(|secret| {
        Hmac::<Sha256>::new_from_slice(secret.0.as_bytes())
            .map(|mut mac| {
                mac.update(body);
                // verify_slice compares in constant time.
                mac.verify_slice(&expected).is_ok()
            })
            .unwrap_or(false)
    })
}

/// True when `token` (GitLab's `X-Gitlab-Token`) is one of `secrets`. Both sides are hashed
/// first, so the compare takes the same time whatever the lengths.
pub fn verify_gitlab_token(secrets: &[Secret], token: &str) -> bool {
    let token = Sha256::digest(token.as_bytes());
    secrets
        .iter()
        .map(|secret| Sha256::digest(secret.0.as_bytes()).ct_eq(&token))
        .fold(subtle::Choice::from(0), |any, this| any | this)
        .into()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /webhooks/github`
pub async fn github(State(state): State<BotState>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = header(&headers, "x-hub-signature-256").unwrap_or_default();
    if state.github_secrets.is_empty()
        || !verify_github_signature(&state.github_secrets, &body, signature)
    {
        tracing::warn!("github webhook refused: bad signature");
        return error(StatusCode::UNAUTHORIZED, texts::BAD_SIGNATURE);
    }
    let (Some(event), Some(delivery)) = (
        header(&headers, "x-github-event"),
        header(&headers, "x-github-delivery"),
    ) else {
        return error(StatusCode::BAD_REQUEST, texts::MISSING_HEADER);
    };
    if event == "ping" {
        return (StatusCode::OK, "pong").into_response();
    }
    record(&state, GITHUB, event, delivery, &body).await
}

/// `POST /webhooks/gitlab`
pub async fn gitlab(State(state): State<BotState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = header(&headers, "x-gitlab-token").unwrap_or_default();
    if state.gitlab_secrets.is_empty() || !verify_gitlab_token(&state.gitlab_secrets, token) {
        tracing::warn!("gitlab webhook refused: bad token");
        return error(StatusCode::UNAUTHORIZED, texts::BAD_SIGNATURE);
    }
    let Some(event) = header(&headers, "x-gitlab-event") else {
        return error(StatusCode::BAD_REQUEST, texts::MISSING_HEADER);
    };
    // GitLab sends the UUID since 15.x; before, a redelivery is the same body.
    let delivery = match header(&headers, "x-gitlab-event-uuid") {
        Some(uuid) => uuid.to_owned(),
        None => format!("sha256:{}", hex::encode(Sha256::digest(&body))),
    };
    record(&state, GITLAB, event, &delivery, &body).await
}

/// Records a verified delivery for the event worker; a redelivery is answered but not
/// recorded twice.
async fn record(
    state: &BotState,
    forge: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> Response {
    let Ok(payload) = std::str::from_utf8(body) else {
        return error(StatusCode::BAD_REQUEST, texts::NOT_UTF8);
    };
    match state
        .db
        .record_delivery(forge, delivery, event, payload)
        .await
    {
        Ok(true) => {
            tracing::info!(forge, event, delivery, "delivery recorded");
            state.deliveries.notify_one();
            (StatusCode::ACCEPTED, "accepted").into_response()
        }
        Ok(false) => {
            tracing::info!(forge, event, delivery, "redelivery ignored");
            (StatusCode::ACCEPTED, "already recorded").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "recording a delivery failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, texts::INTERNAL_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures() {
        let secrets = [
            Secret::new("old".into()).expect("secret"),
            Secret::new("new".into()).expect("secret"),
        ];
        assert!(Secret::new(String::new()).is_err());
        let body = b"{\"zen\":\"x\"}";
        assert!(verify_github_signature(&secrets, body, &sign("old", body)));
        assert!(verify_github_signature(&secrets, body, &sign("new", body)));
        assert!(!verify_github_signature(
            &secrets,
            body,
            &sign("other", body)
        ));
        assert!(!verify_github_signature(
            &secrets,
            b"tampered",
            &sign("new", body)
        ));
        assert!(!verify_github_signature(&secrets, body, "sha1=abc"));
        assert!(!verify_github_signature(&secrets, body, ""));
    }

    #[test]
    fn gitlab_tokens() {
        let secrets = [
            Secret::new("old".into()).expect("secret"),
            Secret::new("new".into()).expect("secret"),
        ];
        assert!(verify_gitlab_token(&secrets, "old"));
        assert!(verify_gitlab_token(&secrets, "new"));
        assert!(!verify_gitlab_token(&secrets, "ne"));
        assert!(!verify_gitlab_token(&secrets, ""));
        assert!(!verify_gitlab_token(&[], "old"));
    }
}
