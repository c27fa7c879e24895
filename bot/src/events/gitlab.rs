//! GitLab's webhook payloads (`Push Hook`, `Tag Push Hook`, `Merge Request Hook`, `Note Hook`),
//! read into the forge-neutral [`Action`]s of the event worker.
//!
//! GitLab names projects by their full path (`group/subgroup/name`); the Copr owner is its
//! first part and the project its last. Merge requests are numbered by their iid. Statuses of
//! a merge request go to its source project, where GitLab shows them on the pipeline.

use super::{Action, CommentEvent, ForgeEvent, fork_of, read};
use crate::forge::{ForgeUser, GITLAB, RepoRef};
use ferrocopr_schema::copr_yaml::Trigger;
use serde::Deserialize;

/// What a GitLab delivery of `event` (the `X-Gitlab-Event` header) asks for.
pub(super) fn parse(event: &str, payload: &str) -> Action {
    match event {
        "Push Hook" | "Tag Push Hook" => read(event, payload, |push: Push| {
            push_event(push).map_or_else(Action::Ignore, Action::Build)
        }),
        "Merge Request Hook" => read(event, payload, merge_request_event),
        "Note Hook" => read(event, payload, note_event),
        other => Action::Ignore(format!("gitlab event {other} needs no action")),
    }
}

/// The Copr owner and project name a GitLab project path stands for.
pub(super) fn owner_and_name(path: &str) -> (String, String) {
    let owner = path.split('/').next().unwrap_or(path);
    let name = path.rsplit('/').next().unwrap_or(path);
    (owner.to_owned(), name.to_owned())
}

/// A project as GitLab's payloads describe it.
#[derive(Debug, Deserialize)]
struct Project {
    path_with_namespace: String,
    git_http_url: String,
    #[serde(default)]
    default_branch: Option<String>,
}

