//! The backend: seed steps 2-4 and 6-12.
//!
//! The scheduler is the only writer of build and build-chroot states. It takes SRPM tasks
//! before RPM tasks from the database queue, runs each on a builder host, has DistGit import
//! the SRPM and queues one RPM task per chroot, then signs the results and publishes the
//! chroot's repository. Others (the bot, the API) only request builds and wake it up.
//!
//! On start it repairs what a stop left behind: tasks that were starting or running are
//! queued again, and imports that were under way are run again (imports are idempotent).

pub mod host;
mod reasons;
pub mod retention;

use reasons::FailReason;

use anyhow::Context;
use ferrocopr_distgit::DistGit;
use ferrocopr_repo_publisher::Publisher;
use ferrocopr_schema::db::{Build, BuildChroot, ImportedChroot};
use ferrocopr_schema::task::{BuilderTask, SIGNED_FILE, SRPM_CHROOT, SUCCESS_FILE, TaskKind};
use ferrocopr_schema::{BuildId, Chroot, Db, Event, Part, State};
use ferrocopr_signer::SignerClient;
use ferrocopr_signer::rpm_header::sign_rpm;
use host::{BuilderHost, BuilderOutcome, append_line};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a build may run when nothing else says (Copr's default, 5 hours).
pub const DEFAULT_TIMEOUT_SECS: u64 = 5 * 3600;

/// A task whose builder host fails is tried on at most this many hosts (REFERENCE §5); a
/// failed build itself is never retried.
pub const MAX_HOSTS: i64 = 3;

/// How often the queue is looked at when nobody wakes the scheduler: the safety net for a
/// lost wake-up, and what picks up requests written by another process.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Everything the scheduler works with.
pub struct Scheduler {
    pub db: Db,
    /// The results tree served under `/results/` (REFERENCE §2).
    pub results_dir: PathBuf,
    pub builders: Arc<dyn BuilderHost>,
    /// How many tasks run at once; 0 starts none (builds wait in the queue, as when this
    /// process runs only the frontend's side).
    pub slots: usize,
    pub signer: Arc<dyn SignerClient>,
    pub distgit: Arc<DistGit>,
    pub publisher: Publisher,
    /// Base URL builders download lookaside sources from.
    pub lookaside_url: String,
    /// Rung by whoever requests a build.
    pub wake: Arc<Notify>,
    /// Rung on every state change, for the status reporter.
    pub changed: Arc<Notify>,
    /// Rung when a CoprDir was scheduled for deletion ([`retention`]).
    pub retention_wake: Arc<Notify>,
    /// Builds with a task running in this process; start with `LiveBuilds::default()`.
    pub live: LiveBuilds,
}

/// The builds this process runs tasks of, each with the token that stops them when the build
/// is canceled.
#[derive(Debug, Default)]
pub struct LiveBuilds(std::sync::Mutex<HashMap<BuildId, (CancellationToken, usize)>>);

impl LiveBuilds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BuildId, (CancellationToken, usize)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers one more task of `build`; the token fires when the build is canceled.
    fn enter(&self, build: BuildId) -> CancellationToken {
        let mut live = self.lock();
        let entry = live
            .entry(build)
            .or_insert_with(|| (CancellationToken::new(), 0));
        entry.1 += 1;
        entry.0.clone()
    }

    fn leave(&self, build: BuildId) {
        let mut live = self.lock();
        if let Some(entry) = live.get_mut(&build) {
            entry.1 -= 1;
            if entry.1 == 0 {
                live.remove(&build);
            }
        }
    }

    /// Stops the build's running tasks; false when none runs here.
    fn cancel(&self, build: BuildId) -> bool {
        self.lock()
            .get(&build)
            .map(|(token, _)| token.cancel())
            .is_some()
    }
}

