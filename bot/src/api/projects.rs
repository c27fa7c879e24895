//! `/api_3/project/...` and `/api_3/mock-chroots/list`: projects as copr-cli makes, reads,
//! edits and deletes them, and what `dnf copr list` and `dnf copr search` ask (REFERENCE §3, §4).
//!
//! Deleting only asks ([`Db::request_project_deletion`](ferrocopr_schema::Db)): the project
//! leaves every read at once and its unfinished builds are to be canceled; the backend's
//! deletion pass removes its results and rows later, and until then its name is taken.

use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiPath, ApiQuery, Body};
use super::{PageQuery, list};
use crate::{BotState, texts};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use ferrocopr_schema::ProjectRef;
use ferrocopr_schema::db::{Project, ProjectSettings, Pruning};
use ferrocopr_schema::model::is_valid_name;
use ferrocopr_schema::permissions::{Action, Caller, permits};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// A project as Copr's API v3 shows it (its `project` schema, the fields we have).
pub fn project_json(state: &BotState, project: &Project) -> Value {
    let p = &project.project;
    let results = format!("{}/results/{}/{}", state.public_url, p.owner, p.project);
    let chroot_repos: serde_json::Map<String, Value> = project
        .chroots
        .iter()
        .map(|c| (c.clone(), Value::String(format!("{results}/{c}/"))))
        .collect();
    let s = &project.settings;
    json!({
        "id": project.id,
        "name": p.project,
        "ownername": p.owner,
        "full_name": p.to_string(),
        "description": s.description,
        "instructions": s.instructions,
        "homepage": s.homepage,
        "contact": s.contact,
        "additional_repos": s.additional_repos,
        "unlisted_on_hp": s.unlisted_on_hp,
        "enable_net": s.enable_net,
        "auto_prune": project.auto_prune,
        // Ours: days a superseded build stays published (null: the instance's default).
        "prune_days": project.prune_days,
        "packit_forge_projects_allowed": s.packit_forge_projects_allowed,
        "persistent": false,
        "devel_mode": false,
        "module_hotfixes": false,
        "chroot_repos": chroot_repos,
        "repo_url": results,
    })
}

#[derive(Deserialize)]
pub struct ProjectQuery {
    ownername: Option<String>,
    projectname: Option<String>,
}

fn required(field: &str, value: Option<String>) -> ApiResult<String> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest(texts::api_missing_field(field)))
}

/// `GET /api_3/project?ownername=&projectname=`
pub async fn get(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<ProjectQuery>,
) -> ApiResult<Json<Value>> {
    let project = ProjectRef {
        owner: required("ownername", q.ownername)?,
        project: required("projectname", q.projectname)?,
    };
    let found = extract::project(&state, &project).await?;
    Ok(Json(project_json(&state, &found)))
}

#[derive(Deserialize)]
pub struct ListQuery {
    ownername: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /api_3/project/list?ownername=`: an owner's projects, or every listed one.
pub async fn list_projects(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.page()?;
    let projects = match q.ownername.filter(|o| !o.is_empty()) {
        Some(owner) => state.db.projects_of(&owner, page).await?,
        None => state.db.listed_projects(page).await?,
    };
    let items = projects.iter().map(|p| project_json(&state, p)).collect();
    Ok(Json(list(items, page)))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    query: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /api_3/project/search?query=`
pub async fn search(
    State(state): State<BotState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let page = q.page.page()?;
    let query = required("query", q.query)?;
    let projects = state.db.search_projects(&query, page).await?;
    let items = projects.iter().map(|p| project_json(&state, p)).collect();
    Ok(Json(list(items, page)))
}

/// The fields of `project/add` and `project/edit` we keep; python-copr sends more (bootstrap,
/// isolation, …), which are taken and ignored, and `null` for what the user did not give.
#[derive(Deserialize, Default)]
pub struct ProjectFields {
    name: Option<String>,
    chroots: Option<Vec<String>>,
    description: Option<String>,
    instructions: Option<String>,
    homepage: Option<String>,
    contact: Option<String>,
    additional_repos: Option<Vec<String>>,
    unlisted_on_hp: Option<bool>,
    enable_net: Option<bool>,
    delete_after_days: Option<i64>,
    auto_prune: Option<bool>,
    /// Ours: days a superseded build stays published.
    prune_days: Option<u32>,
    packit_forge_projects_allowed: Option<Vec<String>>,
}

impl ProjectFields {
    /// `settings` with what these fields change.
    fn apply(self, mut settings: ProjectSettings) -> ProjectSettings {
        let ProjectFields {
            description,
            instructions,
            homepage,
            contact,
            additional_repos,
            unlisted_on_hp,
            enable_net,
            delete_after_days,
            packit_forge_projects_allowed,
            ..
        } = self;
        let s = &mut settings;
        s.description = description.unwrap_or(std::mem::take(&mut s.description));
        s.instructions = instructions.unwrap_or(std::mem::take(&mut s.instructions));
        s.homepage = homepage.unwrap_or(std::mem::take(&mut s.homepage));
        s.contact = contact.unwrap_or(std::mem::take(&mut s.contact));
        if let Some(repos) = additional_repos {
            s.additional_repos = repos;
        }
        s.unlisted_on_hp = unlisted_on_hp.unwrap_or(s.unlisted_on_hp);
        s.enable_net = enable_net.unwrap_or(s.enable_net);
        if let Some(days) = delete_after_days {
            s.delete_after = (days > 0).then(|| unix_now() + days * 86_400);
        }
        if let Some(allowed) = packit_forge_projects_allowed {
            s.packit_forge_projects_allowed = allowed;
        }
        settings
    }

