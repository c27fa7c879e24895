//! `/api_3/package/...`: a project's packages as copr-cli adds, edits, builds, deletes and lists
//! them (`add-package-scm`, `add-package-distgit`, `edit-package-*`, `build-package`,
//! `delete-package`, `list-packages`, `get-package`).
//!
//! A package is a name with where its sources come from (a row, [`ferrocopr_schema::db::Package`]:
//! Copr's `source_type` and `source_dict`). `package/build` turns the stored source into a build
//! request through [`crate::submit::Submissions`], the same flow as every other build; the
//! scheduler does the rest. Packages known only from builds (an SRPM named them) are listed too,
//! without a source.
//!
//! Permissions, as Copr has them: a package's source is part of the project's configuration, so
//! adding, editing and deleting one needs [`Action::Administer`] (owner, group member, granted
//! `admin`); building an added package needs [`Action::Build`] (also a granted `builder`).
//!
//! The source types are mapped in one place, [`PackageSource`]: another type is one more variant
//! with its parsing and its build. Each is checked when it is added and built through the same
//! [`crate::submit::Submissions`] method as the matching `build/create/...` endpoint.

use super::builds::{BuildFields, build_json, scm_method, shown, submission};
use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiPath, ApiQuery, Body};
use super::{PageQuery, list};
use crate::submit::{CustomSource, ScmSource as ScmBuild, Submission, is_inner_path};
use crate::{BotState, texts};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use ferrocopr_schema::copr_yaml::SrpmMethod;
use ferrocopr_schema::db::{Page, ProjectPackage};
use ferrocopr_schema::model::is_valid_package_name;
use ferrocopr_schema::permissions::Action;
use ferrocopr_schema::{BuildId, BuildSource, ProjectRef};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The source types `package/add` takes. Copr has more (`pypi`, `rubygems`, `upload`, `url`):
/// those are refused with this list.
const SUPPORTED_SOURCE_TYPES: &[&str] = &["scm", "distgit", "custom"];

/// The dist-git instance a `distgit` package uses when it names none (Copr's default).
const DEFAULT_DISTGIT: &str = "fedora";

/// A package's source, checked: what is stored and what `package/build` builds.
#[derive(Debug, Clone, PartialEq)]
enum PackageSource {
    Scm(ScmSource),
    Distgit(DistgitSource),
    Custom(CustomScript),
}

/// Copr's `scm` source (`copr-cli add-package-scm`); every field is optional in the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ScmSource {
    clone_url: Option<String>,
    /// A branch, tag or commit; none: the repository's default branch.
    committish: Option<String>,
    /// Where the package lies in the repository.
    subdirectory: Option<String>,
    /// The spec, relative to `subdirectory`; none: `<package>.spec`.
    spec: Option<String>,
    scm_type: Option<String>,
    /// `rpkg` (the spec in the repository) or `make_srpm` (`.copr/Makefile`).
    source_build_method: Option<String>,
}

/// Copr's `custom` source (`copr-cli add-package-custom`): a script that makes the spec and its
/// sources in an empty directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct CustomScript {
    script: Option<String>,
    /// The chroot Copr would run the script in; recorded.
    chroot: Option<String>,
    /// Space-separated packages the script needs; logged.
    builddeps: Option<String>,
    /// Where the script leaves the spec and sources, relative to where it runs.
    resultdir: Option<String>,
}

/// Copr's `distgit` source (`copr-cli add-package-distgit`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct DistgitSource {
    /// The dist-git instance's name (`fedora`, `centos`, …).
    distgit: Option<String>,
    namespace: Option<String>,
    committish: Option<String>,
}

fn bad_json(e: serde_json::Error) -> ApiError {
    ApiError::BadRequest(texts::bad_api_body(&e))
}

/// An optional text, empty meaning not given (copr-cli sends `""` and `null` alike).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// A path inside the repository or the script's directory: relative, no `..`.
fn inner_path(field: &str, path: Option<&str>) -> ApiResult<()> {
    match path {
        Some(path) if !is_inner_path(path) => {
            Err(ApiError::BadRequest(texts::bad_inner_path(field, path)))
        }
        _ => Ok(()),
    }
}

