//! GitLab through the gitlab crate: the [`Forge`] verbs on GitLab's REST API v4.
//!
//! Projects are named by their full path (`group/subgroup/name`), merge requests by their iid.
//! Commit statuses use GitLab's own states (running, canceled); GitLab refuses to "move" a
//! status to the state it is already in, which here is not an error: the forge already shows
//! what we meant. The client is made on first use, so an unreachable GitLab at start-up only
//! delays its statuses.

use super::{CommitState, CommitStatus, Forge, ForgeUser, Permission, PullRequestInfo, RepoRef};
use anyhow::Context;
use async_trait::async_trait;
use gitlab::api::projects::members::AllProjectMember;
use gitlab::api::projects::merge_requests::MergeRequest;
use gitlab::api::projects::merge_requests::notes::awards::CreateMergeRequestNoteAward;
use gitlab::api::projects::merge_requests::notes::{CreateMergeRequestNote, EditMergeRequestNote};
use gitlab::api::projects::repository::commits::{CommitStatusState, CreateCommitStatus};
use gitlab::api::projects::repository::files::FileRaw;
use gitlab::api::{ApiError, AsyncQuery};
use gitlab::{AsyncGitlab, RestError};
use serde_json::Value;
use tokio::sync::OnceCell;

type GitLabApiError = ApiError<RestError>;

/// GitLab's access levels (Developer and above may push).
const DEVELOPER: u64 = 30;
const MAINTAINER: u64 = 40;

/// The HTTP status of a GitLab API error, when GitLab answered at all.
fn status_of(error: &GitLabApiError) -> Option<u16> {
    match error {
        ApiError::GitlabService { status, .. }
        | ApiError::GitlabWithStatus { status, .. }
        | ApiError::GitlabObjectWithStatus { status, .. }
        | ApiError::GitlabUnrecognizedWithStatus { status, .. } => Some(status.as_u16()),
        _ => None,
    }
}

/// Whether `error` is the gitlab crate's, saying GitLab is down or unreachable.
pub(super) fn unavailable(error: &anyhow::Error) -> bool {
    if let Some(error) = error.downcast_ref::<GitLabApiError>() {
        return match error {
            ApiError::Client { .. } => true,
            other => status_of(other).is_some_and(|s| s >= 500),
        };
    }
    // Making the client failed: it could not reach GitLab to check the token.
    error.downcast_ref::<gitlab::GitlabError>().is_some()
}

fn not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<GitLabApiError>()
        .is_some_and(|e| status_of(e) == Some(404))
}

/// GitLab's answer to a status in the state it already shows: "Cannot transition status via
/// :run from :running".
fn already_in_state(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<GitLabApiError>(),
        Some(ApiError::GitlabWithStatus { status, msg })
            if status.as_u16() == 400 && msg.contains("Cannot transition status")
    )
}

/// GitLab through the gitlab crate's async client.
pub struct GitLab {
    /// `gitlab.com`, or `host:port` with a path prefix, as the gitlab crate takes it.
    host: String,
    insecure: bool,
    token: String,
    client: OnceCell<AsyncGitlab>,
}

