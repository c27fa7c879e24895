//! The fair queue and its limits, through the real scheduler loop and a real SQLite database,
//! with a builder host that only records who started when and holds each task until the test
//! lets it go (it then fails the task, so no import follows).

use async_trait::async_trait;
use ferrocopr_distgit::DistGit;
use ferrocopr_repo_publisher::Publisher;
use ferrocopr_scheduler::host::{Assignment, BuilderHost, BuilderOutcome, HostError};
use ferrocopr_scheduler::queue::{Limits, Routing};
use ferrocopr_scheduler::{LiveBuilds, Scheduler};
use ferrocopr_schema::copr_yaml::SrpmMethod;
use ferrocopr_schema::db::BuildRequest;
use ferrocopr_schema::task::BuilderTask;
use ferrocopr_schema::{BuildId, BuildSource, Db, ProjectRef};
use ferrocopr_signer::LocalSigner;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Records starts and concurrency per owner; a task ends when it gets a permit from `release`.
struct HoldingHost {
    slots: usize,
    starts: mpsc::UnboundedSender<(i64, String)>,
    release: Arc<Semaphore>,
    running: Mutex<HashMap<String, usize>>,
    most: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl BuilderHost for HoldingHost {
    async fn run(
        &self,
        task: &BuilderTask,
        _result_dir: &Path,
        cancel: &CancellationToken,
        assignment: &Assignment<'_>,
    ) -> Result<BuilderOutcome, HostError> {
        assignment.progress.running().await.expect("running");
        let owner = task.project_owner.clone();
        {
            let mut running = self.running.lock().expect("lock");
            let n = running.entry(owner.clone()).or_default();
            *n += 1;
            let mut most = self.most.lock().expect("lock");
            let m = most.entry(owner.clone()).or_default();
            *m = (*m).max(*n);
        }
        let _ = self.starts.send((task.build_id, owner.clone()));
        let outcome = tokio::select! {
            permit = self.release.acquire() => {
                permit.expect("open").forget();
                BuilderOutcome::Failed
            }
            () = cancel.cancelled() => BuilderOutcome::Canceled,
        };
        *self
            .running
            .lock()
            .expect("lock")
            .get_mut(&owner)
            .expect("present") -= 1;
        Ok(outcome)
    }

    fn slots(&self, _arch: &str) -> Option<usize> {
        Some(self.slots)
    }
}

struct Setup {
    db: Db,
    host: Arc<HoldingHost>,
    starts: mpsc::UnboundedReceiver<(i64, String)>,
    stop: CancellationToken,
    scheduler: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn database(dir: &Path) -> Db {
    Db::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("ferrocopr.db").display()
    ))
    .await
    .expect("database")
}

fn request(owner: &str, n: usize) -> BuildRequest {
    BuildRequest {
        project: ProjectRef {
            owner: owner.into(),
            project: "mass".into(),
        },
        dirname: "mass".into(),
        chroots: vec!["fedora-41-x86_64".into()],
        submitter: owner.into(),
        source: BuildSource::Scm {
            clone_url: format!("file:///nowhere/{owner}/{n}"),
            committish: "main".into(),
            spec: "x.spec".into(),
            srpm: SrpmMethod::Spec,
        },
        trigger_key: None,
        origin: None,
        cancel_superseded: false,
        success_comment: false,
        background: false,
        enable_net: false,
        timeout: None,
        bconds: Default::default(),
    }
}

async fn submit(db: &Db, owner: &str, n: usize) -> BuildId {
    db.request_build(&request(owner, n))
        .await
        .expect("request")
        .expect("a new build")
}

