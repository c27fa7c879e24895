//! Builder hosts over SSH: `SshBuilder` against a real sshd on 127.0.0.1, running a fake
//! builder program (a shell script) as the remote `ferrocopr builder`. The "remote" host is
//! this machine, so the tests can look at its processes and files directly.

use ferrocopr_scheduler::alloc::Resource;
use ferrocopr_scheduler::host::{BuilderOutcome, CANCELED, TIMED_OUT};
use ferrocopr_scheduler::ssh::{HostKeys, RemoteTask, SshBuilder, SshConfig};
use ferrocopr_schema::task::{BuilderTask, LIVE_LOG, TaskKind};
use ferrocopr_tests::sshd::{Sshd, group_alive};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Far beyond what any of these tasks takes: a hang fails the test instead of blocking it.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A generous fail-safe for tasks that are not about the timeout.
const NO_LIMIT: Duration = Duration::from_secs(600);

/// One test's sshd, fake builder and scratch space.
struct Host {
    dir: tempfile::TempDir,
    sshd: Sshd,
}

impl Host {
    fn start() -> Host {
        init_tracing();
        let dir = tempfile::Builder::new()
            .prefix("ferrocopr-ssh-")
            .tempdir()
            .expect("make the test's temporary directory");
        let sshd = Sshd::start(&dir.path().join("sshd"));
        Host { dir, sshd }
    }

    fn resource(&self) -> Resource {
        Resource {
            host: "127.0.0.1".to_owned(),
            name: Some("fake-builder".to_owned()),
            ssh_port: self.sshd.port(),
        }
    }

    /// A fake builder that prints `line 1` … `line <lines>`, `pause` seconds apart, then
    /// writes its results and `success`.
    fn builder_program(&self, lines: u32, pause: &str) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("fake-builder-{lines}-{pause}"));
        let script = format!(
            r#"#!/bin/sh
set -e
while [ $# -gt 0 ]; do
    case "$1" in
        --task) task=$2; shift 2 ;;
        --resultdir) out=$2; shift 2 ;;
        *) shift ;;
    esac
done
i=1
while [ $i -le {lines} ]; do
    echo "line $i"
    sleep {pause}
    i=$((i + 1))
done
cp "$task" "$out/task-copy.json"
mkdir -p "$out/rpms"
echo built >"$out/rpms/hello-1.0-1.x86_64.rpm"
if grep -q escape "$task"; then ln -s /etc/passwd "$out/escape"; fi
touch "$out/success"
echo "build done"
"#
        );
        std::fs::write(&path, script).expect("write the fake builder");
        let status = std::process::Command::new("chmod")
            .arg("755")
            .arg(&path)
            .status()
            .expect("chmod the fake builder");
        assert!(status.success());
        path
    }

    fn config(&self, builder: &Path, host_keys: HostKeys) -> Arc<SshConfig> {
        Arc::new(SshConfig {
            user: self.sshd.user(),
            key: self.sshd.client_key().to_owned(),
            host_keys,
            builder_command: builder.display().to_string(),
        })
    }

    fn known_hosts(&self) -> HostKeys {
        HostKeys::KnownHosts(self.sshd.known_hosts().to_owned())
    }

    fn pinned(&self) -> HostKeys {
        HostKeys::Pinned(self.sshd.host_public_key().to_owned())
    }

    fn result_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("results").join(name)
    }
}

fn task(task_id: &str, timeout: u64) -> BuilderTask {
    BuilderTask {
        task_id: task_id.to_owned(),
        build_id: 7,
        chroot: "fedora-41-x86_64".to_owned(),
        project_owner: "alice".to_owned(),
        project_name: "hello".to_owned(),
        project_dirname: "hello".to_owned(),
        timeout,
        enable_net: false,
        kind: TaskKind::Rpm {
            git_repo: "http://127.0.0.1:1/alice/hello/hello.git".to_owned(),
            git_hash: "0123456789abcdef".to_owned(),
            lookaside_url: "http://127.0.0.1:1/lookaside".to_owned(),
            package_name: "hello".to_owned(),
            dist: ".fc41".to_owned(),
            bconds: Default::default(),
        },
    }
}

