//! The seam between ferrocopr and a forge: the few verbs the build flow needs.
//!
//! [`Forge`] is implemented on the real clients: octocrab for GitHub ([`github`]) and the
//! gitlab crate for GitLab ([`gitlab`]); [`LocalGit`] stands in when no forge account is
//! configured. Tests point the real clients at a fake forge served over HTTP rather than
//! replacing the trait.

pub mod github;
pub mod gitlab;

pub use github::GitHub;
pub use gitlab::GitLab;

use async_trait::async_trait;
use std::sync::Arc;

/// The forge names deliveries and builds record.
pub const GITHUB: &str = "github";
pub const GITLAB: &str = "gitlab";

/// The state of a commit status. GitHub knows pending, success, failure and error; GitLab
/// also running and canceled, which GitHub shows as pending and error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Running,
    Success,
    Failure,
    Error,
    Canceled,
}

impl CommitState {
    pub fn name(self) -> &'static str {
        match self {
            CommitState::Pending => "pending",
            CommitState::Running => "running",
            CommitState::Success => "success",
            CommitState::Failure => "failure",
            CommitState::Error => "error",
            CommitState::Canceled => "canceled",
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
    /// `owner/name` (GitLab: the project's full path, `group/subgroup/name`).
    pub full_name: String,
    /// What git clones.
    pub clone_url: String,
}

/// How a project names a repository it lets build in it (Copr's `packit_forge_projects_allowed`):
/// `<host>/<full name>`, the host taken from the clone URL (`github.com/alice/hello`), or the
/// forge's public host when the URL has none (a local path).
pub fn forge_project(forge: &str, repo: &RepoRef) -> String {
    let url = repo.clone_url.as_str();
    let after_scheme = ["https://", "http://", "ssh://", "git://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme));
    let host = match after_scheme {
        Some(rest) => rest.split('/').next(),
        // scp-like `git@host:owner/name.git`
        None if url.contains(':') && !url.contains("://") => url.split(':').next(),
        None => None,
    }
    .map(|authority| authority.rsplit('@').next().unwrap_or(authority))
    .map(|host_port| host_port.split(':').next().unwrap_or(host_port))
    .filter(|host| !host.is_empty());
    let host = host.unwrap_or(if forge == GITLAB {
        "gitlab.com"
    } else {
        "github.com"
    });
    format!("{}/{}", host.to_ascii_lowercase(), repo.full_name)
}

/// A user as a forge event names them: GitLab's API wants the numeric id, GitHub's the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeUser {
    pub login: String,
    pub id: Option<u64>,
}

/// Whether an error from a forge call says the forge is down or unreachable (a 5xx, a
/// connection failure) rather than that it refused this one request (a 4xx): when it is down,
/// asking about the next build is pointless until it is back.
pub fn forge_unavailable(error: &anyhow::Error) -> bool {
    github::unavailable(error) || gitlab::unavailable(error)
}

/// What the bot needs to know of a pull request (a merge request on GitLab).
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
    /// Write access or more (GitHub write/maintain/admin, GitLab Developer or above): what
    /// Packit and ferrocopr ask of someone who is not the pull request's author.
    pub fn can_write(self) -> bool {
        matches!(self, Permission::Admin | Permission::Write)
    }
}