impl std::fmt::Debug for GitLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLab")
            .field("host", &self.host)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl GitLab {
    /// `url` is the instance's address, `https://gitlab.com` or `http://127.0.0.1:8929`.
    pub fn new(url: &str, token: &str) -> anyhow::Result<GitLab> {
        let (insecure, host) = if let Some(host) = url.strip_prefix("http://") {
            (true, host)
        } else if let Some(host) = url.strip_prefix("https://") {
            (false, host)
        } else {
            anyhow::bail!("the GitLab URL {url:?} must start with https:// or http://");
        };
        Ok(GitLab {
            host: host.trim_end_matches('/').to_owned(),
            insecure,
            token: token.to_owned(),
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> anyhow::Result<&AsyncGitlab> {
        self.client
            .get_or_try_init(|| async {
                let mut builder = gitlab::GitlabBuilder::new(&self.host, &self.token);
                if self.insecure {
                    builder.insecure();
                }
                builder.build_async().await
            })
            .await
            .map_err(anyhow::Error::from)
    }

    async fn json<E>(&self, endpoint: E) -> anyhow::Result<Value>
    where
        E: gitlab::api::Endpoint + Sync,
    {
        let client = self.client().await?;
        Ok(endpoint.query_async(client).await?)
    }
}

#[async_trait]
impl Forge for GitLab {
    async fn read_file_at(
        &self,
        repo: &RepoRef,
        git_ref: &str,
        path: &str,
    ) -> anyhow::Result<Option<String>> {
        let endpoint = FileRaw::builder()
            .project(repo.full_name.as_str())
            .file_path(path)
            .ref_(git_ref)
            .build()?;
        let client = self.client().await?;
        let raw: Result<Vec<u8>, GitLabApiError> =
            gitlab::api::raw(endpoint).query_async(client).await;
        match raw.map_err(anyhow::Error::from) {
            Ok(bytes) => Ok(Some(String::from_utf8(bytes)?)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_status(&self, repo: &str, sha: &str, status: &CommitStatus) -> anyhow::Result<()> {
        let state = match status.state {
            CommitState::Pending => CommitStatusState::Pending,
            CommitState::Running => CommitStatusState::Running,
            CommitState::Success => CommitStatusState::Success,
            CommitState::Failure | CommitState::Error => CommitStatusState::Failed,
            CommitState::Canceled => CommitStatusState::Canceled,
        };
        let mut builder = CreateCommitStatus::builder();
        builder
            .project(repo)
            .commit(sha)
            .state(state)
            .name(status.context.as_str())
            .description(status.description.as_str());
        if let Some(url) = &status.target_url {
            builder.target_url(url.as_str());
        }
        match self.json(builder.build()?).await {
            Err(e) if !already_in_state(&e) => Err(e),
            _ => Ok(()),
        }
    }

    async fn pull_request(&self, repo: &str, number: u64) -> anyhow::Result<PullRequestInfo> {
        let mr = self
            .json(
                MergeRequest::builder()
                    .project(repo)
                    .merge_request(number)
                    .build()?,
            )
            .await?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let (head_repo, head_clone_url) = if mr["source_project_id"] == mr["target_project_id"] {
            (Some(repo.to_owned()), None)
        } else if let Some(source) = mr["source_project_id"].as_u64() {
            let endpoint = gitlab::api::projects::Project::builder()
                .project(source)
                .build()?;
            match self.json(endpoint).await {
                Ok(project) => (
                    text(&project["path_with_namespace"]),
                    text(&project["http_url_to_repo"]),
                ),
                Err(e) if not_found(&e) => (None, None),
                Err(e) => return Err(e),
            }
        } else {
            (None, None)
        };
        Ok(PullRequestInfo {
            head_sha: text(&mr["sha"]).context("merge request without sha")?,
            head_repo,
            head_clone_url,
            base_ref: text(&mr["target_branch"]).context("merge request without target")?,
            author: text(&mr["author"]["username"]).context("merge request without author")?,
        })
    }

    async fn permission_of(&self, repo: &str, user: &ForgeUser) -> anyhow::Result<Permission> {
        let id = match user.id {
            Some(id) => id,
            None => {
                let endpoint = gitlab::api::users::Users::builder()
                    .username(user.login.as_str())
                    .build()?;
                let found = self.json(endpoint).await?;
                match found[0]["id"].as_u64() {
                    Some(id) => id,
                    None => return Ok(Permission::None),
                }
            }
        };
        let endpoint = AllProjectMember::builder().project(repo).user(id).build()?;
        let member = match self.json(endpoint).await {
            Ok(member) => member,
            Err(e) if not_found(&e) => return Ok(Permission::None),
            Err(e) => return Err(e),
        };
        Ok(match member["access_level"].as_u64().unwrap_or(0) {
            level if level >= MAINTAINER => Permission::Admin,
            level if level >= DEVELOPER => Permission::Write,
            0 => Permission::None,
            _ => Permission::Read,
        })
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> anyhow::Result<u64> {
        let endpoint = CreateMergeRequestNote::builder()
            .project(repo)
            .merge_request(number)
            .body(body)
            .build()?;
        let note = self.json(endpoint).await?;
        note["id"].as_u64().context("a created note without id")
    }

    async fn edit_comment(
        &self,
        repo: &str,
        number: u64,
        comment_id: u64,
        body: &str,
    ) -> anyhow::Result<()> {
        let endpoint = EditMergeRequestNote::builder()
            .project(repo)
            .merge_request(number)
            .note(comment_id)
            .body(body)
            .build()?;
        self.json(endpoint).await?;
        Ok(())
    }

    async fn acknowledge(&self, repo: &str, number: u64, comment_id: u64) -> anyhow::Result<()> {
        let endpoint = CreateMergeRequestNoteAward::builder()
            .project(repo)
            .merge_request(number)
            .note(comment_id)
            .name("eyes")
            .build()?;
        self.json(endpoint).await?;
        Ok(())
    }
}
