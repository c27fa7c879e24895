//! Pruning: takes the packages of superseded builds out of a chroot's repository (seed step 12
//! in reverse), as Copr's prunerepo does, per the project's `auto_prune` and `prune_days`.
//!
//! The database says what is due ([`Db::builds_to_prune`](ferrocopr_schema::Db::builds_to_prune));
//! the scheduler, the one writer of the results tree, carries it out: the build-chroot's `signed`
//! marker goes first, so the next publish leaves its packages out; then the chroot's repodata is
//! written again; then the build's directory goes and the build-chroot is marked pruned. Each
//! step can be repeated, so a crash in between is finished by the next pass. Passes run after
//! every successful publish (for its chroot: `prune_days: 0` takes effect at once) and hourly
//! for everything.

use crate::Scheduler;
use anyhow::Context;
use ferrocopr_schema::db::PruneCandidate;
use ferrocopr_schema::task::SIGNED_FILE;
use ferrocopr_schema::{BuildId, ProjectRef};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// How long superseded builds stay published when the project sets no period (Copr's backend
/// default, `prune_days = 14`).
pub const DEFAULT_PRUNE_DAYS: u32 = 14;

/// How often the whole instance is looked at.
const INTERVAL: Duration = Duration::from_secs(3600);

/// The hourly upkeep of the results tree until `shutdown`: prunes everything due, and
/// republishes public keys the signer renewed ([`crate::keys`]).
pub async fn run(scheduler: Arc<Scheduler>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = scheduler.prune(None).await {
            tracing::warn!(error = format!("{e:#}"), "pruning failed; will retry");
        }
        let refreshed = crate::keys::refresh_pubkeys(
            &scheduler.db,
            scheduler.signer.as_ref(),
            &scheduler.publisher,
            &scheduler.results_dir,
        )
        .await;
        if let Err(e) = refreshed {
            tracing::warn!(
                error = format!("{e:#}"),
                "refreshing public keys failed; will retry"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

impl Scheduler {
    /// Prunes the build-chroots due now; with `scope`, only those in the chroot of that build's
    /// CoprDir. Returns how many were pruned.
    pub async fn prune(&self, scope: Option<(BuildId, &str)>) -> anyhow::Result<usize> {
        let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
        let due = self.db.builds_to_prune(now, self.prune_days, scope).await?;
        // Each chroot is published once, whatever number of builds leave it.
        let mut chroots: Vec<(PathBuf, &ProjectRef)> = Vec::new();
        for candidate in &due {
            let chroot_dir = self.chroot_dir(candidate)?;
            remove_file_if_any(&build_dir(&chroot_dir, candidate).join(SIGNED_FILE)).await?;
            if !chroots.iter().any(|(dir, _)| *dir == chroot_dir) {
                chroots.push((chroot_dir, &candidate.project));
            }
        }
        for (chroot_dir, project) in &chroots {
            if chroot_dir.exists() {
                self.publish_signed(project, chroot_dir).await?;
            }
        }
        for candidate in &due {
            let build_dir = build_dir(&self.chroot_dir(candidate)?, candidate);
            match tokio::fs::remove_dir_all(&build_dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing {}", build_dir.display()));
                }
            }
            self.db
                .mark_pruned(candidate.build_id, &candidate.chroot)
                .await?;
            tracing::info!(
                build.id = %candidate.build_id,
                chroot = candidate.chroot,
                "pruned: superseded by a later build"
            );
        }
        Ok(due.len())
    }

    /// `<results>/<owner>/<dirname>/<chroot>`, refusing names that are not one plain component.
    fn chroot_dir(&self, c: &PruneCandidate) -> anyhow::Result<PathBuf> {
        for name in [&c.project.owner, &c.dirname, &c.chroot, &c.package] {
            anyhow::ensure!(
                crate::retention::is_plain(name),
                "refusing to prune {name:?}: not a plain name"
            );
        }
        Ok(self
            .results_dir
            .join(&c.project.owner)
            .join(&c.dirname)
            .join(&c.chroot))
    }
}

/// The build's directory in the chroot, as the RPM task wrote it.
fn build_dir(chroot_dir: &Path, c: &PruneCandidate) -> PathBuf {
    chroot_dir.join(format!("{}-{}", c.build_id.padded(), c.package))
}

async fn remove_file_if_any(path: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}