impl Project {
    fn repo(&self) -> RepoRef {
        RepoRef {
            full_name: self.path_with_namespace.clone(),
            clone_url: self.git_http_url.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    checkout_sha: Option<String>,
    #[serde(default)]
    user_username: Option<String>,
    project: Project,
}

fn push_event(push: Push) -> Result<ForgeEvent, String> {
    // A deleted branch or tag has no commit after the push.
    if push.after.bytes().all(|b| b == b'0') {
        return Err("branch or tag deleted".into());
    }
    let (trigger, name) = super::branch_or_tag(&push.git_ref)?;
    let (repo_owner, repo_name) = owner_and_name(&push.project.path_with_namespace);
    // A tag's `after` is the tag object; `checkout_sha` is the commit it points at.
    let sha = push.checkout_sha.clone().unwrap_or(push.after);
    Ok(ForgeEvent {
        forge: GITLAB,
        repo: push.project.repo(),
        base: push.project.repo(),
        repo_owner,
        repo_name,
        clone_url: push.project.git_http_url.clone(),
        default_branch: push
            .project
            .default_branch
            .clone()
            .unwrap_or_else(|| name.clone()),
        sha,
        submitter: push.user_username.unwrap_or_else(|| "gitlab".to_owned()),
        trigger,
        name,
        pull_request: None,
        from_fork: None,
    })
}

#[derive(Debug, Deserialize)]
struct User {
    #[serde(default)]
    id: Option<u64>,
    username: String,
}

#[derive(Debug, Deserialize)]
struct MergeRequestEvent {
    user: User,
    object_attributes: MergeRequest,
}

#[derive(Debug, Deserialize)]
struct MergeRequest {
    iid: u64,
    target_branch: String,
    source_project_id: u64,
    target_project_id: u64,
    source: Project,
    target: Project,
    last_commit: LastCommit,
    #[serde(default)]
    action: Option<String>,
    /// Set on `update` when new commits were pushed (the previous head).
    #[serde(default)]
    oldrev: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LastCommit {
    id: String,
}

fn merge_request_event(event: MergeRequestEvent) -> Action {
    let mr = event.object_attributes;
    let action = mr.action.as_deref().unwrap_or_default();
    match action {
        "close" | "merge" => {
            return Action::PullRequestClosed {
                repo: mr.source.path_with_namespace,
                number: mr.iid,
            };
        }
        "open" | "reopen" => {}
        "update" if mr.oldrev.is_some() => {}
        "update" => return Action::Ignore("merge request updated without new commits".into()),
        other => return Action::Ignore(format!("merge request {other} needs no build")),
    }
    let source_repo = (mr.source_project_id != mr.target_project_id)
        .then_some(mr.source.path_with_namespace.as_str());
    let from_fork = fork_of(
        source_repo.or(Some(&mr.target.path_with_namespace)),
        &mr.target.path_with_namespace,
    );
    let (repo_owner, repo_name) = owner_and_name(&mr.target.path_with_namespace);
    Action::Build(ForgeEvent {
        forge: GITLAB,
        repo: mr.source.repo(),
        base: mr.target.repo(),
        repo_owner,
        repo_name,
        clone_url: mr.source.git_http_url.clone(),
        default_branch: mr
            .target
            .default_branch
            .clone()
            .unwrap_or_else(|| mr.target_branch.clone()),
        sha: mr.last_commit.id,
        submitter: event.user.username,
        trigger: Trigger::PullRequest,
        name: mr.target_branch,
        pull_request: Some(mr.iid),
        from_fork,
    })
}

#[derive(Debug, Deserialize)]
struct NoteEvent {
    user: User,
    project: Project,
    object_attributes: Note,
    #[serde(default)]
    merge_request: Option<NotedMergeRequest>,
}

#[derive(Debug, Deserialize)]
struct Note {
    id: u64,
    note: String,
    noteable_type: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    system: bool,
}

#[derive(Debug, Deserialize)]
struct NotedMergeRequest {
    iid: u64,
    author_id: u64,
}

fn note_event(event: NoteEvent) -> Action {
    let note = event.object_attributes;
    if note.noteable_type != "MergeRequest" {
        return Action::Ignore(format!("a note on a {}", note.noteable_type));
    }
    if note.action.as_deref().is_some_and(|a| a != "create") {
        return Action::Ignore("a note edited, not created".into());
    }
    let Some(mr) = event.merge_request else {
        return Action::Ignore("a merge request note without its merge request".into());
    };
    let (repo_owner, repo_name) = owner_and_name(&event.project.path_with_namespace);
    Action::Comment(CommentEvent {
        repo: event.project.repo(),
        repo_owner,
        repo_name,
        default_branch: event.project.default_branch.clone(),
        number: mr.iid,
        comment_id: note.id,
        body: note.note,
        from_bot: note.system,
        by_author: event.user.id == Some(mr.author_id),
        commenter: ForgeUser {
            login: event.user.username,
            id: event.user.id,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(name: &str) -> String {
        let path = format!(
            "{}/../tests/data/webhooks/gitlab/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn real_payloads() {
        let Action::Build(push) = parse("Push Hook", &real("push.json")) else {
            panic!("a push builds");
        };
        assert_eq!(push.repo.full_name, "mike/diaspora");
        assert_eq!(
            (push.trigger, push.name.as_str()),
            (Trigger::Push, "master")
        );
        assert_eq!(push.sha, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
        assert_eq!(push.submitter, "jsmith");

        let Action::Build(tag) = parse("Tag Push Hook", &real("tag_push.json")) else {
            panic!("a tag builds");
        };
        assert_eq!((tag.trigger, tag.name.as_str()), (Trigger::Tag, "v1.0.0"));

        let Action::Build(mr) = parse("Merge Request Hook", &real("merge_request.json")) else {
            panic!("an opened merge request builds");
        };
        assert_eq!(mr.pull_request, Some(1));
        assert_eq!(mr.repo.full_name, "awesome_space/awesome_project");
        assert_eq!(mr.from_fork, None);
        assert_eq!(mr.name, "master");

        let Action::Comment(note) = parse("Note Hook", &real("note_merge_request.json")) else {
            panic!("a merge request note is a comment");
        };
        assert_eq!((note.number, note.comment_id), (1, 1244));
        assert_eq!(note.commenter.login, "root");
        assert!(!note.by_author);

        assert!(matches!(
            parse("Pipeline Hook", "{}"),
            Action::Ignore(why) if why.contains("Pipeline Hook")
        ));
        assert_eq!(
            owner_and_name("group/sub/name"),
            ("group".to_owned(), "name".to_owned())
        );
    }
}
