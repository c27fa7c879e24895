//! `GET /api_3/package` and `/api_3/package/list`: a project's packages as its builds named them
//! (ferrocopr keeps no package rows of its own: a package is what an SRPM built in the project
//! was called), each with its newest build.

use super::builds::build_json;
use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiQuery};
use super::{PageQuery, list};
use crate::{BotState, texts};
use axum::Json;
use axum::extract::State;
use ferrocopr_schema::db::Page;
use ferrocopr_schema::{BuildId, BuildSource, ProjectRef};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct PackageQuery {
    ownername: Option<String>,
    projectname: Option<String>,
    packagename: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

fn field(name: &str, value: Option<String>) -> ApiResult<String> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest(texts::api_missing_field(name)))
}

async fn packages(
    state: &BotState,
    project: &ProjectRef,
    package: Option<&str>,
    page: Page,
) -> ApiResult<Vec<Value>> {
    extract::project(state, project).await?;
    let found = state.db.project_packages(project, package, page).await?;
    let mut items = Vec::with_capacity(found.len());
    for (name, latest) in found {
        items.push(package_json(state, project, &name, latest).await?);
    }
    Ok(items)
}

async fn package_json(
    state: &BotState,
    project: &ProjectRef,
    name: &str,
    latest: BuildId,
) -> ApiResult<Value> {
    let build = state.db.build(latest).await?;
    let latest = match &build {
        Some(build) => {
            let chroots = state.db.build_chroots(build.id).await?;
            Some(build_json(state, build, &chroots))
        }
        None => None,
    };
    let source_type = build.as_ref().map(|b| match b.source {
        BuildSource::Scm { .. } => "scm",
        BuildSource::Url { .. } => "link",
        BuildSource::Upload { .. } => "upload",
        BuildSource::Distgit { .. } => "distgit",
        BuildSource::Custom { .. } => "custom",
    });
    Ok(json!({
        "name": name,
        "projectname": project.project,
        "ownername": project.owner,
        "source_type": source_type,
        "builds": { "latest": latest },
    }))
}

/// `GET /api_3/package?ownername=&projectname=&packagename=`
pub async fn get(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<PackageQuery>,
) -> ApiResult<Json<Value>> {
    let project = ProjectRef {
        owner: field("ownername", q.ownername)?,
        project: field("projectname", q.projectname)?,
    };
    let name = field("packagename", q.packagename)?;
    let one = Page {
        limit: 1,
        offset: 0,
    };
    packages(&state, &project, Some(&name), one)
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(texts::api_package_not_found(&name, &project)))
}

/// `GET /api_3/package/list?ownername=&projectname=`
pub async fn list_packages(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<PackageQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.page()?;
    let project = ProjectRef {
        owner: field("ownername", q.ownername)?,
        project: field("projectname", q.projectname)?,
    };
    let items = packages(&state, &project, None, page).await?;
    Ok(Json(list(items, page)))
}
