//! The scheduler with remote builders (issue 4): resalloc-style pools in ferrocopr's own
//! process hand out builder hosts that are real OpenSSH servers on loopback, each with its own
//! host key and work directory; builds go through SSH end to end with real rpmbuild.
//!
//! Pools: `x86_64` (two hosts, tags `copr_builder`, `arch_x86_64`) and `aarch64` (one host,
//! `arch_aarch64`). The packages are noarch, so the "aarch64" host (this machine) builds them.

use ferrocopr_schema::state::build_state;
use ferrocopr_schema::{BuildId, Db, State};
use ferrocopr_tests::process::{ServeProcess, free_port, sqlite_url};
use ferrocopr_tests::sshd::{Sshd, group_alive};
use ferrocopr_tests::{
    DbKind, FakeForge, Status, TestEnv, TestRepo, new_delivery_id, push_payload,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const AGGREGATE: &str = "copr/rpm-build";

/// What the package's `%build` prints, once per run of the builder (the shell's trace of the
/// command, `+ echo …`, is another line).
const MARKER: &str = "FERROCOPR-BUILD-STEP";

/// A noarch package whose `%build` waits `SECONDS` (a macro in the spec), so tests can act
/// while it runs; it prints a marker the tests count in the log.
fn spec(seconds: u32) -> String {
    format!(
        "Name: hello\nVersion: 1.0\nRelease: 1%{{?dist}}\nSummary: s\nLicense: MIT\n\
BuildArch: noarch\nSource0: hello-1.0.tar.gz\n%description\nd\n%prep\n%setup -q\n\
%build\necho FERROCOPR-BUILD-STEP\nsleep {seconds}\n\
%install\nmkdir -p %{{buildroot}}/usr/share/hello\n\
install -m 0644 hello.txt %{{buildroot}}/usr/share/hello/hello.txt\n\
%files\n/usr/share/hello/hello.txt\n"
    )
}

/// Three sshd builder hosts and the scheduler config that pools them.
struct Farm {
    x86: Vec<Sshd>,
    aarch64: Sshd,
    config: PathBuf,
}

impl Farm {
    /// `aarch64_new_delay`: seconds the aarch64 pool's `cmd_new` takes (a machine being made).
    fn start(dir: &Path, builder: &Path, aarch64_new_delay: u32) -> Farm {
        let x86: Vec<Sshd> = (0..2)
            .map(|i| Sshd::start(&dir.join(format!("x86-{i}"))))
            .collect();
        let aarch64 = Sshd::start(&dir.join("aarch64-0"));
        // One scheduler key for every host; one known_hosts file with every host key.
        let key = x86[0].client_key().to_owned();
        let public = std::fs::read_to_string(key.with_extension("pub"))
            .or_else(|_| std::fs::read_to_string(format!("{}.pub", key.display())))
            .expect("the client's public key");
        let mut known = String::new();
        for (sshd, name) in x86
            .iter()
            .zip(["x86-0", "x86-1"])
            .chain([(&aarch64, "aarch64-0")])
        {
            let authorized = dir.join(name).join("authorized_keys");
            let mut keys = std::fs::read_to_string(&authorized).expect("authorized_keys");
            keys.push_str(&public);
            std::fs::write(&authorized, keys).expect("authorize the scheduler's key");
            known.push_str(&std::fs::read_to_string(sshd.known_hosts()).expect("known_hosts"));
        }
        std::fs::write(dir.join("known_hosts"), known).expect("known_hosts");
        let pools = format!(
            "\
x86_64:
  max: 2
  tags: [copr_builder, arch_x86_64]
  cmd_new: 'case $RESALLOC_ID_IN_POOL in 0) p={p0};; *) p={p1};; esac; printf \"host: 127.0.0.1\\nssh_port: %s\\nname: x86-%s\\n\" $p $RESALLOC_ID_IN_POOL'
  reuse_opportunity_time: 60
aarch64:
  max: 1
  tags: [copr_builder, arch_aarch64]
  cmd_new: 'sleep {delay}; printf \"host: 127.0.0.1\\nssh_port: {p2}\\n\"'
  reuse_opportunity_time: 60
",
            p0 = x86[0].port(),
            p1 = x86[1].port(),
            p2 = aarch64.port(),
            delay = aarch64_new_delay,
        );
        std::fs::write(dir.join("pools.yaml"), pools).expect("pools.yaml");
        let config = dir.join("scheduler.yaml");
        std::fs::write(
            &config,
            format!(
                "builders:\n  pools: pools.yaml\n  ssh:\n    user: {user}\n    key: {key}\n    \
                 known_hosts: known_hosts\n    builder_command: {builder}\n",
                user = x86[0].user(),
                key = key.display(),
                builder = builder.display(),
            ),
        )
        .expect("scheduler.yaml");
        Farm {
            x86,
            aarch64,
            config,
        }
    }

    fn host_by_port(&mut self, port: u16) -> &mut Sshd {
        if self.aarch64.port() == port {
            return &mut self.aarch64;
        }
        self.x86
            .iter_mut()
            .find(|s| s.port() == port)
            .expect("a farm host")
    }
}

fn copr_yaml(project: &str, chroots: &str) -> String {
    format!("owner: alice\nproject: {project}\nchroots: [{chroots}]\nspec: hello.spec\n")
}

fn is_final(status: &Status) -> bool {
    status.state != "pending" && status.context.as_deref() == Some(AGGREGATE)
}

async fn env_with_farm(dir: &Path, aarch64_new_delay: u32) -> (TestEnv, Farm) {
    let mut farm = None;
    let env = TestEnv::start_with(DbKind::Sqlite, |config| {
        farm = Some(Farm::start(dir, &config.builder_program, aarch64_new_delay));
        config.scheduler_config = farm.as_ref().map(|f| f.config.clone());
    })
    .await;
    (env, farm.expect("farm started"))
}

/// Pushes a repository `alice/<project>` with the given chroots and `%build` time.
async fn push(env: &TestEnv, project: &str, chroots: &str, seconds: u32) -> String {
    let repo = env.new_repo(&format!("alice/{project}"));
    repo.write(".copr.yaml", copr_yaml(project, chroots));
    repo.write("hello.spec", spec(seconds));
    repo.write("hello.txt", "hello\n");
    let sha = repo.commit("hello");
    let (code, body) = env
        .push(&format!("alice/{project}"), &repo, &sha, "main")
        .await;
    assert_eq!(code, 202, "{body}");
    sha
}

/// Polls the database until `check` holds for build `id` (its chroots given), or panics.
async fn wait_build(
    db: &Db,
    id: i64,
    what: &str,
    check: impl Fn(&ferrocopr_schema::db::Build, &[ferrocopr_schema::db::BuildChroot]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(build) = db.build(BuildId(id)).await.expect("read") {
            let chroots = db.build_chroots(build.id).await.expect("chroots");
            if check(&build, &chroots) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "build {id} never got {what}: {build:?} {chroots:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The remote task a chroot runs, from its recorded placement.
fn remote_of(chroot: &ferrocopr_schema::db::BuildChroot) -> Option<(u16, u32)> {
    let placed: serde_json::Value = serde_json::from_str(chroot.placement.as_deref()?).ok()?;
    let remote = placed.get("remote")?;
    Some((
        u16::try_from(remote["port"].as_u64()?).ok()?,
        u32::try_from(remote["pid"].as_u64()?).ok()?,
    ))
}

fn chroot_result_dir(data_dir: &Path, project: &str, chroot: &str, id: i64) -> PathBuf {
    data_dir
        .join("results/alice")
        .join(project)
        .join(chroot)
        .join(format!("{:08}-hello", id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_go_over_ssh_to_pools_of_two_architectures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (env, mut farm) = env_with_farm(dir.path(), 0).await;
    let sha = push(&env, "twoarch", "fedora-41-x86_64, fedora-41-aarch64", 0).await;
    let done = env.wait_for_status(&sha, is_final).await;
    assert_eq!(done.state, "success", "{:#?}", env.statuses(&sha));

    for chroot in ["fedora-41-x86_64", "fedora-41-aarch64"] {
        let results = chroot_result_dir(env.data_dir(), "twoarch", chroot, 1);
        let log = std::fs::read_to_string(results.join("builder-live.log")).expect("live log");
        assert_eq!(log.lines().filter(|l| *l == MARKER).count(), 1, "{log}");
        let rpms: Vec<_> = std::fs::read_dir(&results)
            .expect("results")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".noarch.rpm"))
            .collect();
        assert_eq!(rpms.len(), 1, "{chroot}: one RPM copied back over SSH");
    }
    // The aarch64 chroot went to the aarch64 pool's host, and the x86_64 ones (SRPM included)
    // to x86_64 hosts: each sshd logged the logins it served.
    let aarch64_logins = farm.host_by_port(farm.aarch64.port()).log();
    assert!(
        aarch64_logins.contains("Accepted publickey"),
        "{aarch64_logins}"
    );
    let x86_logins: usize = farm
        .x86
        .iter()
        .map(|s| s.log().matches("Accepted publickey").count())
        .sum();
    assert!(x86_logins > 0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_lost_mid_build_is_replaced_and_both_logs_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (env, mut farm) = env_with_farm(dir.path(), 0).await;
    let sha = push(&env, "lost", "fedora-41-x86_64", 8).await;
    let db = env.db().await;
    wait_build(&db, 1, "a running RPM task", |_, chroots| {
        chroots.first().and_then(remote_of).is_some()
    })
    .await;
    let (port, _) = remote_of(&db_chroot(&db).await).expect("placed");
    // Let it get into %build, then the host goes away with every session on it.
    let results = chroot_result_dir(env.data_dir(), "lost", "fedora-41-x86_64", 1);
    wait_for_file_text(&results.join("builder-live.log"), "FERROCOPR-BUILD-STEP").await;
    farm.host_by_port(port).kill();

    let done = env.wait_for_status(&sha, is_final).await;
    assert_eq!(done.state, "success", "{:#?}", env.statuses(&sha));
    let first = std::fs::read_to_string(results.join("builder-live.log.1")).expect("attempt 1");
    let last = std::fs::read_to_string(results.join("builder-live.log")).expect("attempt 2");
    assert!(first.lines().any(|l| l == MARKER), "{first}");
    assert_eq!(last.lines().filter(|l| *l == MARKER).count(), 1, "{last}");
    let chroot = db_chroot(&db).await;
    let (new_port, _) = remote_of(&chroot).unwrap_or_default();
    assert_ne!(new_port, port, "the retry ran on another host");
    env.stop().await;
}

async fn db_chroot(db: &Db) -> ferrocopr_schema::db::BuildChroot {
    db.build_chroots(BuildId(1)).await.expect("chroots")[0].clone()
}

async fn wait_for_file_text(path: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(text)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never said {text}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cancel at each stage; each ends canceled promptly (the time is printed, not asserted: see
/// docs/performance.md) and frees what it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_queued_allocating_and_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The aarch64 pool takes 600 s to make a machine: a task there waits for its ticket.
    let (env, _farm) = env_with_farm(dir.path(), 600).await;
    let db = env.db().await;

    // Running: build 1 sits in %build on an x86_64 host.
    push(&env, "running", "fedora-41-x86_64", 600).await;
    wait_build(&db, 1, "a running RPM task", |_, c| {
        c.first()
            .is_some_and(|c| c.state == State::Running && remote_of(c).is_some())
    })
    .await;
    let (_, pgid) = remote_of(&db_chroot(&db).await).expect("placed");
    // Allocating: build 2's aarch64 task waits for its machine.
    push(&env, "allocating", "fedora-41-aarch64", 0).await;
    wait_build(&db, 2, "an RPM task waiting for a machine", |_, c| {
        c.first().is_some_and(|c| c.state == State::Starting)
    })
    .await;
    // Queued: both x86_64 slots are taken (build 1, and build 3's own SRPM would need one):
    // hold the second slot with build 3, then queue build 4 behind it.
    push(&env, "second", "fedora-41-x86_64", 600).await;
    wait_build(&db, 3, "a running RPM task", |_, c| {
        c.first().is_some_and(|c| c.state == State::Running)
    })
    .await;
    push(&env, "queued", "fedora-41-x86_64", 0).await;
    wait_build(&db, 4, "a queued SRPM task", |b, _| {
        b.source_state == State::Pending
    })
    .await;

    for (id, stage) in [
        (4, "queued"),
        (2, "allocating"),
        (1, "running"),
        (3, "running"),
    ] {
        let asked = Instant::now();
        assert!(db.request_cancel(BuildId(id)).await.expect("cancel"));
        wait_build(&db, id, "canceled", |b, c| {
            let states: Vec<State> = c.iter().map(|c| c.state).collect();
            build_state(b.cancel_requested, b.source_state, &states) == State::Canceled
        })
        .await;
        println!("cancel while {stage}: canceled after {:?}", asked.elapsed());
    }
    assert!(
        !group_alive(pgid),
        "the canceled builder's process group is gone"
    );
    // The builders are free again: a new build runs to the end.
    let sha = push(&env, "after", "fedora-41-x86_64", 0).await;
    let done = env.wait_for_status(&sha, is_final).await;
    assert_eq!(done.state, "success", "{:#?}", env.statuses(&sha));
    env.stop().await;
}

/// The scheduler is SIGKILLed while a build runs on an SSH host; started again on the same data
/// directory, it re-attaches to the builder: the build finishes once, built and published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_scheduler_reattaches_and_the_build_finishes_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let forge = FakeForge::start().await;
    let builder = tokio::task::spawn_blocking(ferrocopr_tests::builder_bin::ferrocopr_binary)
        .await
        .expect("builder binary");
    let _farm = Farm::start(&dir.path().join("farm"), &builder, 0);
    let config = dir.path().join("farm/scheduler.yaml");
    let repo = TestRepo::new(dir.path().join("repo"));
    forge.register_repo("alice/hello", repo.path());
    repo.write(".copr.yaml", copr_yaml("hello", "fedora-41-x86_64"));
    repo.write("hello.spec", spec(6));
    repo.write("hello.txt", "hello\n");
    let sha = repo.commit("hello");

    let port = free_port();
    let env = [("FERROCOPR_SCHEDULER_CONFIG", config.display().to_string())];
    let serve = ServeProcess::start_with_env(&data_dir, port, &forge, &env).await;
    let body = push_payload("alice/hello", &repo.clone_url(), &sha, "main");
    assert_eq!(
        serve
            .github_webhook("push", &new_delivery_id(), &body)
            .await,
        202
    );
    let db = Db::connect(&sqlite_url(&data_dir)).await.expect("database");
    let results = chroot_result_dir(&data_dir, "hello", "fedora-41-x86_64", 1);
    wait_for_file_text(&results.join("builder-live.log"), "FERROCOPR-BUILD-STEP").await;
    let before = remote_of(&db_chroot(&db).await).expect("placed on a host");
    serve.kill();

    let serve = ServeProcess::start_with_env(&data_dir, port, &forge, &env).await;
    wait_build(&db, 1, "the end", |b, c| {
        let states: Vec<State> = c.iter().map(|c| c.state).collect();
        build_state(b.cancel_requested, b.source_state, &states).is_finished()
    })
    .await;
    let chroot = db_chroot(&db).await;
    assert_eq!(chroot.state, State::Succeeded, "{chroot:?}");
    let log = std::fs::read_to_string(results.join("builder-live.log")).expect("log");
    assert_eq!(
        log.lines().filter(|l| *l == MARKER).count(),
        1,
        "the builder ran once and its log was followed once: {log}"
    );
    assert!(
        !results.join("builder-live.log.1").exists(),
        "re-attached, not retried"
    );
    let serve_log = std::fs::read_to_string(data_dir.with_extension("log")).expect("serve log");
    assert!(
        serve_log.contains("re-attached to a running builder"),
        "the second process re-attached: {serve_log}"
    );
    assert!(
        !group_alive(before.1),
        "the re-attached builder ran to its end"
    );
    let primary = std::fs::read_dir(data_dir.join("results/alice/hello/fedora-41-x86_64/repodata"))
        .expect("repodata")
        .count();
    assert!(primary > 0, "published");
    let db_builds = db.count_builds().await.expect("count");
    assert_eq!(db_builds, 1, "no second build");
    serve.kill();
    db.close().await;
}
