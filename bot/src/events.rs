//! The event worker: turns recorded forge deliveries into build requests (seed step 1).
//!
//! It reads `.copr.yaml` at the event's commit through the [`Forge`](crate::forge::Forge),
//! answers a broken file with a failed status that says where to fix it, and otherwise asks
//! for a build. The build's trigger key is the delivery id, so handling a delivery twice (a
//! crash between the request and marking it done) never makes a second build.

use crate::commands::{self, Command};
use crate::forge::{CommitState, RepoRef};
use crate::{BotState, texts};
use ferrocopr_schema::copr_yaml::{self, FILE_NAME, ResolvedJob, SrpmMethod, Trigger};
use ferrocopr_schema::db::{BuildRequest, Delivery};
use ferrocopr_schema::{BuildSource, ForgeOrigin, State};
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long to wait before trying a delivery again after an internal error (the forge API was
/// down, say); the wait doubles with each attempt.
const RETRY_DELAY_SECS: i64 = 5;

/// How often recorded deliveries are looked at without a wake-up.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What a delivery came to, recorded with it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Built(Vec<i64>),
    Ignored(String),
    ConfigError(String),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Built(ids) => format!("builds {ids:?}"),
            Outcome::Ignored(why) => format!("ignored: {why}"),
            Outcome::ConfigError(e) => format!("config error: {e}"),
        }
    }
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

