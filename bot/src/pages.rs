//! The web UI (issue #7): HTML pages at Copr's URL shapes, rendered from the templates embedded
//! in the binary ([`crate::templates`]).
//!
//! - `/`: listed projects (a page at a time) and recent builds;
//! - `/coprs/{owner}/`: a user's projects, unlisted ones too, each with its latest build; a
//!   group's at Copr's `/coprs/g/{group}/`;
//! - `/coprs/{owner}/{project}/`: chroots, packages, CoprDirs (pull requests'), builds (a page
//!   at a time) and the `dnf copr enable` line;
//! - `/coprs/{owner}/{dir}/build/{id}/`: the page commit statuses link to, with each part's
//!   state and times, its results and logs, and the running part's `builder-live.log`, followed
//!   by a few lines of JavaScript (the page reads fine without);
//! - `/status/`: the queue (pending, importing, starting, running);
//! - every other path outside the machine-facing prefixes: a 404 page.
//!
//! A group's pages are at Copr's `/coprs/g/{group}/…`, and the pages link there; the same pages
//! answer at `/coprs/@{group}/…` too, the form of the group's name that dnf's plugin asks repo
//! files at (REFERENCE §3) and that commit statuses link to.
//!
//! Lists are paged with `?page=N` (from 1, newest first); a page number that is not a positive
//! whole number is the user's error (400), a page past the end a 404.
//!
//! Templates are `.html`, so minijinja escapes every value put into them: user-supplied text
//! (descriptions, names, logs) is shown as text. Pages only read; the scheduler moves builds.

use crate::web::{error_page, page};
use crate::{BotState, texts};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferrocopr_schema::db::{Build, BuildSummary, Page, ProjectSummary, QueuedTask};
use ferrocopr_schema::model::ProjectRef;
use ferrocopr_schema::task::{LIVE_LOG, SRPM_CHROOT};
use ferrocopr_schema::{BuildId, State as TaskState};
use minijinja::{Value, context};
use serde::Deserialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

/// Projects on a page of the home page's and of an owner page's list: a multiple of 2, 3 and 4,
/// so that the cards fill their last row at the usual widths.
const PROJECTS_PER_PAGE: i64 = 24;
/// Builds on a page of a project's build list.
const BUILDS_PER_PAGE: i64 = 30;
/// Builds in the home page's list of recent builds (not paged: the projects' pages have more).
const RECENT_BUILDS: i64 = 30;
/// The tail of a live log put into the build page; the rest is a link away, and a page of
/// megabytes helps no one.
const LIVE_LOG_TAIL: u64 = 64 * 1024;
/// How long a request for a live log's next bytes waits for them: long enough to spare the
/// server a stream of empty answers, short enough not to hold up a shutdown.
const LIVE_LOG_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting request looks at the log's length.
const LIVE_LOG_CHECK: Duration = Duration::from_millis(300);
/// At most this much of a live log per answer; the script asks again at once for the rest.
const LIVE_LOG_CHUNK: u64 = 1024 * 1024;
/// The header telling the script the part's state, so that it knows when to stop following.
const PART_STATE_HEADER: &str = "Ferrocopr-Part-State";
/// A description on the home page is cut to this many characters.
const SUMMARY_CHARS: usize = 200;

/// Paths answered by machines' routes (API, files, webhooks): an unknown one there gets a bare
/// 404, never an HTML page.
const MACHINE_PREFIXES: [&str; 6] = [
    "/api_3/",
    "/api/",
    "/results/",
    "/uploads/",
    "/distgit/",
    "/webhooks/",
];

fn internal(state: &BotState, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "rendering a page failed");
    error_page(
        state,
        StatusCode::INTERNAL_SERVER_ERROR,
        texts::INTERNAL_ERROR,
    )
}

/// The page of `owner`: `/coprs/{user}/`, or Copr's `/coprs/g/{group}/` for `@group`.
pub fn owner_url(owner: &str) -> String {
    match owner.strip_prefix('@') {
        Some(group) => format!("/coprs/g/{group}/"),
        None => format!("/coprs/{owner}/"),
    }
}

/// The page of a project (or, with a CoprDir's name, the prefix of its builds' pages).
pub fn project_url(owner: &str, project: &str) -> String {
    format!("{}{project}/", owner_url(owner))
}

