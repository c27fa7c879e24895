//! Pruning (issue 6): a build superseded by a later successful build of the same package leaves
//! the chroot's repository once the project's period has passed (here 0 days: at once), its
//! directory goes, and dnf sees only the later build; a project with pruning off keeps both.

use ferrocopr_schema::db::Pruning;
use ferrocopr_schema::{BuildId, ProjectRef, State};
use ferrocopr_tests::{DbKind, TestEnv, packages};
use std::time::Duration;

const CHROOT: &str = "fedora-41-x86_64";

/// Builds hello with `release` in alice/`project` and waits for its success.
async fn build_hello(env: &TestEnv, project: &str, release: u32) -> BuildId {
    let spec =
        packages::HELLO_SPEC.replace("Release:        1%", &format!("Release:        {release}%"));
    let srpm = packages::srpm(
        &env.scratch(&format!("{project}-{release}")),
        "hello",
        &spec,
    );
    let id = env
        .submissions()
        .await
        .from_upload(
            packages::submission(project, CHROOT),
            &format!("hello-1.0-{release}.src.rpm"),
            &srpm,
        )
        .await
        .expect("the upload is taken");
    let (_, chroots) = env.wait_for_build(id).await;
    assert_eq!(chroots[0].state, State::Succeeded, "{chroots:?}");
    id
}

/// The releases of hello that dnf finds in alice/`project`'s chroot repository.
fn releases_in_repo(env: &TestEnv, project: &str) -> Vec<String> {
    let repo = env
        .data_dir()
        .join(format!("results/alice/{project}/{CHROOT}"));
    // A fresh cache each time: dnf may not notice a local repository rewritten within the
    // second it last read it, even with metadata_expire=0.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let cache = env.scratch(&format!("dnf-cache-{project}-{call}"));
    let output = std::process::Command::new("dnf")
        .args(["-q", "--setopt=reposdir=/dev/null", "--disablerepo=*"])
        .arg(format!("--repofrompath=p,file://{}", repo.display()))
        .args([
            "--enablerepo=p",
            "--setopt=p.gpgcheck=0",
            "--setopt=p.metadata_expire=0",
        ])
        .arg(format!("--setopt=cachedir={}", cache.display()))
        .args(["repoquery", "--queryformat", "%{release}\\n", "hello"])
        .output()
        .expect("run dnf");
    assert!(
        output.status.success(),
        "dnf repoquery failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut releases: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect();
    releases.sort();
    releases
}

fn build_dir(env: &TestEnv, project: &str, id: BuildId) -> std::path::PathBuf {
    env.data_dir().join(format!(
        "results/alice/{project}/{CHROOT}/{}-hello",
        id.padded()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_builds_leave_the_repository() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let db = env.db().await;
    let project = |name: &str| ProjectRef {
        owner: "alice".into(),
        project: name.into(),
    };
    db.set_pruning(&project("pruned"), Pruning::AfterDays(0))
        .await
        .expect("set pruning");
    db.set_pruning(&project("kept"), Pruning::Off)
        .await
        .expect("set pruning");

    let first = build_hello(&env, "pruned", 1).await;
    assert_eq!(releases_in_repo(&env, "pruned"), ["1.fc41"]);
    let second = build_hello(&env, "pruned", 2).await;
    // Pruning follows the publish of the later build; give it the moment it takes.
    for _ in 0..120 {
        if !build_dir(&env, "pruned", first).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !build_dir(&env, "pruned", first).exists(),
        "the superseded build is still there"
    );
    assert!(build_dir(&env, "pruned", second).exists());
    assert_eq!(releases_in_repo(&env, "pruned"), ["2.fc41"]);

    build_hello(&env, "kept", 1).await;
    build_hello(&env, "kept", 2).await;
    assert_eq!(releases_in_repo(&env, "kept"), ["1.fc41", "2.fc41"]);
    env.stop().await;
}