/// What ferrocopr asks of a forge.
#[async_trait]
pub trait Forge: Send + Sync {
    /// The text of `path` at `git_ref` (a commit or a branch) in `repo`; `None` when it is
    /// not there.
    async fn read_file_at(
        &self,
        repo: &RepoRef,
        git_ref: &str,
        path: &str,
    ) -> anyhow::Result<Option<String>>;
    /// Sets a commit status on `sha`.
    async fn set_status(&self, repo: &str, sha: &str, status: &CommitStatus) -> anyhow::Result<()>;
    /// Pull request `number` of `repo` (GitLab: merge request iid `number`).
    async fn pull_request(&self, repo: &str, number: u64) -> anyhow::Result<PullRequestInfo>;
    /// What `user` may do in `repo`.
    async fn permission_of(&self, repo: &str, user: &ForgeUser) -> anyhow::Result<Permission>;
    /// Comments on pull request `number`; returns the comment's id.
    async fn comment(&self, repo: &str, number: u64, body: &str) -> anyhow::Result<u64>;
    /// Replaces the text of the bot's comment `comment_id` on pull request `number`.
    async fn edit_comment(
        &self,
        repo: &str,
        number: u64,
        comment_id: u64,
        body: &str,
    ) -> anyhow::Result<()>;
    /// Shows at once that a comment's command was seen (a reaction on GitHub, an award emoji
    /// on GitLab).
    async fn acknowledge(&self, repo: &str, number: u64, comment_id: u64) -> anyhow::Result<()>;
}

/// The forges this instance talks to, by the name deliveries and builds record.
#[derive(Clone)]
pub struct Forges {
    pub github: Arc<dyn Forge>,
    pub gitlab: Arc<dyn Forge>,
}

/// The constant a recorded forge name (`github`, `gitlab`) stands for.
pub fn known(name: &str) -> anyhow::Result<&'static str> {
    match name {
        GITHUB => Ok(GITHUB),
        GITLAB => Ok(GITLAB),
        other => anyhow::bail!("unknown forge {other:?}"),
    }
}

impl Forges {
    /// The forge named `name` (`github`, `gitlab`).
    pub fn get(&self, name: &str) -> anyhow::Result<&dyn Forge> {
        Ok(match known(name)? {
            GITHUB => self.github.as_ref(),
            _ => self.gitlab.as_ref(),
        })
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
        git_ref: &str,
        path: &str,
    ) -> anyhow::Result<Option<String>> {
        let url = repo.clone_url.clone();
        let (git_ref, path) = (git_ref.to_owned(), path.to_owned());
        tokio::task::spawn_blocking(move || {
            let local = url.strip_prefix("file://").unwrap_or(&url);
            anyhow::ensure!(
                local.starts_with('/'),
                "without a GitHub token, ferrocopr reads only local repositories, not {url}"
            );
            let git = git2::Repository::open(local)?;
            let tree = git.revparse_single(&git_ref)?.peel_to_commit()?.tree()?;
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

    async fn permission_of(&self, _repo: &str, _user: &ForgeUser) -> anyhow::Result<Permission> {
        Ok(Permission::None)
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> anyhow::Result<u64> {
        tracing::info!(repo, number, body, "comment (no forge configured)");
        Ok(0)
    }

    async fn edit_comment(
        &self,
        repo: &str,
        number: u64,
        comment_id: u64,
        body: &str,
    ) -> anyhow::Result<()> {
        tracing::info!(
            repo,
            number,
            comment_id,
            body,
            "comment edited (no forge configured)"
        );
        Ok(())
    }

    async fn acknowledge(&self, _repo: &str, _number: u64, _comment_id: u64) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod forge_project_tests {
    use super::*;

    fn of(forge: &str, clone_url: &str) -> String {
        let repo = RepoRef {
            full_name: "alice/hello".into(),
            clone_url: clone_url.into(),
        };
        forge_project(forge, &repo)
    }

    #[test]
    fn the_host_comes_from_the_clone_url() {
        assert_eq!(
            of(GITHUB, "https://github.com/alice/hello.git"),
            "github.com/alice/hello"
        );
        assert_eq!(
            of(GITLAB, "https://user@GitLab.example:8443/alice/hello.git"),
            "gitlab.example/alice/hello"
        );
        assert_eq!(
            of(GITHUB, "git@github.com:alice/hello.git"),
            "github.com/alice/hello"
        );
        assert_eq!(
            of(GITLAB, "file:///srv/git/hello"),
            "gitlab.com/alice/hello"
        );
        assert_eq!(of(GITHUB, "/srv/git/hello"), "github.com/alice/hello");
    }
}