fn build_url(build: &Build) -> String {
    format!(
        "{}build/{}/",
        project_url(&build.project.owner, &build.dirname),
        build.id
    )
}

/// A group's name as owner (`@group`), from the `{group}` of a `/coprs/g/{group}/…` path.
fn group_owner(group: &str) -> String {
    format!("@{group}")
}

/// Which page of a list a request asks for: `?page=N`, counting from 1.
#[derive(Debug, Clone, Copy)]
struct Paging {
    number: i64,
    size: i64,
}

impl Paging {
    /// The page the query string asks for (the first when it names none); `None` when `page` is
    /// not a positive whole number.
    fn from_query(query: Option<&str>, size: i64) -> Option<Paging> {
        let value = query
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("page="));
        let number = match value {
            None => 1,
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                v.parse::<i64>().ok()?
            }
            Some(_) => return None,
        };
        // Past this the offset does not fit; no list is that long.
        (number >= 1 && (number - 1).checked_mul(size).is_some()).then_some(Paging { number, size })
    }

    /// The rows to read: one more than a page, which tells whether an older page exists.
    fn rows(self) -> Page {
        Page {
            limit: self.size + 1,
            offset: (self.number - 1) * self.size,
        }
    }

    /// Cuts `rows` (read with [`Paging::rows`]) to the page; the links to the newer and the
    /// older page, each only when there is such a page. `anchor` is where the list starts on
    /// its page (`#builds`), or empty.
    fn cut<T>(self, rows: &mut Vec<T>, anchor: &str) -> Value {
        let older = usize::try_from(self.size).is_ok_and(|size| rows.len() > size);
        rows.truncate(usize::try_from(self.size).unwrap_or(usize::MAX));
        context! {
            number => self.number,
            newer => (self.number > 1).then(|| format!("?page={}{anchor}", self.number - 1)),
            older => older.then(|| format!("?page={}{anchor}", self.number + 1)),
        }
    }
}

/// The page for a `?page=` that is not a page number.
fn bad_page_number(state: &BotState) -> Response {
    error_page(state, StatusCode::BAD_REQUEST, texts::BAD_PAGE_NUMBER)
}

/// The page for a page number past the end of its list.
fn no_such_page(state: &BotState) -> Response {
    error_page(state, StatusCode::NOT_FOUND, texts::NO_SUCH_PAGE)
}

/// A description's first line, cut to [`SUMMARY_CHARS`], with `…` when something was left out.
fn summary(description: &str) -> String {
    let first_line = description.lines().next().unwrap_or_default();
    let mut summary: String = first_line.chars().take(SUMMARY_CHARS).collect();
    if summary.len() < description.trim_end().len() {
        summary.push('…');
    }
    summary
}

fn results_dir_url(owner: &str, dirname: &str) -> String {
    format!("/results/{owner}/{dirname}")
}

fn took(started: Option<i64>, ended: Option<i64>) -> Option<i64> {
    Some(ended? - started?)
}

/// A line of a build list.
fn build_row(summary: &BuildSummary) -> Value {
    let build = &summary.build;
    context! {
        id => build.id.0,
        url => build_url(build),
        owner => build.project.owner.clone(),
        project => build.project.project.clone(),
        dirname => build.dirname.clone(),
        package => build.pkg_name.clone(),
        version => build.pkg_version.clone(),
        state => summary.state().name(),
        submitter => build.submitter.clone(),
        submitted_on => build.submitted_on,
        took => finished_after(summary),
    }
}

/// Seconds from a finished build's submission to the end of its last part.
fn finished_after(summary: &BuildSummary) -> Option<i64> {
    if !summary.state().is_finished() {
        return None;
    }
    let end = summary
        .chroots
        .iter()
        .filter_map(|c| c.ended_on)
        .chain(summary.build.ended_on)
        .max()?;
    Some(end - summary.build.submitted_on)
}

