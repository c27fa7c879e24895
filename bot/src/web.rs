//! What dnf reads over HTTP: repo files for `dnf copr enable`; and the rendering every web page
//! shares ([`page`], [`error_page`]; the pages themselves are in [`crate::pages`]).

use crate::{BotState, texts};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use ferrocopr_schema::Chroot;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct RepoQuery {
    arch: Option<String>,
}

/// The host part of the public URL, without scheme or port: dnf's copr plugin names the repo
/// file after it.
pub fn public_host(public_url: &str) -> &str {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, texts::INTERNAL_ERROR).into_response()
}

/// `GET /coprs/{owner}/{dir}/repo/{name_release}/dnf.repo?arch=…` (REFERENCE §3).
pub async fn dnf_repo(
    State(state): State<BotState>,
    Path((owner, dirname, name_release)): Path<(String, String, String)>,
    Query(query): Query<RepoQuery>,
) -> Response {
    let arch = query.arch.unwrap_or_else(|| "x86_64".to_owned());
    let chroots = match state.db.dir_chroots(&owner, &dirname).await {
        Ok(Some(chroots)) => chroots,
        Ok(None) => return (StatusCode::NOT_FOUND, texts::PROJECT_NOT_FOUND).into_response(),
        Err(e) => return internal(e),
    };
    let wanted = format!("{name_release}-{arch}");
    let chroot = chroots
        .iter()
        .find(|c| **c == wanted)
        .and_then(|c| Chroot::parse(c));
    let Some(chroot) = chroot else {
        // The plugin prints this list to the user.
        let data = serde_json::json!({ "available chroots": chroots });
        let encoded = base64::engine::general_purpose::STANDARD.encode(data.to_string());
        let mut response = (StatusCode::NOT_FOUND, texts::CHROOT_NOT_FOUND).into_response();
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            response.headers_mut().insert("Copr-Error-Data", value);
        }
        return response;
    };
    let body = texts::dnf_repo_file(
        public_host(&state.public_url),
        &state.public_url,
        &owner,
        &dirname,
        &chroot,
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Seconds since the epoch, for "since when" and the pages' footer.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Renders `template` with `context` (and the time of rendering, `now`).
pub(crate) fn page(
    state: &BotState,
    status: StatusCode,
    template: &str,
    context: minijinja::Value,
) -> Response {
    let context = minijinja::context! { now => now(), ..context };
    match state
        .templates
        .get_template(template)
        .and_then(|t| t.render(context))
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => internal(e),
    }
}

/// A page saying what went wrong, with its HTTP status.
pub fn error_page(state: &BotState, status: StatusCode, message: &str) -> Response {
    let context = minijinja::context! { status => status.to_string(), message };
    page(state, status, "error.html", context)
}

#[cfg(test)]
mod tests {
    use super::public_host;

    #[test]
    fn host_without_port() {
        assert_eq!(public_host("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(public_host("https://copr.example.org/"), "copr.example.org");
        assert_eq!(public_host("http://example.org:80/x"), "example.org");
    }
}
