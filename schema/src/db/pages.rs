//! What the web UI reads (issue #7): recent builds for the home page, an owner's projects with
//! their latest builds for the owner's page, a project's builds (a page at a time), CoprDirs and
//! packages for its page. Read-only; the scheduler alone moves builds.

use super::api::{BuildFilter, Direction};
use super::projects::PROJECT_COLUMNS;
use super::{
    BUILD_COLUMNS, BUILD_FROM, Build, BuildChroot, CHROOT_COLUMNS, Db, DbResult, Page, Project,
    build_from_row, chroot_from_row,
};
use crate::model::{BuildId, ProjectRef};
use crate::state::{State, build_state};
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;

/// A build with its chroots: what a line of a build list shows.
#[derive(Debug, Clone)]
pub struct BuildSummary {
    pub build: Build,
    pub chroots: Vec<BuildChroot>,
}

impl BuildSummary {
    /// The build's overall state, as Copr computes it (REFERENCE §1).
    pub fn state(&self) -> State {
        let states: Vec<_> = self.chroots.iter().map(|c| c.state).collect();
        build_state(
            self.build.cancel_requested,
            self.build.source_state,
            &states,
        )
    }
}

/// A CoprDir of a project: the main one, `project:pr:<N>` or `project:custom:<x>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSummary {
    pub name: String,
    pub builds: i64,
    /// The newest build in it, if any.
    pub last_build: Option<BuildId>,
    /// When the retention loop deletes it (closed pull requests).
    pub delete_after: Option<i64>,
}

/// A project on its owner's page: the project and its newest build, if it has one.
#[derive(Debug, Clone)]
pub struct ProjectSummary {
    pub project: Project,
    pub last_build: Option<BuildSummary>,
}

/// A package of a project: its newest build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSummary {
    pub name: String,
    pub version: Option<String>,
    pub last_build: BuildId,
    pub builds: i64,
}