/// `GET /[?page=N]`: listed projects, a page at a time, and recent builds.
pub async fn home(State(state): State<BotState>, RawQuery(query): RawQuery) -> Response {
    let Some(paging) = Paging::from_query(query.as_deref(), PROJECTS_PER_PAGE) else {
        return bad_page_number(&state);
    };
    let (mut projects, builds) = match tokio::try_join!(
        state.db.listed_projects(paging.rows()),
        state.db.recent_builds(RECENT_BUILDS)
    ) {
        Ok(found) => found,
        Err(e) => return internal(&state, e),
    };
    if projects.is_empty() && paging.number > 1 {
        return no_such_page(&state);
    }
    let pager = paging.cut(&mut projects, "");
    let projects: Vec<_> = projects
        .iter()
        .map(|p| {
            context! {
                owner => p.project.owner.clone(),
                name => p.project.project.clone(),
                summary => summary(&p.settings.description),
                chroots => p.chroots.clone(),
            }
        })
        .collect();
    let builds: Vec<_> = builds.iter().map(build_row).collect();
    page(
        &state,
        StatusCode::OK,
        "home.html",
        context! { projects, pager, builds },
    )
}

/// `GET /coprs/{owner}/[?page=N]`: a user's projects.
pub async fn owner_page(
    State(state): State<BotState>,
    Path(owner): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    owner_page_of(state, owner, query).await
}

/// `GET /coprs/g/{group}/[?page=N]`: a group's projects, at Copr's URL.
pub async fn group_page(
    State(state): State<BotState>,
    Path(group): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    owner_page_of(state, group_owner(&group), query).await
}

/// The projects of `owner` (a user or `@group`), newest first, with their latest builds;
/// unlisted ones too, as Copr shows them on their owner's page.
async fn owner_page_of(state: BotState, owner: String, query: Option<String>) -> Response {
    let Some(paging) = Paging::from_query(query.as_deref(), PROJECTS_PER_PAGE) else {
        return bad_page_number(&state);
    };
    let mut projects = match state.db.owner_projects(&owner, paging.rows()).await {
        Ok(projects) => projects,
        Err(e) => return internal(&state, e),
    };
    if projects.is_empty() {
        if paging.number > 1 {
            return no_such_page(&state);
        }
        match state.db.owner_exists(&owner).await {
            Ok(true) => {}
            Ok(false) => return error_page(&state, StatusCode::NOT_FOUND, texts::OWNER_NOT_FOUND),
            Err(e) => return internal(&state, e),
        }
    }
    let pager = paging.cut(&mut projects, "");
    let projects: Vec<_> = projects
        .iter()
        .map(
            |ProjectSummary {
                 project,
                 last_build,
             }| {
                context! {
                    name => project.project.project.clone(),
                    url => project_url(&owner, &project.project.project),
                    summary => summary(&project.settings.description),
                    chroots => project.chroots.clone(),
                    unlisted => project.settings.unlisted_on_hp,
                    last_build => last_build.as_ref().map(build_row),
                }
            },
        )
        .collect();
    let context = context! {
        group => owner.strip_prefix('@'),
        owner,
        projects,
        pager,
    };
    page(&state, StatusCode::OK, "owner.html", context)
}

