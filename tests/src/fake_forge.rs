//! A stateful fake of the few GitHub and GitLab REST endpoints ferrocopr uses, served over HTTP
//! so that the real octocrab and gitlab clients inside ferrocopr talk to it exactly as they talk
//! to api.github.com and gitlab.com: GitHub's routes at the root, GitLab's under `/api/v4/`.
//!
//! Both forges share what the test registers (repositories, pull requests, permissions) and what
//! ferrocopr leaves (statuses in arrival order, comments, reactions). Each forge keeps its rules:
//! GitHub's four states and 140-character descriptions, GitLab's six states and its refusal to
//! move a status to the state it already has. Any other request is answered 404 and remembered
//! as unexpected, so a test can assert that ferrocopr used nothing it should not.

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

/// The token the harness gives ferrocopr for both forges; requests carrying another one get 401.
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
pub(crate) struct Inner {
    pub(crate) repos: HashMap<String, PathBuf>,
    pub(crate) pulls: HashMap<(String, u64), FakePull>,
    /// `(repo, user)` → `admin`, `write`, `read`; anyone else is not a collaborator (404).
    pub(crate) permissions: HashMap<(String, String), String>,
    /// Comments the bot wrote, per `(repo, pull request)`, with their ids.
    comments: HashMap<(String, u64), Vec<(u64, String)>>,
    /// GitLab user ids, by username.
    pub(crate) users: HashMap<String, u64>,
    /// Reactions the bot left, per comment id.
    reactions: HashMap<u64, Vec<String>>,
    pub(crate) statuses: HashMap<String, Vec<Status>>,
    /// When the first status of each commit arrived, for latency measurements.
    first_status_at: HashMap<String, std::time::Instant>,
    unexpected: Vec<UnexpectedRequest>,
    next_status_id: u64,
    /// Status posts still to answer with 500, as a forge outage.
    failing_status_posts: usize,
    /// Status posts answered with 500 so far.
    failed_status_posts: usize,
}

pub(crate) struct Shared {
    pub(crate) url: String,
    inner: Mutex<Inner>,
    /// Bumped on every recorded status, so waiters wake on events instead of polling.
    changes: watch::Sender<u64>,
}

/// Handle on the running fake; cheap to clone.
#[derive(Clone)]
pub struct FakeForge {
    shared: Arc<Shared>,
}

