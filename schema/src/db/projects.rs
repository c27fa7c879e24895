//! Projects as their owners describe them: made through the API (`POST /api_3/project/add`)
//! or on a project's first build, read by the API, the web UI and `dnf copr list`/`search`.
//!
//! A project always has its main CoprDir (named like the project), so `dnf copr enable` works
//! before the first build.

use super::{Db, DbResult, now, words};
use crate::model::ProjectRef;
use sqlx::Row;
use sqlx::any::AnyRow;

/// What a project says of itself (Copr's project fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectSettings {
    pub description: String,
    pub instructions: String,
    pub homepage: String,
    pub contact: String,
    /// Repositories its builds may use.
    pub additional_repos: Vec<String>,
    /// Its RPM builds may reach the network.
    pub enable_net: bool,
    /// Left out of the home page's list.
    pub unlisted_on_hp: bool,
    /// Seconds since the epoch after which the whole project goes.
    pub delete_after: Option<i64>,
    /// Forge repositories (`github.com/alice/hello`) of other owners whose `.copr.yaml` may
    /// build into the project (Copr's `packit_forge_projects_allowed`).
    pub packit_forge_projects_allowed: Vec<String>,
}

/// A project with its settings and chroots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: i64,
    pub project: ProjectRef,
    pub settings: ProjectSettings,
    pub chroots: Vec<String>,
    pub created_on: i64,
    /// Its superseded builds leave its repositories (Copr's `auto_prune`).
    pub auto_prune: bool,
    /// Days a superseded build stays; `None`: the instance's default.
    pub prune_days: Option<i64>,
}

pub(super) const PROJECT_COLUMNS: &str = "p.id, p.owner, p.name, p.description, p.instructions, p.homepage, \
     p.contact, p.additional_repos, p.enable_net, p.unlisted_on_hp, p.delete_after, p.created_on, \
     p.auto_prune, p.prune_days, p.packit_forge_projects_allowed";

/// The condition that keeps a project whose deletion was asked for out of every read.
const LIVE: &str = "p.deleted_on IS NULL";

pub(super) fn project_from_row(row: &AnyRow) -> DbResult<Project> {
    Ok(Project {
        id: row.try_get(0)?,
        project: ProjectRef {
            owner: row.try_get(1)?,
            project: row.try_get(2)?,
        },
        settings: ProjectSettings {
            description: row.try_get(3)?,
            instructions: row.try_get(4)?,
            homepage: row.try_get(5)?,
            contact: row.try_get(6)?,
            additional_repos: words(row.try_get(7)?),
            enable_net: row.try_get::<i64, _>(8)? != 0,
            unlisted_on_hp: row.try_get::<i64, _>(9)? != 0,
            delete_after: row.try_get(10)?,
            packit_forge_projects_allowed: words(row.try_get(14)?),
        },
        chroots: Vec::new(),
        created_on: row.try_get(11)?,
        auto_prune: row.try_get::<i64, _>(12)? != 0,
        prune_days: row.try_get(13)?,
    })
}

