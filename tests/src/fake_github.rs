//! A stateful fake of the few GitHub REST endpoints ferrocopr uses, served over HTTP so that the
//! real octocrab client inside ferrocopr talks to it exactly as it talks to api.github.com.
//!
//! It serves file contents from local git repositories registered by the test, and records every
//! commit status in the order it arrives. Any other request is answered 404 and remembered as
//! unexpected, so a test can assert that ferrocopr used nothing it should not.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// The token the harness gives ferrocopr; requests carrying another one get GitHub's 401.
pub const TOKEN: &str = "test-token";

/// GitHub refuses a status description longer than this (422 "description is too long").
const MAX_DESCRIPTION_CHARS: usize = 140;

/// GitHub wraps the base64 of file contents at 60 characters; clients must cope with the newlines.
const BASE64_LINE: usize = 60;

/// A commit status as ferrocopr posted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: String,
    pub context: Option<String>,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

/// A request the fake does not serve (or refused for its credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexpectedRequest {
    pub method: String,
    pub uri: String,
    pub why: String,
}

/// A pull request as the fake serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    pub head_sha: String,
    pub head_full_name: String,
    pub head_clone_url: String,
    pub base_ref: String,
    pub author: String,
}

#[derive(Default)]
struct Inner {
    repos: HashMap<String, PathBuf>,
    pulls: HashMap<(String, u64), FakePull>,
    /// `(repo, user)` → `admin`, `write`, `read`; anyone else is not a collaborator (404).
    permissions: HashMap<(String, String), String>,
    /// Comments the bot wrote, per `(repo, pull request)`.
    comments: HashMap<(String, u64), Vec<String>>,
    /// Reactions the bot left, per comment id.
    reactions: HashMap<u64, Vec<String>>,
    statuses: HashMap<String, Vec<Status>>,
    unexpected: Vec<UnexpectedRequest>,
    next_status_id: u64,
    /// Status posts still to answer with 500, as a forge outage.
    failing_status_posts: usize,
    /// Status posts answered with 500 so far.
    failed_status_posts: usize,
}

struct Shared {
    url: String,
    inner: Mutex<Inner>,
    /// Bumped on every recorded status, so waiters wake on events instead of polling.
    changes: watch::Sender<u64>,
}

/// Handle on the running fake; cheap to clone.
#[derive(Clone)]
pub struct FakeGitHub {
    shared: Arc<Shared>,
}

impl FakeGitHub {
    /// Serves the fake on `127.0.0.1:0` in the current runtime.
    pub async fn start() -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub on 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local address of the fake GitHub")
            .port();
        let shared = Arc::new(Shared {
            url: format!("http://127.0.0.1:{port}"),
            inner: Mutex::new(Inner::default()),
            changes: watch::Sender::new(0),
        });
        let app = Router::new()
            .route("/repos/{owner}/{repo}/contents/{*path}", get(get_contents))
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
            .route("/repos/{owner}/{repo}/pulls/{number}", get(get_pull))
            .route(
                "/repos/{owner}/{repo}/collaborators/{user}/permission",
                get(get_permission),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                post(create_comment),
            )
            .route(
                "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
                post(create_reaction),
            )
            .fallback(unexpected)
            .with_state(shared.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                panic!("the fake GitHub stopped serving: {error}");
            }
        });
        FakeGitHub { shared }
    }

    /// The API base URL to give ferrocopr (no trailing slash).
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Makes `full_name` (`owner/repo`) serve its contents from the local git repository `path`.
    pub fn register_repo(&self, full_name: &str, path: impl Into<PathBuf>) {
        self.shared
            .lock()
            .repos
            .insert(full_name.to_owned(), path.into());
    }

    /// Answers the next `posts` status posts with 500, as GitHub does in an outage.
    pub fn fail_status_posts(&self, posts: usize) {
        self.shared.lock().failing_status_posts = posts;
    }

    /// How many status posts were answered with 500.
    pub fn failed_status_posts(&self) -> usize {
        self.shared.lock().failed_status_posts
    }

    /// Serves pull request `number` of `full_name`.
    pub fn register_pull(&self, full_name: &str, number: u64, pull: FakePull) {
        self.shared
            .lock()
            .pulls
            .insert((full_name.to_owned(), number), pull);
    }

    /// Gives `user` a permission (`admin`, `write`, `read`) on `full_name`.
    pub fn grant(&self, full_name: &str, user: &str, permission: &str) {
        self.shared.lock().permissions.insert(
            (full_name.to_owned(), user.to_owned()),
            permission.to_owned(),
        );
    }

    /// The comments the bot wrote on pull request `number`, oldest first.
    pub fn comments(&self, full_name: &str, number: u64) -> Vec<String> {
        self.shared
            .lock()
            .comments
            .get(&(full_name.to_owned(), number))
            .cloned()
            .unwrap_or_default()
    }

    /// The reactions the bot left on comment `id`.
    pub fn reactions(&self, id: u64) -> Vec<String> {
        self.shared
            .lock()
            .reactions
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// Every status posted for `sha`, oldest first.
    pub fn statuses(&self, sha: &str) -> Vec<Status> {
        self.shared
            .lock()
            .statuses
            .get(sha)
            .cloned()
            .unwrap_or_default()
    }

    /// Requests the fake did not serve, oldest first.
    pub fn unexpected_requests(&self) -> Vec<UnexpectedRequest> {
        self.shared.lock().unexpected.clone()
    }

    /// A receiver that changes whenever a status, comment or reaction is recorded.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refuse(&self, method: &Method, uri: &Uri, why: &str) {
        self.lock().unexpected.push(UnexpectedRequest {
            method: method.to_string(),
            uri: uri.to_string(),
            why: why.to_owned(),
        });
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// GitHub accepts `Bearer <token>` and the older `token <token>`.
fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}") || v == format!("token {TOKEN}"))
}