/// `GET /coprs/{owner}/{project}/[?page=N]`: everything about one project, its builds a page
/// at a time.
pub async fn project_page(
    State(state): State<BotState>,
    Path((owner, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    project_page_of(state, owner, name, query).await
}

/// `GET /coprs/g/{group}/{project}/[?page=N]`: a group's project, at Copr's URL.
pub async fn group_project_page(
    State(state): State<BotState>,
    Path((group, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    project_page_of(state, group_owner(&group), name, query).await
}

async fn project_page_of(
    state: BotState,
    owner: String,
    name: String,
    query: Option<String>,
) -> Response {
    let Some(paging) = Paging::from_query(query.as_deref(), BUILDS_PER_PAGE) else {
        return bad_page_number(&state);
    };
    let reference = ProjectRef {
        owner,
        project: name,
    };
    let project = match state.db.project(&reference).await {
        Ok(Some(project)) => project,
        Ok(None) => return error_page(&state, StatusCode::NOT_FOUND, texts::PROJECT_NOT_FOUND),
        Err(e) => return internal(&state, e),
    };
    let (dirs, packages, mut builds) = match tokio::try_join!(
        state.db.project_dirs(&reference),
        state.db.project_package_summaries(&reference),
        state.db.project_build_summaries(&reference, paging.rows()),
    ) {
        Ok(found) => found,
        Err(e) => return internal(&state, e),
    };
    if builds.is_empty() && paging.number > 1 {
        return no_such_page(&state);
    }
    let pager = paging.cut(&mut builds, "#builds");
    let (owner, name) = (&reference.owner, &reference.project);
    let dir_url =
        |dirname: &str, id: BuildId| format!("{}build/{id}/", project_url(owner, dirname));
    let chroots: Vec<_> = project
        .chroots
        .iter()
        .map(|chroot| {
            let repo = ferrocopr_schema::Chroot::parse(chroot).map(|c| {
                format!(
                    "/coprs/{owner}/{name}/repo/{}/dnf.repo?arch={}",
                    c.name_release(),
                    c.arch
                )
            });
            context! { name => chroot, repo }
        })
        .collect();
    let dirs: Vec<_> = dirs
        .iter()
        .map(|d| {
            context! {
                name => d.name.clone(),
                builds => d.builds,
                last_build => d.last_build.map(|id| id.0),
                last_build_url => d.last_build.map(|id| dir_url(&d.name, id)),
                delete_after => d.delete_after,
                dnf_line => texts::dnf_copr_enable(&state.public_url, owner, &d.name),
            }
        })
        .collect();
    // A package's newest build may sit in any CoprDir; its own page redirects there.
    let packages: Vec<_> = packages
        .iter()
        .map(|p| {
            context! {
                name => p.name.clone(),
                version => p.version.clone(),
                builds => p.builds,
                last_build => p.last_build.0,
                url => format!("/coprs/build/{}/", p.last_build),
            }
        })
        .collect();
    let builds: Vec<_> = builds.iter().map(build_row).collect();
    let context = context! {
        project => context! {
            owner,
            name,
            description => project.settings.description,
            instructions => project.settings.instructions,
            homepage => project.settings.homepage,
            contact => project.settings.contact,
            created_on => project.created_on,
        },
        dnf_line => texts::dnf_copr_enable(&state.public_url, owner, name),
        results => results_dir_url(owner, name),
        chroots,
        dirs,
        packages,
        builds,
        pager,
    };
    page(&state, StatusCode::OK, "project.html", context)
}

/// `GET /coprs/build/{id}/`: Copr's short link, redirected to the build's page.
pub async fn build_by_id(State(state): State<BotState>, Path(id): Path<i64>) -> Response {
    match state.db.shown_build(BuildId(id)).await {
        Ok(Some(build)) => Redirect::permanent(&build_url(&build)).into_response(),
        Ok(None) => error_page(&state, StatusCode::NOT_FOUND, texts::BUILD_NOT_FOUND),
        Err(e) => internal(&state, e),
    }
}

/// The tail of a log file and its length: what the page shows and where the script goes on
/// from. `None` when there is no log (yet).
fn log_tail(path: &std::path::Path) -> Option<(String, u64, bool)> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(LIVE_LOG_TAIL);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.take(len - start).read_to_end(&mut bytes).ok()?;
    Some((String::from_utf8_lossy(&bytes).into_owned(), len, start > 0))
}

/// The files in a part's results directory (`/results/…` URL), logs first, for links: the
/// results tree is served without directory listings.
fn result_files(state: &BotState, url: &str) -> Vec<String> {
    let Some(relative) = url.strip_prefix("/results/") else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(state.results_dir.join(relative)) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    files.sort_by_key(|f| (!f.contains(".log"), f.clone()));
    files
}

fn is_active(state: TaskState) -> bool {
    matches!(state, TaskState::Starting | TaskState::Running)
}

/// `GET /coprs/{owner}/{dir}/build/{id}/`: the page commit statuses link to, with every log.
pub async fn build_page(
    State(state): State<BotState>,
    Path((owner, dirname, id)): Path<(String, String, i64)>,
) -> Response {
    build_page_of(state, owner, dirname, id).await
}

/// `GET /coprs/g/{group}/{dir}/build/{id}/`: a group's build, at Copr's URL.
pub async fn group_build_page(
    State(state): State<BotState>,
    Path((group, dirname, id)): Path<(String, String, i64)>,
) -> Response {
    build_page_of(state, group_owner(&group), dirname, id).await
}

async fn build_page_of(state: BotState, owner: String, dirname: String, id: i64) -> Response {
    let build = match state.db.shown_build(BuildId(id)).await {
        Ok(Some(build)) if build.project.owner == owner && build.dirname == dirname => build,
        Ok(_) => return error_page(&state, StatusCode::NOT_FOUND, texts::BUILD_NOT_FOUND),
        Err(e) => return internal(&state, e),
    };
    let chroots = match state.db.build_chroots(build.id).await {
        Ok(chroots) => chroots,
        Err(e) => return internal(&state, e),
    };
    let dir = results_dir_url(&build.project.owner, &build.dirname);
    let srpm_results = format!("{dir}/{SRPM_CHROOT}/{}", build.id.padded());
    // The source part's results exist once it started; a chroot's once the package's name is
    // known (its directory is named after it).
    let mut parts = vec![(
        SRPM_CHROOT.to_owned(),
        build.source_state,
        build.started_on,
        build.ended_on,
        build.started_on.is_some().then_some(srpm_results),
    )];
    for c in &chroots {
        let results = build
            .pkg_name
            .as_ref()
            .filter(|_| c.started_on.is_some())
            .map(|pkg| format!("{dir}/{}/{}-{pkg}", c.chroot, build.id.padded()));
        parts.push((c.chroot.clone(), c.state, c.started_on, c.ended_on, results));
    }
    // The first running part's log, read from the results tree the page's links point into.
    let live = parts
        .iter()
        .find(|(_, s, _, _, results)| is_active(*s) && results.is_some())
        .and_then(|(name, _, _, _, results)| {
            let url = format!("{}/{LIVE_LOG}", results.as_deref()?);
            let relative = url.strip_prefix("/results/")?;
            let (text, offset, cut) = log_tail(&state.results_dir.join(relative))?;
            let follow = format!("{}live-log/{name}", build_url(&build));
            Some(context! { name, log => url, follow, text, offset, cut })
        });
    let parts: Vec<_> = parts
        .iter()
        .map(|(name, s, started_on, ended_on, results)| {
            let files = results
                .as_deref()
                .map(|url| result_files(&state, url))
                .unwrap_or_default();
            context! {
                name,
                state => s.name(),
                started_on,
                ended_on,
                took => took(*started_on, *ended_on),
                results,
                files,
            }
        })
        .collect();
    let summary = BuildSummary {
        build: build.clone(),
        chroots,
    };
    let origin = build.origin.as_ref().map(|o| {
        let what = match o.pull_request {
            Some(pr) => format!("pull request #{pr}, "),
            None => String::new(),
        };
        format!(
            "{} {}: {what}commit {}",
            o.forge,
            o.repo,
            o.commit_sha.get(..12).unwrap_or(&o.commit_sha)
        )
    });
    let context = context! {
        build => context! {
            id => build.id.0,
            owner => &build.project.owner,
            project => &build.project.project,
            dirname => &build.dirname,
            submitter => &build.submitter,
            submitted_on => build.submitted_on,
            state => summary.state().name(),
            package => &build.pkg_name,
            version => &build.pkg_version,
            fail_reason => &build.fail_reason,
            origin,
        },
        parts,
        live,
        dnf_line => texts::dnf_copr_enable(&state.public_url, &build.project.owner, &build.dirname),
    };
    page(&state, StatusCode::OK, "build.html", context)
}

#[derive(Debug, Deserialize)]
pub struct LiveLogQuery {
    #[serde(default)]
    offset: u64,
}

/// The bytes of `path` from `offset` on (at most [`LIVE_LOG_CHUNK`]); empty when there are none.
fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(LIVE_LOG_CHUNK).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `GET /coprs/{owner}/{dir}/build/{id}/live-log/{part}?offset=N`: what the build page's
/// script follows a running part's `builder-live.log` with. Answers the log's bytes from
/// `offset` on as soon as there are any, waiting up to [`LIVE_LOG_WAIT`] for them (so a page
/// left open costs one request per wait, not a stream of empty ones; `/results/` serves the
/// same file with Range support to anything else). The part's state goes in
/// [`PART_STATE_HEADER`]; once it is no longer starting or running the answer comes at once.
pub async fn live_log(
    State(state): State<BotState>,
    Path((owner, dirname, id, part)): Path<(String, String, i64, String)>,
    Query(query): Query<LiveLogQuery>,
) -> Response {
    live_log_of(state, owner, dirname, id, part, query).await
}

/// `GET /coprs/g/{group}/{dir}/build/{id}/live-log/{part}`: [`live_log`] of a group's build,
/// which its page (at Copr's URL) follows.
pub async fn group_live_log(
    State(state): State<BotState>,
    Path((group, dirname, id, part)): Path<(String, String, i64, String)>,
    Query(query): Query<LiveLogQuery>,
) -> Response {
    live_log_of(state, group_owner(&group), dirname, id, part, query).await
}

async fn live_log_of(
    state: BotState,
    owner: String,
    dirname: String,
    id: i64,
    part: String,
    query: LiveLogQuery,
) -> Response {
    let build = match state.db.shown_build(BuildId(id)).await {
        Ok(Some(build)) if build.project.owner == owner && build.dirname == dirname => build,
        Ok(_) => return error_page(&state, StatusCode::NOT_FOUND, texts::BUILD_NOT_FOUND),
        Err(e) => return internal(&state, e),
    };
    let deadline = tokio::time::Instant::now() + LIVE_LOG_WAIT;
    loop {
        // Only names the database gave: `part` itself never reaches the file system.
        let (part_state, path) = match part_log(&state, &build, &part).await {
            Ok(Some(found)) => found,
            Ok(None) => return error_page(&state, StatusCode::NOT_FOUND, texts::LOG_NOT_FOUND),
            Err(e) => return internal(&state, e),
        };
        let bytes = match path {
            Some(path) => {
                let offset = query.offset;
                tokio::task::spawn_blocking(move || read_from(&path, offset))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r)
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        if !bytes.is_empty() || !is_active(part_state) || tokio::time::Instant::now() >= deadline {
            return (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                [(PART_STATE_HEADER, part_state.name())],
                bytes,
            )
                .into_response();
        }
        tokio::time::sleep(LIVE_LOG_CHECK).await;
    }
}

/// A part's state and its `builder-live.log` in the results tree (`None` before its results
/// directory can be named); `None` for a part the build does not have.
async fn part_log(
    state: &BotState,
    build: &Build,
    part: &str,
) -> ferrocopr_schema::db::DbResult<Option<(TaskState, Option<PathBuf>)>> {
    let dir = state
        .results_dir
        .join(&build.project.owner)
        .join(&build.dirname);
    if part == SRPM_CHROOT {
        let fresh = state.db.build(build.id).await?;
        let source_state = fresh.map_or(build.source_state, |b| b.source_state);
        let log = dir.join(SRPM_CHROOT).join(build.id.padded()).join(LIVE_LOG);
        return Ok(Some((source_state, Some(log))));
    }
    let chroots = state.db.build_chroots(build.id).await?;
    let Some(chroot) = chroots.into_iter().find(|c| c.chroot == part) else {
        return Ok(None);
    };
    let fresh = state.db.build(build.id).await?;
    let log = fresh.and_then(|b| b.pkg_name).map(|pkg| {
        dir.join(&chroot.chroot)
            .join(format!("{}-{pkg}", build.id.padded()))
            .join(LIVE_LOG)
    });
    Ok(Some((chroot.state, log)))
}

/// One section of the queue page.
struct Section {
    state: TaskState,
    title: &'static str,
    help: &'static str,
    since: &'static str,
}

const SECTIONS: [Section; 4] = [
    Section {
        state: TaskState::Running,
        title: "Running",
        help: "Building on a builder now.",
        since: "Started",
    },
    Section {
        state: TaskState::Starting,
        title: "Starting",
        help: "Given a builder, waiting for it to be ready.",
        since: "Started",
    },
    Section {
        state: TaskState::Importing,
        title: "Importing",
        help: "SRPMs being imported into DistGit; their chroots build next.",
        since: "Started",
    },
    Section {
        state: TaskState::Pending,
        title: "Pending",
        help: "Waiting for a builder, fairly shared between owners and submitters.",
        since: "Submitted",
    },
];

/// `GET /status/`: the queue, as Copr's status pages show it.
pub async fn status_page(State(state): State<BotState>) -> Response {
    let states: Vec<_> = SECTIONS.iter().map(|s| s.state).collect();
    let tasks = match state.db.tasks_in(&states).await {
        Ok(tasks) => tasks,
        Err(e) => return internal(&state, e),
    };
    let now = crate::web::now();
    let row = |t: &QueuedTask| {
        context! {
            build_id => t.build_id.0,
            url => format!("/coprs/build/{}/", t.build_id),
            owner => t.owner.clone(),
            project => t.project.clone(),
            chroot => t.chroot.clone(),
            submitter => t.submitter.clone(),
            background => t.background,
            since => t.since,
            age => now - t.since,
        }
    };
    let sections: Vec<_> = SECTIONS
        .iter()
        .map(|s| {
            let tasks: Vec<_> = tasks
                .iter()
                .filter(|t| t.state == s.state)
                .map(row)
                .collect();
            context! {
                state => s.state.name(),
                title => s.title,
                help => s.help,
                since => s.since,
                tasks,
            }
        })
        .collect();
    page(&state, StatusCode::OK, "status.html", context! { sections })
}

/// Every path no route took: a 404 page for people, a bare 404 under the machines' prefixes.
pub async fn not_found(State(state): State<BotState>, uri: Uri) -> Response {
    let path = uri.path();
    if MACHINE_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix) || path == prefix.trim_end_matches('/'))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    // Copr's page URLs end in a slash; people type them without.
    if !path.ends_with('/') && (path == "/status" || path.starts_with("/coprs/")) {
        return Redirect::permanent(&format!("{path}/")).into_response();
    }
    error_page(&state, StatusCode::NOT_FOUND, texts::PAGE_NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    fn render(template: &str, context: minijinja::Value) -> String {
        crate::templates()
            .expect("the templates parse")
            .get_template(template)
            .expect("the template is embedded")
            .render(context)
            .expect("the template renders")
    }

    #[test]
    fn user_supplied_text_is_escaped() {
        let evil = "<script>alert(1)</script> \"quoted\" & 'single'";
        let html = render(
            "project.html",
            context! {
                now => 0,
                project => context! {
                    owner => "alice", name => "p", description => evil, instructions => evil,
                    homepage => "\"><script>x</script>", contact => evil, created_on => 0,
                },
                dnf_line => "dnf copr enable alice/p",
                results => "/results/alice/p",
            },
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &quot;quoted&quot; &amp; &#x27;single&#x27;"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn owner_page_escapes_and_links_groups_at_copr_urls() {
        let evil = "<script>alert(1)</script>";
        let html = render(
            "owner.html",
            context! {
                now => 0,
                owner => "@grp",
                group => "grp",
                projects => vec![context! {
                    name => "tools", url => super::project_url("@grp", "tools"),
                    summary => evil, chroots => vec!["fedora-41-x86_64"], unlisted => true,
                    last_build => (),
                }],
                pager => context! { number => 2, newer => "?page=1", older => () },
            },
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&#x2f;coprs&#x2f;g&#x2f;grp&#x2f;tools&#x2f;"),
            "{html}"
        );
        assert!(html.contains("rel=\"prev\""), "{html}");
        assert!(!html.contains("rel=\"next\""), "{html}");
    }

    #[test]
    fn group_urls_are_coprs() {
        assert_eq!(super::owner_url("alice"), "/coprs/alice/");
        assert_eq!(super::owner_url("@grp"), "/coprs/g/grp/");
        assert_eq!(super::project_url("@grp", "x:pr:3"), "/coprs/g/grp/x:pr:3/");
    }

    #[test]
    fn page_numbers() {
        let number = |query: Option<&str>| super::Paging::from_query(query, 30).map(|p| p.number);
        assert_eq!(number(None), Some(1));
        assert_eq!(number(Some("")), Some(1));
        assert_eq!(number(Some("page=3")), Some(3));
        assert_eq!(number(Some("x=1&page=2")), Some(2));
        for bad in [
            "page=0", "page=-1", "page=", "page=x", "page=1.5", "page=%31",
        ] {
            assert_eq!(number(Some(bad)), None, "{bad}");
        }
        assert_eq!(number(Some(&format!("page={}", i64::MAX))), None);
        let paging = super::Paging::from_query(Some("page=2"), 2).expect("a page");
        assert_eq!(
            paging.rows(),
            ferrocopr_schema::db::Page {
                limit: 3,
                offset: 2
            }
        );
        let mut rows = vec![1, 2, 3];
        let links = paging.cut(&mut rows, "#builds");
        assert_eq!(rows, [1, 2]);
        assert_eq!(
            links.get_attr("newer").ok().map(|v| v.to_string()),
            Some("?page=1#builds".to_owned())
        );
        assert_eq!(
            links.get_attr("older").ok().map(|v| v.to_string()),
            Some("?page=3#builds".to_owned())
        );
    }

    #[test]
    fn times_are_readable_utc() {
        let html = render(
            "error.html",
            context! { now => 1_795_000_000, status => "404 Not Found", message => "gone" },
        );
        assert!(html.contains("2026-11-18 11:06:40 UTC"), "{html}");
    }
}