impl PackageSource {
    /// The source of type `source_type` from the request's fields, on top of `old` (an edit of
    /// the same type keeps what the request does not give).
    fn parse(
        state: &BotState,
        source_type: &str,
        body: &Value,
        old: Option<&Value>,
    ) -> ApiResult<Self> {
        let mut fields = match old {
            Some(Value::Object(old)) => old.clone(),
            _ => serde_json::Map::new(),
        };
        if let Value::Object(new) = body {
            for (key, value) in new {
                if !value.is_null() {
                    fields.insert(key.clone(), value.clone());
                }
            }
        }
        let fields = Value::Object(fields);
        match source_type {
            "scm" => {
                let scm: ScmSource = serde_json::from_value(fields).map_err(bad_json)?;
                if given(&scm.clone_url).is_none() {
                    return Err(ApiError::BadRequest(texts::api_missing_field("clone_url")));
                }
                scm.method()?;
                inner_path("subdirectory", given(&scm.subdirectory))?;
                inner_path("spec", given(&scm.spec))?;
                Ok(PackageSource::Scm(scm))
            }
            "distgit" => {
                let distgit: DistgitSource = serde_json::from_value(fields).map_err(bad_json)?;
                if let Some(namespace) = given(&distgit.namespace) {
                    return Err(ApiError::BadRequest(
                        texts::api_distgit_namespace_unsupported(namespace),
                    ));
                }
                let instance = distgit.instance();
                if !state.submissions.distgit_instances.contains_key(instance) {
                    let names: Vec<&str> = state
                        .submissions
                        .distgit_instances
                        .keys()
                        .map(String::as_str)
                        .collect();
                    return Err(ApiError::BadRequest(texts::unknown_distgit(
                        instance, &names,
                    )));
                }
                Ok(PackageSource::Distgit(distgit))
            }
            "custom" => {
                let custom: CustomScript = serde_json::from_value(fields).map_err(bad_json)?;
                if given(&custom.script).is_none() {
                    return Err(ApiError::BadRequest(texts::api_missing_field("script")));
                }
                inner_path("resultdir", given(&custom.resultdir))?;
                Ok(PackageSource::Custom(custom))
            }
            other => Err(ApiError::BadRequest(texts::api_source_type_unsupported(
                other,
                SUPPORTED_SOURCE_TYPES,
            ))),
        }
    }

    fn source_type(&self) -> &'static str {
        match self {
            PackageSource::Scm(_) => "scm",
            PackageSource::Distgit(_) => "distgit",
            PackageSource::Custom(_) => "custom",
        }
    }

    /// Copr's `source_dict`, as stored.
    fn source_dict(&self) -> Value {
        let dict = match self {
            PackageSource::Scm(scm) => serde_json::to_value(scm),
            PackageSource::Distgit(distgit) => serde_json::to_value(distgit),
            PackageSource::Custom(custom) => serde_json::to_value(custom),
        };
        dict.unwrap_or_default()
    }

    /// Requests a build of package `name` from this source.
    async fn build(
        &self,
        state: &BotState,
        submission: Submission,
        name: &str,
    ) -> ApiResult<BuildId> {
        let submissions = &state.submissions;
        let id = match self {
            PackageSource::Scm(scm) => {
                let spec = given(&scm.spec).map_or_else(|| format!("{name}.spec"), str::to_owned);
                let build = ScmBuild {
                    clone_url: given(&scm.clone_url).unwrap_or_default(),
                    committish: given(&scm.committish).unwrap_or_default(),
                    subdirectory: given(&scm.subdirectory).unwrap_or_default(),
                    spec: &spec,
                    srpm: scm.method()?,
                };
                submissions.from_scm(submission, build).await?
            }
            PackageSource::Custom(custom) => {
                let build = CustomSource {
                    script: given(&custom.script).unwrap_or_default(),
                    chroot: given(&custom.chroot),
                    builddeps: given(&custom.builddeps).unwrap_or_default(),
                    resultdir: given(&custom.resultdir).unwrap_or_default(),
                };
                submissions.from_custom(submission, build).await?
            }
            PackageSource::Distgit(distgit) => {
                let committish = given(&distgit.committish);
                submissions
                    .from_distgit(submission, distgit.instance(), name, committish)
                    .await?
            }
        };
        Ok(id)
    }
}

