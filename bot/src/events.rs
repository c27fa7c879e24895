//! The event worker: turns recorded forge deliveries into build requests (seed step 1).
//!
//! Each forge's payloads are read into the same [`Action`]s ([`github`], [`gitlab`]); from
//! there on the flow is one. It reads `.copr.yaml` at the event's commit through the
//! [`Forge`](crate::forge::Forge),
//! answers a broken file with a failed status that says where to fix it, and otherwise asks
//! for a build. The build's trigger key is the delivery id, so handling a delivery twice (a
//! crash between the request and marking it done) never makes a second build.

mod github;
pub(crate) mod gitlab;

use crate::commands::{self, Command};
use crate::forge::{self, CommitState, ForgeUser, GITHUB, GITLAB, RepoRef};
use crate::{BotState, texts};
use ferrocopr_schema::copr_yaml::{self, FILE_NAME, ResolvedJob, Trigger};
use ferrocopr_schema::db::{BuildRequest, Delivery};
use ferrocopr_schema::{BuildSource, ForgeOrigin, State};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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

/// What a delivery asks of the bot, whatever its forge.
#[derive(Debug)]
pub(crate) enum Action {
    Build(ForgeEvent),
    Comment(CommentEvent),
    /// A pull request was closed or merged: its CoprDirs are kept for the retention period.
    PullRequestClosed {
        /// The repository its builds reported to.
        repo: String,
        number: u64,
    },
    Ignore(String),
}

/// A comment on a pull request (a note on a GitLab merge request).
#[derive(Debug, Clone)]
pub(crate) struct CommentEvent {
    /// The repository the pull request belongs to.
    repo: RepoRef,
    repo_owner: String,
    repo_name: String,
    default_branch: Option<String>,
    number: u64,
    comment_id: u64,
    body: String,
    commenter: ForgeUser,
    /// Written by a bot account (GitHub) or by GitLab itself (a system note).
    from_bot: bool,
    /// Written by the pull request's author.
    by_author: bool,
}

async fn handle(state: &BotState, delivery: &Delivery) -> anyhow::Result<Outcome> {
    let action = match delivery.forge.as_str() {
        GITHUB => github::parse(&delivery.event, &delivery.payload),
        GITLAB => gitlab::parse(&delivery.event, &delivery.payload),
        other => Action::Ignore(format!("deliveries of forge {other} are not handled")),
    };
    match action {
        Action::Build(event) => build_for(state, delivery, event, "", None).await,
        Action::Comment(comment) => handle_comment(state, delivery, comment).await,
        Action::PullRequestClosed { repo, number } => {
            pull_request_closed(state, &delivery.forge, &repo, number).await
        }
        Action::Ignore(why) => Ok(Outcome::Ignored(why)),
    }
}

/// A closed or merged pull request: its unfinished builds are canceled and its CoprDirs are
/// scheduled for deletion after the instance's retention period (a reopened pull request's
/// next build clears the date).
async fn pull_request_closed(
    state: &BotState,
    forge: &str,
    repo: &str,
    number: u64,
) -> anyhow::Result<Outcome> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let delete_after = i64::try_from(now + state.pr_dir_retention.as_secs())?;
    let dirs = state.db.pull_request_dirs(forge, repo, number).await?;
    for (project, dirname) in &dirs {
        state.db.request_cancel_dir(project, dirname).await?;
        state
            .db
            .schedule_dir_deletion(project, dirname, Some(delete_after))
            .await?;
    }
    state.scheduler_wake.notify_one();
    state.reporter_wake.notify_one();
    state.retention_wake.notify_one();
    let names: Vec<String> = dirs
        .iter()
        .map(|(p, d)| format!("{}/{d}", p.owner))
        .collect();
    Ok(Outcome::Ignored(format!(
        "pull request closed: {} scheduled for deletion at {delete_after}",
        if names.is_empty() {
            "no CoprDir".to_owned()
        } else {
            names.join(", ")
        }
    )))
}

/// A forge event that asks for a build, whatever its forge and kind.
#[derive(Debug, Clone)]
pub(crate) struct ForgeEvent {
    /// The forge it happened on (`github`, `gitlab`).
    forge: &'static str,
    /// The repository the build is reported to (GitHub: the PR's base repository; GitLab: the
    /// merge request's source project).
    repo: RepoRef,
    /// The repository the pull request belongs to (for a push: the pushed one); its default
    /// branch says which forks may build.
    base: RepoRef,
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

/// Reads a payload of `event` as `T` and makes it an action; an unreadable payload needs none.
fn read<T: serde::de::DeserializeOwned>(
    event: &str,
    payload: &str,
    act: impl FnOnce(T) -> Action,
) -> Action {
    match serde_json::from_str::<T>(payload) {
        Ok(parsed) => act(parsed),
        Err(e) => Action::Ignore(format!("unreadable {event} payload: {e}")),
    }
}

/// A pushed ref as what it triggers: a branch (`refs/heads/…`) is a push, a tag
/// (`refs/tags/…`) a tag build; anything else triggers nothing. GitHub and GitLab name refs
/// alike.
pub(crate) fn branch_or_tag(git_ref: &str) -> Result<(Trigger, String), String> {
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        Ok((Trigger::Push, branch.to_owned()))
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        Ok((Trigger::Tag, tag.to_owned()))
    } else {
        Err(format!("{git_ref} is neither a branch nor a tag"))
    }
}

