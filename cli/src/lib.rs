//! The composition root: wires every part of ferrocopr into one process.
//!
//! `ferrocopr serve` calls [`run`]; so does the test harness, on port 0. Each part keeps its own
//! crate; this file only builds them from a [`Config`] and starts their loops.

use anyhow::Context;
use ferrocopr_bot::BotState;
use ferrocopr_bot::forge::{Forge, Forges, GitHub, GitLab, LocalGit};
use ferrocopr_bot::submit::Submissions;
pub use ferrocopr_bot::webhook::Secret;
use ferrocopr_distgit::DistGit;
use ferrocopr_repo_publisher::Publisher;
use ferrocopr_scheduler::config::SchedulerConfig;
use ferrocopr_scheduler::host::{BuilderHost, LocalBuilders};
use ferrocopr_scheduler::{LiveBuilds, Scheduler};
use ferrocopr_schema::Db;
use ferrocopr_schema::model::DistgitInstance;
use ferrocopr_signer::remote::RemoteSigner;
use ferrocopr_signer::{KeyAlgorithm, KeyPolicy, LocalSigner, SignerClient};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Everything `run` needs; the binary fills it from options and environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database (SQLite by default), results, DistGit and keys live.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; `None` means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The URL users and dnf reach this service at, e.g. `http://127.0.0.1:8080`.
    pub public_url: String,
    /// GitHub webhook secrets; any of them verifies a delivery, so a secret can be rotated.
    pub github_webhook_secrets: Vec<Secret>,
    /// Without a token, `.copr.yaml` is read from local repositories and statuses are logged
    /// (the quick start's mode).
    pub github_token: Option<Secret>,
    /// The GitHub API base, `https://api.github.com` unless a test points it elsewhere.
    pub github_api_url: String,
    /// GitLab webhook secrets (`X-Gitlab-Token`); any of them is accepted.
    pub gitlab_webhook_secrets: Vec<Secret>,
    /// Without a token, GitLab events are handled like GitHub's without one: files from
    /// local repositories, statuses to the log.
    pub gitlab_token: Option<Secret>,
    /// The GitLab instance, `https://gitlab.com` unless configured otherwise.
    pub gitlab_url: String,
    /// How long a closed pull request's CoprDir is kept (Copr keeps them 40 days, Packit 60;
    /// ours defaults to 30).
    pub pr_dir_retention: Duration,
    /// Days superseded builds stay in the repositories of projects that set no period of their
    /// own (Copr's backend keeps them 14).
    pub prune_days: u32,
    /// The program builders run: this binary, started as `<program> builder --task T --resultdir D`.
    pub builder_program: PathBuf,
    /// How many builds the local builder pool runs at once.
    pub local_builders: usize,
    /// The scheduler's limits, routing and remote builders (YAML); `None`: no limits beyond
    /// the local pool's size.
    pub scheduler_config: Option<PathBuf>,
    /// The domain in signing keys' user ids (`…@copr.<domain>`).
    pub signer_domain: String,
    /// The key-encryption key the signing keys are encrypted with at rest; `None`: a key made
    /// on first start in the keys' directory.
    pub signer_kek_file: Option<PathBuf>,
    /// The algorithm of newly made signing keys (existing keys keep theirs).
    pub signer_key_algorithm: KeyAlgorithm,
    /// A signing service (`ferrocopr signer`) to use instead of keys in this process; then
    /// this process holds no private key.
    pub signer_remote: Option<RemoteSignerConfig>,
    /// The chroots this instance builds in (`.copr.yaml` aliases expand to these).
    pub chroots: Vec<String>,
    /// How the repodata's metadata files are compressed: gzip (the default, which every dnf
    /// reads) or zstd.
    pub repodata_compression: ferrocopr_repo_publisher::repodata::Compression,
    /// The dist-git instances builds may take packages from (Fedora's and CentOS Stream's by
    /// default); the scheduler config's `distgit_instances` adds to these.
    pub distgit_instances: BTreeMap<String, DistgitInstance>,
}

/// Where `ferrocopr signer` is, and this backend's bearer token for it.
#[derive(Debug, Clone)]
pub struct RemoteSignerConfig {
    pub url: String,
    pub token: Secret,
}

/// The URL local builders reach this process at: the listening address itself, so they never
/// depend on how (or whether) the public URL reaches back to this machine.
fn internal_url(listener: &tokio::net::TcpListener) -> anyhow::Result<String> {
    let mut address = listener.local_addr()?;
    if address.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        address.set_ip(loopback);
    }
    Ok(format!("http://{address}"))
}

/// The data directory (made when missing), canonical, and the database: `database_url`, or
/// SQLite in the data directory.
pub async fn open_data(
    data_dir: &Path,
    database_url: Option<&str>,
) -> anyhow::Result<(PathBuf, Db)> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    let database_url = match database_url {
        Some(url) => url.to_owned(),
        None => format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("ferrocopr.db").display()
        ),
    };
    let db = Db::connect(&database_url)
        .await
        .context("opening the database")?;
    Ok((data_dir, db))
}

