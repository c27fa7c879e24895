//! The end-to-end harness: [`TestEnv::start`] runs the whole of ferrocopr in the test process,
//! with its database, a fake GitHub served over HTTP, and a local builder pool running the real
//! `ferrocopr` binary, all on free ports in a temporary directory.
//!
//! A test then reads like a script: make a git repository, push it with a signed webhook, await the
//! commit status it expects, and check the result with the tools a user has (`dnf`, `rpm`, `gpg`).
//! Every wait fails fast, with what was seen so far, if ferrocopr's `run` ended early.

pub mod builder_bin;
pub mod cmd;
pub mod fake_forge;
mod fake_gitlab;
pub mod fake_resalloc;
pub mod files;
pub mod http;
pub mod packages;
mod postgres;
pub mod process;
pub mod repo;
pub mod sshd;
pub mod tools;
pub mod webhook;

pub use fake_forge::{FakeForge, FakePull, Status};
pub use http::HttpResponse;
pub use repo::TestRepo;
pub use tools::InstallRoot;
pub use webhook::push_payload;

pub use ferrocopr_bot::submit::{Submission, Submissions};
use ferrocopr_schema::BuildId;
use ferrocopr_schema::db::{Build, BuildChroot};
use ferrocopr_schema::model::DistgitInstance;
use ferrocopr_schema::state::build_state;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, watch};

/// How long a test waits for a commit status: builds run rpmbuild twice on a busy machine.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(600);

/// How long [`TestEnv::stop`] gives ferrocopr to finish after being asked to.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Logs shown for failing tests unless `RUST_LOG` says otherwise.
const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,hyper=warn,octocrab=warn";

/// Which database ferrocopr runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// The embedded default: a file in the data directory.
    Sqlite,
    /// A fresh database on 127.0.0.1:5432; the test fails if the server is unreachable.
    Postgres,
}

/// How ferrocopr's `run` ended, as the harness's watcher saw it.
type Ended = Option<Result<(), String>>;

/// One running ferrocopr with everything around it; dropping it stops ferrocopr and removes the
/// temporary directory and database (both are kept, and printed, when the test panicked).
pub struct TestEnv {
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    public_url: String,
    forge: FakeForge,
    postgres: Option<postgres::FreshDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
    ended: watch::Receiver<Ended>,
    chroots: Vec<String>,
    distgit_instances: std::collections::BTreeMap<String, DistgitInstance>,
}

impl TestEnv {
    /// Starts ferrocopr on `db`, with the fake forge (as GitHub and as GitLab), two local
    /// builders and signing keys for `example.org`.
    pub async fn start(db: DbKind) -> TestEnv {
        TestEnv::start_with(db, |_| {}).await
    }

