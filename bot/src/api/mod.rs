//! Copr's API v3 under `/api_3/` (issue 7, REFERENCE §4): what copr-cli, python-copr and the
//! dnf copr plugins send, answered in Copr's shapes. Reading is open; writing needs an API token
//! (HTTP Basic `login:token`, [`crate::users`]) and the project permission
//! ([`ferrocopr_schema::permissions`]). Builds requested here take the same path as every other
//! request ([`crate::submit`]); the scheduler does the rest.
//!
//! Every answer is JSON, errors included ([`error::ApiError`]): unknown endpoints, wrong methods
//! and bodies axum refuses too.

pub mod builds;
pub mod error;
pub mod extract;
pub mod multipart;
pub mod packages;
pub mod projects;
pub mod rpmrepo;

use crate::{BotState, texts};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use error::{ApiError, ApiResult};
use ferrocopr_schema::db::{Direction, Page};
use serde::Deserialize;
use serde_json::{Value, json};

/// A JSON request is a few fields; anything larger is a mistake.
pub const JSON_LIMIT: usize = 1024 * 1024;

/// An uploaded SRPM is held in memory while it is stored: a cap on what one request may take.
/// Large enough for SRPMs with vendored sources (Copr's own cap is larger, but streams).
pub const UPLOAD_LIMIT: usize = 256 * 1024 * 1024;

/// Pages longer than this are refused: one request should not walk a whole table.
const MAX_LIMIT: i64 = 1000;

/// A list's page as the query gives it (`limit`, `offset`, `order`, `order_type`). Text, since
/// query values are text. Lists that read [`PageQuery::order`] honour the order; the others
/// take it and keep their own (by name).
#[derive(Deserialize, Default)]
pub struct PageQuery {
    limit: Option<String>,
    offset: Option<String>,
    order: Option<String>,
    order_type: Option<String>,
}

/// The order a list was asked for and is answered in: a field the list offers, and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub field: &'static str,
    pub direction: Direction,
}

impl PageQuery {
    pub fn page(&self) -> ApiResult<Page> {
        let number = |v: &Option<String>, default| match v.as_deref() {
            None | Some("") => Ok(default),
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| ApiError::BadRequest(texts::API_BAD_PAGE.to_owned())),
        };
        let limit = number(&self.limit, MAX_LIMIT)?;
        let offset = number(&self.offset, 0)?;
        if !(1..=MAX_LIMIT).contains(&limit) || offset < 0 {
            return Err(ApiError::BadRequest(texts::API_BAD_PAGE.to_owned()));
        }
        Ok(Page { limit, offset })
    }

    /// The order asked for, among the `fields` this list offers (the first is the default);
    /// `order_type` is `ASC` or `DESC` in any case, newest (largest) first by default.
    pub fn order(&self, fields: &[&'static str]) -> ApiResult<Order> {
        let field = match self.order.as_deref() {
            None | Some("") => fields[0],
            Some(asked) => fields
                .iter()
                .copied()
                .find(|f| *f == asked)
                .ok_or_else(|| {
                    ApiError::BadRequest(texts::api_bad_order("order", asked, fields))
                })?,
        };
        let direction = match self.order_type.as_deref() {
            None | Some("") => Direction::Desc,
            Some(t) if t.eq_ignore_ascii_case("asc") => Direction::Asc,
            Some(t) if t.eq_ignore_ascii_case("desc") => Direction::Desc,
            Some(t) => {
                return Err(ApiError::BadRequest(texts::api_bad_order(
                    "order_type",
                    t,
                    &["ASC", "DESC"],
                )));
            }
        };
        Ok(Order { field, direction })
    }
}

/// A list answer: python-copr's `next_page` asks again at `offset + limit` from `meta`.
pub fn list(items: Vec<Value>, page: Page) -> Value {
    json!({
        "items": items,
        "meta": { "limit": page.limit, "offset": page.offset, "order": "id", "order_type": "DESC" },
    })
}

/// [`list`] for a list that honours its order: `meta` says which it was.
pub fn list_ordered(items: Vec<Value>, page: Page, order: Order) -> Value {
    let order_type = match order.direction {
        Direction::Asc => "ASC",
        Direction::Desc => "DESC",
    };
    json!({
        "items": items,
        "meta": { "limit": page.limit, "offset": page.offset, "order": order.field,
                  "order_type": order_type },
    })
}

/// `GET /api_3/`: python-copr asks with the slash, which a nested `/` does not match, so
/// [`crate::app`] routes it here itself.
pub async fn home() -> axum::Json<Value> {
    axum::Json(json!({ "version": 3 }))
}

/// `GET /api_3/auth-check`: who the credentials name (copr-cli's `build` asks first).
async fn auth_check(
    State(state): State<BotState>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Value>> {
    let user = extract::user(&state, &headers).await?;
    Ok(axum::Json(json!({ "id": user.id, "name": user.name })))
}

async fn not_found() -> ApiError {
    ApiError::NotFound(texts::API_NOT_FOUND.to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The routes, to be nested under `/api_3`.
pub fn routes() -> Router<BotState> {
    let json_limit = DefaultBodyLimit::max(JSON_LIMIT);
    Router::new()
        .route("/", get(home))
        .route("/auth-check", get(auth_check))
        .route("/project", get(projects::get))
        .route("/project/list", get(projects::list_projects))
        .route("/project/search", get(projects::search))
        .route("/project/add/{owner}", post(projects::add))
        .route(
            "/project/edit/{owner}/{project}",
            post(projects::edit).put(projects::edit),
        )
        .route(
            "/project/delete/{owner}/{project}",
            post(projects::delete).delete(projects::delete),
        )
        .route("/mock-chroots/list", get(projects::mock_chroots))
        .route("/build/list", get(builds::list_builds))
        .route("/build/{id}", get(builds::get))
        .route(
            "/build/cancel/{id}",
            post(builds::cancel).put(builds::cancel),
        )
        .route(
            "/build/check-before-build",
            post(builds::check_before_build),
        )
        .route("/build/create/url", post(builds::create_from_url))
        .route("/build/create/scm", post(builds::create_from_scm))
        .route("/build/create/custom", post(builds::create_from_custom))
        .route(
            "/build/create/upload",
            post(builds::create_from_upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/package", get(packages::get))
        .route("/package/list", get(packages::list_packages))
        .route(
            "/package/add/{owner}/{project}/{package}/{source_type}",
            post(packages::add),
        )
        .route(
            "/package/edit/{owner}/{project}/{package}/{source_type}",
            post(packages::edit).put(packages::edit),
        )
        .route(
            "/package/delete/{owner}/{project}/{package}",
            post(packages::delete).delete(packages::delete),
        )
        .route(
            "/package/delete",
            post(packages::delete_named).delete(packages::delete_named),
        )
        .route("/package/build", post(packages::build))
        .route("/build-chroot", get(builds::build_chroot))
        .route("/build-chroot/list", get(builds::build_chroot_list))
        .route(
            "/rpmrepo/{owner}/{dirname}/{name_release}",
            get(rpmrepo::rpmrepo),
        )
        .route(
            "/rpmrepo/{owner}/{dirname}/{name_release}/",
            get(rpmrepo::rpmrepo),
        )
        .layer(json_limit)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}
