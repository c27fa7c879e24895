//! What the API v3 (`/api_3/`, issue 7) reads beyond single rows: the pages of a project's builds
//! that `copr-cli list-builds` walks through with a growing offset until a page comes back
//! empty. A project's packages are in [`super::packages`].

use super::{BUILD_COLUMNS, BUILD_FROM, Build, Db, DbResult, Page, build_from_row};
use crate::model::ProjectRef;
use sqlx::AssertSqlSafe;

impl Db {
    /// One page of the builds of `project` (every CoprDir), newest first; only those of
    /// `package` when given.
    pub async fn project_builds(
        &self,
        project: &ProjectRef,
        package: Option<&str>,
        page: Page,
    ) -> DbResult<Vec<Build>> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE p.owner = $1 AND p.name = $2 \
             AND ($3 = '' OR b.pkg_name = $3) ORDER BY b.id DESC LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(package.unwrap_or_default())
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(build_from_row).collect()
    }
}