    /// [`TestEnv::start`], with the configuration changed by `adjust` first.
    pub async fn start_with(db: DbKind, adjust: impl FnOnce(&mut ferrocopr::Config)) -> TestEnv {
        init_tracing();
        let dir = tempfile::Builder::new()
            .prefix("ferrocopr-e2e-")
            .tempdir()
            .expect("make the test's temporary directory");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("make the data directory");
        let postgres = match db {
            DbKind::Sqlite => None,
            DbKind::Postgres => Some(postgres::FreshDatabase::create().await),
        };
        let builder_program = tokio::task::spawn_blocking(builder_bin::ferrocopr_binary)
            .await
            .unwrap_or_else(|e| panic!("could not build the ferrocopr binary: {e}"));
        let forge = FakeForge::start().await;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ferrocopr's listener on 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("ferrocopr's local address")
            .port();
        let public_url = format!("http://127.0.0.1:{port}");
        let mut config = ferrocopr::Config {
            data_dir: data_dir.clone(),
            database_url: postgres.as_ref().map(|p| p.url.clone()),
            public_url: public_url.clone(),
            github_webhook_secrets: vec![
                ferrocopr::Secret::new(webhook::SECRET.to_owned()).expect("test secret"),
                ferrocopr::Secret::new(webhook::NEXT_SECRET.to_owned()).expect("test secret"),
            ],
            github_token: Some(
                ferrocopr::Secret::new(fake_forge::TOKEN.to_owned()).expect("test token"),
            ),
            github_api_url: forge.url().to_owned(),
            gitlab_webhook_secrets: vec![
                ferrocopr::Secret::new(webhook::GITLAB_SECRET.to_owned()).expect("test secret"),
            ],
            gitlab_token: Some(
                ferrocopr::Secret::new(fake_forge::TOKEN.to_owned()).expect("test token"),
            ),
            gitlab_url: forge.url().to_owned(),
            pr_dir_retention: Duration::from_secs(30 * 24 * 3600),
            prune_days: ferrocopr_scheduler::prune::DEFAULT_PRUNE_DAYS,
            builder_program,
            local_builders: 2,
            scheduler_config: None,
            signer_domain: "example.org".to_owned(),
            signer_kek_file: None,
            signer_key_algorithm: ferrocopr_signer::KeyAlgorithm::default(),
            signer_remote: None,
            chroots: ferrocopr_schema::model::DEFAULT_CHROOTS
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            distgit_instances: ferrocopr_schema::model::default_distgit_instances(),
            repodata_compression: Default::default(),
        };

        adjust(&mut config);
        let (chroots, distgit_instances) =
            (config.chroots.clone(), config.distgit_instances.clone());
        let (shutdown, stop_requested) = oneshot::channel::<()>();
        let server = tokio::spawn(ferrocopr::run(config, listener, async move {
            // A dropped sender means the test is gone: stop as well.
            let _ = stop_requested.await;
        }));
        let (ended_tx, ended) = watch::channel::<Ended>(None);
        tokio::spawn(async move {
            let outcome = match server.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(format!("ferrocopr::run failed: {error:#}")),
                Err(error) if error.is_panic() => {
                    Err(format!("ferrocopr::run panicked: {}", panic_text(error)))
                }
                Err(error) => Err(format!("ferrocopr::run was cancelled: {error}")),
            };
            let _ = ended_tx.send(Some(outcome));
        });

