//! `ferrocopr`: the one binary. It parses options and calls the parts' entry points; nothing
//! else lives here.

use clap::{Parser, Subcommand};
use ferrocopr_bot::webhook::Secret;
use ferrocopr_schema::model::DEFAULT_CHROOTS;
use ferrocopr_signer::KeyAlgorithm;
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
    /// Run only the signer, as an HTTP service for `serve --signer-url` (keys stay on this host).
    Signer(SignerArgs),
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
    /// Manage users: `ferrocopr user create NAME` prints a ready copr-cli config.
    #[command(subcommand)]
    User(UserCommand),
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

#[derive(Subcommand)]
enum UserCommand {
    /// Make a user with an API token and print its copr-cli config (`~/.config/copr`).
    Create {
        /// The user name (letters, digits, `_`, `-`, `.`).
        name: String,
        /// An instance admin, who may do anything to any project.
        #[arg(long)]
        admin: bool,
        /// Make the user a member of this group (`@<group>` owns projects); repeat for more.
        #[arg(long = "group")]
        groups: Vec<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Where an instance keeps its data, for commands that work on it beside `serve`.
#[derive(clap::Args)]
struct DataArgs {
    /// The data directory `ferrocopr serve` uses.
    #[arg(long, env = "FERROCOPR_DATA_DIR", default_value = "./ferrocopr-data")]
    data_dir: PathBuf,
    /// `postgres://…` when `serve` uses PostgreSQL.
    #[arg(long, env = "FERROCOPR_DATABASE_URL")]
    database_url: Option<String>,
    /// The URL users reach the instance at, for copr-cli's `copr_url`.
    #[arg(
        long,
        env = "FERROCOPR_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    public_url: String,
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

#[derive(clap::Args)]
struct SignerArgs {
    /// The address to serve the signer's HTTP API on.
    #[arg(
        long,
        env = "FERROCOPR_SIGNER_LISTEN",
        default_value = "127.0.0.1:5050"
    )]
    listen: String,
    /// The directory of the projects' keys.
    #[arg(long, env = "FERROCOPR_SIGNER_KEYS")]
    keys: PathBuf,
    /// The key-encryption key's file (made on first start when missing); keep it apart from
    /// the keys, so that a copy of the keys alone is useless.
    #[arg(long, env = "FERROCOPR_SIGNER_KEK_FILE")]
    kek_file: PathBuf,
    /// The callers file (YAML): each caller's token's sha256 and the projects it may use.
    #[arg(long, env = "FERROCOPR_SIGNER_CALLERS")]
    callers: PathBuf,
    /// The domain in signing keys' user ids.
    #[arg(long, env = "FERROCOPR_DOMAIN", default_value = "localhost")]
    domain: String,
    /// The algorithm of newly made keys: rsa4096 or ed25519 (existing keys keep theirs).
    #[arg(
        long,
        env = "FERROCOPR_SIGNER_KEY_ALGORITHM",
        default_value = "rsa4096"
    )]
    key_algorithm: KeyAlgorithm,
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
    /// Days a build superseded by a later one of the same package stays in the repository,
    /// for projects that set no period of their own.
    #[arg(long, env = "FERROCOPR_PRUNE_DAYS", default_value_t = ferrocopr_scheduler::prune::DEFAULT_PRUNE_DAYS)]
    prune_days: u32,
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
    /// The algorithm of newly made signing keys: rsa4096 (every rpm verifies it) or ed25519
    /// (rpm 4.16 and later); existing keys keep theirs.
    #[arg(
        long,
        env = "FERROCOPR_SIGNER_KEY_ALGORITHM",
        default_value = "rsa4096"
    )]
    signer_key_algorithm: KeyAlgorithm,
    /// A signing service (`ferrocopr signer`) to sign with instead of keys in this process.
    #[arg(long, env = "FERROCOPR_SIGNER_URL", requires = "signer_token_file")]
    signer_url: Option<String>,
    /// The file holding this backend's bearer token for `--signer-url`.
    #[arg(long, env = "FERROCOPR_SIGNER_TOKEN_FILE", requires = "signer_url")]
    signer_token_file: Option<PathBuf>,
    /// The chroots this instance builds in, comma-separated (default: Fedora, EPEL and CentOS
    /// Stream releases for x86_64 and aarch64).
    #[arg(long, env = "FERROCOPR_CHROOTS", value_delimiter = ',')]
    chroots: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = match cli.command {
        Command::Builder {
            task,
            resultdir,
            lock,
        } => return ferrocopr_builder::main_on_host(&task, &resultdir, lock.as_deref()),
        Command::DistgitImport(args) => {
            // stdout carries the result alone.
            log_to_stderr("warn");
            distgit_import(args)
        }
        Command::Createrepo {
            update,
            compression,
            dir,
        } => ferrocopr_repo_publisher::repodata::createrepo_with(&dir, update, compression).map(
            |outcome| {
                println!(
                    "{}: {} packages ({} reused, {} read)",
                    dir.join("repodata").display(),
                    outcome.packages,
                    outcome.reused,
                    outcome.read
                );
            },
        ),
        Command::User(UserCommand::Create {
            name,
            admin,
            groups,
            data,
        }) => create_user(&name, admin, &groups, data).map(|config| print!("{config}")),
        Command::Signer(args) => {
            log_to_stdout();
            signer(args)
        }
        Command::Serve(args) => {
            log_to_stdout();
            serve(*args)
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrocopr: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The services' log: `info` and up unless `RUST_LOG` says otherwise.
fn log_to_stdout() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// The one-shot commands' log, on stderr so that stdout carries their result alone.
fn log_to_stderr(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .init();
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

/// Makes the user and returns its copr-cli config.
#[tokio::main(flavor = "current_thread")]
async fn create_user(
    name: &str,
    admin: bool,
    groups: &[String],
    data: DataArgs,
) -> anyhow::Result<String> {
    let (_, db) = ferrocopr::open_data(&data.data_dir, data.database_url.as_deref()).await?;
    let (user, credentials) = ferrocopr_bot::users::create_user(&db, name, admin)
        .await
        .map_err(anyhow::Error::from)?;
    for group in groups {
        db.add_group_member(group.trim_start_matches('@'), &user)
            .await?;
    }
    db.close().await;
    Ok(ferrocopr_bot::texts::copr_cli_config(
        data.public_url.trim_end_matches('/'),
        &user.name,
        &credentials.login,
        &credentials.token,
        credentials.expires_on,
    ))
}

#[tokio::main]
async fn signer(args: SignerArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let config = ferrocopr_signer::service::ServiceConfig {
        keys_dir: args.keys,
        domain: args.domain,
        kek_file: args.kek_file,
        callers_file: args.callers,
        policy: ferrocopr_signer::KeyPolicy {
            algorithm: args.key_algorithm,
            ..ferrocopr_signer::KeyPolicy::default()
        },
    };
    ferrocopr_signer::service::run(config, listener, shutdown_signal()).await
}

/// The signing service's URL and token from `--signer-url` and `--signer-token-file`.
fn remote_signer(
    url: Option<String>,
    token_file: Option<PathBuf>,
) -> anyhow::Result<Option<ferrocopr::RemoteSignerConfig>> {
    let (Some(url), Some(token_file)) = (url, token_file) else {
        return Ok(None);
    };
    let token = std::fs::read_to_string(&token_file)
        .map_err(|e| anyhow::anyhow!("--signer-token-file {}: {e}", token_file.display()))?;
    let token = Secret::new(token.trim().to_owned())
        .map_err(|e| e.context(format!("--signer-token-file {}", token_file.display())))?;
    Ok(Some(ferrocopr::RemoteSignerConfig { url, token }))
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
        prune_days: args.prune_days,
        builder_program: std::env::current_exe()?,
        local_builders: args.local_builders,
        scheduler_config: args.scheduler_config.clone(),
        signer_domain: args.domain,
        signer_kek_file: args.signer_kek_file,
        signer_key_algorithm: args.signer_key_algorithm,
        signer_remote: remote_signer(args.signer_url, args.signer_token_file)?,
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
