//! GitHub's webhook payloads, read into the forge-neutral [`Action`]s of the event worker.
//!
//! Only the fields ferrocopr uses are declared, so a field GitHub adds never breaks parsing.

use super::{Action, CommentEvent, ForgeEvent, fork_of, read};
use crate::forge::{ForgeUser, GITHUB, RepoRef};
use ferrocopr_schema::copr_yaml::Trigger;
use serde::Deserialize;

/// What a GitHub delivery of `event` asks for.
pub(super) fn parse(event: &str, payload: &str) -> Action {
    match event {
        "push" => read(event, payload, |push: Push| {
            push_event(push).map_or_else(Action::Ignore, Action::Build)
        }),
        "pull_request" => read(event, payload, pull_request_event),
        "issue_comment" => read(event, payload, comment_event),
        other => Action::Ignore(format!("github event {other} needs no action")),
    }
}

fn comment_event(event: IssueCommentEvent) -> Action {
    if event.action != "created" {
        return Action::Ignore(format!("comment {}", event.action));
    }
    if event.issue.pull_request.is_none() {
        return Action::Ignore("a comment on an issue, not a pull request".into());
    }
    let comment = event.comment;
    let base = event.repository;
    Action::Comment(CommentEvent {
        repo_owner: base.owner_name(),
        repo_name: base.name.clone(),
        default_branch: base.default_branch.clone(),
        repo: RepoRef {
            full_name: base.full_name,
            clone_url: base.clone_url,
        },
        number: event.issue.number,
        comment_id: comment.id,
        body: comment.body,
        from_bot: comment.user.kind == "Bot",
        by_author: comment.user.login == event.issue.user.login,
        commenter: ForgeUser {
            login: comment.user.login,
            id: None,
        },
    })
}

/// The parts of GitHub's `push` payload we use.
#[derive(Debug, Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: Repository,
    #[serde(default)]
    pusher: Option<Pusher>,
    #[serde(default)]
    sender: Option<Sender>,
}

#[derive(Debug, Deserialize)]
struct Repository {
    name: String,
    full_name: String,
    clone_url: String,
    default_branch: Option<String>,
    owner: Owner,
}

impl Repository {
    fn owner_name(&self) -> String {
        self.owner
            .login
            .clone()
            .or_else(|| self.owner.name.clone())
            .unwrap_or_else(|| {
                self.full_name
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
    }
}

/// The parts of GitHub's `pull_request` payload we use.
#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    number: u64,
    pull_request: PullRequest,
    /// The base repository, where statuses go.
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    head: Head,
    base: Base,
    user: User,
}

#[derive(Debug, Deserialize)]
struct Base {
    #[serde(rename = "ref")]
    git_ref: String,
}

#[derive(Debug, Deserialize)]
struct Head {
    sha: String,
    /// `null` when the fork was deleted.
    repo: Option<HeadRepository>,
}

#[derive(Debug, Deserialize)]
struct HeadRepository {
    full_name: String,
    clone_url: String,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

/// The parts of GitHub's `issue_comment` payload we use.
#[derive(Debug, Deserialize)]
struct IssueCommentEvent {
    action: String,
    issue: Issue,
    comment: Comment,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    user: User,
    /// Present when the issue is a pull request.
    pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    id: u64,
    body: String,
    user: CommentUser,
}

#[derive(Debug, Deserialize)]
struct CommentUser {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct Owner {
    login: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Pusher {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Sender {
    login: Option<String>,
}

fn push_event(push: Push) -> Result<ForgeEvent, String> {
    if push.deleted {
        return Err("branch or tag deleted".into());
    }
    let (trigger, name) = super::branch_or_tag(&push.git_ref)?;
    let repo = push.repository;
    let submitter = push
        .sender
        .and_then(|s| s.login)
        .or_else(|| push.pusher.and_then(|p| p.name))
        .unwrap_or_else(|| "github".to_owned());
    Ok(ForgeEvent {
        forge: GITHUB,
        repo_owner: repo.owner_name(),
        repo_name: repo.name.clone(),
        clone_url: repo.clone_url.clone(),
        default_branch: repo.default_branch.clone().unwrap_or_else(|| name.clone()),
        base: RepoRef {
            full_name: repo.full_name.clone(),
            clone_url: repo.clone_url.clone(),
        },
        repo: RepoRef {
            full_name: repo.full_name,
            clone_url: repo.clone_url,
        },
        sha: push.after,
        submitter,
        trigger,
        name,
        pull_request: None,
        from_fork: None,
    })
}

fn pull_request_event(event: PullRequestEvent) -> Action {
    if event.action == "closed" {
        return Action::PullRequestClosed {
            repo: event.repository.full_name,
            number: event.number,
        };
    }
    if !matches!(event.action.as_str(), "opened" | "reopened" | "synchronize") {
        return Action::Ignore(format!("pull request {} needs no build", event.action));
    }
    let pr = event.pull_request;
    let base = event.repository;
    let head_repo = pr.head.repo;
    let from_fork = fork_of(
        head_repo.as_ref().map(|h| h.full_name.as_str()),
        &base.full_name,
    );
    Action::Build(ForgeEvent {
        forge: GITHUB,
        repo_owner: base.owner_name(),
        repo_name: base.name.clone(),
        clone_url: head_repo.map_or_else(|| base.clone_url.clone(), |h| h.clone_url),
        base: RepoRef {
            full_name: base.full_name.clone(),
            clone_url: base.clone_url.clone(),
        },
        repo: RepoRef {
            full_name: base.full_name,
            clone_url: base.clone_url,
        },
        default_branch: base
            .default_branch
            .clone()
            .unwrap_or_else(|| pr.base.git_ref.clone()),
        sha: pr.head.sha,
        submitter: pr.user.login,
        trigger: Trigger::PullRequest,
        name: pr.base.git_ref,
        pull_request: Some(event.number),
        from_fork,
    })
}