impl Db {
    /// The newest builds of listed projects, newest first (the home page).
    pub async fn recent_builds(&self, limit: i64) -> DbResult<Vec<BuildSummary>> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE p.unlisted_on_hp = 0 AND p.deleted_on IS NULL \
             ORDER BY b.id DESC LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let builds = rows.iter().map(build_from_row).collect::<DbResult<_>>()?;
        self.with_chroots(builds).await
    }

    /// A page of the builds of a project, in all its CoprDirs, newest first, with their chroots.
    pub async fn project_build_summaries(
        &self,
        project: &ProjectRef,
        page: Page,
    ) -> DbResult<Vec<BuildSummary>> {
        let newest_first = BuildFilter {
            package: None,
            state: None,
            direction: Direction::Desc,
        };
        let builds = self.api_builds(project, newest_first, page).await?;
        self.with_chroots(builds).await
    }

    /// A page of the projects of `owner` (a user or `@group`), newest first, unlisted ones
    /// too (Copr lists them on their owner's page), each with its newest build.
    pub async fn owner_projects(&self, owner: &str, page: Page) -> DbResult<Vec<ProjectSummary>> {
        let sql = format!(
            "SELECT {PROJECT_COLUMNS}, (SELECT MAX(b.id) FROM builds b \
             JOIN copr_dirs d ON d.id = b.copr_dir_id WHERE d.project_id = p.id) \
             FROM projects p WHERE p.owner = $1 AND p.deleted_on IS NULL \
             ORDER BY p.id DESC LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        // The newest build's id is the column after the project's own.
        let last_column = PROJECT_COLUMNS.split(',').count();
        let last_builds = rows
            .iter()
            .map(|row| Ok(row.try_get::<Option<i64>, _>(last_column)?))
            .collect::<DbResult<Vec<_>>>()?;
        let projects = self.projects_from_rows(&rows).await?;
        let mut builds: BTreeMap<i64, BuildSummary> = self
            .builds_with_ids(last_builds.iter().flatten().copied())
            .await?
            .into_iter()
            .map(|b| (b.build.id.0, b))
            .collect();
        Ok(projects
            .into_iter()
            .zip(last_builds)
            .map(|(project, last)| ProjectSummary {
                project,
                last_build: last.and_then(|id| builds.remove(&id)),
            })
            .collect())
    }

    /// Whether anyone knows `owner`: a user, a group with members (`@group`), or an owner of
    /// projects (a forge's user or organization, made by its first build).
    pub async fn owner_exists(&self, owner: &str) -> DbResult<bool> {
        let group = owner.strip_prefix('@').unwrap_or_default();
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM projects WHERE owner = $1 AND deleted_on IS NULL) \
             + (SELECT COUNT(*) FROM users WHERE name = $1) \
             + (SELECT COUNT(*) FROM group_members WHERE group_name = $2)",
        )
        .bind(owner)
        .bind(group)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// The builds with these ids, with their chroots, newest first.
    async fn builds_with_ids(&self, ids: impl Iterator<Item = i64>) -> DbResult<Vec<BuildSummary>> {
        // Integers only: nothing a user wrote reaches this statement's text.
        let ids = ids.map(|id| id.to_string()).collect::<Vec<_>>().join(", ");
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE b.id IN ({ids}) ORDER BY b.id DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let builds = rows.iter().map(build_from_row).collect::<DbResult<_>>()?;
        self.with_chroots(builds).await
    }

    /// The CoprDirs of a project that are not deleted, the main one first.
    pub async fn project_dirs(&self, project: &ProjectRef) -> DbResult<Vec<DirSummary>> {
        let rows = sqlx::query(
            "SELECT d.name, COUNT(b.id), MAX(b.id), d.delete_after FROM copr_dirs d \
             JOIN projects p ON p.id = d.project_id LEFT JOIN builds b ON b.copr_dir_id = d.id \
             WHERE p.owner = $1 AND p.name = $2 AND d.deleted_on IS NULL \
             GROUP BY d.id, d.name, d.delete_after ORDER BY d.id",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DirSummary {
                    name: row.try_get(0)?,
                    builds: row.try_get(1)?,
                    last_build: row.try_get::<Option<i64>, _>(2)?.map(BuildId),
                    delete_after: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// The packages built in a project (those whose SRPM told their name), by name, each with
    /// its number of builds and its newest build's id and version: one query, the newest build
    /// joined back to its group's `MAX(id)` (no query per package).
    pub async fn project_package_summaries(
        &self,
        project: &ProjectRef,
    ) -> DbResult<Vec<PackageSummary>> {
        let rows = sqlx::query(
            "SELECT s.pkg_name, s.builds, s.last_build, l.pkg_version FROM \
             (SELECT b.pkg_name AS pkg_name, COUNT(b.id) AS builds, MAX(b.id) AS last_build \
              FROM builds b JOIN copr_dirs d ON d.id = b.copr_dir_id \
              JOIN projects p ON p.id = d.project_id \
              WHERE p.owner = $1 AND p.name = $2 AND b.pkg_name IS NOT NULL \
              GROUP BY b.pkg_name) s \
             JOIN builds l ON l.id = s.last_build ORDER BY s.pkg_name",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PackageSummary {
                    name: row.try_get(0)?,
                    builds: row.try_get(1)?,
                    last_build: BuildId(row.try_get(2)?),
                    version: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// `builds` with their chroots, in one query for all of them.
    async fn with_chroots(&self, builds: Vec<Build>) -> DbResult<Vec<BuildSummary>> {
        if builds.is_empty() {
            return Ok(Vec::new());
        }
        // Integers only: nothing a user wrote reaches this statement's text.
        let ids = builds
            .iter()
            .map(|b| b.id.0.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {CHROOT_COLUMNS} FROM build_chroots WHERE build_id IN ({ids}) \
             ORDER BY build_id, chroot"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let mut chroots: BTreeMap<i64, Vec<BuildChroot>> = BTreeMap::new();
        for row in &rows {
            let chroot = chroot_from_row(row)?;
            chroots.entry(chroot.build_id.0).or_default().push(chroot);
        }
        Ok(builds
            .into_iter()
            .map(|build| BuildSummary {
                chroots: chroots.remove(&build.id.0).unwrap_or_default(),
                build,
            })
            .collect())
    }
}