impl Scheduler {
    /// Runs the queue until `shutdown` is canceled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let this = Arc::new(self);
        this.recover().await?;
        // CoprDirs past their retention period go on a loop of their own: deleting a large
        // tree must not hold up the queue.
        let retention = tokio::spawn({
            let (db, results_dir) = (this.db.clone(), this.results_dir.clone());
            let (wake, shutdown) = (Arc::clone(&this.retention_wake), shutdown.clone());
            async move { retention::run(db, &results_dir, wake, shutdown).await }
        });
        let slots = Arc::new(Semaphore::new(this.slots));
        loop {
            if let Err(e) = this.apply_cancels().await {
                tracing::error!(error = format!("{e:#}"), "scheduler: canceling failed");
            }
            // Claim while builder slots are free; a finishing task rings `wake`.
            while let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
                match this.claim_next(permit).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::error!(
                            error = format!("{e:#}"),
                            "scheduler: claiming a task failed"
                        );
                        break;
                    }
                }
            }
            tokio::select! {
                () = this.wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = shutdown.cancelled() => {
                    retention.await?;
                    return Ok(());
                }
            }
        }
    }

    /// Carries out cancel requests: parts with a task running here are stopped by their
    /// worker, which then records them canceled; every other unfinished part is canceled here.
    async fn apply_cancels(&self) -> anyhow::Result<()> {
        for build in self.db.builds_to_cancel().await? {
            if self.live.cancel(build.id) {
                tracing::info!(build.id = %build.id, "cancel requested: stopping its running tasks");
                continue;
            }
            if !build.source_state.is_finished() {
                self.source(build.id, build.source_state, Event::Cancel)
                    .await?;
            }
            for chroot in self.db.build_chroots(build.id).await? {
                if !chroot.state.is_finished() {
                    self.chroot(&chroot, chroot.state, Event::Cancel).await?;
                }
            }
            tracing::info!(build.id = %build.id, "build canceled");
        }
        Ok(())
    }

    /// Queues again what a stop interrupted.
    async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        for state in [State::Starting, State::Running] {
            for build in self.db.builds_with_source_state(state).await? {
                let t = state.next(Part::Source, Event::Requeue)?;
                self.db.move_source(build.id, t).await?;
                tracing::info!(build.id = %build.id, "re-queued interrupted SRPM task");
            }
            for chroot in self.db.chroots_in_state(state).await? {
                let t = state.next(Part::Chroot, Event::Requeue)?;
                self.db
                    .move_chroot(chroot.build_id, &chroot.chroot, t)
                    .await?;
                tracing::info!(build.id = %chroot.build_id, chroot = %chroot.chroot, "re-queued interrupted RPM task");
            }
        }
        for build in self.db.builds_with_source_state(State::Importing).await? {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.import(build).await });
        }
        Ok(())
    }

    /// Takes the next task, SRPM tasks first; false when the queue is empty.
    async fn claim_next(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> anyhow::Result<bool> {
        if let Some(build) = self.db.next_pending_source().await? {
            let t = build.source_state.next(Part::Source, Event::Start)?;
            if self.db.move_source(build.id, t).await? {
                let span = tracing::info_span!("srpm", build.id = %build.id);
                let id = build.id;
                self.spawn_task(id, permit, span, |this, cancel| async move {
                    this.run_srpm(build, cancel).await
                });
            }
            return Ok(true);
        }
        if let Some(chroot) = self.db.next_pending_chroot().await? {
            let t = chroot.state.next(Part::Chroot, Event::Start)?;
            if self
                .db
                .move_chroot(chroot.build_id, &chroot.chroot, t)
                .await?
            {
                let span = tracing::info_span!("rpm", build.id = %chroot.build_id, chroot = %chroot.chroot);
                let id = chroot.build_id;
                self.spawn_task(id, permit, span, |this, cancel| async move {
                    this.run_rpm(chroot, cancel).await
                });
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Runs a claimed task of `build` in the background, holding its builder slot until it
    /// ends; the task gets the token that fires when the build is canceled.
    fn spawn_task<F, Fut>(
        self: &Arc<Self>,
        build: BuildId,
        permit: OwnedSemaphorePermit,
        span: tracing::Span,
        task: F,
    ) where
        F: FnOnce(Arc<Self>, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.changed.notify_one();
        let cancel = self.live.enter(build);
        let work = task(Arc::clone(self), cancel);
        let this = Arc::clone(self);
        tokio::spawn(
            async move {
                work.await;
                this.live.leave(build);
                drop(permit);
                this.wake.notify_one();
            }
            .instrument(span),
        );
    }

    fn dir_of(&self, build: &Build) -> PathBuf {
        self.results_dir
            .join(&build.project.owner)
            .join(&build.dirname)
    }

    fn srpm_result_dir(&self, build: &Build) -> PathBuf {
        self.dir_of(build).join(SRPM_CHROOT).join(build.id.padded())
    }

    fn task(&self, build: &Build, chroot: &str, kind: TaskKind) -> BuilderTask {
        BuilderTask {
            task_id: if chroot == SRPM_CHROOT {
                build.id.to_string()
            } else {
                format!("{}-{chroot}", build.id)
            },
            build_id: build.id.0,
            chroot: chroot.to_owned(),
            project_owner: build.project.owner.clone(),
            project_name: build.project.project.clone(),
            project_dirname: build.dirname.clone(),
            timeout: DEFAULT_TIMEOUT_SECS,
            enable_net: false,
            kind,
        }
    }

    /// Moves the source part; false (and a log line) when someone else moved it first.
    async fn source(&self, id: BuildId, from: State, event: Event) -> anyhow::Result<bool> {
        let moved = self
            .db
            .move_source(id, from.next(Part::Source, event)?)
            .await?;
        if moved {
            self.changed.notify_one();
        } else {
            tracing::warn!(build.id = %id, %from, ?event, "source part was moved by someone else");
        }
        Ok(moved)
    }

    async fn chroot(&self, c: &BuildChroot, from: State, event: Event) -> anyhow::Result<bool> {
        let moved = self
            .db
            .move_chroot(c.build_id, &c.chroot, from.next(Part::Chroot, event)?)
            .await?;
        if moved {
            self.changed.notify_one();
        }
        Ok(moved)
    }

    async fn fail_source(&self, id: BuildId, from: State, reason: &str) {
        tracing::warn!(build.id = %id, reason, "SRPM part failed");
        let result = async {
            self.db
                .fail_source(id, from.next(Part::Source, Event::Fail)?, reason)
                .await?;
            anyhow::Ok(())
        };
        if let Err(e) = result.await {
            tracing::error!(build.id = %id, error = format!("{e:#}"), "recording the failure failed");
        }
        self.changed.notify_one();
    }

    async fn run_srpm(self: &Arc<Self>, build: Build, cancel: CancellationToken) {
        if let Err(e) = self.try_run_srpm(&build, &cancel).await {
            tracing::error!(error = format!("{e:#}"), "SRPM task failed internally");
            let now = self.db.build(build.id).await.ok().flatten();
            if let Some(now) = now.filter(|b| !b.source_state.is_finished()) {
                self.fail_source(build.id, now.source_state, "internal error")
                    .await;
            }
        }
    }

    async fn try_run_srpm(
        self: &Arc<Self>,
        build: &Build,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        if !self.source(build.id, State::Starting, Event::Run).await? {
            return Ok(());
        }
        let result_dir = self.srpm_result_dir(build);
        let task = self.task(
            build,
            SRPM_CHROOT,
            TaskKind::Srpm {
                source: build.source.clone(),
            },
        );
        let outcome = self.builders.run(&task, &result_dir, cancel).await;
        if cancel.is_cancelled() {
            self.source(build.id, State::Running, Event::Cancel).await?;
            return Ok(());
        }
        match outcome {
            Ok(BuilderOutcome::Canceled) => {
                self.source(build.id, State::Running, Event::Cancel).await?;
            }
            Ok(BuilderOutcome::Succeeded) => {
                if self.source(build.id, State::Running, Event::Import).await? {
                    self.import(build.clone()).await;
                }
            }
            Ok(BuilderOutcome::Failed) => {
                self.fail_source(build.id, State::Running, FailReason::SrpmBuild.text())
                    .await;
            }
            Err(e) => {
                let attempts = self.db.count_source_host_failure(build.id).await?;
                if attempts >= MAX_HOSTS {
                    tracing::error!(error = %e, attempts, "builder hosts keep failing; giving up");
                    append_line(&result_dir, FailReason::NoBuilder.log_line()).await;
                    self.fail_source(build.id, State::Running, FailReason::NoBuilder.text())
                        .await;
                } else {
                    tracing::warn!(error = %e, attempts, "builder lost; task queued again");
                    self.source(build.id, State::Running, Event::Requeue)
                        .await?;
                    self.wake.notify_one();
                }
            }
        }
        Ok(())
    }

    /// Seed step 7: sign the SRPM, import it into DistGit and queue one RPM task per chroot.
    async fn import(&self, build: Build) {
        let span = tracing::info_span!("import", build.id = %build.id);
        if let Err(e) = self.try_import(&build).instrument(span).await {
            // The details (paths, tool output) go to the logs; the reason users see stays short.
            tracing::error!(error = format!("{e:#}"), "SRPM import failed");
            let line = format!("{} {e:#}", FailReason::Import.log_line());
            append_line(&self.srpm_result_dir(&build), &line).await;
            self.fail_source(build.id, State::Importing, FailReason::Import.text())
                .await;
        }
        self.wake.notify_one();
    }

    async fn try_import(&self, build: &Build) -> anyhow::Result<()> {
        let result_dir = self.srpm_result_dir(build);
        let srpm = find_files(&result_dir, ".src.rpm")
            .await?
            .into_iter()
            .next()
            .context("the SRPM build left no .src.rpm")?;
        sign_rpm(self.signer.as_ref(), &build.project, &srpm).await?;
        let chroots = self.db.build_chroots(build.id).await?;
        let mut branches: Vec<String> = chroots
            .iter()
            .filter_map(|c| Chroot::parse(&c.chroot))
            .map(|c| c.distgit_branch())
            .collect();
        branches.sort();
        branches.dedup();
        let distgit = Arc::clone(&self.distgit);
        let (project, dirname, path) = (build.project.clone(), build.dirname.clone(), srpm.clone());
        let import = tokio::task::spawn_blocking(move || {
            distgit.import_srpm(&project, &dirname, &path, &branches)
        })
        .await??;
        let imported: Vec<ImportedChroot> = chroots
            .iter()
            .filter_map(|c| {
                let branch = Chroot::parse(&c.chroot)?.distgit_branch();
                let commit = import.commits.iter().find(|b| b.branch == branch)?;
                Some(ImportedChroot {
                    chroot: c.chroot.clone(),
                    git_hash: commit.commit.clone(),
                })
            })
            .collect();
        let t = State::Importing.next(Part::Source, Event::Succeed)?;
        let version = format!("{}-{}", import.version, import.release);
        self.db
            .finish_import(build.id, t, &import.package, &version, &imported)
            .await?;
        self.changed.notify_one();
        tracing::info!(package = %import.package, %version, "imported into DistGit");
        Ok(())
    }

    async fn run_rpm(self: &Arc<Self>, chroot: BuildChroot, cancel: CancellationToken) {
        if let Err(e) = self.try_run_rpm(&chroot, &cancel).await {
            tracing::error!(error = format!("{e:#}"), "RPM task failed internally");
            if let Ok(Some(now)) = self.current_chroot(&chroot).await
                && !now.state.is_finished()
            {
                let _ = self.chroot(&now, now.state, Event::Fail).await;
            }
        }
    }

    async fn current_chroot(&self, c: &BuildChroot) -> anyhow::Result<Option<BuildChroot>> {
        Ok(self
            .db
            .build_chroots(c.build_id)
            .await?
            .into_iter()
            .find(|x| x.chroot == c.chroot))
    }

    async fn try_run_rpm(
        self: &Arc<Self>,
        chroot: &BuildChroot,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let build = self
            .db
            .build(chroot.build_id)
            .await?
            .context("build vanished")?;
        if !self.chroot(chroot, State::Starting, Event::Run).await? {
            return Ok(());
        }
        let package = build
            .pkg_name
            .clone()
            .context("build has no package name")?;
        let parsed = Chroot::parse(&chroot.chroot).context("bad chroot name")?;
        let chroot_dir = self.dir_of(&build).join(&chroot.chroot);
        let result_dir = chroot_dir.join(format!("{}-{package}", build.id.padded()));
        let task = self.task(
            &build,
            &chroot.chroot,
            TaskKind::Rpm {
                git_repo: self
                    .distgit
                    .repo_url(&build.project.owner, &build.dirname, &package),
                git_hash: chroot
                    .git_hash
                    .clone()
                    .context("chroot has no DistGit commit")?,
                lookaside_url: self.lookaside_url.clone(),
                package_name: package,
                dist: parsed.dist_tag(),
            },
        );
        // A new attempt starts clean: nothing from an interrupted one may look finished.
        remove_markers(&result_dir).await;
        let outcome = self.builders.run(&task, &result_dir, cancel).await;
        // Checked again right before publishing: a canceled build's packages never reach the
        // repository, and without `success` the publisher leaves them out later too.
        if cancel.is_cancelled()
            || outcome
                .as_ref()
                .is_ok_and(|o| *o == BuilderOutcome::Canceled)
        {
            remove_markers(&result_dir).await;
            self.chroot(chroot, State::Running, Event::Cancel).await?;
            return Ok(());
        }
        match outcome {
            Ok(BuilderOutcome::Canceled) => {}
            Ok(BuilderOutcome::Succeeded) => {
                let event = match self
                    .sign_and_publish(&build, &chroot_dir, &result_dir, cancel)
                    .await
                {
                    Ok(true) => Event::Succeed,
                    Ok(false) => {
                        remove_markers(&result_dir).await;
                        Event::Cancel
                    }
                    Err(e) => {
                        let line = format!("{} {e:#}", FailReason::SignOrPublish.log_line());
                        append_line(&result_dir, &line).await;
                        // Without the markers the publisher leaves these packages out of repodata.
                        remove_markers(&result_dir).await;
                        Event::Fail
                    }
                };
                self.chroot(chroot, State::Running, event).await?;
            }
            Ok(BuilderOutcome::Failed) => {
                self.chroot(chroot, State::Running, Event::Fail).await?;
            }
            Err(e) => {
                let attempts = self
                    .db
                    .count_chroot_host_failure(chroot.build_id, &chroot.chroot)
                    .await?;
                if attempts >= MAX_HOSTS {
                    tracing::error!(error = %e, attempts, "builder hosts keep failing; giving up");
                    append_line(&result_dir, FailReason::NoBuilder.log_line()).await;
                    self.chroot(chroot, State::Running, Event::Fail).await?;
                } else {
                    tracing::warn!(error = %e, attempts, "builder lost; task queued again");
                    self.chroot(chroot, State::Running, Event::Requeue).await?;
                    self.wake.notify_one();
                }
            }
        }
        Ok(())
    }

    /// Seed step 12: sign every package of the build, then publish the chroot's repository
    /// and the project's public key.
    /// False, with nothing published, when the build was canceled before publishing.
    async fn sign_and_publish(
        &self,
        build: &Build,
        chroot_dir: &Path,
        result_dir: &Path,
        cancel: &CancellationToken,
    ) -> anyhow::Result<bool> {
        for rpm in find_files(result_dir, ".rpm").await? {
            sign_rpm(self.signer.as_ref(), &build.project, &rpm).await?;
        }
        // The token fires on the next cancel sweep; the database knows of a request at once.
        let requested = self
            .db
            .build(build.id)
            .await?
            .is_none_or(|b| b.cancel_requested);
        if cancel.is_cancelled() || requested {
            return Ok(false);
        }
        tokio::fs::write(result_dir.join(SIGNED_FILE), b"").await?;
        let key = self.signer.public_key(&build.project).await?;
        self.publisher
            .publish_pubkey(&self.dir_of(build), &key)
            .await?;
        self.publisher.publish_chroot(chroot_dir).await?;
        Ok(true)
    }
}

/// Takes back what marks a build directory as done, so the publisher leaves it out.
async fn remove_markers(result_dir: &Path) {
    for marker in [SUCCESS_FILE, SIGNED_FILE] {
        let _ = tokio::fs::remove_file(result_dir.join(marker)).await;
    }
}

/// Files directly in `dir` whose names end with `suffix`, sorted.
async fn find_files(dir: &Path, suffix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .with_context(|| format!("reading {}", dir.display()))?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(suffix) && entry.file_type().await?.is_file() {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}