impl FakeForge {
    /// Serves the fake on `127.0.0.1:0` in the current runtime.
    pub async fn start() -> FakeForge {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake forge on 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local address of the fake forge")
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
            .route(
                "/repos/{owner}/{repo}/issues/comments/{id}",
                axum::routing::patch(edit_comment),
            )
            .merge(crate::fake_gitlab::routes())
            .fallback(unexpected)
            .with_state(shared.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                panic!("the fake forge stopped serving: {error}");
            }
        });
        FakeForge { shared }
    }

    /// The base URL to give ferrocopr (no trailing slash): GitHub's API base, and the GitLab
    /// instance's URL.
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

    /// Gives `user` a permission (`admin`, `write`, `read`) on `full_name` (on GitLab:
    /// Maintainer, Developer, Reporter).
    pub fn grant(&self, full_name: &str, user: &str, permission: &str) {
        self.shared.lock().permissions.insert(
            (full_name.to_owned(), user.to_owned()),
            permission.to_owned(),
        );
    }

    /// The GitLab user id of `username` (the fake makes one up on first use), for webhook
    /// payloads that name users by id.
    pub fn gitlab_user_id(&self, username: &str) -> u64 {
        self.shared.user_id(username)
    }

    /// The comments the bot wrote on pull request `number`, oldest first, as they read now.
    pub fn comments(&self, full_name: &str, number: u64) -> Vec<String> {
        self.shared
            .lock()
            .comments
            .get(&(full_name.to_owned(), number))
            .map(|comments| comments.iter().map(|(_, text)| text.clone()).collect())
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

    /// When the first status of `sha` arrived.
    pub fn first_status_at(&self, sha: &str) -> Option<std::time::Instant> {
        self.shared.lock().first_status_at.get(sha).copied()
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
    pub(crate) fn user_id(&self, username: &str) -> u64 {
        let mut inner = self.lock();
        let next = 1000 + inner.users.len() as u64;
        *inner.users.entry(username.to_owned()).or_insert(next)
    }

    /// Records a status on `sha` and wakes the waiters; returns its id.
    pub(crate) fn record_status(&self, sha: &str, status: Status) -> u64 {
        let id = {
            let mut inner = self.lock();
            inner.next_status_id += 1;
            inner
                .first_status_at
                .entry(sha.to_owned())
                .or_insert_with(std::time::Instant::now);
            inner
                .statuses
                .entry(sha.to_owned())
                .or_default()
                .push(status);
            inner.next_status_id
        };
        self.changes.send_modify(|n| *n += 1);
        id
    }

    /// Takes one of the status posts the test asked to fail, if any is left.
    pub(crate) fn fail_this_status_post(&self) -> bool {
        let mut inner = self.lock();
        if inner.failing_status_posts > 0 {
            inner.failing_status_posts -= 1;
            inner.failed_status_posts += 1;
            return true;
        }
        false
    }

    /// Records a comment on pull request `number` of `full_name`; returns its id.
    pub(crate) fn record_comment(&self, full_name: &str, number: u64, body: &str) -> u64 {
        let id = {
            let mut inner = self.lock();
            inner.next_status_id += 1;
            let id = inner.next_status_id;
            inner
                .comments
                .entry((full_name.to_owned(), number))
                .or_default()
                .push((id, body.to_owned()));
            id
        };
        self.changes.send_modify(|n| *n += 1);
        id
    }

    /// Replaces the text of comment `id`; false when there is no such comment.
    pub(crate) fn edit_comment(&self, id: u64, body: &str) -> bool {
        let edited = {
            let mut inner = self.lock();
            let found = inner
                .comments
                .values_mut()
                .flat_map(|comments| comments.iter_mut())
                .find(|(comment_id, _)| *comment_id == id);
            match found {
                Some((_, text)) => {
                    *text = body.to_owned();
                    true
                }
                None => false,
            }
        };
        if edited {
            self.changes.send_modify(|n| *n += 1);
        }
        edited
    }

    /// Records a reaction (an award emoji on GitLab) on comment `id`.
    pub(crate) fn record_reaction(&self, id: u64, content: &str) {
        self.lock()
            .reactions
            .entry(id)
            .or_default()
            .push(content.to_owned());
        self.changes.send_modify(|n| *n += 1);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn refuse(&self, method: &Method, uri: &Uri, why: &str) {
        self.lock().unexpected.push(UnexpectedRequest {
            method: method.to_string(),
            uri: uri.to_string(),
            why: why.to_owned(),
        });
    }
}

pub(crate) fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// GitHub accepts `Bearer <token>` and the older `token <token>`; GitLab `PRIVATE-TOKEN`.
fn authorized(headers: &HeaderMap) -> bool {
    let github = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}") || v == format!("token {TOKEN}"));
    let gitlab = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == TOKEN);
    github || gitlab
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
pub(crate) fn read_blob(
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
    if shared.fail_this_status_post() {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
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
    let id = shared.record_status(&sha, status.clone());
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
pub(crate) fn admit(
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
    let id = shared.record_comment(&full_name, number, &comment.body);
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "body": comment.body })),
    )
        .into_response()
}

async fn edit_comment(
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
    let Ok(comment) = serde_json::from_slice::<CommentBody>(&body) else {
        shared.refuse(&method, &uri, "body is not a comment");
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    };
    if !shared.edit_comment(id, &comment.body) {
        shared.refuse(&method, &uri, "no such comment");
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    axum::Json(json!({ "id": id, "body": comment.body })).into_response()
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
    shared.record_reaction(id, &reaction.content);
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "content": reaction.content })),
    )
        .into_response()
}

async fn unexpected(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    shared.refuse(&method, &uri, "no such route in the fake forge");
    message(StatusCode::NOT_FOUND, "Not Found")
}
