//! `ferrocopr`: the one binary. It parses options and calls the parts' entry points; nothing
//! else lives here.

use clap::{Parser, Subcommand};
use ferrocopr_bot::webhook::Secret;
use ferrocopr_schema::model::DEFAULT_CHROOTS;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ferrocopr",
    version,
    about = "A forge-native RPM build service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every part in one process: bot, scheduler, local builders, DistGit, signer, publisher.
    Serve(Box<ServeArgs>),
    /// Run one builder task (the scheduler starts this on a builder host).
    Builder {
        /// The task JSON.
        #[arg(long)]
        task: PathBuf,
        /// Where the results go.
        #[arg(long)]
        resultdir: PathBuf,
        /// The host's build lock: a second builder on the host waits for the first.
        #[arg(long)]
        lock: Option<PathBuf>,
    },
    /// Import one SRPM into a DistGit store, as the scheduler does after an SRPM build, and
    /// print the commits it made as JSON (for operators and for tests that kill an import).
    DistgitImport(DistgitImportArgs),
    /// Write `DIR/repodata` from the RPMs under `DIR`, recursively, as `createrepo_c` does
    /// (with ferrocopr's native writer, so the two can be put side by side).
    Createrepo {
        /// Reuse what the existing repodata says of packages whose file is unchanged.
        #[arg(long)]
        update: bool,
        /// How to compress the metadata files: `gz` (createrepo_c's default) or `zstd`.
        #[arg(long, default_value = "gz")]
        compression: ferrocopr_repo_publisher::repodata::Compression,
        /// The repository directory.
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct DistgitImportArgs {
    /// The DistGit root (`<data dir>/distgit` for `ferrocopr serve`).
    #[arg(long)]
    root: PathBuf,
    /// The project's owner.
    #[arg(long)]
    owner: String,
    /// The project's name.
    #[arg(long)]
    project: String,
    /// The CoprDir (default: the project's main directory, named like the project).
    #[arg(long)]
    dirname: Option<String>,
    /// A branch to commit the import to (one per chroot family, e.g. `f41`); repeat for more.
    #[arg(long = "branch", required = true)]
    branches: Vec<String>,
    /// The `.src.rpm` to import.
    srpm: PathBuf,
}

/// No `Debug`: it holds secrets.
#[derive(clap::Args)]
struct ServeArgs {
    /// Where the database, results, DistGit and keys live.
    #[arg(long, env = "FERROCOPR_DATA_DIR", default_value = "./ferrocopr-data")]
    data_dir: PathBuf,
    /// The address to serve HTTP on.
    #[arg(long, env = "FERROCOPR_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The URL users reach this service at (default: http://<listen>).
    #[arg(long, env = "FERROCOPR_PUBLIC_URL")]
    public_url: Option<String>,
    /// `postgres://…` to use PostgreSQL instead of SQLite in the data dir.
    #[arg(long, env = "FERROCOPR_DATABASE_URL")]
    database_url: Option<String>,
    /// GitHub webhook secret(s); comma-separated to accept several during a rotation.
    #[arg(
        long,
        env = "FERROCOPR_GITHUB_WEBHOOK_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    github_webhook_secret: Vec<String>,
    /// GitHub token for reading files and setting commit statuses.
    #[arg(long, env = "FERROCOPR_GITHUB_TOKEN", hide_env_values = true)]
    github_token: Option<String>,
    /// The GitHub API base URL.
    #[arg(
        long,
        env = "FERROCOPR_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    github_api_url: String,
    /// GitLab webhook secret(s) (`X-Gitlab-Token`); comma-separated to accept several.
    #[arg(
        long,
        env = "FERROCOPR_GITLAB_WEBHOOK_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    gitlab_webhook_secret: Vec<String>,
    /// GitLab token (scope `api`) for reading files, statuses and comments.
    #[arg(long, env = "FERROCOPR_GITLAB_TOKEN", hide_env_values = true)]
    gitlab_token: Option<String>,
    /// The GitLab instance.
    #[arg(
        long,
        env = "FERROCOPR_GITLAB_URL",
        default_value = "https://gitlab.com"
    )]
    gitlab_url: String,
    /// Days a closed pull request's CoprDir is kept before it is deleted.
    #[arg(long, env = "FERROCOPR_PR_RETENTION_DAYS", default_value_t = 30)]
    pr_retention_days: u64,
    /// How many builds the local builder pool runs at once (0: none; builds wait queued).
    #[arg(long, env = "FERROCOPR_LOCAL_BUILDERS", default_value_t = 2)]
    local_builders: usize,
    /// The scheduler's config file (YAML): limits, builder tags, and remote builders from
    /// resalloc-style pools or a resalloc server, reached over SSH (see docs/scheduler.md).
    #[arg(long, env = "FERROCOPR_SCHEDULER_CONFIG")]
    scheduler_config: Option<PathBuf>,
    /// How the repodata's metadata files are compressed: `gz` (every dnf reads it) or `zstd`
    /// (smaller and faster; dnf reads it when its libsolv has zstd, as Fedora's and Debian's do).
    #[arg(long, env = "FERROCOPR_REPODATA_COMPRESSION", default_value = "gz")]
    repodata_compression: ferrocopr_repo_publisher::repodata::Compression,
    /// The domain in signing keys' user ids.
    #[arg(long, env = "FERROCOPR_DOMAIN", default_value = "localhost")]
    domain: String,
    /// A file holding the key-encryption key the projects' signing keys are encrypted with at
    /// rest (default: one made on first start, beside the keys).
    #[arg(long, env = "FERROCOPR_SIGNER_KEK_FILE")]
    signer_kek_file: Option<PathBuf>,
    /// The chroots this instance builds in, comma-separated (default: Fedora, EPEL and CentOS
    /// Stream releases for x86_64 and aarch64).
    #[arg(long, env = "FERROCOPR_CHROOTS", value_delimiter = ',')]
    chroots: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Builder {
            task,
            resultdir,
            lock,
        } => ferrocopr_builder::main_on_host(&task, &resultdir, lock.as_deref()),
        Command::DistgitImport(args) => {
            // stdout carries the result alone.
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            match distgit_import(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ferrocopr: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Createrepo {
            update,
            compression,
            dir,
        } => match ferrocopr_repo_publisher::repodata::createrepo_with(&dir, update, compression) {
            Ok(outcome) => {
                println!(
                    "{}: {} packages ({} reused, {} read)",
                    dir.join("repodata").display(),
                    outcome.packages,
                    outcome.reused,
                    outcome.read
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ferrocopr: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .init();
            match serve(*args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ferrocopr: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Imports as the scheduler would, on stdout only the result:
/// `{"package":…,"epoch":…,"version":…,"release":…,"commits":[{"branch":…,"commit":…}]}`.
fn distgit_import(args: DistgitImportArgs) -> anyhow::Result<()> {
    let distgit = ferrocopr_distgit::DistGit::new(args.root);
    let dirname = args.dirname.unwrap_or_else(|| args.project.clone());
    let project = ferrocopr_schema::model::ProjectRef {
        owner: args.owner,
        project: args.project,
    };
    let import = distgit.import_srpm(&project, &dirname, &args.srpm, &args.branches)?;
    let commits: Vec<serde_json::Value> = import
        .commits
        .iter()
        .map(|c| serde_json::json!({ "branch": c.branch, "commit": c.commit }))
        .collect();
    let out = serde_json::json!({
        "package": import.package,
        "epoch": import.epoch,
        "version": import.version,
        "release": import.release,
        "commits": commits,
    });
    println!("{out}");
    Ok(())
}

#[tokio::main]
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{}", args.listen));
    let secrets = args
        .github_webhook_secret
        .into_iter()
        .map(Secret::new)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| e.context("--github-webhook-secret"))?;
    let token = args
        .github_token
        .map(Secret::new)
        .transpose()
        .map_err(|e| e.context("--github-token"))?;
    let gitlab_secrets = args
        .gitlab_webhook_secret
        .into_iter()
        .map(Secret::new)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| e.context("--gitlab-webhook-secret"))?;
    let gitlab_token = args
        .gitlab_token
        .map(Secret::new)
        .transpose()
        .map_err(|e| e.context("--gitlab-token"))?;
    let config = ferrocopr::Config {
        data_dir: args.data_dir,
        database_url: args.database_url,
        public_url,
        github_webhook_secrets: secrets,
        github_token: token,
        github_api_url: args.github_api_url,
        gitlab_webhook_secrets: gitlab_secrets,
        gitlab_token,
        gitlab_url: args.gitlab_url,
        pr_dir_retention: std::time::Duration::from_secs(args.pr_retention_days * 24 * 3600),
        builder_program: std::env::current_exe()?,
        local_builders: args.local_builders,
        scheduler_config: args.scheduler_config.clone(),
        signer_domain: args.domain,
        signer_kek_file: args.signer_kek_file,
        chroots: if args.chroots.is_empty() {
            DEFAULT_CHROOTS.iter().map(|c| (*c).to_owned()).collect()
        } else {
            args.chroots
        },
        distgit_instances: ferrocopr_schema::model::default_distgit_instances(),
        repodata_compression: args.repodata_compression,
    };
    ferrocopr::run(config, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