    /// The forge repositories the request lets build into the project, each checked.
    fn check(&self) -> ApiResult<()> {
        for entry in self.packit_forge_projects_allowed.iter().flatten() {
            if !is_forge_project(entry) {
                return Err(ApiError::BadRequest(texts::api_bad_forge_project(entry)));
            }
        }
        Ok(())
    }

    /// The pruning the request asks for on top of `project`'s; `None` when it says nothing.
    fn pruning(&self, project: Option<&Project>) -> Option<Pruning> {
        if self.auto_prune.is_none() && self.prune_days.is_none() {
            return None;
        }
        let auto_prune = self
            .auto_prune
            .unwrap_or(project.is_none_or(|p| p.auto_prune));
        let days = self.prune_days.or_else(|| {
            project
                .and_then(|p| p.prune_days)
                .and_then(|d| u32::try_from(d).ok())
        });
        Some(match (auto_prune, days) {
            (false, _) => Pruning::Off,
            (true, None) => Pruning::Default,
            (true, Some(days)) => Pruning::AfterDays(days),
        })
    }
}

/// A forge repository as Copr's `packit_forge_projects_allowed` lists it: `host/owner/name`,
/// with GitLab's subgroups between owner and name (`gitlab.com/group/sub/name`), and globs
/// after the host as Copr takes them (`github.com/alice/*`).
fn is_forge_project(entry: &str) -> bool {
    let parts: Vec<&str> = entry.split('/').collect();
    let plain = |part: &str, glob: bool| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '-' | '_' | '.')
                    || glob && "*?".contains(c)
            })
    };
    parts.len() >= 3
        && parts[0].contains('.')
        && plain(parts[0], false)
        && parts[1..].iter().all(|part| plain(part, true))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Chroots the user named, each known to this instance.
fn instance_chroots(state: &BotState, chroots: Vec<String>) -> ApiResult<Vec<String>> {
    if let Some(unknown) = chroots.iter().find(|c| !state.chroots.contains(c)) {
        return Err(ApiError::BadRequest(texts::unknown_chroot(unknown)));
    }
    Ok(chroots)
}

#[derive(Deserialize)]
pub struct AddQuery {
    #[serde(default)]
    exist_ok: Option<String>,
}

/// `POST /api_3/project/add/{owner}`: a new project of the caller or of one of their groups.
pub async fn add(
    State(state): State<BotState>,
    ApiPath(owner): ApiPath<String>,
    ApiQuery(q): ApiQuery<AddQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let fields: ProjectFields = body.json()?;
    let name = required("name", fields.name.clone())?;
    let project = ProjectRef {
        owner,
        project: name,
    };
    let group_owner = project.owner.strip_prefix('@').unwrap_or(&project.owner);
    if !is_valid_name(group_owner) || !is_valid_name(&project.project) {
        return Err(ApiError::BadRequest(texts::bad_project_name(
            &project.to_string(),
        )));
    }
    let groups = state.db.user_groups(&user).await?;
    let caller = Caller {
        name: &user.name,
        instance_admin: user.admin,
        groups: &groups,
        granted: None,
    };
    if !permits(&caller, &project.owner, Action::Administer) {
        return Err(ApiError::Forbidden(texts::api_owner_forbidden(
            &user.name,
            &project.owner,
        )));
    }
    let chroots = instance_chroots(&state, fields.chroots.clone().unwrap_or_default())?;
    if chroots.is_empty() {
        return Err(ApiError::BadRequest(texts::NO_CHROOTS.to_owned()));
    }
    fields.check()?;
    let pruning = fields.pruning(None);
    let settings = fields.apply(ProjectSettings::default());
    let made = state
        .db
        .create_project(&project, &settings, &chroots)
        .await?;
    if !made && state.db.project_deletion_pending(&project).await? {
        return Err(ApiError::Conflict(texts::api_project_being_deleted(
            &project,
        )));
    }
    let exist_ok = matches!(q.exist_ok.as_deref(), Some("True" | "true" | "1"));
    if !made && !exist_ok {
        return Err(ApiError::Conflict(texts::api_project_exists(&project)));
    }
    if let Some(pruning) = pruning.filter(|_| made) {
        state.db.set_pruning(&project, pruning).await?;
    }
    let found = extract::project(&state, &project).await?;
    Ok(Json(project_json(&state, &found)))
}

