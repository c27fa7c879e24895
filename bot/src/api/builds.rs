//! `/api_3/build/...` and `/api_3/build-chroot/...`: builds requested by copr-cli (`build` with a
//! URL or an uploaded SRPM, `buildscm` from a git repository, `buildcustom` from a script),
//! watched (`watch-build` polls `GET /build/{id}`), listed (by state, in either order) and
//! canceled. Requests go through [`crate::submit::Submissions`], the same flow as the command
//! line's; only the scheduler moves their states.
//!
//! Every `create/...` takes python-copr's build options: `chroots` and `exclude_chroots` as
//! patterns over the project's chroots (`fedora-*-x86_64`), `background`, `timeout`,
//! `enable_net`, `project_dirname`.

use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiPath, ApiQuery, Body};
use super::{PageQuery, list_ordered, multipart};
use crate::submit::{CustomSource, ScmSource, Submission};
use crate::{BotState, texts};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use ferrocopr_schema::copr_yaml::SrpmMethod;
use ferrocopr_schema::copr_yaml::glob;
use ferrocopr_schema::db::{Build, BuildChroot, BuildFilter, Project, User};
use ferrocopr_schema::model::Bconds;
use ferrocopr_schema::permissions::Action;
use ferrocopr_schema::state::{State as BuildState, build_state};
use ferrocopr_schema::{BuildId, BuildSource, ProjectRef};
use serde::Deserialize;
use serde_json::{Value, json};

/// A build as Copr's API v3 shows it; `state` is the overall state copr-cli prints and waits on.
pub fn build_json(state: &BotState, build: &Build, chroots: &[BuildChroot]) -> Value {
    let states: Vec<_> = chroots.iter().map(|c| c.state).collect();
    let overall = build_state(build.cancel_requested, build.source_state, &states);
    let p = &build.project;
    let url = match &build.source {
        BuildSource::Url { url } => Some(url.clone()),
        BuildSource::Upload { path } => Some(format!("{}/uploads/{path}", state.public_url)),
        BuildSource::Scm { clone_url, .. } => Some(clone_url.clone()),
        BuildSource::Distgit { .. } | BuildSource::Custom { .. } => None,
    };
    json!({
        "id": build.id.0,
        "state": overall.name(),
        "projectname": p.project,
        "ownername": p.owner,
        "project_dirname": build.dirname,
        "repo_url": format!("{}/results/{}/{}", state.public_url, p.owner, build.dirname),
        "source_package": {
            "name": build.pkg_name,
            "version": build.pkg_version,
            "url": url,
        },
        "submitted_on": build.submitted_on,
        "started_on": build.started_on,
        "ended_on": build.ended_on,
        "submitter": build.submitter,
        "chroots": chroots.iter().map(|c| c.chroot.clone()).collect::<Vec<_>>(),
        "is_background": build.background,
    })
}

/// A build-chroot as Copr's API v3 shows it.
fn build_chroot_json(state: &BotState, build: &Build, chroot: &BuildChroot) -> Value {
    let result_url = build.pkg_name.as_ref().map(|pkg| {
        format!(
            "{}/results/{}/{}/{}/{}-{pkg}/",
            state.public_url,
            build.project.owner,
            build.dirname,
            chroot.chroot,
            build.id.padded()
        )
    });
    json!({
        "name": chroot.chroot,
        "state": chroot.state.name(),
        "started_on": chroot.started_on,
        "ended_on": chroot.ended_on,
        "result_url": result_url,
    })
}

async fn build_of(state: &BotState, id: i64) -> ApiResult<Build> {
    state
        .db
        .shown_build(BuildId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(texts::api_build_not_found(id)))
}

pub(super) async fn shown(state: &BotState, build: &Build) -> ApiResult<Value> {
    let chroots = state.db.build_chroots(build.id).await?;
    Ok(build_json(state, build, &chroots))
}

/// `GET /api_3/build/{id}`
pub async fn get(
    State(state): State<BotState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let build = build_of(&state, id).await?;
    Ok(Json(shown(&state, &build).await?))
}

