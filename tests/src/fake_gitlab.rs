//! The GitLab half of the fake forge: the REST API v4 routes ferrocopr's gitlab client calls,
//! over the state the GitHub half uses (see [`crate::fake_forge`]).
//!
//! Projects are addressed by their URL-encoded full path or by a numeric id the fake gives each
//! registered repository; parameters arrive as GitLab's clients send them (query strings, form
//! bodies). Like GitLab, it refuses to set a status to the state that status already has.

use crate::fake_forge::{FakePull, Shared, Status, admit, message, read_blob};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// GitLab's access levels, for the fake's `grant` permissions.
fn access_level(permission: &str) -> u64 {
    match permission {
        "admin" => 40,
        "write" => 30,
        "read" => 20,
        _ => 10,
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v4/user", get(current_user))
        .route("/api/v4/users", get(users))
        .route("/api/v4/projects/{project}", get(project))
        .route(
            "/api/v4/projects/{project}/repository/files/{file}/raw",
            get(file_raw),
        )
        .route(
            "/api/v4/projects/{project}/statuses/{sha}",
            post(create_status),
        )
        .route(
            "/api/v4/projects/{project}/merge_requests/{iid}",
            get(merge_request),
        )
        .route("/api/v4/projects/{project}/members/all/{user}", get(member))
        .route(
            "/api/v4/projects/{project}/merge_requests/{iid}/notes",
            post(create_note),
        )
        .route(
            "/api/v4/projects/{project}/merge_requests/{iid}/notes/{note}",
            put(edit_note),
        )
        .route(
            "/api/v4/projects/{project}/merge_requests/{iid}/notes/{note}/award_emoji",
            post(award_emoji),
        )
}

/// A form body or query string as a map (GitLab's clients send parameters either way).
fn params(body: &[u8], uri: &Uri) -> HashMap<String, String> {
    let mut found: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if let Some(query) = uri.query() {
        found.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    found
}

/// The full path of a project named by path or by the fake's numeric id.
fn project_path(shared: &Shared, project: &str) -> String {
    match project.parse::<usize>() {
        Ok(id) => shared_repos_sorted(shared)
            .get(id.wrapping_sub(1))
            .cloned()
            .unwrap_or_else(|| project.to_owned()),
        Err(_) => project.to_owned(),
    }
}

/// The token check and the project's full path, or the refusal to answer with.
fn admit_project(
    shared: &Shared,
    project: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<String, Box<Response>> {
    let path = project_path(shared, project);
    match admit(shared, method, uri, headers, &path) {
        Some(refused) => Err(Box::new(refused)),
        None => Ok(path),
    }
}

fn shared_repos_sorted(shared: &Shared) -> Vec<String> {
    let mut names: Vec<String> = shared.lock().repos.keys().cloned().collect();
    names.sort();
    names
}

/// The numeric id of a registered project: its place among the registered names, from 1.
fn project_id(sorted: Vec<String>, name: &str) -> Option<usize> {
    sorted.iter().position(|n| n == name).map(|i| i + 1)
}

async fn current_user(
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if admit_token(&shared, &method, &uri, &headers).is_some() {
        return message(StatusCode::UNAUTHORIZED, "401 Unauthorized");
    }
    let id = shared.user_id("ferrocopr-bot");
    axum::Json(json!({ "id": id, "username": "ferrocopr-bot" })).into_response()
}

/// The token check alone, for routes that name no project.
fn admit_token(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response> {
    let any_repo = shared.lock().repos.keys().next().cloned()?;
    admit(shared, method, uri, headers, &any_repo)
}

async fn users(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match query.get("username") {
        Some(name) => {
            let id = shared.user_id(name);
            axum::Json(json!([{ "id": id, "username": name }])).into_response()
        }
        None => axum::Json(json!([])).into_response(),
    }
}

async fn project(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = match admit_project(&shared, &project, &method, &uri, &headers) {
        Ok(path) => path,
        Err(refused) => return *refused,
    };
    let id = project_id(shared_repos_sorted(&shared), &path);
    let clone_url = shared
        .lock()
        .repos
        .get(&path)
        .map(|p| format!("file://{}", p.display()));
    axum::Json(json!({
        "id": id,
        "path_with_namespace": path,
        "http_url_to_repo": clone_url,
    }))
    .into_response()
}

async fn file_raw(
    State(shared): State<Arc<Shared>>,
    Path((project, file)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = match admit_project(&shared, &project, &method, &uri, &headers) {
        Ok(path) => path,
        Err(refused) => return *refused,
    };
    let Some(repo_path) = shared.lock().repos.get(&path).cloned() else {
        return message(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    let reference = query
        .get("ref")
        .cloned()
        .unwrap_or_else(|| "HEAD".to_owned());
    match read_blob(&repo_path, &reference, &file) {
        Some((_, content)) => (StatusCode::OK, content).into_response(),
        None => message(StatusCode::NOT_FOUND, "404 File Not Found"),
    }
}

/// GitLab's commit status states.
const STATES: [&str; 6] = [
    "pending", "running", "success", "failed", "canceled", "skipped",
];

/// GitLab's name for the event that moves a status into `state`, as its errors say it.
fn transition_event(state: &str) -> &'static str {
    match state {
        "pending" => "enqueue",
        "running" => "run",
        "success" => "success",
        "failed" => "drop",
        "canceled" => "cancel",
        _ => "skip",
    }
}

async fn create_status(
    State(shared): State<Arc<Shared>>,
    Path((project, sha)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = admit_project(&shared, &project, &method, &uri, &headers) {
        return *refused;
    }
    if shared.fail_this_status_post() {
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error",
        );
    }
    let form = params(&body, &uri);
    let Some(state) = form.get("state").filter(|s| STATES.contains(&s.as_str())) else {
        shared.refuse(
            &method,
            &uri,
            &format!("invalid state {:?}", form.get("state")),
        );
        return message(
            StatusCode::BAD_REQUEST,
            "400 (Bad request) \"state\" not given",
        );
    };
    let name = form
        .get("name")
        .cloned()
        .unwrap_or_else(|| "default".to_owned());
    let current = shared.lock().statuses.get(&sha).and_then(|all| {
        all.iter()
            .rev()
            .find(|s| s.context.as_deref() == Some(&name))
            .cloned()
    });
    if let Some(current) = current
        && current.state == *state
    {
        // GitLab's answer to a status set twice to one state (not recorded as unexpected:
        // ferrocopr is expected to take it in its stride).
        return message(
            StatusCode::BAD_REQUEST,
            &format!(
                "Cannot transition status via :{} from :{} (Reason(s): Status cannot transition via \"{}\")",
                transition_event(state),
                current.state,
                transition_event(state)
            ),
        );
    }
    let status = Status {
        state: state.clone(),
        context: Some(name),
        description: form.get("description").cloned(),
        target_url: form.get("target_url").cloned(),
    };
    let id = shared.record_status(&sha, status.clone());
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "id": id,
            "sha": sha,
            "status": status.state,
            "name": status.context,
            "description": status.description,
            "target_url": status.target_url,
        })),
    )
        .into_response()
}

async fn merge_request(
    State(shared): State<Arc<Shared>>,
    Path((project, iid)): Path<(String, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = match admit_project(&shared, &project, &method, &uri, &headers) {
        Ok(path) => path,
        Err(refused) => return *refused,
    };
    let pull: Option<FakePull> = shared.lock().pulls.get(&(path.clone(), iid)).cloned();
    let Some(pull) = pull else {
        shared.refuse(&method, &uri, "merge request not registered with the fake");
        return message(StatusCode::NOT_FOUND, "404 Not found");
    };
    let sorted = shared_repos_sorted(&shared);
    let target = project_id(sorted.clone(), &path);
    let source = project_id(sorted, &pull.head_full_name).unwrap_or(9999);
    axum::Json(json!({
        "iid": iid,
        "state": "opened",
        "sha": pull.head_sha,
        "source_project_id": source,
        "target_project_id": target,
        "target_branch": pull.base_ref,
        "source_branch": "feature",
        "author": { "username": pull.author, "id": shared.user_id(&pull.author) },
    }))
    .into_response()
}

async fn member(
    State(shared): State<Arc<Shared>>,
    Path((project, user)): Path<(String, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = match admit_project(&shared, &project, &method, &uri, &headers) {
        Ok(path) => path,
        Err(refused) => return *refused,
    };
    let inner = shared.lock();
    let username = inner
        .users
        .iter()
        .find(|(_, id)| **id == user)
        .map(|(name, _)| name.clone());
    let level = username
        .as_ref()
        .and_then(|name| inner.permissions.get(&(path.clone(), name.clone())))
        .map(|p| access_level(p));
    drop(inner);
    match (username, level) {
        (Some(username), Some(level)) => {
            axum::Json(json!({ "id": user, "username": username, "access_level": level }))
                .into_response()
        }
        _ => message(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

async fn create_note(
    State(shared): State<Arc<Shared>>,
    Path((project, iid)): Path<(String, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = match admit_project(&shared, &project, &method, &uri, &headers) {
        Ok(path) => path,
        Err(refused) => return *refused,
    };
    let Some(text) = params(&body, &uri).get("body").cloned() else {
        shared.refuse(&method, &uri, "a note without body");
        return message(
            StatusCode::BAD_REQUEST,
            "400 (Bad request) \"body\" not given",
        );
    };
    let id = shared.record_comment(&path, iid, &text);
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "body": text })),
    )
        .into_response()
}

async fn edit_note(
    State(shared): State<Arc<Shared>>,
    Path((project, _iid, note)): Path<(String, u64, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = admit_project(&shared, &project, &method, &uri, &headers) {
        return *refused;
    }
    let Some(text) = params(&body, &uri).get("body").cloned() else {
        shared.refuse(&method, &uri, "a note without body");
        return message(
            StatusCode::BAD_REQUEST,
            "400 (Bad request) \"body\" not given",
        );
    };
    if !shared.edit_comment(note, &text) {
        shared.refuse(&method, &uri, "no such note");
        return message(StatusCode::NOT_FOUND, "404 Not found");
    }
    axum::Json(json!({ "id": note, "body": text })).into_response()
}

async fn award_emoji(
    State(shared): State<Arc<Shared>>,
    Path((project, _iid, note)): Path<(String, u64, u64)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = admit_project(&shared, &project, &method, &uri, &headers) {
        return *refused;
    }
    let Some(name) = params(&body, &uri).get("name").cloned() else {
        shared.refuse(&method, &uri, "an award without name");
        return message(
            StatusCode::BAD_REQUEST,
            "400 (Bad request) \"name\" not given",
        );
    };
    shared.record_reaction(note, &name);
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": note, "name": name })),
    )
        .into_response()
}