/// A page of a list: `limit` rows from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Db {
    /// Makes a project with its chroots and main CoprDir; false when it exists already.
    pub async fn create_project(
        &self,
        project: &ProjectRef,
        settings: &ProjectSettings,
        chroots: &[String],
    ) -> DbResult<bool> {
        let mut tx = self.pool.begin().await?;
        let made = sqlx::query(
            "INSERT INTO projects (owner, name, created_on, description, instructions, homepage, \
             contact, additional_repos, enable_net, unlisted_on_hp, delete_after, \
             packit_forge_projects_allowed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (owner, name) DO NOTHING",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .bind(now())
        .bind(&settings.description)
        .bind(&settings.instructions)
        .bind(&settings.homepage)
        .bind(&settings.contact)
        .bind(settings.additional_repos.join(" "))
        .bind(i64::from(settings.enable_net))
        .bind(i64::from(settings.unlisted_on_hp))
        .bind(settings.delete_after)
        .bind(settings.packit_forge_projects_allowed.join(" "))
        .execute(&mut *tx)
        .await?;
        if made.rows_affected() == 0 {
            return Ok(false);
        }
        let id: i64 = sqlx::query("SELECT id FROM projects WHERE owner = $1 AND name = $2")
            .bind(&project.owner)
            .bind(&project.project)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        set_chroots(&mut tx, id, chroots).await?;
        sqlx::query(
            "INSERT INTO copr_dirs (project_id, name) VALUES ($1, $2) \
             ON CONFLICT (project_id, name) DO NOTHING",
        )
        .bind(id)
        .bind(&project.project)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces a project's settings and, when given, its chroots; false when it does not exist.
    pub async fn edit_project(
        &self,
        project: &ProjectRef,
        settings: &ProjectSettings,
        chroots: Option<&[String]>,
    ) -> DbResult<bool> {
        let mut tx = self.pool.begin().await?;
        // The write comes first: a SQLite transaction that read before writing fails at once
        // (SQLITE_BUSY) when another process wrote in between, where a first write waits.
        let row = sqlx::query(
            "UPDATE projects SET description = $1, instructions = $2, homepage = $3, \
             contact = $4, additional_repos = $5, enable_net = $6, unlisted_on_hp = $7, \
             delete_after = $8, packit_forge_projects_allowed = $9 \
             WHERE owner = $10 AND name = $11 AND deleted_on IS NULL RETURNING id",
        )
        .bind(&settings.description)
        .bind(&settings.instructions)
        .bind(&settings.homepage)
        .bind(&settings.contact)
        .bind(settings.additional_repos.join(" "))
        .bind(i64::from(settings.enable_net))
        .bind(i64::from(settings.unlisted_on_hp))
        .bind(settings.delete_after)
        .bind(settings.packit_forge_projects_allowed.join(" "))
        .bind(&project.owner)
        .bind(&project.project)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let id: i64 = row.try_get(0)?;
        if let Some(chroots) = chroots {
            sqlx::query("DELETE FROM project_chroots WHERE project_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            set_chroots(&mut tx, id, chroots).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// One project with its chroots.
    pub async fn project(&self, project: &ProjectRef) -> DbResult<Option<Project>> {
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.owner = $1 AND p.name = $2 AND {LIVE}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut project = project_from_row(&row)?;
        self.fill_chroots(std::slice::from_mut(&mut project))
            .await?;
        Ok(Some(project))
    }

    /// The projects of `owner` (a user or `@group`), by name.
    pub async fn projects_of(&self, owner: &str, page: Page) -> DbResult<Vec<Project>> {
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.owner = $1 AND {LIVE} \
             ORDER BY p.name LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        self.projects_from_rows(&rows).await
    }

    /// Every project, newest first (the home page), leaving out the unlisted ones.
    pub async fn listed_projects(&self, page: Page) -> DbResult<Vec<Project>> {
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p WHERE p.unlisted_on_hp = 0 AND {LIVE} \
             ORDER BY p.id DESC LIMIT $1 OFFSET $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        self.projects_from_rows(&rows).await
    }

    /// Projects whose owner, name or description contains `query`, ignoring case.
    pub async fn search_projects(&self, query: &str, page: Page) -> DbResult<Vec<Project>> {
        let pattern = format!(
            "%{}%",
            query
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p WHERE {LIVE} AND \
             (LOWER(p.owner) LIKE $1 ESCAPE '\\' OR LOWER(p.name) LIKE $1 ESCAPE '\\' \
             OR LOWER(p.description) LIKE $1 ESCAPE '\\') \
             ORDER BY p.owner, p.name LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(pattern)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        self.projects_from_rows(&rows).await
    }

    /// The projects that let the `.copr.yaml` of the forge repository `forge_project`
    /// (`github.com/alice/hello`) build into them although they are another owner's: those
    /// whose `packit_forge_projects_allowed` lists it, or a glob taking it
    /// (`github.com/alice/*`). Compared ignoring case, as forges do. Few projects list any, so
    /// the globs are matched here rather than in SQL.
    pub async fn projects_allowing(&self, forge_project: &str) -> DbResult<Vec<ProjectRef>> {
        let sql = format!(
            "SELECT p.owner, p.name, p.packit_forge_projects_allowed FROM projects p \
             WHERE p.packit_forge_projects_allowed <> '' AND {LIVE} ORDER BY p.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let wanted = forge_project.trim_end_matches('/').to_ascii_lowercase();
        let mut allowing = Vec::new();
        for row in rows {
            let listed = words(row.try_get(2)?);
            if listed.iter().any(|pattern| {
                crate::copr_yaml::glob::matches(&pattern.to_ascii_lowercase(), &wanted)
            }) {
                allowing.push(ProjectRef {
                    owner: row.try_get(0)?,
                    project: row.try_get(1)?,
                });
            }
        }
        Ok(allowing)
    }

    pub(super) async fn projects_from_rows(&self, rows: &[AnyRow]) -> DbResult<Vec<Project>> {
        let mut projects = rows
            .iter()
            .map(project_from_row)
            .collect::<DbResult<Vec<_>>>()?;
        self.fill_chroots(&mut projects).await?;
        Ok(projects)
    }

    /// Fills in the chroots of `projects`, in one query for all of them.
    async fn fill_chroots(&self, projects: &mut [Project]) -> DbResult<()> {
        if projects.is_empty() {
            return Ok(());
        }
        // Integers only: nothing a user wrote reaches this statement's text.
        let ids = projects
            .iter()
            .map(|p| p.id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT project_id, chroot FROM project_chroots WHERE project_id IN ({ids}) \
             ORDER BY project_id, chroot"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let mut chroots: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
        for row in &rows {
            chroots
                .entry(row.try_get(0)?)
                .or_default()
                .push(row.try_get(1)?);
        }
        for project in projects {
            project.chroots = chroots.remove(&project.id).unwrap_or_default();
        }
        Ok(())
    }
}

async fn set_chroots(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: i64,
    chroots: &[String],
) -> DbResult<()> {
    for chroot in chroots {
        sqlx::query(
            "INSERT INTO project_chroots (project_id, chroot) VALUES ($1, $2) \
             ON CONFLICT (project_id, chroot) DO NOTHING",
        )
        .bind(project_id)
        .bind(chroot)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
