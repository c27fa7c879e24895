//! The status reporter: keeps each forge commit status equal to its build's state.
//!
//! It is a reconciler rather than a listener: it sweeps builds whose last reported status may
//! be out of date, derives the status they should show, and posts it when it differs. A lost
//! wake-up or a forge outage therefore delays a status but never leaves it stuck in pending
//! (the most common Packit complaint, REFERENCE §10).

use crate::forge::{CommitState, CommitStatus};
use crate::{BotState, texts};
use ferrocopr_schema::BuildId;
use ferrocopr_schema::State;
use ferrocopr_schema::db::{Build, BuildChroot};
use ferrocopr_schema::state::build_state;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the sweep runs without a wake-up.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3);

/// The status a build should show, derived from its states only.
pub fn status_for(
    build: &Build,
    chroots: &[BuildChroot],
    public_url: &str,
) -> (CommitStatus, bool) {
    let chroot_states: Vec<State> = chroots.iter().map(|c| c.state).collect();
    let overall = build_state(build.canceled, build.source_state, &chroot_states);
    let link = Some(format!(
        "{public_url}/coprs/{}/{}/build/{}/",
        build.project.owner, build.dirname, build.id
    ));
    let (state, description) = match (build.source_state, overall) {
        (_, State::Canceled) => (CommitState::Error, texts::CANCELED.to_owned()),
        (State::Pending, _) => (CommitState::Pending, texts::ACCEPTED.to_owned()),
        (State::Starting | State::Running, _) => {
            (CommitState::Pending, texts::SRPM_RUNNING.to_owned())
        }
        (State::Importing, _) => (CommitState::Pending, texts::IMPORTING.to_owned()),
        (State::Failed, _) => (
            CommitState::Failure,
            texts::srpm_failed(build.fail_reason.as_deref()),
        ),
        (_, State::Succeeded) => (CommitState::Success, texts::SUCCEEDED.to_owned()),
        (_, State::Failed) => (CommitState::Failure, texts::FAILED.to_owned()),
        (_, State::Skipped) => (CommitState::Success, texts::SKIPPED.to_owned()),
        _ => (CommitState::Pending, texts::RPM_RUNNING.to_owned()),
    };
    (
        texts::status(state, &description, link),
        overall.is_finished(),
    )
}

/// The key remembered per build: what was last shown, `final:` once nothing will change.
fn report_key(status: &CommitStatus, finished: bool) -> String {
    let prefix = if finished { "final:" } else { "" };
    format!("{prefix}{}:{}", status.state.name(), status.description)
}

/// After a forge refused a build's status, it is not asked again about that build for this
/// long (doubling up to [`MAX_BACKOFF`]): the sweep goes on with the other builds.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Builds whose last post failed: when to try again, and the wait after that.
type Backoff = HashMap<BuildId, (Instant, Duration)>;

/// Sweeps until `shutdown`.
pub async fn run(state: BotState, shutdown: CancellationToken) {
    let mut backoff = Backoff::new();
    loop {
        if let Err(e) = sweep(&state, &mut backoff).await {
            tracing::warn!(error = format!("{e:#}"), "status sweep failed; will retry");
        }
        tokio::select! {
            () = state.reporter_wake.notified() => {}
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn sweep(state: &BotState, backoff: &mut Backoff) -> anyhow::Result<()> {
    let now = Instant::now();
    for build in state.db.builds_to_report().await? {
        let Some(origin) = &build.origin else {
            continue;
        };
        if backoff
            .get(&build.id)
            .is_some_and(|(until, _)| *until > now)
        {
            continue;
        }
        let chroots = state.db.build_chroots(build.id).await?;
        let (status, finished) = status_for(&build, &chroots, &state.public_url);
        let key = report_key(&status, finished);
        if build.reported_status.as_deref() == Some(key.as_str()) {
            continue;
        }
        // One forge refusing one build (a deleted repository, a lost permission) must not hold
        // up the statuses of all the others.
        match state
            .forge
            .set_status(&origin.repo, &origin.commit_sha, &status)
            .await
        {
            Ok(()) => {
                backoff.remove(&build.id);
                tracing::info!(build.id = %build.id, state = status.state.name(), "commit status set");
                state
                    .db
                    .mark_reported(build.id, build.reported_status.as_deref(), &key)
                    .await?;
            }
            Err(e) => {
                let wait = backoff
                    .get(&build.id)
                    .map_or(FIRST_BACKOFF, |(_, w)| (*w * 2).min(MAX_BACKOFF));
                backoff.insert(build.id, (now + wait, wait));
                tracing::warn!(build.id = %build.id, error = format!("{e:#}"), ?wait, "posting a status failed; will retry");
            }
        }
    }
    Ok(())
}
