//! Builder hosts: where a task runs (seed steps 3-5 and 9-11).
//!
//! [`BuilderHost`] is the seam between the scheduler and a machine that runs the builder
//! program. [`LocalBuilders`] runs it as a local process, the embedded default of
//! `ferrocopr serve`; an SSH host implements the same trait.

use async_trait::async_trait;
use ferrocopr_builder::paths;
use ferrocopr_schema::task::{BuilderTask, LIVE_LOG, SUCCESS_FILE};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Extra time the fail-safe gives a task beyond its own timeout, so the builder's own
/// timeout (and its log line saying so) normally fires first.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(120);

/// How long the backend lets a task run before it stops the builder itself: the task's own
/// timeout plus [`TIMEOUT_MARGIN`].
pub fn fail_safe_limit(task: &BuilderTask) -> Duration {
    Duration::from_secs(task.timeout) + TIMEOUT_MARGIN
}

/// How a task run by [`LocalBuilders`] is recorded: `local:<pid>`. Such a task is not
/// re-attached after a restart but run again, and the builder left behind is ended first.
pub const LOCAL_PLACEMENT: &str = "local:";

/// The backend's lines in a task's live log (public so that tests can look for them).
pub const TIMED_OUT: &str = "==> error: the build exceeded its timeout and was stopped";
pub const CANCELED: &str = "==> the build was canceled";

/// How a task that ran to its end turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderOutcome {
    Succeeded,
    Failed,
    /// Stopped because the build was canceled.
    Canceled,
}

/// The host could not run the task to its end; the task may be retried on another host.
#[derive(Debug, thiserror::Error)]
#[error("builder host failed: {0}")]
pub struct HostError(pub String);

/// What the scheduler tells a builder host about a task beyond the task itself.
pub struct Assignment<'a> {
    /// The ticket's tags: `copr_builder`, `arch_<arch>` and the chroot's own.
    pub tags: Vec<String>,
    /// `<owner>/<project>--<submitter>`: machines are reused within one, never across two.
    pub sandbox: String,
    /// Where a previous process placed this task, if it was placed before a restart: the host
    /// re-attaches to it instead of starting the task again.
    pub placed: Option<String>,
    pub progress: &'a dyn Progress,
}

/// The scheduler's side of a running task: the host reports where it placed the task (written
/// to the database before the host waits on the builder) and when the builder runs.
#[async_trait]
pub trait Progress: Send + Sync {
    /// Records where the task runs; `None` once it runs nowhere any more.
    async fn placed(&self, placement: Option<&str>) -> anyhow::Result<()>;
    /// The builder program runs: the task moves from starting to running.
    async fn running(&self) -> anyhow::Result<()>;
}

/// A machine that runs builder tasks.
#[async_trait]
pub trait BuilderHost: Send + Sync {
    /// Runs `task` and leaves its results, `builder-live.log` included, in `result_dir`; stops
    /// the builder, its whole process group, as soon as `cancel` fires.
    async fn run(
        &self,
        task: &BuilderTask,
        result_dir: &Path,
        cancel: &CancellationToken,
        assignment: &Assignment<'_>,
    ) -> Result<BuilderOutcome, HostError>;

    /// How many tasks of `arch` these builders run at once; `None` when they do not know (an
    /// external allocator): the scheduler's limits decide then.
    fn slots(&self, arch: &str) -> Option<usize>;

    /// How many tasks these builders run at once over all architectures, when they say.
    fn total_slots(&self) -> Option<usize> {
        None
    }

    /// Called once at start, before any task runs, with the placements of the tasks the previous
    /// process left starting or running: builders take back what those tasks hold before they
    /// give anything to new tasks.
    async fn recover(&self, placements: &[String]) {
        for placement in placements {
            end_leftover(placement).await;
        }
    }
}

/// Runs tasks as local processes of the builder program.
#[derive(Debug, Clone)]
pub struct LocalBuilders {
    program: PathBuf,
    work_dir: PathBuf,
    slots: usize,
}

impl LocalBuilders {
    /// `program` is the `ferrocopr` binary; task files go to `work_dir`; `slots` tasks of this
    /// machine's architecture run at once (0: none, as when this process only takes requests).
    pub fn new(program: PathBuf, work_dir: PathBuf, slots: usize) -> LocalBuilders {
        LocalBuilders {
            program,
            work_dir,
            slots,
        }
    }
}

#[async_trait]
impl BuilderHost for LocalBuilders {
    /// The local pool builds every chroot with this machine's rpmbuild (noarch packages come
    /// out the same; arch-specific ones are built for this machine), so its slots are shared by
    /// all architectures.
    fn slots(&self, _arch: &str) -> Option<usize> {
        Some(self.slots)
    }

    fn total_slots(&self) -> Option<usize> {
        Some(self.slots)
    }

