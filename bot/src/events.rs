//! The event worker: turns recorded forge deliveries into build requests (seed step 1).
//!
//! It reads `.copr.yaml` at the event's commit through the [`Forge`](crate::forge::Forge),
//! answers a broken file with a failed status that says where to fix it, and otherwise asks
//! for a build. The build's trigger key is the delivery id, so handling a delivery twice (a
//! crash between the request and marking it done) never makes a second build.

use crate::forge::{CommitState, RepoRef};
use crate::{BotState, texts};
use ferrocopr_schema::copr_yaml::{self, FILE_NAME};
use ferrocopr_schema::db::{BuildRequest, Delivery};
use ferrocopr_schema::{BuildSource, ForgeOrigin};
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
    Built(i64),
    Ignored(String),
    ConfigError(String),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Built(id) => format!("build {id}"),
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
    match (delivery.forge.as_str(), delivery.event.as_str()) {
        ("github", "push") => {
            let push: Push = match serde_json::from_str(&delivery.payload) {
                Ok(push) => push,
                Err(e) => return Ok(Outcome::Ignored(format!("unreadable push payload: {e}"))),
            };
            handle_push(state, delivery, push).await
        }
        (forge, event) => Ok(Outcome::Ignored(format!(
            "{forge} event {event} needs no action"
        ))),
    }
}

async fn handle_push(state: &BotState, delivery: &Delivery, push: Push) -> anyhow::Result<Outcome> {
    if push.deleted {
        return Ok(Outcome::Ignored("branch or tag deleted".into()));
    }
    let Some(branch) = push.git_ref.strip_prefix("refs/heads/") else {
        return Ok(Outcome::Ignored(format!(
            "{} is not a branch",
            push.git_ref
        )));
    };
    let repo = &push.repository;
    if repo.default_branch.as_deref().is_some_and(|d| d != branch) {
        return Ok(Outcome::Ignored(format!(
            "{branch} is not the default branch"
        )));
    }
    let sha = &push.after;
    let repo_ref = RepoRef {
        full_name: repo.full_name.clone(),
        clone_url: repo.clone_url.clone(),
    };
    let Some(text) = state.forge.read_file_at(&repo_ref, sha, FILE_NAME).await? else {
        return Ok(Outcome::Ignored(format!("no {FILE_NAME} at {sha}")));
    };
    let repo_owner = repo
        .owner
        .login
        .clone()
        .or_else(|| repo.owner.name.clone())
        .unwrap_or_else(|| {
            repo.full_name
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        });
    let resolved = copr_yaml::parse(&text).and_then(|config| {
        let project = copr_yaml::project_for_repo(&config, &text, &repo_owner, &repo.name)?;
        Ok((config, project))
    });
    let (config, project) = match resolved {
        Ok(resolved) => resolved,
        Err(e) => {
            let message = e.to_string();
            let status = texts::status(CommitState::Failure, &message, None);
            state
                .forge
                .set_status(&repo.full_name, sha, &status)
                .await?;
            return Ok(Outcome::ConfigError(message));
        }
    };
    let submitter = push
        .sender
        .and_then(|s| s.login)
        .or_else(|| push.pusher.and_then(|p| p.name))
        .unwrap_or_else(|| "github".to_owned());
    let request = BuildRequest {
        dirname: project.project.clone(),
        project,
        chroots: config.chroots,
        submitter,
        source: BuildSource::Scm {
            clone_url: repo.clone_url.clone(),
            committish: sha.clone(),
            spec: config.spec,
        },
        trigger_key: Some(format!("github:{}", delivery.id)),
        origin: Some(ForgeOrigin {
            forge: "github".into(),
            repo: repo.full_name.clone(),
            commit_sha: sha.clone(),
        }),
    };
    match state.db.request_build(&request).await? {
        Some(id) => {
            state.scheduler_wake.notify_one();
            state.reporter_wake.notify_one();
            Ok(Outcome::Built(id.0))
        }
        None => Ok(Outcome::Ignored(
            "this delivery already made a build".into(),
        )),
    }
}