#[derive(Deserialize)]
struct RefQuery {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

async fn get_contents(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(query): Query<RefQuery>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let full_name = format!("{owner}/{repo}");
    if let Some(refused) = admit(&shared, &method, &uri, &headers, &full_name) {
        return refused;
    }
    let Some(repo_path) = shared.lock().repos.get(&full_name).cloned() else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let reference = query.reference.unwrap_or_else(|| "HEAD".to_owned());
    let Some((blob_sha, content)) = read_blob(&repo_path, &reference, &path) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let raw = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(".raw"));
    if raw {
        return (StatusCode::OK, content).into_response();
    }
    let self_url = format!(
        "{}/repos/{full_name}/contents/{path}?ref={reference}",
        shared.url
    );
    let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
    (
        StatusCode::OK,
        axum::Json(json!({
            "type": "file",
            "encoding": "base64",
            "size": content.len(),
            "name": name,
            "path": path,
            "sha": blob_sha,
            "url": self_url,
            "html_url": null,
            "git_url": null,
            "download_url": null,
            "content": github_base64(&content),
            "_links": { "self": self_url, "git": null, "html": null },
        })),
    )
        .into_response()
}

/// The blob at `path` in the commit `reference` names, as (blob sha, bytes).
fn read_blob(
    repo_path: &std::path::Path,
    reference: &str,
    path: &str,
) -> Option<(String, Vec<u8>)> {
    let repo = git2::Repository::open(repo_path).ok()?;
    let commit = repo
        .revparse_single(reference)
        .ok()?
        .peel_to_commit()
        .ok()?;
    let entry = commit
        .tree()
        .ok()?
        .get_path(std::path::Path::new(path))
        .ok()?;
    let blob = entry.to_object(&repo).ok()?.into_blob().ok()?;
    Some((blob.id().to_string(), blob.content().to_vec()))
}

fn github_base64(content: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    let mut wrapped = String::with_capacity(encoded.len() + encoded.len() / BASE64_LINE + 1);
    for line in encoded.as_bytes().chunks(BASE64_LINE) {
        wrapped.push_str(std::str::from_utf8(line).unwrap_or_default());
        wrapped.push('\n');
    }
    wrapped
}

#[derive(Deserialize)]
struct StatusBody {
    state: String,
    context: Option<String>,
    description: Option<String>,
    target_url: Option<String>,
}