    async fn run(
        &self,
        task: &BuilderTask,
        result_dir: &Path,
        cancel: &CancellationToken,
        assignment: &Assignment<'_>,
    ) -> Result<BuilderOutcome, HostError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| HostError(format!("{what}: {e}"));
        tokio::fs::create_dir_all(&self.work_dir)
            .await
            .map_err(|e| fail("work dir", &e))?;
        tokio::fs::create_dir_all(result_dir)
            .await
            .map_err(|e| fail("result dir", &e))?;
        let task_file = self.work_dir.join(format!("{}.json", task.task_id));
        let json = serde_json::to_vec_pretty(task).map_err(|e| fail("task", &e))?;
        tokio::fs::write(&task_file, json)
            .await
            .map_err(|e| fail("task file", &e))?;
        let log = std::fs::File::create(result_dir.join(LIVE_LOG)).map_err(|e| fail("log", &e))?;
        let log_err = log.try_clone().map_err(|e| fail("log", &e))?;
        let mut child = Command::new(&self.program)
            .arg("builder")
            .arg("--task")
            .arg(&task_file)
            .arg("--resultdir")
            .arg(result_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group, so cancel and timeout can end rpmbuild and its children.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(&format!("starting {}", self.program.display()), &e))?;
        let progress = async {
            if let Some(pid) = child.id() {
                let placement = format!("{LOCAL_PLACEMENT}{pid}");
                assignment.progress.placed(Some(&placement)).await?;
            }
            assignment.progress.running().await
        };
        if let Err(e) = progress.await {
            kill_group(child.id()).await;
            return Err(fail("recording the task's start", &e));
        }
        let limit = fail_safe_limit(task);
        let outcome = tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|e| fail("waiting for the builder", &e))?;
                if status.success() && result_dir.join(SUCCESS_FILE).exists() {
                    BuilderOutcome::Succeeded
                } else {
                    BuilderOutcome::Failed
                }
            }
            () = tokio::time::sleep(limit) => {
                kill_group(child.id()).await;
                let _ = child.wait().await;
                append_line(result_dir, TIMED_OUT).await;
                BuilderOutcome::Failed
            }
            () = cancel.cancelled() => {
                kill_group(child.id()).await;
                let _ = child.wait().await;
                append_line(result_dir, CANCELED).await;
                BuilderOutcome::Canceled
            }
        };
        let _ = tokio::fs::remove_file(&task_file).await;
        // Whatever the outcome, only regular files stay where results are served from. The
        // builder checks its results too, but what it ran may have changed them since.
        let swept = {
            let dir = result_dir.to_owned();
            tokio::task::spawn_blocking(move || paths::remove_irregular(&dir)).await
        };
        let irregular = swept
            .map_err(|e| fail("results", &e))?
            .map_err(|e| fail("results", &e))?;
        if irregular.is_empty() {
            return Ok(outcome);
        }
        let _ = tokio::fs::remove_file(result_dir.join(SUCCESS_FILE)).await;
        append_line(result_dir, &rejected_results(&irregular)).await;
        Ok(match outcome {
            BuilderOutcome::Succeeded => BuilderOutcome::Failed,
            other => other,
        })
    }
}

/// Ends a local builder that a killed process left behind (placement `local:<pid>`): it would
/// write into the result directory of the task that now runs again. Only a process that is
/// still a `ferrocopr builder` is touched (the pid may belong to something else by now).
pub async fn end_leftover(placement: &str) {
    let Some(pid) = placement
        .strip_prefix(LOCAL_PLACEMENT)
        .and_then(|pid| pid.parse::<u32>().ok())
        .filter(|pid| *pid > 1)
    else {
        return;
    };
    let cmdline = tokio::fs::read(format!("/proc/{pid}/cmdline"))
        .await
        .unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    if args.get(1).is_some_and(|a| *a == b"builder") {
        tracing::info!(pid, "ending a builder left by the previous process");
        kill_group(Some(pid)).await;
    }
}

/// Ends the builder's whole process group (rpmbuild and everything it started).
pub(crate) async fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        // `--` before the negative id: without it `kill` reads `-<pgid>` as an option, and the
        // signal goes elsewhere.
        let group = format!("-{pid}");
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status()
            .await;
    }
}

/// The backend's log line for a result holding more than regular files.
pub(crate) fn rejected_results(irregular: &[String]) -> String {
    format!(
        "==> error: the results were rejected: they may hold regular files only, not {}",
        irregular.join(", ")
    )
}

/// Appends a line of the backend's own to a task's live log.
pub(crate) async fn append_line(result_dir: &Path, line: &str) {
    use tokio::io::AsyncWriteExt;
    if let Ok(mut file) = tokio::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(result_dir.join(LIVE_LOG))
        .await
    {
        let _ = file.write_all(format!("{line}\n").as_bytes()).await;
    }
}