/// Handles deliveries until `shutdown`.
pub async fn run(state: BotState, shutdown: CancellationToken) {
    loop {
        let next = state.db.next_unhandled_delivery().await;
        match next {
            Ok(Some(delivery)) => match handle(&state, &delivery).await {
                Ok(outcome) => {
                    tracing::info!(delivery.id = delivery.id, outcome = %outcome.describe(), "delivery handled");
                    if let Err(e) = state
                        .db
                        .finish_delivery(delivery.id, &outcome.describe())
                        .await
                    {
                        tracing::error!(error = %e, "marking a delivery handled failed");
                    }
                    continue;
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    tracing::error!(delivery.id = delivery.id, %error, "handling a delivery failed");
                    // Set aside with backoff, so the deliveries behind it go on.
                    match state
                        .db
                        .defer_delivery(delivery.id, &error, RETRY_DELAY_SECS)
                        .await
                    {
                        Ok(true) => tracing::error!(delivery.id = delivery.id, "delivery given up"),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "deferring a delivery failed");
                            tokio::time::sleep(POLL_INTERVAL).await;
                        }
                    }
                    continue;
                }
            },
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "reading deliveries failed"),
        }
        tokio::select! {
            () = state.deliveries.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn handle(state: &BotState, delivery: &Delivery) -> anyhow::Result<Outcome> {
    let event = match (delivery.forge.as_str(), delivery.event.as_str()) {
        ("github", "push") => match serde_json::from_str::<Push>(&delivery.payload) {
            Ok(push) => push_event(push),
            Err(e) => Err(format!("unreadable push payload: {e}")),
        },
        ("github", "issue_comment") => {
            return match serde_json::from_str::<IssueCommentEvent>(&delivery.payload) {
                Ok(comment) => handle_comment(state, delivery, comment).await,
                Err(e) => Ok(Outcome::Ignored(format!(
                    "unreadable issue_comment payload: {e}"
                ))),
            };
        }
        ("github", "pull_request") => {
            match serde_json::from_str::<PullRequestEvent>(&delivery.payload) {
                Ok(pr) => pull_request_event(pr),
                Err(e) => Err(format!("unreadable pull_request payload: {e}")),
            }
        }
        (forge, event) => Err(format!("{forge} event {event} needs no action")),
    };
    match event {
        Ok(event) => build_for(state, delivery, event, "", None).await,
        Err(why) => Ok(Outcome::Ignored(why)),
    }
}

/// A forge event that asks for a build, whatever its forge and kind.
#[derive(Debug, Clone)]
struct ForgeEvent {
    /// The repository the build is reported to (the PR's base repository).
    repo: RepoRef,
    repo_owner: String,
    repo_name: String,
    /// Where the sources are cloned from (a PR's head repository).
    clone_url: String,
    sha: String,
    submitter: String,
    /// What happened, for `.copr.yaml`'s jobs: a push to a branch, a pull request against a
    /// target branch, or a tag.
    trigger: Trigger,
    /// The branch, the pull request's target branch, or the tag.
    name: String,
    default_branch: String,
    /// `Some(n)` for pull request `n`: it builds into the CoprDir `<project>:pr:<n>`.
    pull_request: Option<u64>,
    /// A pull request from another repository: it may not build into this project (no project
    /// setting allows forks yet).
    from_fork: Option<String>,
}

fn push_event(push: Push) -> Result<ForgeEvent, String> {
    if push.deleted {
        return Err("branch or tag deleted".into());
    }
    let (trigger, name) = if let Some(branch) = push.git_ref.strip_prefix("refs/heads/") {
        (Trigger::Push, branch.to_owned())
    } else if let Some(tag) = push.git_ref.strip_prefix("refs/tags/") {
        (Trigger::Tag, tag.to_owned())
    } else {
        return Err(format!("{} is neither a branch nor a tag", push.git_ref));
    };
    let repo = push.repository;
    let submitter = push
        .sender
        .and_then(|s| s.login)
        .or_else(|| push.pusher.and_then(|p| p.name))
        .unwrap_or_else(|| "github".to_owned());
    Ok(ForgeEvent {
        repo_owner: repo.owner_name(),
        repo_name: repo.name.clone(),
        clone_url: repo.clone_url.clone(),
        default_branch: repo.default_branch.clone().unwrap_or_else(|| name.clone()),
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

/// The repository a pull request comes from when it is not the base repository itself (a
/// deleted head repository counts as a fork: nothing vouches for it).
fn fork_of(head_repo: Option<&str>, base_repo: &str) -> Option<String> {
    match head_repo {
        Some(head) if head == base_repo => None,
        Some(head) => Some(head.to_owned()),
        None => Some("a deleted repository".to_owned()),
    }
}

fn pull_request_event(event: PullRequestEvent) -> Result<ForgeEvent, String> {
    if !matches!(event.action.as_str(), "opened" | "reopened" | "synchronize") {
        return Err(format!("pull request {} needs no build", event.action));
    }
    let pr = event.pull_request;
    let base = event.repository;
    let head_repo = pr.head.repo;
    let from_fork = fork_of(
        head_repo.as_ref().map(|h| h.full_name.as_str()),
        &base.full_name,
    );
    Ok(ForgeEvent {
        repo_owner: base.owner_name(),
        repo_name: base.name.clone(),
        clone_url: head_repo.map_or_else(|| base.clone_url.clone(), |h| h.clone_url),
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

/// The `.copr.yaml` jobs an event runs, read at the event's commit: a pull request that
/// changes the file is checked against its own version. `Err` carries what to record when
/// there is nothing to build: a refusal (posted as a failed status) or an ignored event.
async fn jobs_of(
    state: &BotState,
    event: &ForgeEvent,
) -> anyhow::Result<Result<Vec<ResolvedJob>, Outcome>> {
    let (repo, sha) = (&event.repo, &event.sha);
    let refuse = |message: String| async move {
        let status = texts::status(CommitState::Failure, &message, None);
        state
            .forge
            .set_status(&repo.full_name, sha, &status)
            .await?;
        anyhow::Ok(Err(Outcome::ConfigError(message)))
    };
    if let Some(fork) = &event.from_fork {
        return refuse(texts::fork_not_allowed(fork, &repo.full_name)).await;
    }
    let Some(text) = state.forge.read_file_at(repo, sha, FILE_NAME).await? else {
        return Ok(Err(Outcome::Ignored(format!("no {FILE_NAME} at {sha}"))));
    };
    let forge_event = copr_yaml::Event {
        trigger: event.trigger,
        name: &event.name,
        default_branch: &event.default_branch,
    };
    let jobs = copr_yaml::parse(&text).and_then(|config| {
        if event.pull_request.is_some() {
            // A pull request that changes the file answers for all of it, not only for its
            // own job: a broken tag job shows before anyone pushes a tag.
            copr_yaml::resolve_all(
                &config,
                &text,
                &event.repo_owner,
                &event.repo_name,
                &state.chroots,
            )?;
        }
        copr_yaml::jobs_for(
            &config,
            &text,
            &forge_event,
            &event.repo_owner,
            &event.repo_name,
            &state.chroots,
        )
    });
    if let Ok(jobs) = &jobs
        && let Some(job) = jobs.iter().find(|j| j.srpm != SrpmMethod::Spec)
    {
        return refuse(texts::srpm_method_unavailable(&format!("{:?}", job.srpm))).await;
    }
    match jobs {
        Ok(jobs) if jobs.is_empty() => Ok(Err(Outcome::Ignored(format!(
            "no job of {FILE_NAME} runs on {} {}",
            event.trigger, event.name
        )))),
        Ok(jobs) => Ok(Ok(jobs)),
        Err(e) => refuse(e.to_string()).await,
    }
}

/// Runs the `/copr` commands of a pull request comment, for the pull request's author and for
/// people with write access; anyone else gets a reply that names the rule.
async fn handle_comment(
    state: &BotState,
    delivery: &Delivery,
    event: IssueCommentEvent,
) -> anyhow::Result<Outcome> {
    if event.action != "created" {
        return Ok(Outcome::Ignored(format!("comment {}", event.action)));
    }
    if event.issue.pull_request.is_none() {
        return Ok(Outcome::Ignored(
            "a comment on an issue, not a pull request".into(),
        ));
    }
    let comment = event.comment;
    if comment.user.kind == "Bot" || comment.body.contains(texts::BOT_MARKER) {
        return Ok(Outcome::Ignored("the bot's own comment".into()));
    }
    let commands = commands::parse_comment(&comment.body);
    if commands.is_empty() {
        return Ok(Outcome::Ignored("no /copr command".into()));
    }
    let repo = event.repository.full_name.clone();
    let number = event.issue.number;
    if let Err(e) = state.forge.acknowledge(&repo, comment.id).await {
        tracing::warn!(error = format!("{e:#}"), "acknowledging a command failed");
    }
    let commenter = comment.user.login;
    let allowed = commenter == event.issue.user.login
        || state
            .forge
            .permission_of(&repo, &commenter)
            .await?
            .can_write();
    if !allowed {
        state
            .forge
            .comment(&repo, number, &texts::not_allowed(&commenter))
            .await?;
        return Ok(Outcome::Ignored(format!(
            "{commenter} may not run commands here"
        )));
    }
    let pr = state.forge.pull_request(&repo, number).await?;
    let base = event.repository;
    let from_fork = fork_of(pr.head_repo.as_deref(), &base.full_name);
    let build_event = ForgeEvent {
        repo_owner: base.owner_name(),
        repo_name: base.name.clone(),
        clone_url: pr
            .head_clone_url
            .clone()
            .unwrap_or_else(|| base.clone_url.clone()),
        default_branch: base
            .default_branch
            .clone()
            .unwrap_or_else(|| pr.base_ref.clone()),
        repo: RepoRef {
            full_name: base.full_name,
            clone_url: base.clone_url,
        },
        sha: pr.head_sha,
        submitter: commenter,
        trigger: Trigger::PullRequest,
        name: pr.base_ref,
        pull_request: Some(number),
        from_fork,
    };
    let mut built = Vec::new();
    for (index, command) in commands.into_iter().enumerate() {
        let key = format!("command{index}");
        let reply = match command {
            Err(e) => Some(texts::command_error(&e.to_string(), &commands::help_text())),
            Ok(Command::Help) => Some(texts::help(&commands::help_text())),
            Ok(Command::Build { chroots }) => {
                let only = (!chroots.is_empty()).then_some(chroots.as_slice());
                match build_for(state, delivery, build_event.clone(), &key, only).await? {
                    Outcome::Built(ids) => {
                        built.extend(ids);
                        None
                    }
                    Outcome::Ignored(why) | Outcome::ConfigError(why) => {
                        Some(texts::nothing_built(&why))
                    }
                }
            }
            Ok(Command::RebuildFailed) => {
                let failed = failed_chroots(state, &build_event).await?;
                if failed.is_empty() {
                    Some(texts::nothing_failed())
                } else {
                    if let Outcome::Built(ids) =
                        build_for(state, delivery, build_event.clone(), &key, Some(&failed)).await?
                    {
                        built.extend(ids);
                    }
                    None
                }
            }
            Ok(Command::Cancel) => {
                let mut asked = 0;
                if let Ok(jobs) = jobs_of(state, &build_event).await? {
                    for job in jobs {
                        let dirname = job.dirname(build_event.pull_request);
                        asked += state.db.request_cancel_dir(&job.project, &dirname).await?;
                    }
                }
                state.scheduler_wake.notify_one();
                state.reporter_wake.notify_one();
                Some(texts::canceled(asked))
            }
        };
        if let Some(reply) = reply {
            state.forge.comment(&repo, number, &reply).await?;
        }
    }
    Ok(if built.is_empty() {
        Outcome::Ignored("commands answered".into())
    } else {
        Outcome::Built(built)
    })
}

/// The chroots that failed in the newest build of each of the event's jobs.
async fn failed_chroots(state: &BotState, event: &ForgeEvent) -> anyhow::Result<Vec<String>> {
    let mut failed = Vec::new();
    if let Ok(jobs) = jobs_of(state, event).await? {
        for job in jobs {
            let dirname = job.dirname(event.pull_request);
            if let Some(build) = state.db.latest_build_in_dir(&job.project, &dirname).await? {
                for chroot in state.db.build_chroots(build.id).await? {
                    if chroot.state == State::Failed && !failed.contains(&chroot.chroot) {
                        failed.push(chroot.chroot);
                    }
                }
            }
        }
    }
    Ok(failed)
}

/// Requests the builds of every job an event runs. `key` tells apart the requests one
/// delivery makes (each command of a comment); `only` keeps the chroots a command named.
async fn build_for(
    state: &BotState,
    delivery: &Delivery,
    event: ForgeEvent,
    key: &str,
    only: Option<&[String]>,
) -> anyhow::Result<Outcome> {
    let (repo, sha) = (&event.repo, &event.sha);
    let jobs = match jobs_of(state, &event).await? {
        Ok(jobs) => jobs,
        Err(outcome) => return Ok(outcome),
    };
    let mut built = Vec::new();
    let mut wanted = 0;
    for (index, mut job) in jobs.into_iter().enumerate() {
        if let Some(only) = only {
            job.chroots.retain(|c| only.contains(c));
            if job.chroots.is_empty() {
                continue;
            }
        }
        wanted += 1;
        let request = BuildRequest {
            dirname: job.dirname(event.pull_request),
            project: job.project,
            chroots: job.chroots,
            submitter: event.submitter.clone(),
            source: BuildSource::Scm {
                clone_url: event.clone_url.clone(),
                committish: sha.clone(),
                spec: job.spec,
                srpm: job.srpm,
            },
            // One build per job and delivery, however often the delivery is handled.
            trigger_key: Some(format!("{}:{}:{key}:{index}", delivery.forge, delivery.id)),
            origin: Some(ForgeOrigin {
                forge: delivery.forge.clone(),
                repo: repo.full_name.clone(),
                commit_sha: sha.clone(),
            }),
            // A new push to a pull request supersedes its earlier builds (Packit's users ask
            // for this: rapid pushes should not queue duplicates).
            cancel_superseded: job.cancel_superseded && event.pull_request.is_some(),
        };
        if let Some(id) = state.db.request_build(&request).await? {
            built.push(id.0);
        }
    }
    if wanted == 0 {
        let named = only.unwrap_or_default().join(", ");
        return Ok(Outcome::Ignored(format!(
            "no job of {FILE_NAME} builds {named}"
        )));
    }
    if built.is_empty() {
        return Ok(Outcome::Ignored(
            "this delivery already made its builds".into(),
        ));
    }
    state.scheduler_wake.notify_one();
    state.reporter_wake.notify_one();
    Ok(Outcome::Built(built))
}