async fn start(db: Db, dir: tempfile::TempDir, slots: usize, limits: Limits) -> Setup {
    let (tx, starts) = mpsc::unbounded_channel();
    let host = Arc::new(HoldingHost {
        slots,
        starts: tx,
        release: Arc::new(Semaphore::new(0)),
        running: Mutex::default(),
        most: Mutex::default(),
    });
    let scheduler = Scheduler {
        db: db.clone(),
        results_dir: dir.path().join("results"),
        builders: Arc::clone(&host) as Arc<dyn BuilderHost>,
        limits,
        routing: Routing::default(),
        signer: Arc::new(
            LocalSigner::new(dir.path().join("keys"), "example.org".into(), None)
                .expect("the signer"),
        ),
        distgit: Arc::new(DistGit::new(dir.path().join("distgit"))),
        publisher: Publisher::new(),
        lookaside_url: "http://127.0.0.1:9/lookaside".into(),
        uploads_url: "http://127.0.0.1:9/uploads".into(),
        distgit_instances: Default::default(),
        distgit_url: "http://127.0.0.1:9/distgit".into(),
        wake: Arc::new(Notify::new()),
        changed: Arc::new(Notify::new()),
        retention_wake: Arc::new(Notify::new()),
        prune_days: ferrocopr_scheduler::prune::DEFAULT_PRUNE_DAYS,
        live: LiveBuilds::default(),
    };
    let stop = CancellationToken::new();
    let scheduler = tokio::spawn(scheduler.run(stop.clone()));
    Setup {
        db,
        host,
        starts,
        stop,
        scheduler,
        _dir: dir,
    }
}

impl Setup {
    async fn next_start(&mut self) -> (i64, String) {
        tokio::time::timeout(Duration::from_secs(30), self.starts.recv())
            .await
            .expect("a task should start")
            .expect("scheduler alive")
    }

    async fn stop(self) {
        self.host.release.close();
        self.stop.cancel();
        self.scheduler
            .await
            .expect("scheduler task")
            .expect("scheduler ends well");
        self.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_owner_starts_next_behind_a_mass_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path()).await;
    for n in 0..2000 {
        submit(&db, "alice", n).await;
    }
    let mut setup = start(db, dir, 1, Limits::default()).await;
    let (first, owner) = setup.next_start().await;
    assert_eq!((first, owner.as_str()), (1, "alice"));

    let bob = submit(&setup.db, "bob", 0).await;
    setup.host.release.add_permits(1);
    let (next, owner) = setup.next_start().await;
    assert_eq!(
        (next, owner.as_str()),
        (bob.0, "bob"),
        "bob's build starts at the next free slot, before alice's 1,999 others"
    );
    // Then alice again: turns, not starvation.
    setup.host.release.add_permits(1);
    assert_eq!(setup.next_start().await.1, "alice");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_never_holds_more_builders_than_its_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path()).await;
    for n in 0..8 {
        submit(&db, "alice", n).await;
    }
    for n in 0..2 {
        submit(&db, "bob", n).await;
    }
    let limits = Limits {
        owner: Some(2),
        ..Limits::default()
    };
    let mut setup = start(db, dir, 4, limits).await;
    let mut started = Vec::new();
    // Four slots: the first round fills them as far as the caps allow.
    for _ in 0..4 {
        started.push(setup.next_start().await);
    }
    // Then tasks end one by one until the next one starts (when one of bob's ends, alice is
    // still at her cap and nothing starts), so the queue moves while the caps hold.
    for _ in 4..10 {
        loop {
            setup.host.release.add_permits(1);
            let next = tokio::time::timeout(Duration::from_secs(2), setup.starts.recv()).await;
            if let Ok(start) = next {
                started.push(start.expect("scheduler alive"));
                break;
            }
        }
    }
    let most = setup.host.most.lock().expect("lock").clone();
    assert_eq!(most.get("alice"), Some(&2), "alice's cap is 2: {most:?}");
    assert_eq!(most.get("bob"), Some(&2), "{most:?}");
    let bobs_last = started
        .iter()
        .rposition(|(_, o)| o == "bob")
        .expect("present");
    assert!(
        bobs_last < 6,
        "bob is not kept waiting behind alice's builds: {started:?}"
    );
    setup.stop().await;
}
