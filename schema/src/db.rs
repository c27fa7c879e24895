//! The database facade: every SQL statement of ferrocopr lives here, behind methods named for
//! what they do in the build flow.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL (for scale) through sqlx's
//! `Any` driver; both accept `$N` placeholders. State changes take a [`Transition`] and are
//! written as compare-and-set (`... WHERE state = $from`), so a stale writer changes nothing.

mod api;
mod deletion;
mod packages;
mod pages;
mod projects;
mod prune;
mod queue;
mod users;
pub use api::{BuildFilter, Direction};
pub use deletion::DeletedProject;
pub use packages::{Package, ProjectPackage};
pub use pages::{BuildSummary, DirSummary, PackageSummary, ProjectSummary};
pub use projects::{Page, Project, ProjectSettings};
pub use prune::{PruneCandidate, Pruning};
pub use queue::{QueuedTask, sandbox};
pub use users::{StoredToken, User};

use crate::model::{Bconds, BuildId, BuildSource, ForgeOrigin, ProjectRef};
use crate::state::{Event, Part, State, Transition};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::time::{SystemTime, UNIX_EPOCH};

/// A database error: always an internal error, never the user's.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Transition(#[from] crate::state::InvalidTransition),
    #[error("{method} takes a transition to {expected}, not {got}")]
    WrongTransition {
        method: &'static str,
        expected: State,
        got: State,
    },
}

pub type DbResult<T> = Result<T, DbError>;

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
}

/// A forge delivery waiting to be handled by the bot.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub forge: String,
    pub event: String,
    pub payload: String,
}

/// What the bot asks for when a forge event or an API call wants a build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub project: ProjectRef,
    pub dirname: String,
    pub chroots: Vec<String>,
    pub submitter: String,
    pub source: BuildSource,
    /// Makes the request idempotent: a second request with the same key makes no build.
    pub trigger_key: Option<String>,
    pub origin: Option<ForgeOrigin>,
    /// Ask to cancel the unfinished builds this one supersedes: the earlier builds of other
    /// commits in the same CoprDir (a pull request's builds share its `:pr:<N>` CoprDir). Builds
    /// of the same commit (other jobs, rebuilds) are left alone.
    pub cancel_superseded: bool,
    /// A success gets the pull request's comment with the `dnf copr enable` line.
    pub success_comment: bool,
    /// Waits behind every normal build (mass rebuilds).
    pub background: bool,
    /// The RPM builds may reach the network (`.copr.yaml`'s `enable_net`).
    pub enable_net: bool,
    /// Seconds a task may run; `None`: the instance's default.
    pub timeout: Option<u64>,
    /// `rpmbuild --with`/`--without` for the RPM builds.
    pub bconds: Bconds,
}

/// A build with its project and CoprDir.
#[derive(Debug, Clone)]
pub struct Build {
    pub id: BuildId,
    pub project: ProjectRef,
    pub dirname: String,
    pub submitter: String,
    pub source: BuildSource,
    pub source_state: State,
    /// Someone asked for the build to be canceled; the scheduler carries it out.
    pub cancel_requested: bool,
    pub pkg_name: Option<String>,
    pub pkg_version: Option<String>,
    pub fail_reason: Option<String>,
    pub submitted_on: i64,
    pub started_on: Option<i64>,
    pub ended_on: Option<i64>,
    pub origin: Option<ForgeOrigin>,
    pub reported_status: Option<String>,
    /// Counts the changes its commit statuses show; see [`Db::builds_to_report`].
    pub revision: i64,
    /// A success gets the pull request's comment, and whether that is still to be done.
    pub success_comment: bool,
    pub success_comment_done: bool,
    /// Waits behind every normal build (mass rebuilds).
    pub background: bool,
    /// Where the SRPM task runs, while it does; see [`Db::place_source`].
    pub source_placement: Option<String>,
    /// The RPM builds may reach the network.
    pub enable_net: bool,
    /// Seconds a task may run; `None`: the instance's default.
    pub timeout: Option<u64>,
    /// `rpmbuild --with`/`--without` for the RPM builds.
    pub bconds: Bconds,
}

