//! Pruning (the end of seed step 12, in reverse): which build-chroots a later successful build
//! of the same package has superseded for longer than their project allows, so the scheduler
//! can take their packages out of the repository.
//!
//! A build-chroot is superseded when a build with a higher id, of the same package, in the same
//! CoprDir, succeeded in the same chroot; the period counts from when that build ended. The
//! settings are the project's: `auto_prune` (Copr's name) and `prune_days`.

use super::{Db, DbResult, now};
use crate::model::{BuildId, ProjectRef};
use sqlx::Row;

/// How a project's superseded builds leave its repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruning {
    /// Never: every successful build stays published.
    Off,
    /// After the instance's default period.
    Default,
    /// After this many days; 0 prunes as soon as the later build is published.
    AfterDays(u32),
}

/// A build-chroot whose packages are due to leave the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneCandidate {
    pub build_id: BuildId,
    pub project: ProjectRef,
    pub dirname: String,
    pub chroot: String,
    pub package: String,
}

impl Db {
    /// Sets how `project`'s superseded builds are pruned, making the project when it is new.
    pub async fn set_pruning(&self, project: &ProjectRef, pruning: Pruning) -> DbResult<()> {
        let (auto_prune, days) = match pruning {
            Pruning::Off => (0_i64, None),
            Pruning::Default => (1, None),
            Pruning::AfterDays(days) => (1, Some(i64::from(days))),
        };
        sqlx::query(
            "INSERT INTO projects (owner, name, created_on, auto_prune, prune_days) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (owner, name) DO UPDATE SET auto_prune = $4, prune_days = $5",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .bind(now())
        .bind(auto_prune)
        .bind(days)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The project's pruning setting; `Default` for a project not known yet.
    pub async fn pruning(&self, project: &ProjectRef) -> DbResult<Pruning> {
        let row = sqlx::query(
            "SELECT auto_prune, prune_days FROM projects WHERE owner = $1 AND name = $2",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Pruning::Default);
        };
        let auto_prune: i64 = row.try_get(0)?;
        let days: Option<i64> = row.try_get(1)?;
        Ok(match (auto_prune, days) {
            (0, _) => Pruning::Off,
            (_, None) => Pruning::Default,
            (_, Some(days)) => Pruning::AfterDays(u32::try_from(days).unwrap_or(u32::MAX)),
        })
    }

    /// The build-chroots due for pruning at `now` (seconds since the epoch), oldest first;
    /// `default_days` applies to projects without a period of their own. With `chroot_of`, only
    /// those of one chroot of one build's CoprDir (what a publish of that build may prune).
    pub async fn builds_to_prune(
        &self,
        now: i64,
        default_days: u32,
        chroot_of: Option<(BuildId, &str)>,
    ) -> DbResult<Vec<PruneCandidate>> {
        let (only_build, only_chroot) = match chroot_of {
            Some((id, chroot)) => (Some(id.0), Some(chroot)),
            None => (None, None),
        };
        let rows = sqlx::query(
            "SELECT b.id, p.owner, p.name, d.name, bc.chroot, b.pkg_name \
             FROM build_chroots bc JOIN builds b ON b.id = bc.build_id \
             JOIN copr_dirs d ON d.id = b.copr_dir_id JOIN projects p ON p.id = d.project_id \
             WHERE bc.state = 'succeeded' AND bc.pruned_on IS NULL AND p.auto_prune <> 0 \
             AND d.deleted_on IS NULL AND b.pkg_name IS NOT NULL \
             AND ($3 IS NULL OR (b.copr_dir_id = (SELECT copr_dir_id FROM builds WHERE id = $3) \
                                 AND bc.chroot = $4)) \
             AND EXISTS (SELECT 1 FROM build_chroots later JOIN builds lb ON lb.id = later.build_id \
                 WHERE lb.copr_dir_id = b.copr_dir_id AND lb.pkg_name = b.pkg_name \
                 AND later.chroot = bc.chroot AND later.state = 'succeeded' AND lb.id > b.id \
                 AND later.ended_on IS NOT NULL \
                 AND later.ended_on <= $1 - COALESCE(p.prune_days, $2) * 86400) \
             ORDER BY b.id, bc.chroot",
        )
        .bind(now)
        .bind(i64::from(default_days))
        .bind(only_build)
        .bind(only_chroot)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PruneCandidate {
                    build_id: BuildId(row.try_get(0)?),
                    project: ProjectRef {
                        owner: row.try_get(1)?,
                        project: row.try_get(2)?,
                    },
                    dirname: row.try_get(3)?,
                    chroot: row.try_get(4)?,
                    package: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Records that a build-chroot's packages left the repository.
    pub async fn mark_pruned(&self, id: BuildId, chroot: &str) -> DbResult<()> {
        sqlx::query("UPDATE build_chroots SET pruned_on = $1 WHERE build_id = $2 AND chroot = $3")
            .bind(now())
            .bind(id.0)
            .bind(chroot)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
