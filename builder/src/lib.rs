//! The builder program: what runs on a builder host for one task (seed steps 5 and 11).
//!
//! The scheduler writes a [`BuilderTask`] as JSON, starts `ferrocopr builder --task TASK.json
//! --resultdir DIR` in its own process group with stdout and stderr redirected into
//! `DIR/builder-live.log`, follows that log, and collects `DIR` when the process exits.
//! So this program reports progress as plain lines on stdout, lets the commands it runs
//! inherit its output, and writes its results into `DIR` by file name only:
//!
//! - an SRPM task ([`srpm`]) clones the packager's repository and makes the `.src.rpm`;
//! - an RPM task ([`binary`]) clones the package from DistGit, downloads its sources from the
//!   lookaside cache and builds the binary RPMs;
//! - both then write `results.json` and, only when everything worked, `success`.
//!
//! Work happens in a temporary directory outside `DIR`, so a failed build leaves nothing
//! half-written there beyond what `rpmbuild` itself wrote.
//!
//! [`sources`], [`rpm`] and [`paths`] are shared with DistGit, which writes what the RPM task
//! reads.

mod binary;
mod command;
mod cpio;
mod download;
mod git;
mod mock;
pub mod paths;
pub mod rpm;
mod sandbox;
pub mod sources;
mod srpm;

use anyhow::Context as _;
use ferrocopr_schema::task::{BuilderTask, RESULTS_FILE, Results, SUCCESS_FILE, TaskKind};
use std::path::Path;
use std::process::ExitCode;

/// Runs the task in `task_file`, writing its results into `result_dir`.
///
/// Exits with 0 on success and 1 on any failure, after printing a one-line reason.
pub fn main(task_file: &Path, result_dir: &Path) -> ExitCode {
    main_on_host(task_file, result_dir, None)
}

/// [`main`], holding the host's build lock at `host_lock` while the task runs, so a host never
/// runs two builds at once (REFERENCE §9). A second builder waits for the first; the lock goes
/// with the process, however it ends.
pub fn main_on_host(task_file: &Path, result_dir: &Path, host_lock: Option<&Path>) -> ExitCode {
    let _held = match host_lock.map(lock_host).transpose() {
        Ok(held) => held,
        Err(err) => {
            println!("==> error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    match run(task_file, result_dir) {
        Ok(()) => {
            println!("==> success");
            ExitCode::SUCCESS
        }
        Err(err) => {
            // `{:#}` keeps the whole context chain on the one line the scheduler may quote.
            println!("==> error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task_file: &Path, result_dir: &Path) -> anyhow::Result<()> {
    let task = read_task(task_file)?;
    println!(
        "==> task {} (build {}, chroot {}) of {}/{}",
        task.task_id, task.build_id, task.chroot, task.project_owner, task.project_name
    );
    std::fs::create_dir_all(result_dir)
        .with_context(|| format!("cannot create result directory {}", result_dir.display()))?;
    // rpmbuild resolves its directory macros against its own working directory.
    let result_dir = result_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve result directory {}", result_dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix("ferrocopr-builder-")
        .tempdir()
        .context("cannot create a work directory")?;
    println!("==> working in {}", work.path().display());

    let results = match &task.kind {
        TaskKind::Srpm { source, distgit } => {
            srpm::build(source, distgit.as_ref(), work.path(), &result_dir)?
        }
        TaskKind::Rpm { .. } => binary::build(&task, work.path(), &result_dir)?,
    };
    write_results(&result_dir, &results)
}

fn lock_host(path: &Path) -> anyhow::Result<std::fs::File> {
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the host's build lock {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            println!("==> another build runs on this host; waiting for it to end");
            file.lock()
                .with_context(|| format!("cannot take the host's build lock {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot take the host's build lock {}",
                path.display()
            )));
        }
    }
    Ok(file)
}

fn read_task(task_file: &Path) -> anyhow::Result<BuilderTask> {
    let text = std::fs::read_to_string(task_file)
        .with_context(|| format!("cannot read task file {}", task_file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("invalid task file {}", task_file.display()))
}

fn write_results(result_dir: &Path, results: &Results) -> anyhow::Result<()> {
    let irregular = paths::irregular_entries(result_dir).context("cannot check the results")?;
    if !irregular.is_empty() {
        anyhow::bail!(
            "the results were rejected: they may hold regular files only, not {}",
            irregular.join(", ")
        );
    }
    for p in &results.packages {
        let epoch = p.epoch.map(|e| format!("{e}:")).unwrap_or_default();
        println!(
            "==> built {}-{epoch}{}-{}.{}",
            p.name, p.version, p.release, p.arch
        );
    }
    let json = serde_json::to_vec_pretty(results).context("cannot serialize results")?;
    std::fs::write(result_dir.join(RESULTS_FILE), json)
        .with_context(|| format!("cannot write {RESULTS_FILE}"))?;
    // Written last: its presence is what tells the scheduler that everything else is there.
    std::fs::write(result_dir.join(SUCCESS_FILE), b"")
        .with_context(|| format!("cannot write {SUCCESS_FILE}"))
}
