//! The scheduler's view of the queue (seed steps 2 and 8): tasks waiting for a builder, tasks
//! holding one, and where each running task was placed.
//!
//! A task is a build's SRPM task (pseudo-chroot `srpm-builds`) or one build-chroot's RPM task.
//! The scheduler's fair picker works on the *heads* of the queue: the oldest pending task of
//! each (owner, project, submitter, chroot, background) partition, so that 5,000 queued builds
//! of one owner cost one candidate, not 5,000.

use super::{Db, DbResult, state_of};
use crate::model::BuildId;
use crate::state::State;
use crate::task::SRPM_CHROOT;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A task in the queue, waiting for a builder or holding one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTask {
    pub build_id: BuildId,
    /// The chroot, or `srpm-builds` for the SRPM task.
    pub chroot: String,
    pub owner: String,
    pub project: String,
    pub submitter: String,
    pub background: bool,
    pub state: State,
    /// Since when it waits (submission) or holds a builder (start), seconds since the epoch.
    pub since: i64,
}

impl QueuedTask {
    pub fn is_srpm(&self) -> bool {
        self.chroot == SRPM_CHROOT
    }

    /// Copr's sandbox, `<owner>/<project>--<submitter>`: builder machines are reused within
    /// one, never shared across two (REFERENCE §6).
    pub fn sandbox(&self) -> String {
        sandbox(&self.owner, &self.project, &self.submitter)
    }
}

/// Copr's sandbox of a build, `<owner>/<project>--<submitter>`.
pub fn sandbox(owner: &str, project: &str, submitter: &str) -> String {
    format!("{owner}/{project}--{submitter}")
}

/// The tasks in any of `states`, as one relation (pending ones only while their build is
/// wanted: a task holding a builder counts until it lets go, canceled or not), `t` with the columns of [`QueuedTask`].
fn tasks_relation(states: &[State]) -> String {
    let list = states
        .iter()
        .map(|s| format!("'{}'", s.name()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT b.id AS build_id, '{SRPM_CHROOT}' AS chroot, p.owner AS owner, p.name AS project, \
         b.submitter AS submitter, b.background AS background, b.source_state AS state, \
         CASE WHEN b.source_state = 'pending' THEN b.submitted_on \
              ELSE COALESCE(b.started_on, b.submitted_on) END AS since \
         FROM builds b JOIN copr_dirs d ON d.id = b.copr_dir_id JOIN projects p ON p.id = d.project_id \
         WHERE b.source_state IN ({list}) \
         AND (b.cancel_requested = 0 OR b.source_state <> 'pending') \
         UNION ALL \
         SELECT c.build_id, c.chroot, p.owner, p.name, b.submitter, b.background, c.state, \
         CASE WHEN c.state = 'pending' THEN b.submitted_on \
              ELSE COALESCE(c.started_on, b.submitted_on) END \
         FROM build_chroots c JOIN builds b ON b.id = c.build_id \
         JOIN copr_dirs d ON d.id = b.copr_dir_id JOIN projects p ON p.id = d.project_id \
         WHERE c.state IN ({list}) AND (b.cancel_requested = 0 OR c.state <> 'pending')"
    )
}

const TASK_COLUMNS: &str = "build_id, chroot, owner, project, submitter, background, state, since";

fn task_from_row(row: &AnyRow) -> DbResult<QueuedTask> {
    Ok(QueuedTask {
        build_id: BuildId(row.try_get(0)?),
        chroot: row.try_get(1)?,
        owner: row.try_get(2)?,
        project: row.try_get(3)?,
        submitter: row.try_get(4)?,
        background: row.try_get::<i64, _>(5)? != 0,
        state: state_of(&row.try_get::<String, _>(6)?)?,
        since: row.try_get(7)?,
    })
}

impl Db {
    /// The oldest pending task of each (owner, project, submitter, chroot, background)
    /// partition: every task the fair picker could start next.
    pub async fn queue_heads(&self) -> DbResult<Vec<QueuedTask>> {
        let tasks = tasks_relation(&[State::Pending]);
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY \
             t.owner, t.project, t.submitter, t.chroot, t.background ORDER BY t.build_id) AS rn \
             FROM ({tasks}) t) h WHERE h.rn = 1 ORDER BY build_id, chroot"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Tasks holding a builder or waiting for one they were given (starting, running).
    pub async fn active_tasks(&self) -> DbResult<Vec<QueuedTask>> {
        self.tasks_in(&[State::Starting, State::Running]).await
    }

    /// Every task in `states`, oldest build first: the queue as the web UI shows it.
    pub async fn tasks_in(&self, states: &[State]) -> DbResult<Vec<QueuedTask>> {
        let tasks = tasks_relation(states);
        let sql = format!("SELECT {TASK_COLUMNS} FROM ({tasks}) t ORDER BY build_id, chroot");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Records where the SRPM task runs (`None` clears it); the scheduler writes it before it
    /// waits on the builder, so a restart finds the task instead of starting it twice. The
    /// transition that ends the task's hold on its builder (finished, requeued, importing)
    /// clears it in the same statement, so a placement never outlives its task nor vanishes
    /// before the task's outcome is recorded.
    pub async fn place_source(&self, id: BuildId, placement: Option<&str>) -> DbResult<()> {
        sqlx::query("UPDATE builds SET source_placement = $1 WHERE id = $2")
            .bind(placement)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records where an RPM task runs (`None` clears it); see [`Db::place_source`].
    pub async fn place_chroot(
        &self,
        id: BuildId,
        chroot: &str,
        placement: Option<&str>,
    ) -> DbResult<()> {
        sqlx::query("UPDATE build_chroots SET placement = $1 WHERE build_id = $2 AND chroot = $3")
            .bind(placement)
            .bind(id.0)
            .bind(chroot)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