        let env = TestEnv {
            dir: Some(dir),
            data_dir,
            public_url,
            forge,
            postgres,
            shutdown: Some(shutdown),
            ended,
            chroots,
            distgit_instances,
        };
        // The listener is served only once the database is open and migrated: one answer
        // means ferrocopr is ready for the test.
        let ready = env.get("/").await;
        assert_eq!(
            ready.status,
            200,
            "ferrocopr did not come up: {}",
            ready.text()
        );
        env
    }

    /// The fake forge (GitHub and GitLab): register repositories, read the statuses ferrocopr
    /// posted.
    pub fn forge(&self) -> &FakeForge {
        &self.forge
    }

    /// `http://127.0.0.1:<port>`, the URL ferrocopr was told it is reached at.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// ferrocopr's `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The test's own scratch space (repositories, installroots), beside the data directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self
            .dir
            .as_ref()
            .expect("the temporary directory lives as long as the TestEnv")
            .path()
            .join("scratch")
            .join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        dir
    }

    /// A new git repository that the fake GitHub serves as `full_name` (`owner/repo`).
    pub fn new_repo(&self, full_name: &str) -> TestRepo {
        let repo = TestRepo::new(self.scratch(&format!("repos/{full_name}")));
        self.forge.register_repo(full_name, repo.path());
        repo
    }

    /// A fresh installroot for dnf, for release `releasever`.
    pub fn install_root(&self, name: &str, releasever: &str) -> InstallRoot {
        InstallRoot::new(self.scratch(&format!("roots/{name}")), releasever)
    }

    /// The URL of ferrocopr's database: the fresh PostgreSQL database, or the SQLite file that
    /// ferrocopr made in its data directory (found by its header, so its name is ferrocopr's).
    pub fn database_url(&self) -> String {
        if let Some(postgres) = &self.postgres {
            return postgres.url.clone();
        }
        let sqlite_files = sqlite_files_in(&self.data_dir);
        match sqlite_files.as_slice() {
            [file] => format!("sqlite://{}", file.display()),
            _ => panic!(
                "expected exactly one SQLite database in {}, found {sqlite_files:?}",
                self.data_dir.display()
            ),
        }
    }

    /// A second connection to ferrocopr's database, for assertions on what it recorded.
    pub async fn db(&self) -> ferrocopr_schema::Db {
        let url = self.database_url();
        ferrocopr_schema::Db::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to ferrocopr's database {url}: {e}"))
    }

    /// Takes builds as the API does (from a URL, an upload, a dist-git package, a rebuild),
    /// through a second connection to the database; the scheduler finds them on its next look.
    pub async fn submissions(&self) -> Submissions {
        Submissions {
            db: self.db().await,
            chroots: self.chroots.clone().into(),
            distgit_instances: std::sync::Arc::new(self.distgit_instances.clone()),
            uploads_dir: self.data_dir.join("uploads"),
            scheduler_wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Waits until every part of build `id` has finished; returns the build and its chroots.
    pub async fn wait_for_build(&self, id: BuildId) -> (Build, Vec<BuildChroot>) {
        let db = self.db().await;
        let deadline = tokio::time::Instant::now() + STATUS_TIMEOUT;
        loop {
            self.assert_running();
            // A webhook's build is recorded after the webhook is answered.
            let build = db.build(id).await.expect("read the build");
            let chroots = db.build_chroots(id).await.expect("read the chroots");
            if let Some(build) = &build {
                let states: Vec<_> = chroots.iter().map(|c| c.state).collect();
                if build_state(build.cancel_requested, build.source_state, &states).is_finished() {
                    return (build.clone(), chroots);
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "build {id} did not finish: source {:?}, chroots {:?}",
                build.map(|b| b.source_state),
                chroots
                    .iter()
                    .map(|c| (&c.chroot, c.state))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `<public url><path>`; a full URL is returned as it is.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.public_url)
        }
    }

    /// `GET` a ferrocopr path (`/results/…`) or a full URL.
    pub async fn get(&self, path_or_url: &str) -> HttpResponse {
        self.assert_running();
        http::get(&self.url(path_or_url)).await
    }

    /// Sends a GitHub webhook to `POST /webhooks/github`, signed with the configured secret or
    /// with `secret_override`; returns the status code and body of the answer.
    pub async fn github_webhook(
        &self,
        event: &str,
        delivery_id: &str,
        body: &[u8],
        secret_override: Option<&str>,
    ) -> (u16, String) {
        self.assert_running();
        let secret = secret_override.unwrap_or(webhook::SECRET);
        let headers = vec![
            ("X-GitHub-Event".to_owned(), event.to_owned()),
            ("X-GitHub-Delivery".to_owned(), delivery_id.to_owned()),
            (
                "X-Hub-Signature-256".to_owned(),
                webhook::signature(secret, body),
            ),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        let response = http::post(&self.url("/webhooks/github"), headers, body.to_vec()).await;
        (response.status, response.text())
    }

    /// Announces a GitHub webhook of `content_length` bytes but sends only its head; returns the
    /// status code of the answer (413 for an oversized one, without the body being sent).
    pub async fn github_webhook_announcing(&self, event: &str, content_length: u64) -> u16 {
        self.assert_running();
        let headers = vec![
            ("X-GitHub-Event".to_owned(), event.to_owned()),
            ("X-GitHub-Delivery".to_owned(), new_delivery_id()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        http::post_head_only(&self.url("/webhooks/github"), headers, content_length).await
    }

    /// A correctly signed `push` of `sha` on `branch` of `repo`, known to GitHub as `full_name`.
    pub async fn push(
        &self,
        full_name: &str,
        repo: &TestRepo,
        sha: &str,
        branch: &str,
    ) -> (u16, String) {
        let body = push_payload(full_name, &repo.clone_url(), sha, branch);
        self.github_webhook("push", &new_delivery_id(), &body, None)
            .await
    }

    /// Sends a GitLab webhook to `POST /webhooks/gitlab` with the configured token or
    /// `token_override`, under the delivery UUID `uuid`.
    pub async fn gitlab_webhook(
        &self,
        event: &str,
        uuid: &str,
        body: &[u8],
        token_override: Option<&str>,
    ) -> (u16, String) {
        self.assert_running();
        let headers = vec![
            ("X-Gitlab-Event".to_owned(), event.to_owned()),
            ("X-Gitlab-Event-UUID".to_owned(), uuid.to_owned()),
            (
                "X-Gitlab-Token".to_owned(),
                token_override.unwrap_or(webhook::GITLAB_SECRET).to_owned(),
            ),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        let response = http::post(&self.url("/webhooks/gitlab"), headers, body.to_vec()).await;
        (response.status, response.text())
    }

    /// Sends a signed `pull_request` delivery for `repo`, which is `full_name` itself (not a
    /// fork) unless `pr.head_repo_full_name` says otherwise.
    pub async fn pull_request(
        &self,
        full_name: &str,
        repo: &TestRepo,
        pr: webhook::PullRequest<'_>,
    ) -> (u16, String) {
        let body = webhook::pull_request_payload(full_name, &repo.clone_url(), pr);
        self.github_webhook("pull_request", &new_delivery_id(), &body, None)
            .await
    }

    /// Waits until `ready` holds of the fake GitHub (checked after each thing it records).
    pub async fn wait_for_forge(&self, what: &str, ready: impl Fn(&FakeForge) -> bool) {
        let mut changes = self.forge.subscribe();
        let deadline = tokio::time::Instant::now() + STATUS_TIMEOUT;
        loop {
            changes.borrow_and_update();
            if ready(&self.forge) {
                return;
            }
            self.assert_running();
            tokio::select! {
                changed = changes.changed() => changed.expect("the fake GitHub went away"),
                () = tokio::time::sleep_until(deadline) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Every status ferrocopr posted for `sha`, oldest first.
    pub fn statuses(&self, sha: &str) -> Vec<Status> {
        self.forge.statuses(sha)
    }

    /// Waits until ferrocopr posts a status on `sha` that `matches`, and returns it. Fails with
    /// the statuses seen so far after [`STATUS_TIMEOUT`], or at once if ferrocopr stopped.
    pub async fn wait_for_status(&self, sha: &str, matches: impl Fn(&Status) -> bool) -> Status {
        let mut changes = self.forge.subscribe();
        let mut ended = self.ended.clone();
        let deadline = tokio::time::Instant::now() + STATUS_TIMEOUT;
        loop {
            changes.borrow_and_update();
            if let Some(found) = self.forge.statuses(sha).into_iter().find(|s| matches(s)) {
                return found;
            }
            self.assert_running();
            tokio::select! {
                changed = changes.changed() => {
                    changed.expect("the fake GitHub went away");
                }
                changed = ended.changed() => {
                    if changed.is_err() {
                        panic!("the task watching ferrocopr::run went away");
                    }
                }
                () = tokio::time::sleep_until(deadline) => panic!(
                    "no matching status on {sha} within {STATUS_TIMEOUT:?}; statuses so far: \
                     {:#?}\nunexpected requests to the fake GitHub: {:#?}",
                    self.forge.statuses(sha),
                    self.forge.unexpected_requests(),
                ),
            }
        }
    }

    /// Panics if ferrocopr's `run` has ended: every wait and request checks this first.
    #[track_caller]
    pub fn assert_running(&self) {
        match &*self.ended.borrow() {
            None => {}
            Some(Ok(())) => panic!("ferrocopr::run returned before the test asked it to stop"),
            Some(Err(why)) => panic!("{why}"),
        }
    }

    /// Asks ferrocopr to shut down and checks that `run` ends cleanly.
    pub async fn stop(mut self) {
        self.assert_running();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let mut ended = self.ended.clone();
        let outcome = tokio::time::timeout(SHUTDOWN_TIMEOUT, ended.wait_for(Option::is_some))
            .await
            .unwrap_or_else(|_| panic!("ferrocopr::run did not stop within {SHUTDOWN_TIMEOUT:?}"))
            .expect("the task watching ferrocopr::run went away")
            .clone();
        if let Some(Err(why)) = outcome {
            panic!("{why}");
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept the test's directory: {}", dir.keep().display());
            }
            if let Some(postgres) = &mut self.postgres {
                postgres.keep = true;
            }
        }
    }
}

/// A new id in the shape GitHub gives deliveries (a UUID).
pub fn new_delivery_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        std::process::id(),
        count & 0xffff,
        nanos & 0xffff_ffff_ffff
    )
}

/// Files in `dir` (and one level below) that start with SQLite's header.
fn sqlite_files_in(dir: &Path) -> Vec<PathBuf> {
    const HEADER: &[u8] = b"SQLite format 3\0";
    let mut found = Vec::new();
    let mut dirs = vec![(dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if depth == 0 {
                    dirs.push((path, depth + 1));
                }
            } else if starts_with(&path, HEADER) {
                found.push(path);
            }
        }
    }
    found
}

fn starts_with(file: &Path, prefix: &[u8]) -> bool {
    use std::io::Read as _;
    let mut head = vec![0; prefix.len()];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == prefix
}

fn panic_text(error: tokio::task::JoinError) -> String {
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    // Several tests share the process; the first one installs the subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
