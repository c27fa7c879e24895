//! The status reporter: keeps each forge commit status equal to its build's state.
//!
//! It is a reconciler rather than a listener: it sweeps builds whose last reported status may
//! be out of date, derives the status they should show, and posts it when it differs. A lost
//! wake-up or a forge outage therefore delays a status but never leaves it stuck in pending
//! (the most common Packit complaint, REFERENCE §10). A build is looked at again only when its
//! revision moved past the one last reported, so a sweep costs what changed. It also posts a
//! pull request's success comment (opt-in), one per pull request, updated rather than repeated.

use crate::forge::{CommitState, CommitStatus, Forge, forge_unavailable};
use crate::{BotState, texts};
use ferrocopr_schema::BuildId;
use ferrocopr_schema::State;
use ferrocopr_schema::db::{Build, BuildChroot};
use ferrocopr_schema::state::build_state;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the sweep runs without a wake-up.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3);

/// What one status context should show, given the state it follows: the aggregate follows
/// the build's overall state, a chroot's context its own.
fn describe(build: &Build, state: State) -> (CommitState, String) {
    if state == State::Canceled {
        return (CommitState::Canceled, texts::CANCELED.to_owned());
    }
    match (build.source_state, state) {
        (State::Pending, _) => (CommitState::Pending, texts::ACCEPTED.to_owned()),
        (State::Starting | State::Running, _) => {
            (CommitState::Running, texts::SRPM_RUNNING.to_owned())
        }
        (State::Importing, _) => (CommitState::Running, texts::IMPORTING.to_owned()),
        (State::Failed, _) => (
            CommitState::Failure,
            texts::srpm_failed(build.fail_reason.as_deref()),
        ),
        (_, State::Succeeded) => (CommitState::Success, texts::SUCCEEDED.to_owned()),
        (_, State::Failed) => (CommitState::Failure, texts::FAILED.to_owned()),
        (_, State::Skipped) => (CommitState::Success, texts::SKIPPED.to_owned()),
        (_, State::Pending | State::Waiting) => {
            (CommitState::Pending, texts::RPM_RUNNING.to_owned())
        }
        _ => (CommitState::Running, texts::RPM_RUNNING.to_owned()),
    }
}

/// The statuses a build should show, derived from its states only: one per chroot, then the
/// aggregate `copr/rpm-build` (one name that can be a required check) last, so that when the
/// aggregate turns final every chroot's status is already there; and the build's overall state.
pub fn statuses_for(
    build: &Build,
    chroots: &[BuildChroot],
    public_url: &str,
) -> (Vec<CommitStatus>, State) {
    let chroot_states: Vec<State> = chroots.iter().map(|c| c.state).collect();
    let overall = build_state(build.cancel_requested, build.source_state, &chroot_states);
    let link = format!(
        "{public_url}/coprs/{}/{}/build/{}/",
        build.project.owner, build.dirname, build.id
    );
    let mut statuses: Vec<CommitStatus> = chroots
        .iter()
        .map(|chroot| {
            let (state, description) = describe(build, chroot.state);
            let mut status = texts::status(state, &description, Some(link.clone()));
            status.context = texts::chroot_context(&chroot.chroot);
            status
        })
        .collect();
    let (state, description) = describe(build, overall);
    statuses.push(texts::status(state, &description, Some(link)));
    (statuses, overall)
}

/// What the forge shows for each context, one `context=state:description` line each, as
/// remembered per build; `final:` in front once nothing will change.
fn report_key(statuses: &[CommitStatus], finished: bool) -> String {
    let prefix = if finished { "final:" } else { "" };
    let lines: Vec<String> = statuses.iter().map(shown).collect();
    format!("{prefix}{}", lines.join("\n"))
}

fn shown(status: &CommitStatus) -> String {
    format!(
        "{}={}:{}",
        status.context,
        status.state.name(),
        status.description
    )
}

