//! Retention: deletes the CoprDirs whose retention period has passed (a closed pull request's
//! `<project>:pr:<N>`, seed step 12 in reverse).
//!
//! The bot only schedules a deletion (a date in the database) and rings `wake`; this loop, on
//! the backend that owns the results tree, carries it out, so a restart or a lost wake-up
//! delays a deletion but never loses it. Deleting removes the CoprDir's results tree (its RPMs,
//! repodata and logs); the builds stay in the database for the record.
//!
//! The same loop carries out project deletions (`DELETE /api_3/project/delete`): once none of a
//! deleted project's builds is unfinished (the bot asked for them to be canceled, the scheduler
//! does it), its results trees `<owner>/<project>` and `<owner>/<project>:*` go, then its rows,
//! which frees the name. While one waits for its builds, the loop looks again soon.

use ferrocopr_schema::Db;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often due deletions are looked for without a wake-up.
const INTERVAL: Duration = Duration::from_secs(3600);

/// How soon a deleted project whose builds are still being canceled is looked at again: the
/// scheduler does not ring this loop when it finishes a cancel, and a deleted name should come
/// free within seconds of its last task.
const BUSY_INTERVAL: Duration = Duration::from_secs(2);

/// Deletes the due CoprDirs below `results_dir` until `shutdown`; `wake` asks for a pass now.
pub async fn run(db: Db, results_dir: &Path, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep(&db, results_dir).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "deleting expired CoprDirs failed; will retry"
            );
        }
        let waiting = match sweep_deleted_projects(&db, results_dir).await {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "deleting projects failed; will retry"
                );
                true
            }
        };
        let interval = if waiting { BUSY_INTERVAL } else { INTERVAL };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// One pass: every CoprDir whose deletion date has passed.
pub async fn sweep(db: &Db, results_dir: &Path) -> anyhow::Result<()> {
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    for (project, dirname) in db.dirs_due_for_deletion(now).await? {
        let tree = results_dir.join(&project.owner).join(&dirname);
        anyhow::ensure!(
            is_plain(&project.owner) && is_plain(&dirname),
            "refusing to delete {}: not a plain path below the results",
            tree.display()
        );
        match tokio::fs::remove_dir_all(&tree).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::from(e).context(format!("removing {}", tree.display())));
            }
        }
        db.mark_dir_deleted(&project, &dirname).await?;
        tracing::info!(owner = %project.owner, dirname, "CoprDir deleted after its retention period");
    }
    Ok(())
}

/// One pass over the deleted projects: each one none of whose builds is unfinished loses its
/// results trees, then its rows. Returns whether some still wait for their builds.
pub async fn sweep_deleted_projects(db: &Db, results_dir: &Path) -> anyhow::Result<bool> {
    let mut waiting = false;
    for deleted in db.deleted_projects().await? {
        let project = &deleted.project;
        if deleted.busy {
            // Builds requested after the deletion (a forge event) are canceled too.
            db.request_cancel_project(project).await?;
            waiting = true;
            continue;
        }
        anyhow::ensure!(
            is_plain(&project.owner) && is_plain(&project.project),
            "refusing to delete {project}: not a plain path below the results"
        );
        let owner_dir = results_dir.join(&project.owner);
        let mut trees = vec![owner_dir.join(&project.project)];
        match tokio::fs::read_dir(&owner_dir).await {
            Ok(mut entries) => {
                let prefix = format!("{}:", project.project);
                while let Some(entry) = entries.next_entry().await? {
                    if entry.file_name().to_string_lossy().starts_with(&prefix) {
                        trees.push(entry.path());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(
                    anyhow::Error::from(e).context(format!("listing {}", owner_dir.display()))
                );
            }
        }
        for tree in trees {
            match tokio::fs::remove_dir_all(&tree).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(
                        anyhow::Error::from(e).context(format!("removing {}", tree.display()))
                    );
                }
            }
        }
        if db.remove_deleted_project(project).await? {
            tracing::info!(owner = %project.owner, project = %project.project, "project deleted");
        } else {
            // A build came in between the two reads: the next pass finishes the deletion.
            waiting = true;
        }
    }
    Ok(waiting)
}

/// One path component, not `..` or `/`: what Copr's name rules allow, checked again here
/// because this is where a bad name would delete the wrong thing.
pub(crate) fn is_plain(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none()
}