impl ScmSource {
    /// How the SRPM is made; also refuses SCM types other than git, as `build/create/scm` does.
    fn method(&self) -> ApiResult<SrpmMethod> {
        scm_method(given(&self.scm_type), given(&self.source_build_method))
    }
}

impl DistgitSource {
    fn instance(&self) -> &str {
        given(&self.distgit).unwrap_or(DEFAULT_DISTGIT)
    }
}

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
    for package in found {
        items.push(package_json(state, project, package).await?);
    }
    Ok(items)
}

/// A package as Copr's API v3 shows it: an added one with its source, one known only from
/// builds with the source type of its newest build.
async fn package_json(
    state: &BotState,
    project: &ProjectRef,
    package: ProjectPackage,
) -> ApiResult<Value> {
    let build = match package.latest {
        Some(id) => state.db.build(id).await?,
        None => None,
    };
    let latest = match &build {
        Some(build) => {
            let chroots = state.db.build_chroots(build.id).await?;
            Some(build_json(state, build, &chroots))
        }
        None => None,
    };
    let (source_type, source_dict) = match (&package.added, &build) {
        (Some(added), _) => (Some(added.source_type.clone()), added.source.clone()),
        (None, Some(build)) => {
            let kind = match build.source {
                BuildSource::Scm { .. } => "scm",
                BuildSource::Url { .. } => "link",
                BuildSource::Upload { .. } => "upload",
                BuildSource::Distgit { .. } => "distgit",
                BuildSource::Custom { .. } => "custom",
            };
            (Some(kind.to_owned()), json!({}))
        }
        (None, None) => (None, json!({})),
    };
    Ok(json!({
        "name": package.name,
        "projectname": project.project,
        "ownername": project.owner,
        "source_type": source_type,
        "source_dict": source_dict,
        "builds": { "latest": latest },
    }))
}

async fn one_package(state: &BotState, project: &ProjectRef, name: &str) -> ApiResult<Value> {
    let one = Page {
        limit: 1,
        offset: 0,
    };
    packages(state, project, Some(name), one)
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(texts::api_package_not_found(name, project)))
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
    Ok(Json(one_package(&state, &project, &name).await?))
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

/// The caller, the project (404 when unknown) and the permission: the door of every write.
async fn writer(
    state: &BotState,
    headers: &HeaderMap,
    project: &ProjectRef,
    action: Action,
) -> ApiResult<()> {
    let user = extract::user(state, headers).await?;
    extract::project(state, project).await?;
    extract::allow(state, &user, project, action).await
}

