//! `GET /api_3/rpmrepo/{owner}/{dir}/{name_release}/`: what dnf5's copr plugin reads instead of
//! the `.repo` file dnf4 gets (REFERENCE §3), and writes the repo file from itself.

use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use crate::{BotState, texts};
use axum::Json;
use axum::extract::State;
use ferrocopr_schema::{Chroot, ProjectRef};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The answer for a CoprDir with `chroots`: every name_release of the project with its arches
/// (the plugin picks its own), the results URL it builds the baseurl from, the CoprDir, and no
/// dependencies (ferrocopr has no runtime dependencies between projects).
pub fn rpmrepo_json(
    public_url: &str,
    dirname: &str,
    chroots: &[String],
    delete_after_days: Option<i64>,
) -> Value {
    let mut repos: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for chroot in chroots.iter().filter_map(|c| Chroot::parse(c)) {
        repos
            .entry(chroot.name_release())
            .or_default()
            .insert(chroot.arch.clone(), json!({ "opts": {} }));
    }
    let repos: Map<String, Value> = repos
        .into_iter()
        .map(|(name_release, arches)| (name_release, json!({ "arch": arches })))
        .collect();
    let mut answer = json!({
        "results_url": format!("{public_url}/results"),
        "repos": repos,
        "directories": { dirname: {} },
        "dependencies": [],
    });
    if let Some(days) = delete_after_days {
        answer["delete_after_days"] = json!(days);
    }
    answer
}

/// The handler; the name_release is not checked, as Copr's is not: the plugin looks it up in
/// `repos` and tells the user when it is missing.
pub async fn rpmrepo(
    State(state): State<BotState>,
    ApiPath((owner, dirname, _name_release)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let project = ProjectRef {
        owner: owner.clone(),
        project: dirname.split(':').next().unwrap_or(&dirname).to_owned(),
    };
    let chroots = state
        .db
        .dir_chroots(&owner, &dirname)
        .await?
        .ok_or_else(|| ApiError::NotFound(texts::api_project_not_found(&project)))?;
    let delete_after = match state.db.project(&project).await? {
        Some(p) => p.settings.delete_after,
        None => None,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = delete_after.map(|at| ((at - now) / 86_400).max(0));
    Ok(Json(rpmrepo_json(
        &state.public_url,
        &dirname,
        &chroots,
        days,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape dnf5's copr plugin parses (REFERENCE §3; Copr's `apiv3_rpmrepo.py`).
    #[test]
    fn rpmrepo_snapshot() {
        let chroots = [
            "epel-9-x86_64".to_owned(),
            "fedora-41-aarch64".to_owned(),
            "fedora-41-x86_64".to_owned(),
        ];
        let answer = rpmrepo_json("http://127.0.0.1:8080", "hello:pr:3", &chroots, None);
        let expected = json!({
            "results_url": "http://127.0.0.1:8080/results",
            "repos": {
                "epel-9": { "arch": { "x86_64": { "opts": {} } } },
                "fedora-41": {
                    "arch": { "aarch64": { "opts": {} }, "x86_64": { "opts": {} } }
                }
            },
            "directories": { "hello:pr:3": {} },
            "dependencies": []
        });
        assert_eq!(answer, expected);
        let answer = rpmrepo_json("http://x", "hello", &chroots[..1], Some(7));
        assert_eq!(answer["delete_after_days"], json!(7));
    }
}
