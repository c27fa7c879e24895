//! The seam between ferrocopr and a forge: the few verbs the build flow needs.
//!
//! [`Forge`] is implemented on the real clients (octocrab for GitHub here); tests point the
//! real client at a fake forge served over HTTP rather than replacing the trait.

use anyhow::Context;
use async_trait::async_trait;
use base64::Engine;
use octocrab::models::StatusState;

/// The state of a commit status, in GitHub's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

impl CommitState {
    pub fn name(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
            CommitState::Error => "error",
        }
    }
}

/// A commit status as the forge shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub state: CommitState,
    pub context: String,
    pub description: String,
    pub target_url: Option<String>,
}

/// A repository on a forge, as events name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// `owner/name`.
    pub full_name: String,
    /// What git clones.
    pub clone_url: String,
}

/// Whether an error from a forge call says the forge is down or unreachable (a 5xx, a
/// connection failure) rather than that it refused this one request (a 4xx): when it is down,
/// asking about the next build is pointless until it is back.
pub fn forge_unavailable(error: &anyhow::Error) -> bool {
    match error.downcast_ref::<octocrab::Error>() {
        Some(octocrab::Error::GitHub { source, .. }) => source.status_code.is_server_error(),
        Some(_) => true,
        None => false,
    }
}

/// What the bot needs to know of a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestInfo {
    pub head_sha: String,
    /// `owner/name` of the repository the head commit is in; `None` when it was deleted.
    pub head_repo: Option<String>,
    pub head_clone_url: Option<String>,
    /// The branch the pull request targets.
    pub base_ref: String,
    pub author: String,
}

/// A user's access to a repository, as the forge grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Admin,
    Write,
    Read,
    None,
}

impl Permission {
    /// Write access or more: what Packit and ferrocopr ask of someone who is not the pull
    /// request's author.
    pub fn can_write(self) -> bool {
        matches!(self, Permission::Admin | Permission::Write)
    }
}

/// What ferrocopr asks of a forge.
#[async_trait]
pub trait Forge: Send + Sync {
    /// The text of `path` at commit `sha` in `repo`; `None` when it is not there.
    async fn read_file_at(
        &self,
        repo: &RepoRef,
        sha: &str,
        path: &str,
    ) -> anyhow::Result<Option<String>>;
    /// Sets a commit status on `sha`.
    async fn set_status(&self, repo: &str, sha: &str, status: &CommitStatus) -> anyhow::Result<()>;
    /// Pull request `number` of `repo`.
    async fn pull_request(&self, repo: &str, number: u64) -> anyhow::Result<PullRequestInfo>;
    /// What `user` may do in `repo`.
    async fn permission_of(&self, repo: &str, user: &str) -> anyhow::Result<Permission>;
    /// Comments on pull request `number`.
    async fn comment(&self, repo: &str, number: u64, body: &str) -> anyhow::Result<()>;
    /// Shows at once that a comment's command was seen (a reaction on GitHub).
    async fn acknowledge(&self, repo: &str, comment_id: u64) -> anyhow::Result<()>;
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
        sha: &str,
        path: &str,
    ) -> anyhow::Result<Option<String>> {
        let (owner, name) = split_repo(&repo.full_name)?;
        let reply = self
            .client
            .repos(owner, name)
            .get_content()
            .path(path)
            .r#ref(sha)
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
            CommitState::Pending => StatusState::Pending,
            CommitState::Success => StatusState::Success,
            CommitState::Failure => StatusState::Failure,
            CommitState::Error => StatusState::Error,
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

    // The calls below use octocrab's plain JSON routes and read only the fields they need, so
    // a field GitHub adds or drops never breaks them.

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

    async fn permission_of(&self, repo: &str, user: &str) -> anyhow::Result<Permission> {
        let route = format!("/repos/{repo}/collaborators/{user}/permission");
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

    async fn comment(&self, repo: &str, number: u64, body: &str) -> anyhow::Result<()> {
        let route = format!("/repos/{repo}/issues/{number}/comments");
        let _: serde_json::Value = self
            .client
            .post(route, Some(&serde_json::json!({ "body": body })))
            .await?;
        Ok(())
    }

    async fn acknowledge(&self, repo: &str, comment_id: u64) -> anyhow::Result<()> {
        let route = format!("/repos/{repo}/issues/comments/{comment_id}/reactions");
        let _: serde_json::Value = self
            .client
            .post(route, Some(&serde_json::json!({ "content": "eyes" })))
            .await?;
        Ok(())
    }
}

/// The forge of a machine with no forge account configured: files are read from the pushed
/// repository itself (a local path or `file://` URL), and statuses go to the log only. This is
/// what the README's quick start uses, with a webhook sent by curl.
#[derive(Debug, Clone, Default)]
pub struct LocalGit;

#[async_trait]
impl Forge for LocalGit {
    async fn read_file_at(
        &self,
        repo: &RepoRef,
        sha: &str,
        path: &str,
    ) -> anyhow::Result<Option<String>> {
        let url = repo.clone_url.clone();
        let (sha, path) = (sha.to_owned(), path.to_owned());
        tokio::task::spawn_blocking(move || {
            let local = url.strip_prefix("file://").unwrap_or(&url);
            anyhow::ensure!(
                local.starts_with('/'),
                "without a GitHub token, ferrocopr reads only local repositories, not {url}"
            );
            let git = git2::Repository::open(local)?;
            let tree = git.revparse_single(&sha)?.peel_to_commit()?.tree()?;
            let Ok(entry) = tree.get_path(std::path::Path::new(&path)) else {
                return Ok(None);
            };
            let blob = entry.to_object(&git)?.peel_to_blob()?;
            Ok(Some(String::from_utf8(blob.content().to_vec())?))
        })
        .await?
    }

    async fn set_status(&self, repo: &str, sha: &str, status: &CommitStatus) -> anyhow::Result<()> {
        tracing::info!(
            repo,
            sha,
            state = status.state.name(),
            description = %status.description,
            target_url = status.target_url.as_deref().unwrap_or(""),
            "commit status (no forge configured)"
        );
        Ok(())
    }

    async fn pull_request(&self, repo: &str, number: u64) -> anyhow::Result<PullRequestInfo> {
        anyhow::bail!("no forge is configured to read pull request {repo}#{number}")
    }

    async fn permission_of(&self, _repo: &str, _user: &str) -> anyhow::Result<Permission> {
        Ok(Permission::None)
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> anyhow::Result<()> {
        tracing::info!(repo, number, body, "comment (no forge configured)");
        Ok(())
    }

    async fn acknowledge(&self, _repo: &str, _comment_id: u64) -> anyhow::Result<()> {
        Ok(())
    }
}