/// `POST /api_3/package/add/{owner}/{project}/{package_name}/{source_type}`: the body is the
/// source's fields (python-copr sends `package_name` with them).
pub async fn add(
    State(state): State<BotState>,
    ApiPath((owner, name, package, source_type)): ApiPath<(String, String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let project = ProjectRef {
        owner,
        project: name,
    };
    writer(&state, &headers, &project, Action::Administer).await?;
    let fields: Value = body.json()?;
    if !is_valid_package_name(&package) {
        return Err(ApiError::BadRequest(texts::bad_package_name(&package)));
    }
    let source = PackageSource::parse(&state, &source_type, &fields, None)?;
    let added = state
        .db
        .add_package(
            &project,
            &package,
            source.source_type(),
            &source.source_dict(),
        )
        .await?;
    if !added {
        return Err(ApiError::Conflict(texts::api_package_exists(
            &package, &project,
        )));
    }
    Ok(Json(one_package(&state, &project, &package).await?))
}

/// `POST /api_3/package/edit/{owner}/{project}/{package_name}/{source_type}`: what the body gives
/// replaces the stored fields; the rest stays (all of it goes when the source type changes).
pub async fn edit(
    State(state): State<BotState>,
    ApiPath((owner, name, package, source_type)): ApiPath<(String, String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let project = ProjectRef {
        owner,
        project: name,
    };
    writer(&state, &headers, &project, Action::Administer).await?;
    let fields: Value = body.json()?;
    let old = state
        .db
        .package(&project, &package)
        .await?
        .ok_or_else(|| ApiError::NotFound(texts::api_package_not_found(&package, &project)))?;
    let kept = (old.source_type == source_type).then_some(&old.source);
    let source = PackageSource::parse(&state, &source_type, &fields, kept)?;
    state
        .db
        .edit_package(
            &project,
            &package,
            source.source_type(),
            &source.source_dict(),
        )
        .await?;
    Ok(Json(one_package(&state, &project, &package).await?))
}

/// `DELETE` (or `POST`) `/api_3/package/delete/{owner}/{project}/{package_name}`: the package
/// row goes, its builds stay. Answers the package as it was.
pub async fn delete(
    State(state): State<BotState>,
    ApiPath((owner, name, package)): ApiPath<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let project = ProjectRef {
        owner,
        project: name,
    };
    delete_package(&state, &headers, project, package).await
}

/// The package python-copr's `PackageProxy.delete` names in its body.
#[derive(Deserialize)]
pub struct DeleteFields {
    ownername: Option<String>,
    projectname: Option<String>,
    package_name: Option<String>,
}

/// `DELETE /api_3/package/delete` with `ownername`, `projectname` and `package_name` in the
/// body, as python-copr (`copr-cli delete-package`) sends it.
pub async fn delete_named(
    State(state): State<BotState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let fields: DeleteFields = body.json()?;
    let project = ProjectRef {
        owner: field("ownername", fields.ownername)?,
        project: field("projectname", fields.projectname)?,
    };
    let package = field("package_name", fields.package_name)?;
    delete_package(&state, &headers, project, package).await
}

async fn delete_package(
    state: &BotState,
    headers: &HeaderMap,
    project: ProjectRef,
    package: String,
) -> ApiResult<Json<Value>> {
    writer(state, headers, &project, Action::Administer).await?;
    if state.db.package(&project, &package).await?.is_none() {
        return Err(ApiError::NotFound(texts::api_package_not_found(
            &package, &project,
        )));
    }
    let shown = one_package(state, &project, &package).await?;
    state.db.delete_package(&project, &package).await?;
    Ok(Json(shown))
}

/// What `package/build` takes besides the build options ([`BuildFields`]).
#[derive(Deserialize)]
struct BuildPackageFields {
    package_name: Option<String>,
}

/// `POST /api_3/package/build`: a build of an added package from its stored source (body:
/// `ownername`, `projectname`, `package_name` and the build options).
pub async fn build(
    State(state): State<BotState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let package: BuildPackageFields = body.json()?;
    let options: BuildFields = body.json()?;
    let package = field("package_name", package.package_name)?;
    let (found, submission) = submission(&state, &user, &options).await?;
    let project = &found.project;
    let stored = state
        .db
        .package(project, &package)
        .await?
        .ok_or_else(|| ApiError::NotFound(texts::api_package_not_found(&package, project)))?;
    let source = PackageSource::parse(&state, &stored.source_type, &stored.source, None)?;
    let id = source.build(&state, submission, &package).await?;
    let build = state
        .db
        .build(id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("build {id} vanished")))?;
    Ok(Json(shown(&state, &build).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scm_sources_check_their_method_and_type() {
        let scm = ScmSource {
            clone_url: Some("https://example.org/hello.git".into()),
            source_build_method: Some("make_srpm".into()),
            ..Default::default()
        };
        assert_eq!(scm.method().expect("a method"), SrpmMethod::MakeSrpm);
        let tito = ScmSource {
            source_build_method: Some("tito".into()),
            ..scm.clone()
        };
        assert!(tito.method().is_err());
        let svn = ScmSource {
            scm_type: Some("svn".into()),
            ..scm
        };
        assert!(svn.method().is_err());
        assert!(inner_path("spec", Some("../etc/passwd")).is_err());
        assert!(inner_path("spec", Some("/etc/passwd")).is_err());
        assert!(inner_path("spec", Some("a/b.spec")).is_ok());
        assert!(inner_path("spec", None).is_ok());
    }
}