#[derive(Deserialize)]
pub struct ListQuery {
    ownername: Option<String>,
    projectname: Option<String>,
    packagename: Option<String>,
    /// An overall state's name (`succeeded`, `running`, …): only builds in that state.
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /api_3/build/list?ownername=&projectname=&packagename=&status=`: by id, newest first
/// unless `order_type=ASC`; copr-cli pages with a growing offset until a page is empty, and
/// `limit`/`offset` count the builds that pass the filters.
pub async fn list_builds(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.page()?;
    let order = q.page.order(&["id"])?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            BuildState::from_name(name)
                .ok_or_else(|| ApiError::BadRequest(texts::api_unknown_state(name)))?,
        ),
    };
    let project = project_ref(q.ownername, q.projectname)?;
    extract::project(&state, &project).await?;
    let filter = BuildFilter {
        package: q.packagename.as_deref().filter(|p| !p.is_empty()),
        state: status,
        direction: order.direction,
    };
    let builds = state.db.api_builds(&project, filter, page).await?;
    let mut items = Vec::with_capacity(builds.len());
    for build in &builds {
        items.push(shown(&state, build).await?);
    }
    Ok(Json(list_ordered(items, page, order)))
}

fn project_ref(owner: Option<String>, project: Option<String>) -> ApiResult<ProjectRef> {
    let field = |name: &str, v: Option<String>| {
        v.filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::BadRequest(texts::api_missing_field(name)))
    };
    Ok(ProjectRef {
        owner: field("ownername", owner)?,
        project: field("projectname", project)?,
    })
}

/// `PUT /api_3/build/cancel/{id}`: asks for the cancel; the scheduler carries it out.
pub async fn cancel(
    State(state): State<BotState>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let build = build_of(&state, id).await?;
    extract::allow(&state, &user, &build.project, Action::Build).await?;
    if !state.db.request_cancel(build.id).await? {
        return Err(ApiError::BadRequest(texts::api_cannot_cancel(id)));
    }
    state.scheduler_wake.notify_one();
    let build = build_of(&state, id).await?;
    Ok(Json(shown(&state, &build).await?))
}

/// What every build request carries besides its source (python-copr's build options).
#[derive(Deserialize, Default)]
pub struct BuildFields {
    ownername: Option<String>,
    projectname: Option<String>,
    project_dirname: Option<String>,
    chroots: Option<Vec<String>>,
    exclude_chroots: Option<Vec<String>>,
    timeout: Option<u64>,
    enable_net: Option<bool>,
    background: Option<bool>,
    /// `create/url`: the URLs, as a list or as one string separated by white space.
    pkgs: Option<Pkgs>,
    /// `create/scm`: the repository, the committish (empty: the default branch), the package's
    /// directory in it and the spec there (empty: the one `*.spec` there).
    clone_url: Option<String>,
    committish: Option<String>,
    subdirectory: Option<String>,
    spec: Option<String>,
    /// `create/scm`: `git` only.
    scm_type: Option<String>,
    /// `create/scm`: `rpkg` (the default) or `make_srpm`.
    source_build_method: Option<String>,
    /// `create/custom`: the script, the chroot Copr would run it in (recorded only), its build
    /// dependencies (white-space separated) and where it leaves the spec and sources.
    script: Option<String>,
    chroot: Option<String>,
    builddeps: Option<String>,
    resultdir: Option<String>,
}

/// `create/scm`'s `scm_type` and `source_build_method` as the builder's SRPM method; Copr's
/// `tito` and `svn` have no builder here.
pub(super) fn scm_method(scm_type: Option<&str>, method: Option<&str>) -> ApiResult<SrpmMethod> {
    match scm_type.unwrap_or("") {
        "" | "git" => {}
        other => return Err(ApiError::BadRequest(texts::api_unsupported_scm_type(other))),
    }
    match method.unwrap_or("") {
        "" | "rpkg" => Ok(SrpmMethod::Spec),
        "make_srpm" => Ok(SrpmMethod::MakeSrpm),
        other => Err(ApiError::BadRequest(texts::api_unsupported_srpm_method(
            other,
        ))),
    }
}

/// A glob pattern, as opposed to a plain chroot name.
fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// The project's chroots that `wanted` picks (all of them when it is empty), minus those
/// `excluded` picks; both are patterns. A pattern that picks nothing is refused, naming it:
/// a typo should not silently build elsewhere than meant.
fn pick_chroots(
    project: &ProjectRef,
    chroots: &[String],
    wanted: &[String],
    excluded: &[String],
) -> ApiResult<Vec<String>> {
    let picks = |pattern: &String| -> ApiResult<()> {
        if chroots.iter().any(|c| glob::matches(pattern, c)) {
            Ok(())
        } else if is_pattern(pattern) {
            Err(ApiError::BadRequest(texts::api_no_chroot_matches(
                pattern, project,
            )))
        } else {
            Err(ApiError::BadRequest(texts::api_chroot_not_in_project(
                pattern, project,
            )))
        }
    };
    for pattern in wanted.iter().chain(excluded) {
        picks(pattern)?;
    }
    Ok(chroots
        .iter()
        .filter(|c| wanted.is_empty() || wanted.iter().any(|p| glob::matches(p, c)))
        .filter(|c| !excluded.iter().any(|p| glob::matches(p, c)))
        .cloned()
        .collect())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Pkgs {
    List(Vec<String>),
    Text(String),
}

/// Who may build what where: the checks of `check-before-build` and every `create/...`.
pub(super) async fn submission(
    state: &BotState,
    user: &User,
    fields: &BuildFields,
) -> ApiResult<(Project, Submission)> {
    let project = project_ref(fields.ownername.clone(), fields.projectname.clone())?;
    let found = extract::project(state, &project).await?;
    extract::allow(state, user, &project, Action::Build).await?;
    let chroots = pick_chroots(
        &project,
        &found.chroots,
        fields.chroots.as_deref().unwrap_or_default(),
        fields.exclude_chroots.as_deref().unwrap_or_default(),
    )?;
    let submission = Submission {
        project,
        dirname: fields.project_dirname.clone().filter(|d| !d.is_empty()),
        chroots,
        submitter: user.name.clone(),
        enable_net: fields.enable_net.unwrap_or(found.settings.enable_net),
        timeout: fields.timeout,
        bconds: Bconds::default(),
        background: fields.background.unwrap_or(false),
    };
    Ok((found, submission))
}

/// `POST /api_3/build/check-before-build`: whether a build could be submitted, before copr-cli
/// uploads a large SRPM.
pub async fn check_before_build(
    State(state): State<BotState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let fields: BuildFields = body.json()?;
    let (project, _) = submission(&state, &user, &fields).await?;
    let message = texts::api_can_build(&user.name, &project.project);
    Ok(Json(json!({ "message": message })))
}

/// `POST /api_3/build/create/url`: one build per URL, answered as a list.
pub async fn create_from_url(
    State(state): State<BotState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let fields: BuildFields = body.json()?;
    let urls: Vec<String> = match &fields.pkgs {
        Some(Pkgs::List(urls)) => urls.clone(),
        Some(Pkgs::Text(text)) => text.split_whitespace().map(str::to_owned).collect(),
        None => Vec::new(),
    };
    if urls.is_empty() {
        return Err(ApiError::BadRequest(texts::api_missing_field("pkgs")));
    }
    let (_, submission) = submission(&state, &user, &fields).await?;
    let mut items = Vec::with_capacity(urls.len());
    for url in &urls {
        let id = state.submissions.from_url(submission.clone(), url).await?;
        items.push(shown(&state, &build_of(&state, id.0).await?).await?);
    }
    Ok(Json(json!({ "items": items, "meta": {} })))
}

/// A text field a request must carry.
fn required<'a>(value: &'a Option<String>, name: &str) -> ApiResult<&'a str> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest(texts::api_missing_field(name)))
}

/// `POST /api_3/build/create/scm`: one build of a git repository (`copr-cli buildscm`).
pub async fn create_from_scm(
    State(state): State<BotState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let fields: BuildFields = body.json()?;
    let srpm = scm_method(
        fields.scm_type.as_deref(),
        fields.source_build_method.as_deref(),
    )?;
    let clone_url = required(&fields.clone_url, "clone_url")?;
    let (_, submission) = submission(&state, &user, &fields).await?;
    let scm = ScmSource {
        clone_url,
        committish: fields.committish.as_deref().unwrap_or(""),
        subdirectory: fields.subdirectory.as_deref().unwrap_or(""),
        spec: fields.spec.as_deref().unwrap_or(""),
        srpm,
    };
    let id = state.submissions.from_scm(submission, scm).await?;
    Ok(Json(shown(&state, &build_of(&state, id.0).await?).await?))
}

/// `POST /api_3/build/create/custom`: one build of what a script makes (`copr-cli buildcustom`).
pub async fn create_from_custom(
    State(state): State<BotState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let fields: BuildFields = body.json()?;
    let script = required(&fields.script, "script")?;
    let (_, submission) = submission(&state, &user, &fields).await?;
    let custom = CustomSource {
        script,
        chroot: fields.chroot.as_deref(),
        builddeps: fields.builddeps.as_deref().unwrap_or(""),
        resultdir: fields.resultdir.as_deref().unwrap_or(""),
    };
    let id = state.submissions.from_custom(submission, custom).await?;
    Ok(Json(shown(&state, &build_of(&state, id.0).await?).await?))
}

/// `POST /api_3/build/create/upload`: multipart, the SRPM in file part `pkgs`, the fields as
/// JSON in part `json`.
pub async fn create_from_upload(
    State(state): State<BotState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parts = multipart::boundary(content_type)
        .and_then(|b| multipart::parse(&body.0, &b))
        .ok_or_else(|| ApiError::BadRequest(texts::API_NO_UPLOAD.to_owned()))?;
    let fields: BuildFields = match parts.iter().find(|p| p.name == "json") {
        Some(part) => Body(part.data.to_vec().into()).json()?,
        None => BuildFields::default(),
    };
    let srpm = parts
        .iter()
        .find(|p| p.name == "pkgs")
        .ok_or_else(|| ApiError::BadRequest(texts::API_NO_UPLOAD.to_owned()))?;
    let filename = srpm.filename.clone().unwrap_or_default();
    let (_, submission) = submission(&state, &user, &fields).await?;
    let id = state
        .submissions
        .from_upload(submission, &filename, srpm.data)
        .await?;
    let build = build_of(&state, id.0).await?;
    Ok(Json(shown(&state, &build).await?))
}

#[derive(Deserialize)]
pub struct BuildChrootQuery {
    build_id: Option<String>,
    chrootname: Option<String>,
}

fn build_id(text: Option<String>) -> ApiResult<i64> {
    text.as_deref()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| ApiError::BadRequest(texts::api_missing_field("build_id")))
}

/// `GET /api_3/build-chroot?build_id=&chrootname=`
pub async fn build_chroot(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<BuildChrootQuery>,
) -> ApiResult<Json<Value>> {
    let id = build_id(q.build_id)?;
    let name = q
        .chrootname
        .ok_or_else(|| ApiError::BadRequest(texts::api_missing_field("chrootname")))?;
    let build = build_of(&state, id).await?;
    let chroots = state.db.build_chroots(build.id).await?;
    let chroot = chroots
        .iter()
        .find(|c| c.chroot == name)
        .ok_or_else(|| ApiError::NotFound(texts::api_build_chroot_not_found(id, &name)))?;
    Ok(Json(build_chroot_json(&state, &build, chroot)))
}

/// `GET /api_3/build-chroot/list?build_id=`: all of a build's chroots on one page.
pub async fn build_chroot_list(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<BuildChrootQuery>,
) -> ApiResult<Json<Value>> {
    let id = build_id(q.build_id)?;
    let build = build_of(&state, id).await?;
    let chroots = state.db.build_chroots(build.id).await?;
    let items: Vec<Value> = chroots
        .iter()
        .map(|c| build_chroot_json(&state, &build, c))
        .collect();
    Ok(Json(json!({ "items": items, "meta": {} })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn chroot_patterns_pick_the_projects_chroots() {
        let project = ProjectRef {
            owner: "alice".into(),
            project: "hello".into(),
        };
        let chroots = strings(&[
            "fedora-41-x86_64",
            "fedora-41-aarch64",
            "fedora-42-x86_64",
            "epel-9-x86_64",
        ]);
        let pick = |wanted: &[&str], excluded: &[&str]| {
            pick_chroots(&project, &chroots, &strings(wanted), &strings(excluded))
        };
        assert_eq!(pick(&[], &[]).ok(), Some(chroots.clone()));
        assert_eq!(
            pick(&["fedora-*-x86_64"], &[]).ok(),
            Some(strings(&["fedora-41-x86_64", "fedora-42-x86_64"]))
        );
        assert_eq!(
            pick(&["fedora-4?-*"], &["*-aarch64", "fedora-42-x86_64"]).ok(),
            Some(strings(&["fedora-41-x86_64"]))
        );
        assert_eq!(
            pick(&["epel-9-x86_64"], &[]).ok(),
            Some(strings(&["epel-9-x86_64"]))
        );
        assert_eq!(pick(&[], &["*"]).ok(), Some(Vec::new()));
        for (wanted, excluded, named) in [
            (&["centos-*"][..], &[][..], "\"centos-*\""),
            (&["fedora-*"][..], &["fedora-9?-*"][..], "\"fedora-9?-*\""),
            (
                &["fedora-40-x86_64"][..],
                &[][..],
                "fedora-40-x86_64 is not",
            ),
        ] {
            match pick(wanted, excluded) {
                Err(ApiError::BadRequest(text)) => assert!(text.contains(named), "{text}"),
                other => panic!("{wanted:?} minus {excluded:?}: {other:?}"),
            }
        }
    }
}