/// After a forge refused a build's status (a 4xx: a deleted repository, a lost permission), it
/// is not asked again about that build for this long (doubling up to [`MAX_BACKOFF`]): the
/// sweep goes on with the other builds.
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
    // Forges found down in this pass: their other builds wait for the next one.
    let mut down = HashSet::new();
    for build in state.db.builds_to_report().await? {
        let Some(origin) = &build.origin else {
            continue;
        };
        if down.contains(&origin.forge)
            || backoff
                .get(&build.id)
                .is_some_and(|(until, _)| *until > now)
        {
            continue;
        }
        let forge = match state.forges.get(&origin.forge) {
            Ok(forge) => forge,
            Err(e) => {
                tracing::warn!(build.id = %build.id, error = format!("{e:#}"), "build of an unknown forge");
                continue;
            }
        };
        let posted = match state.db.build_chroots(build.id).await {
            Ok(chroots) => match report(state, forge, &build, &chroots).await {
                Ok(overall) => comment_on_success(state, forge, &build, &chroots, overall).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        };
        match posted {
            Ok(()) => {
                backoff.remove(&build.id);
            }
            Err(e) if forge_unavailable(&e) => {
                // The forge is down: the next pass (every few seconds) tries again, and posts
                // everything that is due in one go once it is back.
                tracing::warn!(
                    forge = origin.forge,
                    error = format!("{e:#}"),
                    "the forge is unavailable; statuses wait for the next pass"
                );
                down.insert(origin.forge.clone());
            }
            Err(e) => {
                // One forge refusing one build (a deleted repository, a lost permission) must
                // not hold up the statuses of all the others.
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

/// Posts the statuses of `build` that differ from what the forge shows, then remembers them
/// with the build's revision. Returns the build's overall state.
async fn report(
    state: &BotState,
    forge: &dyn Forge,
    build: &Build,
    chroots: &[BuildChroot],
) -> anyhow::Result<State> {
    let (mut statuses, overall) = statuses_for(build, chroots, &state.public_url);
    let Some(origin) = &build.origin else {
        return Ok(overall);
    };
    let finished = overall.is_finished();
    if build.reported_status.is_none() && !finished {
        // The first "accepted" goes to the aggregate first: it is the one users wait for.
        statuses.rotate_right(1);
    }
    let key = report_key(&statuses, finished);
    let previous = build.reported_status.as_deref().unwrap_or_default();
    let already: Vec<&str> = previous.trim_start_matches("final:").lines().collect();
    for status in statuses
        .iter()
        .filter(|s| !already.contains(&shown(s).as_str()))
    {
        forge
            .set_status(&origin.repo, &origin.commit_sha, status)
            .await?;
    }
    if previous != key {
        tracing::info!(build.id = %build.id, status = %key.lines().last().unwrap_or_default(), "commit statuses set");
    }
    state
        .db
        .mark_reported(
            build.id,
            build.reported_status.as_deref(),
            &key,
            build.revision,
        )
        .await?;
    Ok(overall)
}

/// Once a pull request's build has finished: its success comment, when the build succeeded
/// and its job asked for one. The pull request keeps one comment, edited by each success.
async fn comment_on_success(
    state: &BotState,
    forge: &dyn Forge,
    build: &Build,
    chroots: &[BuildChroot],
    overall: State,
) -> anyhow::Result<()> {
    let (Some(origin), true, false) = (
        &build.origin,
        build.success_comment,
        build.success_comment_done,
    ) else {
        return Ok(());
    };
    let Some(number) = origin.pull_request else {
        return state
            .db
            .finish_success_comment(build.id)
            .await
            .map_err(Into::into);
    };
    if !overall.is_finished() {
        return Ok(());
    }
    if overall == State::Succeeded {
        let packages = built_packages(state, build, chroots).await;
        let body = texts::success_comment(
            &state.public_url,
            &build.project.owner,
            &build.dirname,
            build.id.0,
            &packages,
        );
        let existing = state
            .db
            .pull_request_comment(&origin.forge, &origin.repo, number)
            .await?;
        match existing {
            Some(id) => forge.edit_comment(&origin.repo, number, id, &body).await?,
            None => {
                let id = forge.comment(&origin.repo, number, &body).await?;
                state
                    .db
                    .save_pull_request_comment(&origin.forge, &origin.repo, number, id)
                    .await?;
            }
        }
        tracing::info!(build.id = %build.id, number, "success comment posted");
    }
    state.db.finish_success_comment(build.id).await?;
    Ok(())
}

/// The binary RPMs a build published, by file name, each once.
async fn built_packages(state: &BotState, build: &Build, chroots: &[BuildChroot]) -> Vec<String> {
    let prefix = format!("{}-", build.id.padded());
    let mut packages = Vec::new();
    for chroot in chroots.iter().filter(|c| c.state == State::Succeeded) {
        let dir = state
            .results_dir
            .join(&build.project.owner)
            .join(&build.dirname)
            .join(&chroot.chroot);
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
            continue;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            let Ok(mut files) = tokio::fs::read_dir(entry.path()).await else {
                continue;
            };
            while let Ok(Some(file)) = files.next_entry().await {
                let name = file.file_name().to_string_lossy().into_owned();
                if name.ends_with(".rpm")
                    && !name.ends_with(".src.rpm")
                    && !packages.contains(&name)
                {
                    packages.push(name);
                }
            }
        }
    }
    packages.sort();
    packages
}
