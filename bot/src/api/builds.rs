//! `/api_3/build/...` and `/api_3/build-chroot/...`: builds requested by copr-cli (`build` with a
//! URL or an uploaded SRPM), watched (`watch-build` polls `GET /build/{id}`), listed and
//! canceled. Requests go through [`crate::submit::Submissions`], the same flow as the command
//! line's; only the scheduler moves their states.

use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiPath, ApiQuery, Body};
use super::{PageQuery, list, multipart};
use crate::submit::Submission;
use crate::{BotState, texts};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use ferrocopr_schema::db::{Build, BuildChroot, Project, User};
use ferrocopr_schema::model::Bconds;
use ferrocopr_schema::permissions::Action;
use ferrocopr_schema::state::build_state;
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
        BuildSource::Distgit { .. } => None,
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
        .build(BuildId(id))
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
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /api_3/build/list?ownername=&projectname=&packagename=`: newest first; copr-cli pages
/// with a growing offset until a page is empty.
pub async fn list_builds(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.page()?;
    let project = project_ref(q.ownername, q.projectname)?;
    extract::project(&state, &project).await?;
    let package = q.packagename.filter(|p| !p.is_empty());
    let builds = state
        .db
        .project_builds(&project, package.as_deref(), page)
        .await?;
    let mut items = Vec::with_capacity(builds.len());
    for build in &builds {
        items.push(shown(&state, build).await?);
    }
    Ok(Json(list(items, page)))
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
    /// `create/url`: the URLs, as a list or as one string separated by white space.
    pkgs: Option<Pkgs>,
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
    let mut chroots = match &fields.chroots {
        Some(wanted) if !wanted.is_empty() => {
            if let Some(other) = wanted.iter().find(|c| !found.chroots.contains(c)) {
                return Err(ApiError::BadRequest(texts::api_chroot_not_in_project(
                    other, &project,
                )));
            }
            wanted.clone()
        }
        _ => found.chroots.clone(),
    };
    if let Some(excluded) = &fields.exclude_chroots {
        chroots.retain(|c| !excluded.contains(c));
    }
    let submission = Submission {
        project,
        dirname: fields.project_dirname.clone().filter(|d| !d.is_empty()),
        chroots,
        submitter: user.name.clone(),
        enable_net: fields.enable_net.unwrap_or(found.settings.enable_net),
        timeout: fields.timeout,
        bconds: Bconds::default(),
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
