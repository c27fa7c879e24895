//! Project deletion (`DELETE /api_3/project/delete/<owner>/<project>`, issue #7), in two steps
//! with one writer each: the bot *asks* ([`Db::request_project_deletion`]: the project leaves
//! every read at once and its unfinished builds get a cancel request), and the backend's
//! deletion pass carries it out once none of the project's tasks runs: it removes the results
//! tree, then the rows ([`Db::remove_deleted_project`]), after which the name is free again.
//!
//! Every step may be repeated: a pass that dies halfway is finished by the next one.

use super::{Db, DbResult, now, unfinished_build_condition};
use crate::model::ProjectRef;
use sqlx::{AssertSqlSafe, Row};

/// A project whose deletion was asked for, as the deletion pass sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedProject {
    pub project: ProjectRef,
    /// Some of its builds are not finished yet: the pass waits for the scheduler to cancel them.
    pub busy: bool,
}

/// The builds of one project (`$1` owner, `$2` name), every CoprDir.
const PROJECT_BUILDS: &str = "SELECT b.id FROM builds b JOIN copr_dirs d ON d.id = b.copr_dir_id \
     JOIN projects p ON p.id = d.project_id WHERE p.owner = $1 AND p.name = $2";

impl Db {
    /// Asks for `project` to be deleted: it is gone from every read from now on, and each of its
    /// unfinished builds is asked to be canceled (the scheduler does it). False when there is
    /// no such live project.
    pub async fn request_project_deletion(&self, project: &ProjectRef) -> DbResult<bool> {
        let marked = sqlx::query(
            "UPDATE projects SET deleted_on = $1 \
             WHERE owner = $2 AND name = $3 AND deleted_on IS NULL",
        )
        .bind(now())
        .bind(&project.owner)
        .bind(&project.project)
        .execute(&self.pool)
        .await?;
        if marked.rows_affected() == 0 {
            return Ok(false);
        }
        self.request_cancel_project(project).await?;
        Ok(true)
    }

    /// Asks for every unfinished build of `project` to be canceled; returns how many were asked.
    /// The deletion pass repeats it, for builds a forge event requested in between.
    pub async fn request_cancel_project(&self, project: &ProjectRef) -> DbResult<u64> {
        let unfinished = unfinished_build_condition("builds");
        let sql = format!(
            "UPDATE builds SET cancel_requested = 1, revision = revision + 1 \
             WHERE cancel_requested = 0 AND {unfinished} AND id IN ({PROJECT_BUILDS})"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Whether `project`'s deletion was asked for and its rows are not removed yet: its name
    /// cannot be taken again until they are.
    pub async fn project_deletion_pending(&self, project: &ProjectRef) -> DbResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM projects WHERE owner = $1 AND name = $2 AND deleted_on IS NOT NULL",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The projects whose deletion was asked for, oldest request first.
    pub async fn deleted_projects(&self) -> DbResult<Vec<DeletedProject>> {
        let unfinished = unfinished_build_condition("b");
        let sql = format!(
            "SELECT p.owner, p.name, (SELECT CAST(COUNT(*) AS BIGINT) FROM builds b \
             JOIN copr_dirs d ON d.id = b.copr_dir_id WHERE d.project_id = p.id AND {unfinished}) \
             FROM projects p WHERE p.deleted_on IS NOT NULL ORDER BY p.deleted_on, p.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DeletedProject {
                    project: ProjectRef {
                        owner: row.try_get(0)?,
                        project: row.try_get(1)?,
                    },
                    busy: row.try_get::<i64, _>(2)? > 0,
                })
            })
            .collect()
    }

    /// Removes the rows of a deleted project (its builds, CoprDirs, chroots, packages, roles),
    /// freeing its name. Does nothing, and answers false, while a build of it is unfinished or
    /// when its deletion was not asked for.
    pub async fn remove_deleted_project(&self, project: &ProjectRef) -> DbResult<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT id FROM projects WHERE owner = $1 AND name = $2 AND deleted_on IS NOT NULL",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let id: i64 = row.try_get(0)?;
        let unfinished = unfinished_build_condition("b");
        let busy = sqlx::query(AssertSqlSafe(format!(
            "SELECT 1 FROM builds b JOIN copr_dirs d ON d.id = b.copr_dir_id \
             WHERE d.project_id = $1 AND {unfinished} LIMIT 1"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if busy.is_some() {
            return Ok(false);
        }
        let builds = "SELECT b.id FROM builds b JOIN copr_dirs d ON d.id = b.copr_dir_id \
                      WHERE d.project_id = $1";
        for sql in [
            format!("DELETE FROM build_chroots WHERE build_id IN ({builds})"),
            "DELETE FROM builds WHERE copr_dir_id IN (SELECT id FROM copr_dirs WHERE project_id = $1)"
                .to_owned(),
            "DELETE FROM copr_dirs WHERE project_id = $1".to_owned(),
            "DELETE FROM project_chroots WHERE project_id = $1".to_owned(),
            "DELETE FROM project_permissions WHERE project_id = $1".to_owned(),
            "DELETE FROM packages WHERE project_id = $1".to_owned(),
            "DELETE FROM projects WHERE id = $1".to_owned(),
        ] {
            sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
