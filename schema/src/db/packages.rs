//! Packages a user added to a project (`POST /api_3/package/add`, issue #7): a name with where
//! its sources come from (Copr's `source_type` and `source_dict`), so `package/build` can build
//! it again and again. The API owns the meaning of the source; this module keeps it as JSON.
//!
//! Builds still name their package on their own (`builds.pkg_name`, from the SRPM); a project's
//! package list is both: the added ones and those known only from builds.

use super::{Db, DbError, DbResult, Page, now};
use crate::model::{BuildId, ProjectRef};
use sqlx::Row;

/// A package row: what `package/add` stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub name: String,
    /// Copr's source type (`scm`, `distgit`).
    pub source_type: String,
    /// The source type's fields (Copr's `source_dict`).
    pub source: serde_json::Value,
    pub created_on: i64,
}

/// One entry of a project's package list.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPackage {
    pub name: String,
    /// Its newest build, if it was ever built.
    pub latest: Option<BuildId>,
    /// Its row, if it was added rather than only built.
    pub added: Option<Package>,
}

/// The id of a live project (`$1` owner, `$2` name).
const LIVE_PROJECT_ID: &str =
    "SELECT id FROM projects WHERE owner = $1 AND name = $2 AND deleted_on IS NULL";

fn package_from_row(row: &sqlx::any::AnyRow) -> DbResult<Package> {
    let json: String = row.try_get(2)?;
    Ok(Package {
        name: row.try_get(0)?,
        source_type: row.try_get(1)?,
        source: serde_json::from_str(&json)
            .map_err(|e| DbError::Corrupt(format!("package source: {e}")))?,
        created_on: row.try_get(3)?,
    })
}

impl Db {
    /// Adds a package to a live project; false when the project has one of that name already
    /// or does not exist.
    pub async fn add_package(
        &self,
        project: &ProjectRef,
        name: &str,
        source_type: &str,
        source: &serde_json::Value,
    ) -> DbResult<bool> {
        let sql = format!(
            "INSERT INTO packages (project_id, name, source_type, source_json, created_on) \
             SELECT id, $3, $4, $5, $6 FROM ({LIVE_PROJECT_ID}) p WHERE true \
             ON CONFLICT (project_id, name) DO NOTHING"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(name)
            .bind(source_type)
            .bind(source.to_string())
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a package's source; false when there is no such package.
    pub async fn edit_package(
        &self,
        project: &ProjectRef,
        name: &str,
        source_type: &str,
        source: &serde_json::Value,
    ) -> DbResult<bool> {
        let sql = format!(
            "UPDATE packages SET source_type = $3, source_json = $4 \
             WHERE project_id = ({LIVE_PROJECT_ID}) AND name = $5"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(source_type)
            .bind(source.to_string())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One added package of a live project.
    pub async fn package(&self, project: &ProjectRef, name: &str) -> DbResult<Option<Package>> {
        let sql = format!(
            "SELECT name, source_type, source_json, created_on FROM packages \
             WHERE project_id = ({LIVE_PROJECT_ID}) AND name = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(package_from_row).transpose()
    }

    /// Removes an added package (its builds stay); false when there was none.
    pub async fn delete_package(&self, project: &ProjectRef, name: &str) -> DbResult<bool> {
        let sql =
            format!("DELETE FROM packages WHERE project_id = ({LIVE_PROJECT_ID}) AND name = $3");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One page of a live project's packages, by name: the added ones and those its builds
    /// named, each with its newest build; only `package` when given.
    pub async fn project_packages(
        &self,
        project: &ProjectRef,
        package: Option<&str>,
        page: Page,
    ) -> DbResult<Vec<ProjectPackage>> {
        let sql = format!(
            "SELECT n.name, MAX(n.build_id) FROM (\
               SELECT pk.name AS name, CAST(NULL AS BIGINT) AS build_id FROM packages pk \
               WHERE pk.project_id = ({LIVE_PROJECT_ID}) \
               UNION ALL \
               SELECT b.pkg_name AS name, b.id AS build_id FROM builds b \
               JOIN copr_dirs d ON d.id = b.copr_dir_id \
               WHERE d.project_id = ({LIVE_PROJECT_ID}) AND b.pkg_name IS NOT NULL\
             ) n WHERE ($3 = '' OR n.name = $3) \
             GROUP BY n.name ORDER BY n.name LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(package.unwrap_or_default())
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        let mut packages = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get(0)?;
            let latest: Option<i64> = row.try_get(1)?;
            packages.push(ProjectPackage {
                added: self.package(project, &name).await?,
                latest: latest.map(BuildId),
                name,
            });
        }
        Ok(packages)
    }
}
