//! The package repositories over git's smart HTTP protocol, read-only: builders clone from
//! here (the RPM task's `git_repo`, [`crate::DistGit::http_repo_url`]), so no builder needs
//! the DistGit disk.
//!
//! Like Copr's dist-git (Apache in front of `git http-backend`), we run `git http-backend` as
//! a CGI program for each request and stream what it prints. Only the two requests of a fetch
//! or clone are routed, `GET …/info/refs?service=git-upload-pack` and `POST
//! …/git-upload-pack`; a push (`git-receive-pack`) is refused before git runs, and
//! receive-pack is switched off in git's own configuration as well. Owner, directory and
//! package are checked with the same rules as the lookaside, so a URL can only name a
//! repository DistGit could have made.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferrocopr_schema::model::{is_valid_dirname, is_valid_owner, is_valid_package_name};
use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader, ReadBuf};
use tokio::process::{Child, ChildStdout, Command};

use crate::import::repo_path;

/// The one service we run.
const UPLOAD_PACK: &str = "git-upload-pack";
/// A fetch request lists the commits the client wants and has; even a large one is a few
/// hundred kilobytes, so the request body is read whole, up to this much.
const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;
/// The CGI header block is a handful of lines; more means something is wrong.
const MAX_CGI_HEADER: usize = 64 * 1024;

/// Where the bare repositories live (`GIT_PROJECT_ROOT`).
struct Repos {
    root: PathBuf,
}

/// The smart HTTP routes, relative to where the caller nests them.
pub(crate) fn router(repos_root: PathBuf) -> Router {
    Router::new()
        .route("/git/{owner}/{dir}/{repo}/info/refs", get(info_refs))
        .route(
            "/git/{owner}/{dir}/{repo}/git-upload-pack",
            post(upload_pack),
        )
        .route(
            "/git/{owner}/{dir}/{repo}/git-receive-pack",
            post(receive_pack),
        )
        .with_state(Arc::new(Repos { root: repos_root }))
}

type RepoPath = (String, String, String);

async fn info_refs(
    State(repos): State<Arc<Repos>>,
    UrlPath((owner, dir, repo)): UrlPath<RepoPath>,
    Query(params): Query<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match params.get("service").map(String::as_str) {
        Some(UPLOAD_PACK) => {}
        Some("git-receive-pack") => return read_only(),
        _ => {
            return (
                StatusCode::FORBIDDEN,
                "only git's smart HTTP protocol is served here\n",
            )
                .into_response();
        }
    }
    let path_info = match checked_path(&repos, &owner, &dir, &repo) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    cgi(
        &repos,
        "GET",
        format!("{path_info}/info/refs"),
        query.unwrap_or_default(),
        &headers,
        Vec::new(),
    )
    .await
}

async fn upload_pack(
    State(repos): State<Arc<Repos>>,
    UrlPath((owner, dir, repo)): UrlPath<RepoPath>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path_info = match checked_path(&repos, &owner, &dir, &repo) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(b) => b.to_vec(),
        Err(e) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the request: {e}\n"),
            )
                .into_response();
        }
    };
    cgi(
        &repos,
        "POST",
        format!("{path_info}/{UPLOAD_PACK}"),
        String::new(),
        &headers,
        body,
    )
    .await
}

async fn receive_pack() -> Response {
    read_only()
}

fn read_only() -> Response {
    (
        StatusCode::FORBIDDEN,
        "DistGit repositories are read-only; ferrocopr commits to them itself\n",
    )
        .into_response()
}

/// `/<owner>/<dir>/<pkg>.git`, once each part passed the names' rules and the repository
/// exists.
fn checked_path(
    repos: &Repos,
    owner: &str,
    dir: &str,
    repo: &str,
) -> Result<String, (StatusCode, &'static str)> {
    let package = repo.strip_suffix(".git").unwrap_or_default();
    let well_formed =
        is_valid_owner(owner) && is_valid_dirname(dir) && is_valid_package_name(package);
    if !well_formed {
        return Err((StatusCode::BAD_REQUEST, "malformed repository path\n"));
    }
    if !repo_path(&repos.root, owner, dir, package).is_dir() {
        return Err((StatusCode::NOT_FOUND, "no such repository\n"));
    }
    Ok(format!("/{owner}/{dir}/{repo}"))
}

/// Runs `git http-backend` for one request and turns its CGI answer into a response whose
/// body streams from the program's output.
async fn cgi(
    repos: &Repos,
    method: &str,
    path_info: String,
    query: String,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Response {
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        // Nothing of the server's environment leaks into git but where to find programs.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &repos.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        // Configuration from the "command line": refuse pushes even if a request got here.
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "false")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", &path_info)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A client that goes away stops its git.
        .kill_on_drop(true);
    // What a client says about its request, as CGI names it: the body's type and encoding
    // (clients gzip large requests) and the protocol version it asks for.
    for (name, var) in [
        (header::CONTENT_TYPE, "CONTENT_TYPE"),
        (header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
        (HeaderName::from_static("git-protocol"), "HTTP_GIT_PROTOCOL"),
    ] {
        if let Some(value) = headers.get(&name).and_then(|v| v.to_str().ok()) {
            cmd.env(var, value);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot run git http-backend");
            return internal_error();
        }
    };
    // Fed concurrently: git may answer before it has read everything.
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            // A git that stops reading early has said why on its stdout or stderr.
            let _ = stdin.write_all(&body).await;
        });
    }
    if let Some(stderr) = child.stderr.take() {
        let path_info = path_info.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(repo = %path_info, "git http-backend: {line}");
            }
        });
    }
    let Some(stdout) = child.stdout.take() else {
        return internal_error();
    };
    let mut stdout = BufReader::new(stdout);
    let (status, headers) = match read_cgi_header(&mut stdout).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(repo = %path_info, error = %e, "git http-backend answered badly");
            return internal_error();
        }
    };
    let mut response = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(
        ChildOutput {
            stdout,
            _child: child,
        },
    )));
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    response
}

/// Reads the CGI header block (`Name: value` lines up to an empty one); `Status:` gives the
/// response's status, 200 without it.
async fn read_cgi_header(
    stdout: &mut BufReader<ChildStdout>,
) -> Result<(StatusCode, HeaderMap), String> {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut read = 0;
    loop {
        let mut line = String::new();
        let n = stdout
            .read_line(&mut line)
            .await
            .map_err(|e| format!("cannot read its output: {e}"))?;
        if n == 0 {
            return Err("it ended before its header did".to_owned());
        }
        read += n;
        if read > MAX_CGI_HEADER {
            return Err(format!("its header is over {MAX_CGI_HEADER} bytes"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or_default();
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| format!("malformed status {value:?}"))?;
        } else {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("malformed header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("malformed header value {value:?}"))?;
            headers.append(name, value);
        }
    }
}

/// The body of a response: git's output after the header, with git kept alive (and killed if
/// the response is dropped early) for as long as it streams.
struct ChildOutput {
    stdout: BufReader<ChildStdout>,
    _child: Child,
}

impl AsyncRead for ChildOutput {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

fn internal_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}