/// `PUT /api_3/project/edit/{owner}/{project}`: changes what the body gives, keeps the rest.
pub async fn edit(
    State(state): State<BotState>,
    ApiPath((owner, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let fields: ProjectFields = body.json()?;
    let project = ProjectRef {
        owner,
        project: name,
    };
    let old = extract::project(&state, &project).await?;
    extract::allow(&state, &user, &project, Action::Administer).await?;
    let chroots = match fields.chroots.clone() {
        Some(chroots) if !chroots.is_empty() => Some(instance_chroots(&state, chroots)?),
        _ => None,
    };
    fields.check()?;
    let pruning = fields.pruning(Some(&old));
    let settings = fields.apply(old.settings);
    state
        .db
        .edit_project(&project, &settings, chroots.as_deref())
        .await?;
    if let Some(pruning) = pruning {
        state.db.set_pruning(&project, pruning).await?;
    }
    let found = extract::project(&state, &project).await?;
    Ok(Json(project_json(&state, &found)))
}

/// `DELETE` (or `POST`, older python-copr) `/api_3/project/delete/{owner}/{project}`: asks for
/// the project's deletion (its admins only) and answers the project as it was.
pub async fn delete(
    State(state): State<BotState>,
    ApiPath((owner, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    let project = ProjectRef {
        owner,
        project: name,
    };
    let found = extract::project(&state, &project).await?;
    extract::allow(&state, &user, &project, Action::Administer).await?;
    if !state.db.request_project_deletion(&project).await? {
        // Deleted by someone else in between.
        return Err(ApiError::NotFound(texts::api_project_not_found(&project)));
    }
    tracing::info!(owner = %project.owner, project = %project.project, user = %user.name, "project deletion requested");
    // The scheduler cancels the builds; the deletion pass removes what is left.
    state.scheduler_wake.notify_one();
    state.retention_wake.notify_one();
    Ok(Json(project_json(&state, &found)))
}

/// `GET /api_3/mock-chroots/list`: the instance's chroots, each with its (empty) comment.
pub async fn mock_chroots(State(state): State<BotState>) -> Json<Value> {
    let map: serde_json::Map<String, Value> = state
        .chroots
        .iter()
        .map(|c| (c.clone(), Value::String(String::new())))
        .collect();
    Json(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forge_projects_are_host_owner_name() {
        for good in [
            "github.com/alice/hello",
            "gitlab.com/group/sub/hello",
            "src.fedoraproject.org/rpms/hello.py",
        ] {
            assert!(is_forge_project(good), "{good}");
        }
        for bad in [
            "alice/hello",
            "https://github.com/alice/hello",
            "github.com/alice",
            "github.com/alice/",
            "github.com/../hello",
            "localhost/alice/hello",
            "github.com/alice/he llo",
        ] {
            assert!(!is_forge_project(bad), "{bad}");
        }
    }

    #[test]
    fn pruning_from_the_request_on_top_of_the_project() {
        let fields = |auto_prune, prune_days| ProjectFields {
            auto_prune,
            prune_days,
            ..Default::default()
        };
        assert_eq!(fields(None, None).pruning(None), None);
        assert_eq!(
            fields(Some(false), Some(3)).pruning(None),
            Some(Pruning::Off)
        );
        assert_eq!(
            fields(Some(true), None).pruning(None),
            Some(Pruning::Default)
        );
        assert_eq!(
            fields(None, Some(3)).pruning(None),
            Some(Pruning::AfterDays(3))
        );
    }
}
