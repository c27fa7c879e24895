//! Webhook deliveries as the forges send them: real payloads from `tests/data/webhooks`, varied
//! per test; GitHub's `X-Hub-Signature-256` HMAC over the raw body, GitLab's `X-Gitlab-Token`.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::path::PathBuf;

/// The secret the harness configures ferrocopr with.
pub const SECRET: &str = "e2e-webhook-secret";
/// A second secret configured beside it, as during a rotation.
pub const NEXT_SECRET: &str = "e2e-webhook-secret-next";

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the value of `X-Hub-Signature-256`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The secret (`X-Gitlab-Token`) the harness configures for GitLab.
pub const GITLAB_SECRET: &str = "e2e-gitlab-token";

/// The real payloads, kept unchanged in the repository (copied from the project's shared data;
/// `tests/data/webhooks/README.md` says where they come from).
fn payload_path(forge: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/webhooks")
        .join(forge)
        .join(name)
}

/// Reads one of the real GitHub payloads as JSON.
pub fn real_payload(name: &str) -> Value {
    real_forge_payload("github", name)
}

/// Reads one of the real payloads of `forge` (`github`, `gitlab`) as JSON.
fn real_forge_payload(forge: &str, name: &str) -> Value {
    let path = payload_path(forge, name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the real webhook payload {} is missing ({e})",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// GitHub's `push_new_branch.json`, turned into a push of `sha` to `branch` of `repo_full_name`.
pub fn push_payload(repo_full_name: &str, clone_url: &str, sha: &str, branch: &str) -> Vec<u8> {
    let (owner, name) = repo_full_name
        .split_once('/')
        .unwrap_or_else(|| panic!("{repo_full_name:?} is not owner/name"));
    let mut payload = real_payload("push_new_branch.json");
    payload["ref"] = format!("refs/heads/{branch}").into();
    payload["after"] = sha.into();
    payload["deleted"] = false.into();
    if let Some(head) = payload.get_mut("head_commit").filter(|h| h.is_object()) {
        head["id"] = sha.into();
    }
    let repository = &mut payload["repository"];
    repository["full_name"] = repo_full_name.into();
    repository["name"] = name.into();
    repository["owner"]["login"] = owner.into();
    repository["owner"]["name"] = owner.into();
    repository["clone_url"] = clone_url.into();
    repository["default_branch"] = branch.into();
    serde_json::to_vec(&payload).expect("serialise the push payload")
}

/// How a pull request's head relates to the base repository.
#[derive(Debug, Clone, Copy)]
pub struct PullRequest<'a> {
    /// `opened`, `reopened`, `synchronize` or `closed`.
    pub action: &'a str,
    pub number: u64,
    pub head_sha: &'a str,
    /// The repository the head commit lives in: the base repository itself, or a fork.
    pub head_repo_full_name: &'a str,
    pub head_clone_url: &'a str,
    pub author: &'a str,
}

/// GitHub's `pull_request_opened.json`, turned into pull request `pr` against `base_full_name`.
pub fn pull_request_payload(
    base_full_name: &str,
    base_clone_url: &str,
    pr: PullRequest<'_>,
) -> Vec<u8> {
    let (owner, name) = base_full_name
        .split_once('/')
        .unwrap_or_else(|| panic!("{base_full_name:?} is not owner/name"));
    let mut payload = real_payload("pull_request_opened.json");
    payload["action"] = pr.action.into();
    payload["number"] = pr.number.into();
    let repository = &mut payload["repository"];
    repository["full_name"] = base_full_name.into();
    repository["name"] = name.into();
    repository["owner"]["login"] = owner.into();
    repository["clone_url"] = base_clone_url.into();
    repository["default_branch"] = "main".into();
    let base_repository = payload["repository"].clone();
    let pull = &mut payload["pull_request"];
    pull["number"] = pr.number.into();
    pull["user"]["login"] = pr.author.into();
    pull["base"]["ref"] = "main".into();
    pull["base"]["repo"] = base_repository;
    pull["head"]["sha"] = pr.head_sha.into();
    pull["head"]["repo"]["full_name"] = pr.head_repo_full_name.into();
    pull["head"]["repo"]["clone_url"] = pr.head_clone_url.into();
    serde_json::to_vec(&payload).expect("serialise the pull_request payload")
}

/// GitHub's `issue_comment_created.json`, turned into comment `comment_id` by `commenter` on
/// pull request `number` (opened by `pr_author`) of `full_name`.
pub fn pull_request_comment_payload(
    full_name: &str,
    clone_url: &str,
    number: u64,
    pr_author: &str,
    comment_id: u64,
    commenter: &str,
    body: &str,
) -> Vec<u8> {
    let (owner, name) = full_name
        .split_once('/')
        .unwrap_or_else(|| panic!("{full_name:?} is not owner/name"));
    let mut payload = real_payload("issue_comment_created.json");
    payload["action"] = "created".into();
    let issue = &mut payload["issue"];
    issue["number"] = number.into();
    issue["user"]["login"] = pr_author.into();
    issue["pull_request"] = serde_json::json!({ "url": format!("https://api.github.com/repos/{full_name}/pulls/{number}") });
    let comment = &mut payload["comment"];
    comment["id"] = comment_id.into();
    comment["body"] = body.into();
    comment["user"]["login"] = commenter.into();
    comment["user"]["type"] = "User".into();
    let repository = &mut payload["repository"];
    repository["full_name"] = full_name.into();
    repository["name"] = name.into();
    repository["owner"]["login"] = owner.into();
    repository["clone_url"] = clone_url.into();
    repository["default_branch"] = "main".into();
    serde_json::to_vec(&payload).expect("serialise the issue_comment payload")
}

/// A GitLab project as payloads describe it.
fn gitlab_project(full_name: &str, clone_url: &str) -> Value {
    let name = full_name.rsplit('/').next().unwrap_or(full_name);
    serde_json::json!({
        "id": 1,
        "name": name,
        "path_with_namespace": full_name,
        "git_http_url": clone_url,
        "http_url": clone_url,
        "default_branch": "main",
        "web_url": format!("http://gitlab.example/{full_name}"),
    })
}

/// GitLab's `push.json` (or `tag_push.json` for `refs/tags/…`), turned into a push of `sha` to
/// `git_ref` of `full_name` by `user`.
pub fn gitlab_push_payload(full_name: &str, clone_url: &str, sha: &str, git_ref: &str) -> Vec<u8> {
    let tag = git_ref.starts_with("refs/tags/");
    let mut payload = real_forge_payload("gitlab", if tag { "tag_push.json" } else { "push.json" });
    payload["ref"] = git_ref.into();
    payload["after"] = sha.into();
    payload["checkout_sha"] = sha.into();
    payload["user_username"] = full_name.split('/').next().unwrap_or_default().into();
    payload["project"] = gitlab_project(full_name, clone_url);
    serde_json::to_vec(&payload).expect("serialise the push payload")
}

/// A merge request as a test describes it.
#[derive(Debug, Clone, Copy)]
pub struct MergeRequest<'a> {
    /// `open`, `reopen`, `update`, `close` or `merge`.
    pub action: &'a str,
    pub iid: u64,
    pub head_sha: &'a str,
    /// The head before an `update` that pushed commits.
    pub oldrev: Option<&'a str>,
    pub author_id: u64,
}

