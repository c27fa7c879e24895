//! What the API v3 (`/api_3/`, issue 7) reads beyond single rows: the pages of a project's builds
//! that `copr-cli list-builds` walks through with a growing offset until a page comes back empty
//! (in either order, and only those in one overall state when asked). A project's packages are
//! in [`super::packages`].

use super::{BUILD_COLUMNS, BUILD_FROM, Build, Db, DbResult, Page, build_from_row, state_of};
use crate::model::{BuildId, ProjectRef};
use crate::state::{State, build_state};
use sqlx::{AssertSqlSafe, Row};

/// Which way a list of builds runs by id (the API's `order_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Asc,
    /// Newest first: what copr-cli gets when it names no order.
    Desc,
}

impl Direction {
    /// The SQL keyword: the only part of a request that reaches SQL unbound, and it comes from
    /// this enum, never from the request's text.
    fn sql(self) -> &'static str {
        match self {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        }
    }
}

/// Which builds of a project an API list shows, and in which order.
#[derive(Debug, Clone, Copy)]
pub struct BuildFilter<'a> {
    /// Only the builds whose SRPM named this package.
    pub package: Option<&'a str>,
    /// Only the builds in this overall state ([`build_state`]).
    pub state: Option<State>,
    pub direction: Direction,
}

impl Db {
    /// One page of the builds of `project` (every CoprDir) that pass `filter`, by id in the
    /// filter's direction.
    ///
    /// The overall state is no column: it comes from the source part and every chroot
    /// ([`build_state`]). With a state to filter on, this reads the ids and states of all the
    /// project's (package's) builds in one query, one row per build-chroot, filters and pages
    /// in memory, then loads the page's builds one by one: linear in the project's
    /// build-chroots, fine for projects of thousands of builds. Should that grow too slow, the
    /// overall state belongs in a column the scheduler keeps with every transition.
    pub async fn api_builds(
        &self,
        project: &ProjectRef,
        filter: BuildFilter<'_>,
        page: Page,
    ) -> DbResult<Vec<Build>> {
        let direction = filter.direction.sql();
        let Some(wanted) = filter.state else {
            let sql = format!(
                "SELECT {BUILD_COLUMNS} FROM {BUILD_FROM} WHERE p.owner = $1 AND p.name = $2 \
                 AND ($3 = '' OR b.pkg_name = $3) ORDER BY b.id {direction} LIMIT $4 OFFSET $5"
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(&project.owner)
                .bind(&project.project)
                .bind(filter.package.unwrap_or_default())
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(&self.pool)
                .await?;
            return rows.iter().map(build_from_row).collect();
        };
        let sql = format!(
            "SELECT b.id, b.cancel_requested, b.source_state, c.state FROM {BUILD_FROM} \
             LEFT JOIN build_chroots c ON c.build_id = b.id WHERE p.owner = $1 AND p.name = $2 \
             AND ($3 = '' OR b.pkg_name = $3) ORDER BY b.id {direction}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(&project.owner)
            .bind(&project.project)
            .bind(filter.package.unwrap_or_default())
            .fetch_all(&self.pool)
            .await?;
        // The rows come grouped by build, in the page's order.
        let mut builds: Vec<(BuildId, bool, State, Vec<State>)> = Vec::new();
        for row in &rows {
            let id = BuildId(row.try_get(0)?);
            if builds.last().is_none_or(|(last, ..)| *last != id) {
                let cancel_requested = row.try_get::<i64, _>(1)? != 0;
                let source = state_of(&row.try_get::<String, _>(2)?)?;
                builds.push((id, cancel_requested, source, Vec::new()));
            }
            if let Some(chroot) = row.try_get::<Option<String>, _>(3)?
                && let Some((.., chroots)) = builds.last_mut()
            {
                chroots.push(state_of(&chroot)?);
            }
        }
        let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(page.limit).unwrap_or(0);
        let ids: Vec<BuildId> = builds
            .into_iter()
            .filter(|(_, cancel, source, chroots)| build_state(*cancel, *source, chroots) == wanted)
            .skip(skip)
            .take(take)
            .map(|(id, ..)| id)
            .collect();
        let mut page_builds = Vec::with_capacity(ids.len());
        for id in ids {
            // A build pruned between the two reads is left out.
            if let Some(build) = self.build(id).await? {
                page_builds.push(build);
            }
        }
        Ok(page_builds)
    }
}