/// Runs every part until `shutdown` completes, serving HTTP on `listener`.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (data_dir, db) = open_data(&config.data_dir, config.database_url.as_deref()).await?;
    let public_url = config.public_url.trim_end_matches('/').to_owned();
    let results_dir = data_dir.join("results");
    std::fs::create_dir_all(&results_dir)?;

    let signer: Arc<dyn SignerClient> = match &config.signer_remote {
        Some(remote) => Arc::new(
            RemoteSigner::new(&remote.url, remote.token.expose().to_owned())
                .context("the signing service")?,
        ),
        None => Arc::new(
            LocalSigner::with_policy(
                data_dir.join("signer").join("keys"),
                config.signer_domain.clone(),
                config.signer_kek_file.clone(),
                KeyPolicy {
                    algorithm: config.signer_key_algorithm,
                    ..KeyPolicy::default()
                },
            )
            .context("opening the signer's keys")?,
        ),
    };
    let distgit = Arc::new(DistGit::new(data_dir.join("distgit")));
    let github: Arc<dyn Forge> = match &config.github_token {
        Some(token) => Arc::new(GitHub::new(&config.github_api_url, Some(token.expose()))?),
        None => {
            tracing::warn!(
                "no GitHub token: reading .copr.yaml from local repositories, statuses to the log"
            );
            Arc::new(LocalGit)
        }
    };
    let gitlab: Arc<dyn Forge> = match &config.gitlab_token {
        Some(token) => Arc::new(GitLab::new(&config.gitlab_url, token.expose())?),
        None => Arc::new(LocalGit),
    };
    let scheduler_wake = Arc::new(Notify::new());
    let reporter_wake = Arc::new(Notify::new());
    let retention_wake = Arc::new(Notify::new());

    let stop = CancellationToken::new();
    let scheduling = match &config.scheduler_config {
        Some(path) => SchedulerConfig::load(path)?,
        None => SchedulerConfig::default(),
    };
    let mut distgit_instances = config.distgit_instances.clone();
    distgit_instances.extend(scheduling.distgit_instances.clone());
    let internal = internal_url(&listener)?;

    let bot = BotState {
        db: db.clone(),
        forges: Forges { github, gitlab },
        github_secrets: config.github_webhook_secrets.clone().into(),
        gitlab_secrets: config.gitlab_webhook_secrets.clone().into(),
        pr_dir_retention: config.pr_dir_retention,
        public_url: public_url.clone(),
        results_dir: results_dir.clone(),
        chroots: config.chroots.clone().into(),
        submissions: Submissions {
            db: db.clone(),
            chroots: config.chroots.clone().into(),
            distgit_instances: Arc::new(distgit_instances.clone()),
            uploads_dir: data_dir.join("uploads"),
            scheduler_wake: Arc::clone(&scheduler_wake),
        },
        templates: Arc::new(ferrocopr_bot::templates()?),
        deliveries: Arc::new(Notify::new()),
        scheduler_wake: Arc::clone(&scheduler_wake),
        reporter_wake: Arc::clone(&reporter_wake),
        retention_wake: Arc::clone(&retention_wake),
    };
    let builders: Arc<dyn BuilderHost> = match &scheduling.builders {
        Some(remote) => remote.builders(stop.clone())?,
        None => Arc::new(LocalBuilders::new(
            config.builder_program.clone(),
            data_dir.join("work"),
            config.local_builders,
        )),
    };
    let scheduler = Scheduler {
        db,
        results_dir,
        builders,
        limits: scheduling.limits,
        routing: scheduling.routing,
        signer,
        distgit: Arc::clone(&distgit),
        publisher: Publisher::with_compression(config.repodata_compression),
        lookaside_url: format!("{internal}/distgit/lookaside/pkgs"),
        uploads_url: format!("{internal}/uploads"),
        distgit_instances,
        distgit_url: format!("{internal}/distgit"),
        wake: scheduler_wake,
        changed: reporter_wake,
        retention_wake,
        prune_days: config.prune_days,
        live: LiveBuilds::default(),
    };

    let app = ferrocopr_bot::app(bot.clone()).nest("/distgit", distgit.router());
    let mut scheduler_task = tokio::spawn(scheduler.run(stop.clone()));
    let mut workers = tokio::spawn(ferrocopr_bot::run_workers(bot, stop.clone()));
    tracing::info!(address = %listener.local_addr()?, %public_url, "ferrocopr is serving");
    let server_stop = stop.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        tokio::select! {
            () = shutdown => {}
            () = server_stop.cancelled() => {}
        }
    });
    let outcome = tokio::select! {
        served = server => served.context("HTTP server"),
        ended = &mut scheduler_task => match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.context("scheduler")),
            Err(e) => Err(anyhow::Error::from(e).context("scheduler")),
        },
        ended = &mut workers => match ended {
            Ok(()) => Ok(()),
            Err(e) => Err(anyhow::Error::from(e).context("bot workers")),
        },
    };
    stop.cancel();
    if !workers.is_finished() {
        let _ = workers.await;
    }
    if !scheduler_task.is_finished() {
        let _ = scheduler_task.await;
    }
    outcome
}