async fn create_status(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = admit(&shared, &method, &uri, &headers, &format!("{owner}/{repo}")) {
        return refused;
    }
    {
        let mut inner = shared.lock();
        if inner.failing_status_posts > 0 {
            inner.failing_status_posts -= 1;
            inner.failed_status_posts += 1;
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
        }
    }
    let body: StatusBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => {
            shared.refuse(&method, &uri, &format!("body is not a status: {error}"));
            return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
        }
    };
    if !["pending", "success", "failure", "error"].contains(&body.state.as_str()) {
        shared.refuse(&method, &uri, &format!("invalid state {:?}", body.state));
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    if let Some(description) = &body.description
        && description.chars().count() > MAX_DESCRIPTION_CHARS
    {
        shared.refuse(&method, &uri, "description longer than 140 characters");
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed: description is too long (maximum is 140 characters)",
        );
    }
    let status = Status {
        state: body.state,
        context: body.context.or_else(|| Some("default".to_owned())),
        description: body.description,
        target_url: body.target_url,
    };
    let id = {
        let mut inner = shared.lock();
        inner.next_status_id += 1;
        inner
            .statuses
            .entry(sha.clone())
            .or_default()
            .push(status.clone());
        inner.next_status_id
    };
    shared.changes.send_modify(|n| *n += 1);
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "id": id,
            "url": format!("{}/repos/{owner}/{repo}/statuses/{sha}", shared.url),
            "state": status.state,
            "context": status.context,
            "description": status.description,
            "target_url": status.target_url,
        })),
    )
        .into_response()
}

/// Checks the token and that the repository is known, recording a refusal otherwise.
fn admit(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    full_name: &str,
) -> Option<Response> {
    if !authorized(headers) {
        shared.refuse(method, uri, "missing or wrong token");
        return Some(message(StatusCode::UNAUTHORIZED, "Bad credentials"));
    }
    if !shared.lock().repos.contains_key(full_name) {
        shared.refuse(method, uri, "repository not registered with the fake");
        return Some(message(StatusCode::NOT_FOUND, "Not Found"));
    }
    None
}

async fn get_pull(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let full_name = format!("{owner}/{repo}");
    if let Some(refused) = admit(&shared, &method, &uri, &headers, &full_name) {
        return refused;
    }
    let Some(pull) = shared
        .lock()
        .pulls
        .get(&(full_name.clone(), number))
        .cloned()
    else {
        shared.refuse(&method, &uri, "pull request not registered with the fake");
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    axum::Json(json!({
        "number": number,
        "state": "open",
        "user": { "login": pull.author },
        "head": { "sha": pull.head_sha, "ref": "feature",
                  "repo": { "full_name": pull.head_full_name, "clone_url": pull.head_clone_url } },
        "base": { "ref": pull.base_ref, "repo": { "full_name": full_name } },
    }))
    .into_response()
}

async fn get_permission(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, user)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let full_name = format!("{owner}/{repo}");
    if let Some(refused) = admit(&shared, &method, &uri, &headers, &full_name) {
        return refused;
    }
    match shared.lock().permissions.get(&(full_name, user.clone())) {
        Some(permission) => {
            axum::Json(json!({ "permission": permission, "user": { "login": user } }))
                .into_response()
        }
        None => message(
            StatusCode::NOT_FOUND,
            &format!("{user} is not a collaborator"),
        ),
    }
}

#[derive(Deserialize)]
struct CommentBody {
    body: String,
}

async fn create_comment(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full_name = format!("{owner}/{repo}");
    if let Some(refused) = admit(&shared, &method, &uri, &headers, &full_name) {
        return refused;
    }
    let Ok(comment) = serde_json::from_slice::<CommentBody>(&body) else {
        shared.refuse(&method, &uri, "body is not a comment");
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    };
    let id = {
        let mut inner = shared.lock();
        inner.next_status_id += 1;
        inner
            .comments
            .entry((full_name, number))
            .or_default()
            .push(comment.body.clone());
        inner.next_status_id
    };
    shared.changes.send_modify(|n| *n += 1);
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "body": comment.body })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct ReactionBody {
    content: String,
}

async fn create_reaction(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = admit(&shared, &method, &uri, &headers, &format!("{owner}/{repo}")) {
        return refused;
    }
    let Ok(reaction) = serde_json::from_slice::<ReactionBody>(&body) else {
        shared.refuse(&method, &uri, "body is not a reaction");
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    };
    shared
        .lock()
        .reactions
        .entry(id)
        .or_default()
        .push(reaction.content.clone());
    shared.changes.send_modify(|n| *n += 1);
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "content": reaction.content })),
    )
        .into_response()
}

async fn unexpected(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    shared.refuse(&method, &uri, "no such route in the fake GitHub");
    message(StatusCode::NOT_FOUND, "Not Found")
}
