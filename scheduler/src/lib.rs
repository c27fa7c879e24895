//! The backend: seed steps 2-4 and 6-12.
//!
//! The scheduler is the only writer of build and build-chroot states. It takes SRPM tasks
//! before RPM tasks from the database queue, runs each on a builder host, has DistGit import
//! the SRPM and queues one RPM task per chroot, then signs the results and publishes the
//! chroot's repository. Others (the bot, the API) only request builds and wake it up.
//!
//! On start it repairs what a stop left behind: tasks that were starting or running are
//! queued again, and imports that were under way are run again (imports are idempotent).

pub mod alloc;
pub mod arches;
pub mod config;
pub mod host;
pub mod keys;
pub mod pools;
pub mod prune;
pub mod queue;
mod reasons;
pub mod remote;
pub mod resalloc;
pub mod retention;
pub mod ssh;

use reasons::FailReason;

use anyhow::Context;
use ferrocopr_distgit::DistGit;
use ferrocopr_repo_publisher::{Publisher, RepomdSigner};
use ferrocopr_schema::db::{Build, BuildChroot, ImportedChroot, QueuedTask, sandbox};
use ferrocopr_schema::model::{BuildSource, DistgitInstance, DistgitLocation, OWN_DISTGIT};
use ferrocopr_schema::task::{
    BuilderTask, LIVE_LOG, SIGNED_FILE, SRPM_CHROOT, SUCCESS_FILE, TaskKind,
};
use ferrocopr_schema::{BuildId, Chroot, Db, Event, Part, ProjectRef, State};
use ferrocopr_signer::SignerClient;
use ferrocopr_signer::keys::armor_signature;
use ferrocopr_signer::rpm_header::sign_rpm;
use host::{Assignment, BuilderHost, BuilderOutcome, Progress, append_line};
use queue::{Fairness, Limits, Routing};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a build may run when nothing else says (Copr's default, 5 hours).
pub const DEFAULT_TIMEOUT_SECS: u64 = 5 * 3600;

/// A task whose builder host fails is tried on at most this many hosts (REFERENCE §5); a
/// failed build itself is never retried.
pub const MAX_HOSTS: i64 = 3;

/// How often the queue is looked at when nobody wakes the scheduler: the safety net for a
/// lost wake-up, and what picks up requests (builds, cancels) written by another process. Short
/// enough that a cancel asked of another process takes effect within a second.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Everything the scheduler works with.
pub struct Scheduler {
    pub db: Db,
    /// The results tree served under `/results/` (REFERENCE §2).
    pub results_dir: PathBuf,
    /// Where tasks run; also says how many builder slots each architecture has.
    pub builders: Arc<dyn BuilderHost>,
    /// Concurrency caps beyond the builders' own slots.
    pub limits: Limits,
    /// Which architecture and ticket tags each task has.
    pub routing: Routing,
    pub signer: Arc<dyn SignerClient>,
    pub distgit: Arc<DistGit>,
    pub publisher: Publisher,
    /// Base URL builders download lookaside sources from.
    pub lookaside_url: String,
    /// Base URL builders download uploaded SRPMs from (`<uploads_url>/<token>/<file>`).
    pub uploads_url: String,
    /// The dist-git instances builds may take packages from, by name.
    pub distgit_instances: BTreeMap<String, DistgitInstance>,
    /// Base URL of DistGit's routes, which builders clone packages from
    /// ([`DistGit::http_repo_url`]).
    pub distgit_url: String,
    /// Rung by whoever requests a build.
    pub wake: Arc<Notify>,
    /// Rung on every state change, for the status reporter.
    pub changed: Arc<Notify>,
    /// Rung when a CoprDir was scheduled for deletion ([`retention`]).
    pub retention_wake: Arc<Notify>,
    /// Days superseded builds stay published in projects that set no period of their own
    /// ([`prune`]; [`prune::DEFAULT_PRUNE_DAYS`] by default).
    pub prune_days: u32,
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
        let pruning = tokio::spawn(prune::run(Arc::clone(&this), shutdown.clone()));
        let mut fairness = Fairness::default();
        loop {
            if let Err(e) = this.apply_cancels().await {
                tracing::error!(error = format!("{e:#}"), "scheduler: canceling failed");
            }
            // Claim while the limits allow; a finishing task rings `wake`.
            if let Err(e) = this.claim_ready(&mut fairness).await {
                tracing::error!(error = format!("{e:#}"), "scheduler: claiming tasks failed");
            }
            tokio::select! {
                () = this.wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = shutdown.cancelled() => {
                    retention.await?;
                    pruning.await?;
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

    /// Repairs what a stop interrupted: a task placed on a builder that outlives this process
    /// (a remote host) is re-attached, so it neither runs twice nor is lost; any other task that
    /// was starting or running is queued again (a local builder left behind is ended when the
    /// task runs again). Imports that were under way run again (imports are idempotent).
    async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        let reattachable = |placement: &Option<String>| {
            placement
                .as_deref()
                .is_some_and(|p| !p.starts_with(host::LOCAL_PLACEMENT))
        };
        let mut placements = Vec::new();
        for state in [State::Starting, State::Running] {
            let sources = self.db.builds_with_source_state(state).await?;
            placements.extend(sources.into_iter().filter_map(|b| b.source_placement));
            let chroots = self.db.chroots_in_state(state).await?;
            placements.extend(chroots.into_iter().filter_map(|c| c.placement));
        }
        self.builders.recover(&placements).await;
        for state in [State::Starting, State::Running] {
            for build in self.db.builds_with_source_state(state).await? {
                if reattachable(&build.source_placement) {
                    tracing::info!(build.id = %build.id, "re-attaching to its SRPM task");
                    let span =
                        tracing::info_span!("srpm", build.id = %build.id, chroot = SRPM_CHROOT);
                    self.spawn_task(build.id, span, |this, cancel| async move {
                        this.run_srpm(build, cancel).await
                    });
                    continue;
                }
                let t = state.next(Part::Source, Event::Requeue)?;
                self.db.move_source(build.id, t).await?;
                tracing::info!(build.id = %build.id, "re-queued interrupted SRPM task");
            }
            for chroot in self.db.chroots_in_state(state).await? {
                if reattachable(&chroot.placement) {
                    tracing::info!(build.id = %chroot.build_id, chroot = %chroot.chroot, "re-attaching to its RPM task");
                    let span = tracing::info_span!("rpm", build.id = %chroot.build_id, chroot = %chroot.chroot);
                    let id = chroot.build_id;
                    self.spawn_task(id, span, |this, cancel| async move {
                        this.run_rpm(chroot, cancel).await
                    });
                    continue;
                }
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

    /// Claims and starts every task the fair queue lets start now ([`queue::pick`]), round after
    /// round, until the limits are reached or nothing waits.
    async fn claim_ready(self: &Arc<Self>, fairness: &mut Fairness) -> anyhow::Result<()> {
        let builders = Arc::clone(&self.builders);
        let slots = move |arch: &str| builders.slots(arch);
        let mut limits = self.limits.clone();
        if let Some(total) = self.builders.total_slots() {
            limits.total = Some(limits.total.map_or(total, |cap| cap.min(total)));
        }
        loop {
            let heads = self.db.queue_heads().await?;
            if heads.is_empty() {
                return Ok(());
            }
            let active = self.db.active_tasks().await?;
            let chosen = queue::pick(&heads, &active, &limits, &self.routing, &slots, fairness);
            let mut claimed = false;
            for task in chosen {
                claimed |= self.claim(&task).await?;
            }
            if !claimed {
                return Ok(());
            }
        }
    }

    /// Moves one picked task from pending to starting and runs it; false when someone else
    /// moved it first.
    async fn claim(self: &Arc<Self>, task: &QueuedTask) -> anyhow::Result<bool> {
        let id = task.build_id;
        if task.is_srpm() {
            let Some(build) = self.db.build(id).await? else {
                return Ok(false);
            };
            let t = build.source_state.next(Part::Source, Event::Start)?;
            if !self.db.move_source(id, t).await? {
                return Ok(false);
            }
            let span = tracing::info_span!("srpm", build.id = %id, chroot = SRPM_CHROOT);
            self.spawn_task(id, span, |this, cancel| async move {
                this.run_srpm(build, cancel).await
            });
            return Ok(true);
        }
        let Some(chroot) = self.chroot_of(id, &task.chroot).await? else {
            return Ok(false);
        };
        let t = chroot.state.next(Part::Chroot, Event::Start)?;
        if !self.db.move_chroot(id, &chroot.chroot, t).await? {
            return Ok(false);
        }
        let span = tracing::info_span!("rpm", build.id = %id, chroot = %chroot.chroot);
        self.spawn_task(id, span, |this, cancel| async move {
            this.run_rpm(chroot, cancel).await
        });
        Ok(true)
    }

    /// Runs a claimed task of `build` in the background; the task gets the token that fires
    /// when the build is canceled, and its end rings `wake` so its slot is used again.
    fn spawn_task<F, Fut>(self: &Arc<Self>, build: BuildId, span: tracing::Span, task: F)
    where
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
            timeout: build.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS),
            enable_net: build.enable_net,
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
        let result_dir = self.srpm_result_dir(build);
        let kind = match self.srpm_task(build) {
            Ok(kind) => kind,
            Err(reason) => {
                let _ = tokio::fs::create_dir_all(&result_dir).await;
                append_line(&result_dir, &format!("==> error: {reason}")).await;
                let now = self.db.build(build.id).await?.context("build vanished")?;
                self.fail_source(build.id, now.source_state, FailReason::SrpmBuild.text())
                    .await;
                return Ok(());
            }
        };
        let task = self.task(build, SRPM_CHROOT, kind);
        let progress = TaskProgress {
            scheduler: self,
            build: build.id,
            chroot: None,
        };
        let assignment = self.assignment(
            build,
            SRPM_CHROOT,
            build.source_placement.clone(),
            &progress,
        );
        let outcome = self
            .builders
            .run(&task, &result_dir, cancel, &assignment)
            .await;
        // Where the part stands now: starting when no builder ran it, else running.
        let now = self
            .db
            .build(build.id)
            .await?
            .context("build vanished")?
            .source_state;
        if now.is_finished() {
            return Ok(());
        }
        if cancel.is_cancelled() {
            self.source(build.id, now, Event::Cancel).await?;
            return Ok(());
        }
        match outcome {
            Ok(BuilderOutcome::Canceled) => {
                self.source(build.id, now, Event::Cancel).await?;
            }
            Ok(BuilderOutcome::Succeeded) => {
                if self.source(build.id, now, Event::Import).await? {
                    self.import(build.clone()).await;
                }
            }
            Ok(BuilderOutcome::Failed) => {
                self.fail_source(build.id, now, FailReason::SrpmBuild.text())
                    .await;
            }
            Err(e) => {
                let attempts = self.db.count_source_host_failure(build.id).await?;
                keep_attempt_log(&result_dir, attempts).await;
                self.db.place_source(build.id, None).await?;
                if attempts >= MAX_HOSTS {
                    tracing::error!(error = %e, attempts, "builder hosts keep failing; giving up");
                    append_line(&result_dir, FailReason::NoBuilder.log_line()).await;
                    self.fail_source(build.id, now, FailReason::NoBuilder.text())
                        .await;
                } else {
                    tracing::warn!(error = %e, attempts, "builder lost; task queued again");
                    self.source(build.id, now, Event::Requeue).await?;
                    self.wake.notify_one();
                }
            }
        }
        Ok(())
    }

    /// The SRPM task of `build`, with what only the backend knows filled in: where uploads
    /// and dist-git packages are. Errs with the reason users see.
    fn srpm_task(&self, build: &Build) -> Result<TaskKind, String> {
        let (source, distgit) = match &build.source {
            BuildSource::Upload { path } => (
                BuildSource::Url {
                    url: format!("{}/{path}", self.uploads_url.trim_end_matches('/')),
                },
                None,
            ),
            BuildSource::Distgit {
                instance,
                namespace,
                package,
                ..
            } => {
                let location = if instance == OWN_DISTGIT {
                    let (owner, dirname) = namespace
                        .as_deref()
                        .and_then(|n| n.split_once('/'))
                        .ok_or("a rebuild must name the DistGit directory it comes from")?;
                    self.own_distgit(owner, dirname, package)
                } else {
                    self.distgit_instances
                        .get(instance)
                        .ok_or(format!("there is no dist-git instance {instance:?}"))?
                        .locate(package)
                };
                (build.source.clone(), Some(location))
            }
            // SCM, URL and custom-script sources need nothing but themselves.
            source => (source.clone(), None),
        };
        Ok(TaskKind::Srpm { source, distgit })
    }

    /// This instance's DistGit as a dist-git instance: what rebuilds take their sources from.
    fn own_distgit(&self, owner: &str, dirname: &str, package: &str) -> DistgitLocation {
        DistgitLocation {
            clone_url: DistGit::http_repo_url(&self.distgit_url, owner, dirname, package),
            lookaside_url: format!(
                "{}/{owner}/{dirname}/{{name}}/{{filename}}/{{hashtype}}/{{hash}}/{{filename}}",
                self.lookaside_url.trim_end_matches('/')
            ),
        }
    }

    /// What the builders get to know about a task besides the task.
    fn assignment<'a>(
        &self,
        build: &Build,
        chroot: &str,
        placed: Option<String>,
        progress: &'a TaskProgress<'a>,
    ) -> Assignment<'a> {
        Assignment {
            tags: self.routing.tags_of(chroot),
            sandbox: sandbox(
                &build.project.owner,
                &build.project.project,
                &build.submitter,
            ),
            placed,
            progress,
        }
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
        // Chroots whose architecture the spec rules out are not imported, so finish_import
        // marks them skipped.
        let rules = arches::ArchRules::of_srpm(&srpm).await?;
        let chroots: Vec<BuildChroot> = self
            .db
            .build_chroots(build.id)
            .await?
            .into_iter()
            .filter(|c| Chroot::parse(&c.chroot).is_none_or(|p| rules.allows(&p.arch)))
            .collect();
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
        self.chroot_of(c.build_id, &c.chroot).await
    }

    /// One build-chroot as the database has it now.
    async fn chroot_of(&self, id: BuildId, chroot: &str) -> anyhow::Result<Option<BuildChroot>> {
        Ok(self
            .db
            .build_chroots(id)
            .await?
            .into_iter()
            .find(|x| x.chroot == chroot))
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
                git_repo: DistGit::http_repo_url(
                    &self.distgit_url,
                    &build.project.owner,
                    &build.dirname,
                    &package,
                ),
                git_hash: chroot
                    .git_hash
                    .clone()
                    .context("chroot has no DistGit commit")?,
                lookaside_url: self.lookaside_url.clone(),
                package_name: package,
                dist: parsed.dist_tag(),
                bconds: build.bconds.clone(),
            },
        );
        // A new attempt starts clean: nothing from an interrupted one may look finished.
        remove_markers(&result_dir).await;
        let progress = TaskProgress {
            scheduler: self,
            build: build.id,
            chroot: Some(&chroot.chroot),
        };
        let assignment =
            self.assignment(&build, &chroot.chroot, chroot.placement.clone(), &progress);
        let outcome = self
            .builders
            .run(&task, &result_dir, cancel, &assignment)
            .await;
        let Some(now) = self.current_chroot(chroot).await? else {
            return Ok(());
        };
        if now.state.is_finished() {
            return Ok(());
        }
        let chroot = &now;
        // Checked again right before publishing: a canceled build's packages never reach the
        // repository, and without `success` the publisher leaves them out later too.
        if cancel.is_cancelled()
            || outcome
                .as_ref()
                .is_ok_and(|o| *o == BuilderOutcome::Canceled)
        {
            remove_markers(&result_dir).await;
            self.chroot(chroot, chroot.state, Event::Cancel).await?;
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
                self.chroot(chroot, chroot.state, event).await?;
                if event == Event::Succeed
                    && let Err(e) = self.prune(Some((build.id, &chroot.chroot))).await
                {
                    tracing::warn!(error = format!("{e:#}"), "pruning after a publish failed");
                }
            }
            Ok(BuilderOutcome::Failed) => {
                self.chroot(chroot, chroot.state, Event::Fail).await?;
            }
            Err(e) => {
                let attempts = self
                    .db
                    .count_chroot_host_failure(chroot.build_id, &chroot.chroot)
                    .await?;
                keep_attempt_log(&result_dir, attempts).await;
                self.db
                    .place_chroot(chroot.build_id, &chroot.chroot, None)
                    .await?;
                if attempts >= MAX_HOSTS {
                    tracing::error!(error = %e, attempts, "builder hosts keep failing; giving up");
                    append_line(&result_dir, FailReason::NoBuilder.log_line()).await;
                    self.chroot(chroot, chroot.state, Event::Fail).await?;
                } else {
                    tracing::warn!(error = %e, attempts, "builder lost; task queued again");
                    self.chroot(chroot, chroot.state, Event::Requeue).await?;
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
        self.publish_signed(&build.project, chroot_dir).await?;
        Ok(true)
    }

    /// Writes the chroot's repodata, `repomd.xml.asc` signed with the project's key.
    async fn publish_signed(&self, project: &ProjectRef, chroot_dir: &Path) -> anyhow::Result<()> {
        let signer = Arc::new(ProjectSigner {
            signer: Arc::clone(&self.signer),
            project: project.clone(),
        });
        self.publisher
            .publish_chroot_signed(chroot_dir, signer)
            .await?;
        Ok(())
    }
}

/// The project's key as the publisher's [`RepomdSigner`].
struct ProjectSigner {
    signer: Arc<dyn SignerClient>,
    project: ProjectRef,
}

#[async_trait::async_trait]
impl RepomdSigner for ProjectSigner {
    async fn sign_repomd(&self, repomd: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let signature = self.signer.sign(&self.project, repomd).await?;
        armor_signature(&signature)
    }
}

/// Keeps the log of an attempt whose host failed beside the next attempt's, numbered
/// (`builder-live.log.1` for the first), instead of letting the retry overwrite it (copr#3694).
async fn keep_attempt_log(result_dir: &Path, attempt: i64) {
    let log = result_dir.join(LIVE_LOG);
    let kept = result_dir.join(format!("{LIVE_LOG}.{attempt}"));
    if let Err(e) = tokio::fs::rename(&log, &kept).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, "keeping the attempt's log failed");
    }
}

