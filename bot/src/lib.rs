//! The bot: ferrocopr's frontend (seed step 1 and the user's view of everything).
//!
//! It owns the forge side: webhooks in ([`webhook`]), `.copr.yaml` read at the event's commit
//! and builds requested ([`events`]), commit statuses out ([`reporter`]); and the HTTP side
//! users and dnf read ([`web`]). It never moves a build's state: the scheduler does.

pub mod api;
pub mod commands;
pub mod events;
pub mod forge;
pub mod pages;
mod queue;
pub mod reporter;
pub mod submit;
pub mod texts;
pub mod users;
pub mod web;
pub mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use ferrocopr_schema::Db;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_http::services::ServeDir;

/// Shared state of the bot's handlers and loops.
#[derive(Clone)]
pub struct BotState {
    pub db: Db,
    pub forges: forge::Forges,
    pub github_secrets: Arc<[webhook::Secret]>,
    pub gitlab_secrets: Arc<[webhook::Secret]>,
    /// How long a closed pull request's CoprDir is kept before it is deleted.
    pub pr_dir_retention: Duration,
    /// The URL users and dnf reach this service at, without a trailing slash.
    pub public_url: String,
    /// The results tree, served under `/results/`.
    pub results_dir: PathBuf,
    /// The chroots this instance builds in; `.copr.yaml` aliases expand to these.
    pub chroots: Arc<[String]>,
    /// Builds requested through the API or the command line; its upload store is served
    /// under `/uploads/` to builders.
    pub submissions: submit::Submissions,
    pub templates: Arc<minijinja::Environment<'static>>,
    /// Rung when a delivery is recorded.
    pub deliveries: Arc<Notify>,
    /// Rung when a build is requested.
    pub scheduler_wake: Arc<Notify>,
    /// Rung when a build changes state.
    pub reporter_wake: Arc<Notify>,
    /// Rung when a CoprDir was scheduled for deletion or a project's deletion was asked for (the
    /// backend's retention loop carries both out).
    pub retention_wake: Arc<Notify>,
}

/// The templates, embedded in the binary.
pub fn templates() -> anyhow::Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    // minijinja's default, made explicit because everything users write depends on it: `.html`
    // templates escape every value (a description with `<script>` is shown as text).
    env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("macros.html", include_str!("../templates/macros.html")),
        ("home.html", include_str!("../templates/home.html")),
        ("owner.html", include_str!("../templates/owner.html")),
        ("project.html", include_str!("../templates/project.html")),
        ("build.html", include_str!("../templates/build.html")),
        ("status.html", include_str!("../templates/status.html")),
        ("error.html", include_str!("../templates/error.html")),
    ] {
        env.add_template(name, source)?;
    }
    env.add_filter("datetime", |seconds: Option<i64>| {
        seconds.map_or_else(|| "-".to_owned(), texts::utc_time)
    });
    env.add_filter("duration", texts::duration);
    // Links to owners and projects, in Copr's form for groups (`/coprs/g/{group}/…`).
    env.add_function("owner_url", |owner: &str| pages::owner_url(owner));
    env.add_function("project_url", |owner: &str, project: &str| {
        pages::project_url(owner, project)
    });
    Ok(env)
}

/// The bot's HTTP routes.
pub fn app(state: BotState) -> Router {
    let results = ServeDir::new(&state.results_dir);
    let uploads = ServeDir::new(&state.submissions.uploads_dir);
    Router::new()
        .route("/", get(pages::home))
        .route(
            "/webhooks/github",
            post(webhook::github)
                .layer(DefaultBodyLimit::max(webhook::BODY_LIMIT))
                .layer(axum::middleware::from_fn(webhook::refuse_oversized)),
        )
        .route(
            "/webhooks/gitlab",
            post(webhook::gitlab)
                .layer(DefaultBodyLimit::max(webhook::BODY_LIMIT))
                .layer(axum::middleware::from_fn(webhook::refuse_oversized)),
        )
        .route(
            "/coprs/{owner}/{dirname}/repo/{name_release}/dnf.repo",
            get(web::dnf_repo),
        )
        .route("/coprs/{owner}/", get(pages::owner_page))
        .route("/coprs/{owner}/{project}/", get(pages::project_page))
        .route(
            "/coprs/{owner}/{dirname}/build/{id}/",
            get(pages::build_page),
        )
        .route(
            "/coprs/{owner}/{dirname}/build/{id}/live-log/{part}",
            get(pages::live_log),
        )
        // Copr's URLs of a group's pages; the routes above answer `/coprs/@{group}/…` (the form
        // dnf asks repo files at). The static `g` wins over `{owner}`: a user named `g` would
        // lose their projects' pages to these (Copr's URLs have the same clash).
        .route("/coprs/g/{group}/", get(pages::group_page))
        .route(
            "/coprs/g/{group}/{project}/",
            get(pages::group_project_page),
        )
        .route(
            "/coprs/g/{group}/{dirname}/build/{id}/",
            get(pages::group_build_page),
        )
        .route(
            "/coprs/g/{group}/{dirname}/build/{id}/live-log/{part}",
            get(pages::group_live_log),
        )
        .route("/status/", get(pages::status_page))
        .route("/api/queue", get(queue::queue))
        .route("/api_3/", get(api::home))
        .nest("/api_3", api::routes())
        // Copr's short form, which its own clients and old links use.
        .route("/coprs/build/{id}/", get(pages::build_by_id))
        .nest_service("/results", results)
        .nest_service("/uploads", uploads)
        .fallback(pages::not_found)
        .with_state(state)
}

/// Runs the bot's loops (delivery handling and status reporting) until `shutdown`.
pub async fn run_workers(state: BotState, shutdown: CancellationToken) {
    tokio::join!(
        events::run(state.clone(), shutdown.clone()),
        reporter::run(state, shutdown),
    );
}