/// GitLab's `merge_request.json`, turned into merge request `mr` within `full_name`.
pub fn gitlab_merge_request_payload(
    full_name: &str,
    clone_url: &str,
    mr: MergeRequest<'_>,
) -> Vec<u8> {
    let mut payload = real_forge_payload("gitlab", "merge_request.json");
    let project = gitlab_project(full_name, clone_url);
    payload["project"] = project.clone();
    let attributes = &mut payload["object_attributes"];
    attributes["iid"] = mr.iid.into();
    attributes["action"] = mr.action.into();
    attributes["target_branch"] = "main".into();
    attributes["source_project_id"] = 1.into();
    attributes["target_project_id"] = 1.into();
    attributes["author_id"] = mr.author_id.into();
    attributes["source"] = project.clone();
    attributes["target"] = project;
    attributes["last_commit"]["id"] = mr.head_sha.into();
    match mr.oldrev {
        Some(oldrev) => attributes["oldrev"] = oldrev.into(),
        None => {
            if let Some(map) = attributes.as_object_mut() {
                map.remove("oldrev");
            }
        }
    }
    serde_json::to_vec(&payload).expect("serialise the merge request payload")
}

/// GitLab's `note_merge_request.json`, turned into note `note_id` by `commenter` (`username`,
/// `id`) on merge request `iid` of `full_name`, opened by the user with id `author_id`.
pub fn gitlab_note_payload(
    full_name: &str,
    clone_url: &str,
    iid: u64,
    author_id: u64,
    note_id: u64,
    commenter: (&str, u64),
    body: &str,
) -> Vec<u8> {
    let mut payload = real_forge_payload("gitlab", "note_merge_request.json");
    let project = gitlab_project(full_name, clone_url);
    payload["project"] = project.clone();
    payload["user"]["username"] = commenter.0.into();
    payload["user"]["id"] = commenter.1.into();
    let attributes = &mut payload["object_attributes"];
    attributes["id"] = note_id.into();
    attributes["note"] = body.into();
    attributes["action"] = "create".into();
    let mr = &mut payload["merge_request"];
    mr["iid"] = iid.into();
    mr["author_id"] = author_id.into();
    mr["target_branch"] = "main".into();
    mr["source"] = project.clone();
    mr["target"] = project;
    serde_json::to_vec(&payload).expect("serialise the note payload")
}
