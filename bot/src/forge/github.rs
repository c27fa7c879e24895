//! GitHub through octocrab: the [`Forge`] verbs on GitHub's REST API.
//!
//! Statuses use octocrab's typed builder; the rest uses its plain JSON routes and reads only
//! the fields it needs, so a field GitHub adds or drops never breaks them.

use super::{CommitState, CommitStatus, Forge, ForgeUser, Permission, PullRequestInfo, RepoRef};
use anyhow::Context;
use async_trait::async_trait;
use base64::Engine;
use octocrab::models::StatusState;

/// Whether `error` is octocrab's, saying GitHub is down or unreachable (a 5xx, no answer).
pub(super) fn unavailable(error: &anyhow::Error) -> bool {
    match error.downcast_ref::<octocrab::Error>() {
        Some(octocrab::Error::GitHub { source, .. }) => source.status_code.is_server_error(),
        Some(_) => true,
        None => false,
    }
}

/// GitHub through octocrab.
#[derive(Debug, Clone)]
pub struct GitHub {
    client: octocrab::Octocrab,
}

impl GitHub {
    /// Must be called inside the tokio runtime (octocrab spawns its buffer worker there).
    pub fn new(api_url: &str, token: Option<&str>) -> anyhow::Result<GitHub> {
        let mut builder = octocrab::Octocrab::builder().base_uri(api_url)?;
        if let Some(token) = token {
            builder = builder.personal_token(token.to_owned());
        }
        Ok(GitHub {
            client: builder.build()?,
        })
    }
}

fn split_repo(repo: &str) -> anyhow::Result<(&str, &str)> {
    repo.split_once('/')
        .ok_or_else(|| anyhow::anyhow!("repository {repo:?} is not owner/name"))
}

#[async_trait]
impl Forge for GitHub {
    async fn read_file_at(
        &self,
        repo: &RepoRef,
        git_ref: &str,
        path: &str,
    ) -> anyhow::Result<Option<String>> {
        let (owner, name) = split_repo(&repo.full_name)?;
        let reply = self
            .client
            .repos(owner, name)
            .get_content()
            .path(path)
            .r#ref(git_ref)
            .send()
            .await;
        let mut items = match reply {
            Ok(items) => items,
            Err(octocrab::Error::GitHub { source, .. }) if source.status_code.as_u16() == 404 => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let Some(item) = items.take_items().into_iter().next() else {
            return Ok(None);
        };
        let Some(encoded) = item.content else {
            return Ok(None);
        };
        let compact: String = encoded.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD.decode(compact)?;
        Ok(Some(String::from_utf8(bytes)?))
    }

    async fn set_status(&self, repo: &str, sha: &str, status: &CommitStatus) -> anyhow::Result<()> {
        let (owner, name) = split_repo(repo)?;
        let state = match status.state {
            CommitState::Pending | CommitState::Running => StatusState::Pending,
            CommitState::Success => StatusState::Success,
            CommitState::Failure => StatusState::Failure,
            CommitState::Error | CommitState::Canceled => StatusState::Error,
        };
        let repos = self.client.repos(owner, name);
        let mut request = repos
            .create_status(sha.to_owned(), state)
            .context(status.context.clone())
            .description(status.description.clone());
        if let Some(url) = &status.target_url {
            request = request.target(url.clone());
        }
        request.send().await?;
        Ok(())
    }

    async fn pull_request(&self, repo: &str, number: u64) -> anyhow::Result<PullRequestInfo> {
        let pr: serde_json::Value = self
            .client
            .get(format!("/repos/{repo}/pulls/{number}"), None::<&()>)
            .await?;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        Ok(PullRequestInfo {
            head_sha: text(&pr["head"]["sha"]).context("pull request without head sha")?,
            head_repo: text(&pr["head"]["repo"]["full_name"]),
            head_clone_url: text(&pr["head"]["repo"]["clone_url"]),
            base_ref: text(&pr["base"]["ref"]).context("pull request without base ref")?,
            author: text(&pr["user"]["login"]).context("pull request without author")?,
        })
    }

    async fn permission_of(&self, repo: &str, user: &ForgeUser) -> anyhow::Result<Permission> {
        let route = format!("/repos/{repo}/collaborators/{}/permission", user.login);
        let reply: Result<serde_json::Value, _> = self.client.get(route, None::<&()>).await;
        let answer = match reply {
            Ok(answer) => answer,
            // Not a collaborator at all.
            Err(octocrab::Error::GitHub { source, .. }) if source.status_code.as_u16() == 404 => {
                return Ok(Permission::None);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(match answer["permission"].as_str() {
            Some("admin") => Permission::Admin,
            Some("write" | "maintain") => Permission::Write,
            Some("read" | "triage") => Permission::Read,
            _ => Permission::None,
        })
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> anyhow::Result<u64> {
        let route = format!("/repos/{repo}/issues/{number}/comments");
        let created: serde_json::Value = self
            .client
            .post(route, Some(&serde_json::json!({ "body": body })))
            .await?;
        created["id"]
            .as_u64()
            .context("a created comment without id")
    }

    async fn edit_comment(
        &self,
        repo: &str,
        _number: u64,
        comment_id: u64,
        body: &str,
    ) -> anyhow::Result<()> {
        let route = format!("/repos/{repo}/issues/comments/{comment_id}");
        let _: serde_json::Value = self
            .client
            .patch(route, Some(&serde_json::json!({ "body": body })))
            .await?;
        Ok(())
    }

    async fn acknowledge(&self, repo: &str, _number: u64, comment_id: u64) -> anyhow::Result<()> {
        let route = format!("/repos/{repo}/issues/comments/{comment_id}/reactions");
        let _: serde_json::Value = self
            .client
            .post(route, Some(&serde_json::json!({ "content": "eyes" })))
            .await?;
        Ok(())
    }
}