/// The scheduler's [`Progress`] for one task: placements go to the database, and the task
/// moves from starting to running when its builder runs.
struct TaskProgress<'a> {
    scheduler: &'a Scheduler,
    build: BuildId,
    /// `None` for the SRPM task.
    chroot: Option<&'a str>,
}

#[async_trait::async_trait]
impl Progress for TaskProgress<'_> {
    async fn placed(&self, placement: Option<&str>) -> anyhow::Result<()> {
        match self.chroot {
            None => {
                self.scheduler
                    .db
                    .place_source(self.build, placement)
                    .await?
            }
            Some(chroot) => {
                self.scheduler
                    .db
                    .place_chroot(self.build, chroot, placement)
                    .await?;
            }
        }
        Ok(())
    }

    async fn running(&self) -> anyhow::Result<()> {
        let s = self.scheduler;
        match self.chroot {
            None => {
                let build = s.db.build(self.build).await?.context("build vanished")?;
                if build.source_state == State::Starting {
                    s.source(self.build, State::Starting, Event::Run).await?;
                }
            }
            Some(chroot) => {
                let now = s
                    .chroot_of(self.build, chroot)
                    .await?
                    .context("chroot vanished")?;
                if now.state == State::Starting {
                    s.chroot(&now, State::Starting, Event::Run).await?;
                }
            }
        }
        Ok(())
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