fn read_log(result_dir: &Path) -> String {
    std::fs::read_to_string(result_dir.join(LIVE_LOG)).unwrap_or_default()
}

/// Asserts that the log holds `line 1` … `line <count>`, each once and in order.
#[track_caller]
fn assert_numbered_lines(log: &str, count: u32) {
    let numbered: Vec<&str> = log.lines().filter(|l| l.starts_with("line ")).collect();
    let expected: Vec<String> = (1..=count).map(|i| format!("line {i}")).collect();
    assert_eq!(numbered, expected, "the live log was:\n{log}");
}

/// Waits until the local live log contains `text`.
async fn wait_for_log(result_dir: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !read_log(result_dir).contains(text) {
        assert!(
            Instant::now() < deadline,
            "{text:?} never reached the local log:\n{}",
            read_log(result_dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (briefly) until no live process is left in the builder's process group.
async fn assert_group_ends(pgid: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while group_alive(pgid) {
        assert!(
            Instant::now() < deadline,
            "the builder's process group {pgid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills a builder the test left running on purpose.
fn kill_group(pgid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .status();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_with_a_link_out_is_rejected() {
    let host = Host::start();
    let program = host.builder_program(1, "0");
    let builder = SshBuilder::new(host.config(&program, host.known_hosts()), &host.resource());
    let task = task("8-escape", 3600);
    let remote = builder.start(&task).await.expect("start the builder");
    let result_dir = host.result_dir("escape");
    let cancel = CancellationToken::new();
    let outcome = tokio::time::timeout(
        TEST_TIMEOUT,
        builder.follow(&remote, &result_dir, &cancel, NO_LIMIT),
    )
    .await
    .expect("follow ends")
    .expect("follow");
    // The builder said success, but its results held a link to a file of the host.
    assert_eq!(outcome, BuilderOutcome::Failed);
    let log = read_log(&result_dir);
    assert!(
        log.lines()
            .any(|l| l.starts_with("==> error: the results were rejected") && l.contains("escape")),
        "the rejection should be logged:\n{log}"
    );
    assert!(result_dir.join("escape").symlink_metadata().is_err());
    assert!(!result_dir.join("success").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_runs_to_success_with_its_log_and_results() {
    let host = Host::start();
    let program = host.builder_program(10, "0.3");
    let builder = SshBuilder::new(host.config(&program, host.known_hosts()), &host.resource());
    let task = task("7-fedora-41-x86_64", 3600);

    let remote = builder.start(&task).await.expect("start the builder");
    assert_eq!(remote.host, "127.0.0.1");
    assert_eq!(remote.port, host.sshd.port());
    assert!(
        Path::new(&remote.dir).starts_with(host.sshd.work_dir()),
        "{} is not in the host's FERROCOPR_WORKDIR",
        remote.dir
    );

    let result_dir = host.result_dir("a");
    let cancel = CancellationToken::new();
    let follow = builder.follow(&remote, &result_dir, &cancel, NO_LIMIT);
    tokio::pin!(follow);
    // The log is visible here while the builder still runs.
    tokio::select! {
        outcome = &mut follow => panic!("the task ended ({outcome:?}) before its log was seen"),
        () = wait_for_log(&result_dir, "line 2\n") => {}
    }
    assert!(group_alive(remote.pid), "the builder should still run");

    let outcome = tokio::time::timeout(TEST_TIMEOUT, follow)
        .await
        .expect("follow ends")
        .expect("follow");
    assert_eq!(outcome, BuilderOutcome::Succeeded);
    let log = read_log(&result_dir);
    assert_numbered_lines(&log, 10);
    assert!(log.contains("build done\n"), "{log}");

    // The results came back.
    assert_eq!(
        std::fs::read_to_string(result_dir.join("rpms/hello-1.0-1.x86_64.rpm")).expect("rpm"),
        "built\n"
    );
    assert!(result_dir.join("success").is_file());
    // The task JSON travelled on stdin, intact.
    let copy = std::fs::read(result_dir.join("task-copy.json")).expect("task copy");
    let copied: BuilderTask = serde_json::from_slice(&copy).expect("task JSON");
    assert_eq!(copied, task);

    builder.clean(&remote).await;
    assert!(
        !Path::new(&remote.dir).exists(),
        "clean left {}",
        remote.dir
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_stops_the_remote_builder_at_once() {
    let host = Host::start();
    let program = host.builder_program(200, "0.2");
    let builder = SshBuilder::new(host.config(&program, host.pinned()), &host.resource());
    let remote = builder
        .start(&task("8", 3600))
        .await
        .expect("start the builder");
    let result_dir = host.result_dir("b");
    let cancel = CancellationToken::new();
    let follow = builder.follow(&remote, &result_dir, &cancel, NO_LIMIT);
    tokio::pin!(follow);
    tokio::select! {
        outcome = &mut follow => panic!("the task ended ({outcome:?}) before the cancel"),
        () = wait_for_log(&result_dir, "line 2\n") => {}
    }

    let canceled_at = Instant::now();
    cancel.cancel();
    let outcome = tokio::time::timeout(TEST_TIMEOUT, follow)
        .await
        .expect("follow ends")
        .expect("follow");
    let took = canceled_at.elapsed();
    assert_eq!(outcome, BuilderOutcome::Canceled);
    assert!(
        took < Duration::from_millis(900),
        "the cancel took {took:?}"
    );
    let log = read_log(&result_dir);
    assert_eq!(log.lines().last(), Some(CANCELED), "{log}");
    assert_group_ends(remote.pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_scheduler_reattaches_without_repeating_or_losing_lines() {
    let host = Host::start();
    let program = host.builder_program(15, "0.2");
    let config = host.config(&program, host.known_hosts());
    let result_dir = host.result_dir("c");
    let cancel = CancellationToken::new();

    let first = SshBuilder::new(Arc::clone(&config), &host.resource());
    let remote = first
        .start(&task("9-fedora-41-x86_64", 3600))
        .await
        .expect("start the builder");
    // The scheduler stops mid-task: its follow is dropped, not canceled.
    let interrupted = tokio::time::timeout(
        Duration::from_millis(1500),
        first.follow(&remote, &result_dir, &cancel, NO_LIMIT),
    )
    .await;
    assert!(
        interrupted.is_err(),
        "the task should still run: {interrupted:?}"
    );
    drop(first);
    let before = read_log(&result_dir);
    assert!(
        before.contains("line 1\n"),
        "nothing was followed: {before}"
    );
    assert!(
        !before.contains("build done"),
        "the task ended too early: {before}"
    );

    // The next scheduler knows the task only from the database.
    let stored = serde_json::to_string(&remote).expect("store the remote task");
    let remote: RemoteTask = serde_json::from_str(&stored).expect("load the remote task");
    let second = SshBuilder::new(host.config(&program, host.pinned()), &host.resource());
    let outcome = tokio::time::timeout(
        TEST_TIMEOUT,
        second.follow(&remote, &result_dir, &cancel, NO_LIMIT),
    )
    .await
    .expect("follow ends")
    .expect("follow");
    assert_eq!(outcome, BuilderOutcome::Succeeded);
    let log = read_log(&result_dir);
    assert_numbered_lines(&log, 15);
    assert_eq!(log.matches("build done\n").count(), 1, "{log}");
    assert!(result_dir.join("success").is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_goes_down_is_an_error_within_seconds() {
    let mut host = Host::start();
    let program = host.builder_program(200, "0.2");
    let builder = SshBuilder::new(host.config(&program, host.known_hosts()), &host.resource());
    let remote = builder
        .start(&task("10", 3600))
        .await
        .expect("start the builder");
    let result_dir = host.result_dir("d");
    let cancel = CancellationToken::new();
    let follow = builder.follow(&remote, &result_dir, &cancel, NO_LIMIT);
    tokio::pin!(follow);
    tokio::select! {
        outcome = &mut follow => panic!("the task ended ({outcome:?}) before sshd was killed"),
        () = wait_for_log(&result_dir, "line 2\n") => {}
    }

    let killed_at = Instant::now();
    host.sshd.kill();
    let outcome = tokio::time::timeout(TEST_TIMEOUT, follow)
        .await
        .expect("follow ends");
    let took = killed_at.elapsed();
    // The builder detached from sshd, so it outlived it, as on a host whose network died.
    kill_group(remote.pid);
    let error = outcome.expect_err("an unreachable host is an error");
    assert!(took < Duration::from_secs(6), "giving up took {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "no re-attach was tried ({took:?}): {error}"
    );
    assert!(error.to_string().contains("fake-builder"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_or_wrong_host_key_is_refused() {
    let host = Host::start();
    let program = host.builder_program(1, "0");
    let other = host.dir.path().join("other_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "impostor", "-f"])
        .arg(&other)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success());
    let other_key = std::fs::read_to_string(other.with_extension("pub"))
        .expect("read the other key")
        .trim()
        .to_owned();
    let port = host.sshd.port();
    let wrong_known_hosts = host.dir.path().join("known_hosts.wrong");
    std::fs::write(
        &wrong_known_hosts,
        format!("[127.0.0.1]:{port} {other_key}\n"),
    )
    .expect("write known_hosts");
    // The right key, but for port 22: `[host]:port` entries are not matched by a bare host.
    let unknown_known_hosts = host.dir.path().join("known_hosts.unknown");
    std::fs::write(
        &unknown_known_hosts,
        format!("127.0.0.1 {}\n", host.sshd.host_public_key()),
    )
    .expect("write known_hosts");

    for host_keys in [
        HostKeys::Pinned(other_key),
        HostKeys::KnownHosts(wrong_known_hosts),
        HostKeys::KnownHosts(unknown_known_hosts),
        HostKeys::KnownHosts(host.dir.path().join("missing_known_hosts")),
    ] {
        let builder = SshBuilder::new(host.config(&program, host_keys.clone()), &host.resource());
        let started = tokio::time::timeout(TEST_TIMEOUT, builder.start(&task("11", 3600)))
            .await
            .expect("start ends");
        let error = match started {
            Ok(remote) => panic!("{host_keys:?} must be refused, yet {remote:?} started"),
            Err(error) => error,
        };
        assert!(
            error.to_string().contains("host key check failed"),
            "{host_keys:?}: {error}"
        );
    }
    // Nothing ran on the host: not even the work directory was made.
    assert!(
        !host.sshd.work_dir().exists(),
        "the builder was started on a host that failed its key check"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fail_safe_timeout_stops_the_builder() {
    let host = Host::start();
    let program = host.builder_program(200, "0.2");
    let builder = SshBuilder::new(host.config(&program, host.pinned()), &host.resource());
    let remote = builder
        .start(&task("12", 1))
        .await
        .expect("start the builder");
    let result_dir = host.result_dir("f");
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        TEST_TIMEOUT,
        builder.follow(&remote, &result_dir, &cancel, Duration::from_millis(1500)),
    )
    .await
    .expect("follow ends")
    .expect("follow");
    assert_eq!(outcome, BuilderOutcome::Failed);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let log = read_log(&result_dir);
    assert!(log.contains("line 1\n"), "{log}");
    assert_eq!(log.lines().last(), Some(TIMED_OUT), "{log}");
    assert_group_ends(remote.pid).await;
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,russh=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
