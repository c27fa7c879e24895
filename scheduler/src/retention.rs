//! Retention: deletes the CoprDirs whose retention period has passed (a closed pull request's
//! `<project>:pr:<N>`, seed step 12 in reverse).
//!
//! The bot only schedules a deletion (a date in the database) and rings `wake`; this loop, on
//! the backend that owns the results tree, carries it out, so a restart or a lost wake-up
//! delays a deletion but never loses it. Deleting removes the CoprDir's results tree (its RPMs,
//! repodata and logs); the builds stay in the database for the record.

use ferrocopr_schema::Db;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often due deletions are looked for without a wake-up.
const INTERVAL: Duration = Duration::from_secs(3600);

/// Deletes the due CoprDirs below `results_dir` until `shutdown`; `wake` asks for a pass now.
pub async fn run(db: Db, results_dir: &Path, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep(&db, results_dir).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "deleting expired CoprDirs failed; will retry"
            );
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(INTERVAL) => {}
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

/// One path component, not `..` or `/`: what Copr's name rules allow, checked again here
/// because this is where a bad name would delete the wrong thing.
pub(crate) fn is_plain(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none()
}
