//! The status reporter: keeps each forge commit status equal to its build's state.
//!
//! It is a reconciler rather than a listener: it sweeps builds whose last reported status may
//! be out of date, derives the status they should show, and posts it when it differs. A lost
//! wake-up or a forge outage therefore delays a status but never leaves it stuck in pending
//! (the most common Packit complaint, REFERENCE §10).

use crate::forge::{CommitState, CommitStatus};
use crate::{BotState, texts};
use ferrocopr_schema::State;
use ferrocopr_schema::db::{Build, BuildChroot};
use ferrocopr_schema::state::build_state;
use std::time::Duration;
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
    let link = Some(format!("{public_url}/coprs/build/{}/", build.id));
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

/// Sweeps until `shutdown`.
pub async fn run(state: BotState, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = format!("{e:#}"), "status sweep failed; will retry");
        }
        tokio::select! {
            () = state.reporter_wake.notified() => {}
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn sweep(state: &BotState) -> anyhow::Result<()> {
    for build in state.db.builds_to_report().await? {
        let Some(origin) = &build.origin else {
            continue;
        };
        let chroots = state.db.build_chroots(build.id).await?;
        let (status, finished) = status_for(&build, &chroots, &state.public_url);
        let key = report_key(&status, finished);
        if build.reported_status.as_deref() == Some(key.as_str()) {
            continue;
        }
        state
            .forge
            .set_status(&origin.repo, &origin.commit_sha, &status)
            .await?;
        tracing::info!(build.id = %build.id, state = status.state.name(), "commit status set");
        state
            .db
            .mark_reported(build.id, build.reported_status.as_deref(), &key)
            .await?;
    }
    Ok(())
}