/// The repository a pull request comes from when it is not the base repository itself (a
/// deleted head repository counts as a fork: nothing vouches for it).
pub(crate) fn fork_of(head_repo: Option<&str>, base_repo: &str) -> Option<String> {
    match head_repo {
        Some(head) if head == base_repo => None,
        Some(head) => Some(head.to_owned()),
        None => Some("a deleted repository".to_owned()),
    }
}

/// The `.copr.yaml` jobs an event runs, read at the event's commit: a pull request that
/// changes the file is checked against its own version. `Err` carries what to record when
/// there is nothing to build: a refusal (posted as a failed status) or an ignored event.
async fn jobs_of(
    state: &BotState,
    event: &ForgeEvent,
) -> anyhow::Result<Result<Vec<ResolvedJob>, Outcome>> {
    let (repo, sha) = (&event.repo, &event.sha);
    let forge = state.forges.get(event.forge)?;
    let refuse = |message: String| async move {
        let status = texts::status(CommitState::Failure, &message, None);
        forge.set_status(&repo.full_name, sha, &status).await?;
        anyhow::Ok(Err(Outcome::ConfigError(message)))
    };
    if let Some(fork) = &event.from_fork {
        // Only the default branch's file may allow a fork: a pull request cannot allow itself.
        let on_default_branch = forge
            .read_file_at(&event.base, &event.default_branch, FILE_NAME)
            .await?;
        let allowed = on_default_branch
            .and_then(|text| copr_yaml::parse(&text).ok())
            .is_some_and(|config| config.allows_fork(fork));
        if !allowed {
            return refuse(texts::fork_not_allowed(fork, &event.base.full_name)).await;
        }
    }
    let Some(text) = forge.read_file_at(repo, sha, FILE_NAME).await? else {
        return Ok(Err(Outcome::Ignored(format!("no {FILE_NAME} at {sha}"))));
    };
    let forge_event = copr_yaml::Event {
        trigger: event.trigger,
        name: &event.name,
        default_branch: &event.default_branch,
    };
    // Projects of other owners that let this repository build in them, for a file that names
    // one (`owner:`); the file is checked against them as against everything else.
    let forge_project = forge::forge_project(event.forge, &event.base);
    let allowed = state.db.projects_allowing(&forge_project).await?;
    let repository = copr_yaml::Repository {
        owner: &event.repo_owner,
        name: &event.repo_name,
        forge_project: &forge_project,
        allowed: &allowed,
    };
    let jobs = copr_yaml::parse(&text).and_then(|config| {
        if event.pull_request.is_some() {
            // A pull request that changes the file answers for all of it, not only for its
            // own job: a broken tag job shows before anyone pushes a tag.
            copr_yaml::resolve_all(&config, &text, &repository, &state.chroots)?;
        }
        copr_yaml::jobs_for(&config, &text, &forge_event, &repository, &state.chroots)
    });
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
    comment: CommentEvent,
) -> anyhow::Result<Outcome> {
    if comment.from_bot || comment.body.contains(texts::BOT_MARKER) {
        return Ok(Outcome::Ignored("the bot's own comment".into()));
    }
    let commands = commands::parse_comment(&comment.body);
    if commands.is_empty() {
        return Ok(Outcome::Ignored("no /copr command".into()));
    }
    let forge_name = forge::known(&delivery.forge)?;
    let forge = state.forges.get(forge_name)?;
    let repo = comment.repo.full_name.clone();
    let number = comment.number;
    if let Err(e) = forge.acknowledge(&repo, number, comment.comment_id).await {
        tracing::warn!(error = format!("{e:#}"), "acknowledging a command failed");
    }
    let commenter = comment.commenter;
    let allowed = comment.by_author || forge.permission_of(&repo, &commenter).await?.can_write();
    if !allowed {
        forge
            .comment(&repo, number, &texts::not_allowed(&commenter.login))
            .await?;
        return Ok(Outcome::Ignored(format!(
            "{} may not run commands here",
            commenter.login
        )));
    }
    let pr = forge.pull_request(&repo, number).await?;
    let base = comment.repo;
    let from_fork = fork_of(pr.head_repo.as_deref(), &base.full_name);
    // GitHub shows a pull request's statuses on the base repository, GitLab on the merge
    // request's source project.
    let status_repo = match (forge_name, &pr.head_repo, &pr.head_clone_url) {
        (GITLAB, Some(head), Some(clone_url)) => RepoRef {
            full_name: head.clone(),
            clone_url: clone_url.clone(),
        },
        _ => base.clone(),
    };
    let build_event = ForgeEvent {
        forge: forge_name,
        base: base.clone(),
        repo_owner: comment.repo_owner,
        repo_name: comment.repo_name,
        clone_url: pr
            .head_clone_url
            .clone()
            .unwrap_or_else(|| base.clone_url.clone()),
        default_branch: comment
            .default_branch
            .unwrap_or_else(|| pr.base_ref.clone()),
        repo: status_repo,
        sha: pr.head_sha,
        submitter: commenter.login,
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
            forge.comment(&repo, number, &reply).await?;
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
                pull_request: event.pull_request,
            }),
            success_comment: job.success_comment && event.pull_request.is_some(),
            background: false,
            enable_net: job.enable_net,
            timeout: job.timeout,
            bconds: job.bconds,
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