/// One chroot of a build.
#[derive(Debug, Clone)]
pub struct BuildChroot {
    pub build_id: BuildId,
    pub chroot: String,
    pub state: State,
    pub git_hash: Option<String>,
    pub started_on: Option<i64>,
    pub ended_on: Option<i64>,
    /// Where the RPM task runs, while it does; see [`Db::place_chroot`].
    pub placement: Option<String>,
}

/// The result of a DistGit import, for one chroot.
#[derive(Debug, Clone)]
pub struct ImportedChroot {
    pub chroot: String,
    pub git_hash: String,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

const BUILD_COLUMNS: &str = "b.id, p.owner, p.name, d.name, b.submitter, b.source_json, \
     b.source_state, b.cancel_requested, b.pkg_name, b.pkg_version, b.fail_reason, b.submitted_on, \
     b.started_on, b.ended_on, b.forge, b.forge_repo, b.commit_sha, b.reported_status, b.revision, b.pull_request, \
     b.success_comment, b.success_comment_done, b.background, b.source_placement, b.enable_net, b.timeout, \
     b.with_opts, b.without_opts";
const BUILD_FROM: &str = "builds b JOIN copr_dirs d ON d.id = b.copr_dir_id \
     JOIN projects p ON p.id = d.project_id";

fn state_of(name: &str) -> DbResult<State> {
    State::from_name(name).ok_or_else(|| DbError::Corrupt(format!("unknown state {name:?}")))
}

fn build_from_row(row: &AnyRow) -> DbResult<Build> {
    let source_json: String = row.try_get(5)?;
    let source = serde_json::from_str(&source_json)
        .map_err(|e| DbError::Corrupt(format!("build source: {e}")))?;
    let forge: Option<String> = row.try_get(14)?;
    let repo: Option<String> = row.try_get(15)?;
    let sha: Option<String> = row.try_get(16)?;
    let pull_request: Option<i64> = row.try_get(19)?;
    let origin = match (forge, repo, sha) {
        (Some(forge), Some(repo), Some(commit_sha)) => Some(ForgeOrigin {
            forge,
            repo,
            commit_sha,
            pull_request: pull_request.and_then(|n| u64::try_from(n).ok()),
        }),
        _ => None,
    };
    Ok(Build {
        id: BuildId(row.try_get(0)?),
        project: ProjectRef {
            owner: row.try_get(1)?,
            project: row.try_get(2)?,
        },
        dirname: row.try_get(3)?,
        submitter: row.try_get(4)?,
        source,
        source_state: state_of(&row.try_get::<String, _>(6)?)?,
        cancel_requested: row.try_get::<i64, _>(7)? != 0,
        pkg_name: row.try_get(8)?,
        pkg_version: row.try_get(9)?,
        fail_reason: row.try_get(10)?,
        submitted_on: row.try_get(11)?,
        started_on: row.try_get(12)?,
        ended_on: row.try_get(13)?,
        origin,
        reported_status: row.try_get(17)?,
        revision: row.try_get(18)?,
        success_comment: row.try_get::<i64, _>(20)? != 0,
        success_comment_done: row.try_get::<i64, _>(21)? != 0,
        background: row.try_get::<i64, _>(22)? != 0,
        source_placement: row.try_get(23)?,
        enable_net: row.try_get::<i64, _>(24)? != 0,
        timeout: row
            .try_get::<Option<i64>, _>(25)?
            .and_then(|t| u64::try_from(t).ok()),
        bconds: Bconds {
            with: words(row.try_get(26)?),
            without: words(row.try_get(27)?),
        },
    })
}

/// A list stored as names separated by spaces.
fn words(text: String) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// A CoprDir as `(project, dirname)` from a row of `p.owner, p.name, d.name`.
fn dir_from_row(row: &AnyRow) -> DbResult<(ProjectRef, String)> {
    Ok((
        ProjectRef {
            owner: row.try_get(0)?,
            project: row.try_get(1)?,
        },
        row.try_get(2)?,
    ))
}

fn chroot_from_row(row: &AnyRow) -> DbResult<BuildChroot> {
    Ok(BuildChroot {
        build_id: BuildId(row.try_get(0)?),
        chroot: row.try_get(1)?,
        state: state_of(&row.try_get::<String, _>(2)?)?,
        git_hash: row.try_get(3)?,
        started_on: row.try_get(4)?,
        ended_on: row.try_get(5)?,
        placement: row.try_get(6)?,
    })
}

/// SQL condition that some part of the build in row `builds` (named `row` in the query) is not
/// finished yet.
fn unfinished_build_condition(row: &str) -> String {
    let finished = crate::state::ALL_STATES
        .into_iter()
        .filter(|s| s.is_finished())
        .map(|s| format!("'{}'", s.name()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "({row}.source_state NOT IN ({finished}) OR EXISTS (SELECT 1 FROM build_chroots c \
         WHERE c.build_id = {row}.id AND c.state NOT IN ({finished})))"
    )
}

fn expect_target(method: &'static str, t: Transition, expected: State) -> DbResult<()> {
    if t.to() == expected {
        Ok(())
    } else {
        Err(DbError::WrongTransition {
            method,
            expected,
            got: t.to(),
        })
    }
}

/// Moves every chroot of a build that is still in `t.from()`, in a transaction.
async fn move_waiting_chroots(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: BuildId,
    t: Transition,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE build_chroots SET state = $1, ended_on = $2 WHERE build_id = $3 AND state = $4",
    )
    .bind(t.to().name())
    .bind(now())
    .bind(id.0)
    .bind(t.from().name())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const CHROOT_COLUMNS: &str = "build_id, chroot, state, git_hash, started_on, ended_on, placement";

/// The migrations for a backend; `sqlite` picks SQLite's dialect.
pub fn migrator(sqlite: bool) -> sqlx::migrate::Migrator {
    if sqlite {
        sqlx::migrate!("./migrations/sqlite")
    } else {
        sqlx::migrate!("./migrations/postgres")
    }
}

/// After this many failed attempts a delivery is given up (and its failure recorded).
pub const MAX_DELIVERY_ATTEMPTS: i64 = 8;

impl Db {
    /// Connects to `sqlite://…` or `postgres://…` and applies the migrations.
    pub async fn connect(url: &str) -> DbResult<Db> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        // SQLite allows one writer at a time; one connection makes every transaction wait its
        // turn instead of failing with SQLITE_BUSY.
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 1 } else { 8 })
            .connect(url)
            .await?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&pool)
                .await?;
        }
        migrator(sqlite).run(&pool).await?;
        Ok(Db { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- forge deliveries (bot) ----

    /// Records a delivery; returns false when the same delivery was recorded before.
    pub async fn record_delivery(
        &self,
        forge: &str,
        delivery_id: &str,
        event: &str,
        payload: &str,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "INSERT INTO deliveries (forge, delivery_id, event, payload, received_on) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (forge, delivery_id) DO NOTHING",
        )
        .bind(forge)
        .bind(delivery_id)
        .bind(event)
        .bind(payload)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The oldest delivery the bot has not handled yet.
    pub async fn next_unhandled_delivery(&self) -> DbResult<Option<Delivery>> {
        let row = sqlx::query(
            "SELECT id, forge, event, payload FROM deliveries WHERE processed_on IS NULL \
             AND (next_attempt_on IS NULL OR next_attempt_on <= $1) ORDER BY id LIMIT 1",
        )
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Delivery {
                id: r.try_get(0)?,
                forge: r.try_get(1)?,
                event: r.try_get(2)?,
                payload: r.try_get(3)?,
            })
        })
        .transpose()
    }

    pub async fn finish_delivery(&self, id: i64, outcome: &str) -> DbResult<()> {
        sqlx::query("UPDATE deliveries SET processed_on = $1, outcome = $2 WHERE id = $3")
            .bind(now())
            .bind(outcome)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts a delivery that failed internally aside for a while, doubling the wait each time
    /// (from `first_delay_secs`); after [`MAX_DELIVERY_ATTEMPTS`] it is given up with `error`
    /// as its outcome. Returns true when it was given up.
    pub async fn defer_delivery(
        &self,
        id: i64,
        error: &str,
        first_delay_secs: i64,
    ) -> DbResult<bool> {
        let attempts: i64 = sqlx::query(
            "UPDATE deliveries SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        if attempts >= MAX_DELIVERY_ATTEMPTS {
            self.finish_delivery(id, &format!("gave up after {attempts} attempts: {error}"))
                .await?;
            return Ok(true);
        }
        let delay = first_delay_secs.saturating_mul(1 << attempts.min(16));
        sqlx::query("UPDATE deliveries SET next_attempt_on = $1 WHERE id = $2")
            .bind(now() + delay)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(false)
    }

    /// How many deliveries were recorded; for tests and the status page.
    pub async fn count_deliveries(&self) -> DbResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM deliveries")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// How many builds were requested; for tests and the status page.
    pub async fn count_builds(&self) -> DbResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM builds")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    // ---- projects ----

    /// The chroots of a project, or `None` when the project or the CoprDir does not exist.
    pub async fn dir_chroots(&self, owner: &str, dirname: &str) -> DbResult<Option<Vec<String>>> {
        let project_name = dirname.split(':').next().unwrap_or(dirname);
        let exists = sqlx::query(
            "SELECT d.id FROM copr_dirs d JOIN projects p ON p.id = d.project_id \
             WHERE p.owner = $1 AND p.name = $2 AND d.name = $3 AND p.deleted_on IS NULL",
        )
        .bind(owner)
        .bind(project_name)
        .bind(dirname)
        .fetch_optional(&self.pool)
        .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT c.chroot FROM project_chroots c JOIN projects p ON p.id = c.project_id \
             WHERE p.owner = $1 AND p.name = $2 ORDER BY c.chroot",
        )
        .bind(owner)
        .bind(project_name)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(
            rows.iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?,
        ))
    }

    // ---- builds: requests (bot) ----

    /// Records a requested build with its chroots waiting for the SRPM; creates the project and
    /// the CoprDir on first use. Returns `None` when `trigger_key` was used before.
    pub async fn request_build(&self, request: &BuildRequest) -> DbResult<Option<BuildId>> {
        let mut tx = self.pool.begin().await?;
        if let Some(key) = &request.trigger_key {
            let seen = sqlx::query("SELECT id FROM builds WHERE trigger_key = $1")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            if seen.is_some() {
                return Ok(None);
            }
        }
        sqlx::query(
            "INSERT INTO projects (owner, name, created_on) VALUES ($1, $2, $3) \
             ON CONFLICT (owner, name) DO NOTHING",
        )
        .bind(&request.project.owner)
        .bind(&request.project.project)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let project_id: i64 = sqlx::query("SELECT id FROM projects WHERE owner = $1 AND name = $2")
            .bind(&request.project.owner)
            .bind(&request.project.project)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        for chroot in &request.chroots {
            sqlx::query(
                "INSERT INTO project_chroots (project_id, chroot) VALUES ($1, $2) \
                 ON CONFLICT (project_id, chroot) DO NOTHING",
            )
            .bind(project_id)
            .bind(chroot)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO copr_dirs (project_id, name) VALUES ($1, $2) \
             ON CONFLICT (project_id, name) DO NOTHING",
        )
        .bind(project_id)
        .bind(&request.dirname)
        .execute(&mut *tx)
        .await?;
        let dir_id: i64 =
            sqlx::query("SELECT id FROM copr_dirs WHERE project_id = $1 AND name = $2")
                .bind(project_id)
                .bind(&request.dirname)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        // A build brings a CoprDir back to life: no deletion is pending any more.
        sqlx::query("UPDATE copr_dirs SET delete_after = NULL, deleted_on = NULL WHERE id = $1")
            .bind(dir_id)
            .execute(&mut *tx)
            .await?;
        let source_json = serde_json::to_string(&request.source)
            .map_err(|e| DbError::Corrupt(format!("build source: {e}")))?;
        let origin = request.origin.as_ref();
        let id: i64 = sqlx::query(
            "INSERT INTO builds (copr_dir_id, submitter, source_json, source_state, submitted_on, \
             trigger_key, forge, forge_repo, commit_sha, pull_request, success_comment, background, \
             enable_net, timeout, with_opts, without_opts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             RETURNING id",
        )
        .bind(dir_id)
        .bind(&request.submitter)
        .bind(source_json)
        .bind(State::Pending.name())
        .bind(now())
        .bind(request.trigger_key.as_deref())
        .bind(origin.map(|o| o.forge.as_str()))
        .bind(origin.map(|o| o.repo.as_str()))
        .bind(origin.map(|o| o.commit_sha.as_str()))
        .bind(
            origin
                .and_then(|o| o.pull_request)
                .and_then(|n| i64::try_from(n).ok()),
        )
        .bind(i64::from(request.success_comment))
        .bind(i64::from(request.background))
        .bind(i64::from(request.enable_net))
        .bind(request.timeout.and_then(|t| i64::try_from(t).ok()))
        .bind(request.bconds.with.join(" "))
        .bind(request.bconds.without.join(" "))
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if request.cancel_superseded {
            let unfinished = unfinished_build_condition("builds");
            let sql = format!(
                "UPDATE builds SET cancel_requested = 1, revision = revision + 1 \
                 WHERE copr_dir_id = $1 AND id < $2 \
                 AND cancel_requested = 0 AND (commit_sha IS NULL OR commit_sha <> $3) \
                 AND {unfinished}"
            );
            let sha = request.origin.as_ref().map(|o| o.commit_sha.as_str());
            sqlx::query(AssertSqlSafe(sql))
                .bind(dir_id)
                .bind(id)
                .bind(sha.unwrap_or_default())
                .execute(&mut *tx)
                .await?;
        }
        for chroot in &request.chroots {
            sqlx::query("INSERT INTO build_chroots (build_id, chroot, state) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(chroot)
                .bind(State::Waiting.name())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(BuildId(id)))
    }

    // ---- builds: reading ----

    pub async fn build(&self, id: BuildId) -> DbResult<Option<Build>> {
        let sql = format!("SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE b.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(build_from_row).transpose()
    }

    /// A build as people and clients may see it: like [`Db::build`], but none once its
    /// project's deletion was asked for (the scheduler still reads it, to cancel it).
    pub async fn shown_build(&self, id: BuildId) -> DbResult<Option<Build>> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE b.id = $1 AND p.deleted_on IS NULL"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(build_from_row).transpose()
    }

    pub async fn build_chroots(&self, id: BuildId) -> DbResult<Vec<BuildChroot>> {
        let sql = format!(
            "SELECT {CHROOT_COLUMNS} FROM build_chroots WHERE build_id = $1 ORDER BY chroot"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(chroot_from_row).collect()
    }

    /// Builds from a forge whose commit statuses may be behind: changed since they were last
    /// reported (or never reported), or finished with their success comment still due. The
    /// bot's reporter sweeps these, so a lost notification never leaves a status stuck, and a
    /// sweep reads only what changed.
    pub async fn builds_to_report(&self) -> DbResult<Vec<Build>> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE b.forge IS NOT NULL \
             AND (b.reported_revision IS NULL OR b.reported_revision < b.revision \
                  OR (b.success_comment = 1 AND b.success_comment_done = 0)) ORDER BY b.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(build_from_row).collect()
    }

    /// Remembers which statuses the forge shows for a build, as of `revision`, unless another
    /// reporter got there first.
    pub async fn mark_reported(
        &self,
        id: BuildId,
        previous: Option<&str>,
        status: &str,
        revision: i64,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE builds SET reported_status = $1, reported_revision = $4 WHERE id = $2 \
             AND (reported_status = $3 OR (reported_status IS NULL AND $3 IS NULL))",
        )
        .bind(status)
        .bind(id.0)
        .bind(previous)
        .bind(revision)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The success comment of a build was posted, or is not due (the build did not succeed).
    pub async fn finish_success_comment(&self, id: BuildId) -> DbResult<()> {
        sqlx::query("UPDATE builds SET success_comment_done = 1 WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The bot's comment on a pull request, which later comments update instead of repeating.
    pub async fn pull_request_comment(
        &self,
        forge: &str,
        repo: &str,
        number: u64,
    ) -> DbResult<Option<u64>> {
        let row = sqlx::query(
            "SELECT comment_id FROM pull_request_comments \
             WHERE forge = $1 AND repo = $2 AND number = $3",
        )
        .bind(forge)
        .bind(repo)
        .bind(number as i64)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get::<i64, _>(0).map(|id| id as u64))
            .transpose()
            .map_err(DbError::from)
    }

    /// Remembers the bot's comment on a pull request.
    pub async fn save_pull_request_comment(
        &self,
        forge: &str,
        repo: &str,
        number: u64,
        comment_id: u64,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO pull_request_comments (forge, repo, number, comment_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (forge, repo, number) \
             DO UPDATE SET comment_id = excluded.comment_id",
        )
        .bind(forge)
        .bind(repo)
        .bind(number as i64)
        .bind(comment_id as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- CoprDirs: retention ----

    /// Schedules a CoprDir for deletion at `at` (seconds since the epoch), or clears the date
    /// with `None` (a reopened pull request). False when the CoprDir does not exist.
    pub async fn schedule_dir_deletion(
        &self,
        project: &ProjectRef,
        dirname: &str,
        at: Option<i64>,
    ) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE copr_dirs SET delete_after = $1 WHERE name = $2 AND deleted_on IS NULL \
             AND project_id = (SELECT id FROM projects WHERE owner = $3 AND name = $4)",
        )
        .bind(at)
        .bind(dirname)
        .bind(&project.owner)
        .bind(&project.project)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// When a CoprDir is to be deleted, if it is.
    pub async fn dir_deletion_date(
        &self,
        project: &ProjectRef,
        dirname: &str,
    ) -> DbResult<Option<i64>> {
        let row = sqlx::query(
            "SELECT d.delete_after FROM copr_dirs d JOIN projects p ON p.id = d.project_id \
             WHERE p.owner = $1 AND p.name = $2 AND d.name = $3",
        )
        .bind(&project.owner)
        .bind(&project.project)
        .bind(dirname)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => None,
        })
    }

    /// CoprDirs whose deletion date has passed at `now` and that are not deleted yet.
    pub async fn dirs_due_for_deletion(&self, now: i64) -> DbResult<Vec<(ProjectRef, String)>> {
        let rows = sqlx::query(
            "SELECT p.owner, p.name, d.name FROM copr_dirs d JOIN projects p ON p.id = d.project_id \
             WHERE d.delete_after IS NOT NULL AND d.delete_after <= $1 AND d.deleted_on IS NULL \
             ORDER BY d.id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dir_from_row).collect()
    }

    /// Every CoprDir whose results were not deleted.
    pub async fn live_dirs(&self) -> DbResult<Vec<(ProjectRef, String)>> {
        let rows = sqlx::query(
            "SELECT p.owner, p.name, d.name FROM copr_dirs d JOIN projects p ON p.id = d.project_id \
             WHERE d.deleted_on IS NULL ORDER BY p.owner, p.name, d.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dir_from_row).collect()
    }

    /// The CoprDirs that a pull request's builds went into.
    pub async fn pull_request_dirs(
        &self,
        forge: &str,
        repo: &str,
        number: u64,
    ) -> DbResult<Vec<(ProjectRef, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT p.owner, p.name, d.name FROM builds b \
             JOIN copr_dirs d ON d.id = b.copr_dir_id JOIN projects p ON p.id = d.project_id \
             WHERE b.forge = $1 AND b.forge_repo = $2 AND b.pull_request = $3 \
             ORDER BY p.owner, p.name, d.name",
        )
        .bind(forge)
        .bind(repo)
        .bind(number as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dir_from_row).collect()
    }

    /// Records that a CoprDir's results were deleted.
    pub async fn mark_dir_deleted(&self, project: &ProjectRef, dirname: &str) -> DbResult<()> {
        sqlx::query(
            "UPDATE copr_dirs SET deleted_on = $1 WHERE name = $2 \
             AND project_id = (SELECT id FROM projects WHERE owner = $3 AND name = $4)",
        )
        .bind(now())
        .bind(dirname)
        .bind(&project.owner)
        .bind(&project.project)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Asks for a build to be canceled; the scheduler does it. False when the build does not
    /// exist, has nothing left to cancel, or was asked already.
    pub async fn request_cancel(&self, id: BuildId) -> DbResult<bool> {
        let unfinished = unfinished_build_condition("builds");
        let sql = format!(
            "UPDATE builds SET cancel_requested = 1, revision = revision + 1 \
             WHERE id = $1 AND cancel_requested = 0 AND {unfinished}"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Asks for every unfinished build of a CoprDir to be canceled (`/copr cancel` on a pull
    /// request); returns how many were asked.
    pub async fn request_cancel_dir(&self, project: &ProjectRef, dirname: &str) -> DbResult<u64> {
        let unfinished = unfinished_build_condition("builds");
        let sql = format!(
            "UPDATE builds SET cancel_requested = 1, revision = revision + 1 \
             WHERE cancel_requested = 0 AND {unfinished} AND copr_dir_id = \
             (SELECT d.id FROM copr_dirs d JOIN projects p ON p.id = d.project_id \
              WHERE p.owner = $1 AND p.name = $2 AND d.name = $3)"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(dirname)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The newest build of a CoprDir, if any.
    pub async fn latest_build_in_dir(
        &self,
        project: &ProjectRef,
        dirname: &str,
    ) -> DbResult<Option<Build>> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} \
             WHERE p.owner = $1 AND p.name = $2 AND d.name = $3 ORDER BY b.id DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(dirname)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(build_from_row).transpose()
    }

    // ---- builds: the scheduler's writes ----

    /// Builds asked to be canceled that still have parts to cancel.
    pub async fn builds_to_cancel(&self) -> DbResult<Vec<Build>> {
        let unfinished = unfinished_build_condition("b");
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE b.cancel_requested = 1 AND {unfinished} ORDER BY b.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(build_from_row).collect()
    }

    /// Builds whose source part is in `state`; used to recover after a restart.
    pub async fn builds_with_source_state(&self, state: State) -> DbResult<Vec<Build>> {
        let sql = format!(
            "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE b.source_state = $1 ORDER BY b.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(state.name())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(build_from_row).collect()
    }

    /// Build-chroots in `state`; used to recover after a restart.
    pub async fn chroots_in_state(&self, state: State) -> DbResult<Vec<BuildChroot>> {
        let sql = format!(
            "SELECT {CHROOT_COLUMNS} FROM build_chroots WHERE state = $1 ORDER BY build_id, chroot"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(state.name())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(chroot_from_row).collect()
    }

    /// Moves a build's source part; false when it was not in the expected state any more.
    pub async fn move_source(&self, id: BuildId, t: Transition) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE builds SET source_state = $1, revision = revision + 1, \
             source_placement = CASE WHEN $1 IN ('starting', 'running') THEN source_placement ELSE NULL END, \
             started_on = CASE WHEN $1 = 'starting' AND started_on IS NULL THEN $2 ELSE started_on END, \
             ended_on = CASE WHEN $5 = 1 THEN $2 ELSE ended_on END \
             WHERE id = $3 AND source_state = $4",
        )
        .bind(t.to().name())
        .bind(now())
        .bind(id.0)
        .bind(t.from().name())
        .bind(i64::from(t.to() == State::Failed || t.to() == State::Canceled))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails the source part and every chroot still waiting for it, with a reason for the user.
    pub async fn fail_source(&self, id: BuildId, t: Transition, reason: &str) -> DbResult<bool> {
        expect_target("fail_source", t, State::Failed)?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE builds SET source_state = $1, fail_reason = $2, ended_on = $3, \
             revision = revision + 1, source_placement = NULL \
             WHERE id = $4 AND source_state = $5",
        )
        .bind(t.to().name())
        .bind(reason)
        .bind(now())
        .bind(id.0)
        .bind(t.from().name())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let fail = State::Waiting.next(Part::Chroot, Event::Fail)?;
        move_waiting_chroots(&mut tx, id, fail).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Counts a builder-host failure of the source part; returns how many there were.
    pub async fn count_source_host_failure(&self, id: BuildId) -> DbResult<i64> {
        Ok(sqlx::query(
            "UPDATE builds SET source_attempts = source_attempts + 1 WHERE id = $1 \
             RETURNING source_attempts",
        )
        .bind(id.0)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    /// Counts a builder-host failure of one chroot; returns how many there were.
    pub async fn count_chroot_host_failure(&self, id: BuildId, chroot: &str) -> DbResult<i64> {
        Ok(sqlx::query(
            "UPDATE build_chroots SET attempts = attempts + 1 \
             WHERE build_id = $1 AND chroot = $2 RETURNING attempts",
        )
        .bind(id.0)
        .bind(chroot)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    /// Ends the import: the source part succeeds and each imported chroot is queued with the
    /// DistGit commit it builds from; chroots not imported are skipped. One transaction.
    pub async fn finish_import(
        &self,
        id: BuildId,
        t: Transition,
        pkg_name: &str,
        pkg_version: &str,
        imported: &[ImportedChroot],
    ) -> DbResult<bool> {
        expect_target("finish_import", t, State::Succeeded)?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE builds SET source_state = $1, pkg_name = $2, pkg_version = $3, \
             revision = revision + 1 \
             WHERE id = $4 AND source_state = $5",
        )
        .bind(t.to().name())
        .bind(pkg_name)
        .bind(pkg_version)
        .bind(id.0)
        .bind(t.from().name())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let queue = State::Waiting.next(Part::Chroot, Event::Queue)?;
        for chroot in imported {
            sqlx::query(
                "UPDATE build_chroots SET state = $1, git_hash = $2 \
                 WHERE build_id = $3 AND chroot = $4 AND state = $5",
            )
            .bind(queue.to().name())
            .bind(&chroot.git_hash)
            .bind(id.0)
            .bind(&chroot.chroot)
            .bind(queue.from().name())
            .execute(&mut *tx)
            .await?;
        }
        // What the import did not queue is ruled out for this package.
        let skip = State::Waiting.next(Part::Chroot, Event::Skip)?;
        move_waiting_chroots(&mut tx, id, skip).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves one build-chroot; false when it was not in the expected state any more.
    pub async fn move_chroot(&self, id: BuildId, chroot: &str, t: Transition) -> DbResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE build_chroots SET state = $1, \
             placement = CASE WHEN $1 IN ('starting', 'running') THEN placement ELSE NULL END, \
             started_on = CASE WHEN $1 = 'starting' THEN $2 ELSE started_on END, \
             ended_on = CASE WHEN $5 = 1 THEN $2 ELSE ended_on END \
             WHERE build_id = $3 AND chroot = $6 AND state = $4",
        )
        .bind(t.to().name())
        .bind(now())
        .bind(id.0)
        .bind(t.from().name())
        .bind(i64::from(t.to().is_finished()))
        .bind(chroot)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE builds SET revision = revision + 1 WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
