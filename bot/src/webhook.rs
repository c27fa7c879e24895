//! Forge webhooks: the entry of seed step 1 for forge events.
//!
//! A delivery is verified before anything parses it (HMAC-SHA256 of the raw body with a
//! constant-time compare; any of several secrets, so one can be rotated), then recorded
//! durably and answered 202 at once. The event worker ([`crate::events`]) does the rest, so a
//! slow forge API never makes the webhook time out, and a redelivery is recorded only once.

use crate::{BotState, texts};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bodies above this are refused with 413; GitHub caps payloads at 25 MB, and ours need far
/// less (a push with many commits is a few hundred KB).
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;

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
    let Ok(payload) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, texts::NOT_UTF8);
    };
    match state
        .db
        .record_delivery("github", delivery, event, payload)
        .await
    {
        Ok(true) => {
            tracing::info!(event, delivery, "github delivery recorded");
            state.deliveries.notify_one();
            (StatusCode::ACCEPTED, "accepted").into_response()
        }
        Ok(false) => {
            tracing::info!(event, delivery, "github redelivery ignored");
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
}
