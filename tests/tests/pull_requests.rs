//! Pull requests (issue 3): a pull request builds into its own CoprDir `<project>:pr:<N>`
//! with an aggregate status and one per chroot on its head commit; a new push to it cancels
//! the build it supersedes, so only the newest commit publishes; a pull request from a fork
//! builds nothing and says why.

use ferrocopr_tests::webhook::PullRequest;
use ferrocopr_tests::{DbKind, Status, TestEnv, TestRepo};
use std::process::Command;

const AGGREGATE: &str = "copr/rpm-build";
const CHROOT_CONTEXT: &str = "copr/rpm-build:fedora-41-x86_64";

const COPR_YAML: &str = "\
chroots: [fedora-41-x86_64]
spec: hello.spec
";

/// A spec whose release is `release`; `build_step` goes into `%build` (a `sleep` keeps the
/// build running long enough to be superseded).
fn spec(release: u32, build_step: &str) -> String {
    format!(
        "Name: hello\nVersion: 1.0\nRelease: {release}%{{?dist}}\nSummary: s\nLicense: MIT\n\
         BuildArch: noarch\nSource0: hello-1.0.tar.gz\n%description\nd\n%prep\n%setup -q\n\
         %build\n{build_step}\n%install\nmkdir -p %{{buildroot}}/usr/share/hello\n\
         install -m 0644 hello.txt %{{buildroot}}/usr/share/hello/hello.txt\n\
         %files\n/usr/share/hello/hello.txt\n"
    )
}

fn verdict(status: &Status) -> bool {
    status.state != "pending" && status.context.as_deref() == Some(AGGREGATE)
}

fn commit(repo: &TestRepo, release: u32, build_step: &str) -> String {
    repo.write(".copr.yaml", COPR_YAML);
    repo.write("hello.spec", spec(release, build_step));
    repo.write("hello.txt", "hello from a pull request\n");
    repo.commit(&format!("release {release}"))
}

fn pr<'a>(action: &'a str, head_sha: &'a str, clone_url: &'a str) -> PullRequest<'a> {
    PullRequest {
        action,
        number: 7,
        head_sha,
        head_repo_full_name: "alice/hello",
        head_clone_url: clone_url,
        author: "alice",
    }
}

/// The package releases listed in a chroot's published repodata.
fn published_releases(env: &TestEnv, dir: &str) -> String {
    let repodata = env
        .data_dir()
        .join("results/alice")
        .join(dir)
        .join("fedora-41-x86_64/repodata");
    let out = Command::new("sh")
        .arg("-c")
        .arg("zcat \"$1\"/*-primary.xml.gz | grep -o 'rel=\"[^\"]*\"'")
        .arg("sh")
        .arg(&repodata)
        .output()
        .expect("zcat");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn pull_request_builds_into_its_own_coprdir(db: DbKind) {
    let env = TestEnv::start(db).await;
    let repo = env.new_repo("alice/hello");
    let sha = commit(&repo, 1, "true");
    let clone_url = repo.clone_url();

    let (code, body) = env
        .pull_request("alice/hello", &repo, pr("opened", &sha, &clone_url))
        .await;
    assert_eq!(code, 202, "{body}");
    let done = env.wait_for_status(&sha, verdict).await;
    let statuses = env.statuses(&sha);
    assert_eq!(done.state, "success", "{statuses:#?}");
    assert!(
        statuses
            .iter()
            .any(|s| s.context.as_deref() == Some(CHROOT_CONTEXT) && s.state == "success"),
        "no success on the chroot's own context: {statuses:#?}"
    );
    let link = done.target_url.clone().unwrap_or_default();
    assert!(link.contains("/coprs/alice/hello:pr:7/build/"), "{link}");
    assert_eq!(env.get(&link).await.status, 200, "{link}");

    let repo_file = env
        .get("/coprs/alice/hello:pr:7/repo/fedora-41/dnf.repo?arch=x86_64")
        .await;
    assert_eq!(repo_file.status, 200);
    assert_eq!(
        repo_file.text().lines().next(),
        Some("[copr:127.0.0.1:alice:hello:pr:7]")
    );
    assert!(published_releases(&env, "hello:pr:7").contains("rel=\"1.fc41\""));
    assert!(
        !env.data_dir()
            .join("results/alice/hello/fedora-41-x86_64")
            .exists(),
        "the PR built into the main CoprDir"
    );

    // Closing the pull request schedules its CoprDir for deletion after the retention period
    // (the harness keeps the default, 30 days); the results stay until then.
    let (code, _) = env
        .pull_request("alice/hello", &repo, pr("closed", &sha, &clone_url))
        .await;
    assert_eq!(code, 202);
    let project = ferrocopr_schema::ProjectRef {
        owner: "alice".to_owned(),
        project: "hello".to_owned(),
    };
    let db = env.db().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let date = loop {
        if let Some(date) = db
            .dir_deletion_date(&project, "hello:pr:7")
            .await
            .expect("read the deletion date")
        {
            break date;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no deletion was scheduled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let days = (date - now) as f64 / 86400.0;
    assert!((29.9..=30.0).contains(&days), "deletion in {days} days");
    assert!(env.data_dir().join("results/alice/hello:pr:7").exists());
    assert_eq!(env.forge().unexpected_requests(), vec![]);
}

async fn a_new_push_cancels_the_superseded_build(db: DbKind) {
    let env = TestEnv::start(db).await;
    let repo = env.new_repo("alice/hello");
    let clone_url = repo.clone_url();
    let first = commit(&repo, 1, "sleep 300");
    let (code, body) = env
        .pull_request("alice/hello", &repo, pr("opened", &first, &clone_url))
        .await;
    assert_eq!(code, 202, "{body}");
    // The first build is running its RPM build (the sleep) when the next push comes.
    env.wait_for_status(&first, |s| {
        s.context.as_deref() == Some(AGGREGATE)
            && s.description
                .as_deref()
                .is_some_and(|d| d.starts_with("RPM build"))
    })
    .await;

    let second = commit(&repo, 2, "true");
    let (code, body) = env
        .pull_request("alice/hello", &repo, pr("synchronize", &second, &clone_url))
        .await;
    assert_eq!(code, 202, "{body}");

    let superseded = env.wait_for_status(&first, verdict).await;
    assert_eq!(superseded.state, "error", "{:#?}", env.statuses(&first));
    assert!(
        superseded
            .description
            .as_deref()
            .is_some_and(|d| d.contains("canceled")),
        "{superseded:#?}"
    );
    // The builder itself was stopped: its log ends with the backend's line saying so.
    let log = env
        .data_dir()
        .join("results/alice/hello:pr:7/fedora-41-x86_64/00000001-hello/builder-live.log");
    let log = std::fs::read_to_string(&log).expect("the superseded build's log");
    assert!(
        log.trim_end().ends_with("==> the build was canceled"),
        "{log}"
    );
    let newest = env.wait_for_status(&second, verdict).await;
    assert_eq!(newest.state, "success", "{:#?}", env.statuses(&second));

    let releases = published_releases(&env, "hello:pr:7");
    assert!(releases.contains("rel=\"2.fc41\""), "{releases}");
    assert!(
        !releases.contains("rel=\"1.fc41\""),
        "the superseded build was published: {releases}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_request_builds_into_its_own_coprdir_sqlite() {
    pull_request_builds_into_its_own_coprdir(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_request_builds_into_its_own_coprdir_postgres() {
    pull_request_builds_into_its_own_coprdir(DbKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_push_cancels_the_superseded_build_sqlite() {
    a_new_push_cancels_the_superseded_build(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_push_cancels_the_superseded_build_postgres() {
    a_new_push_cancels_the_superseded_build(DbKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_builds_only_when_the_default_branch_allows_it() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let repo = env.new_repo("alice/hello");
    let sha = commit(&repo, 1, "true");
    let clone_url = repo.clone_url();
    let from_fork = |sha| PullRequest {
        head_repo_full_name: "mallory/hello",
        ..pr("opened", sha, &clone_url)
    };
    // The pull request's own file allows the fork: that does not count.
    repo.write(
        ".copr.yaml",
        format!("{COPR_YAML}allowed_forks: [mallory/hello]\n"),
    );
    let sneaky = repo.commit("allow myself");
    // The commit is only the pull request's: the default branch stays where it was.
    Command::new("git")
        .arg("-C")
        .arg(repo.path())
        .args(["reset", "-q", "--hard", &sha])
        .status()
        .expect("git reset");
    let (code, body) = env
        .pull_request("alice/hello", &repo, from_fork(&sneaky))
        .await;
    assert_eq!(code, 202, "{body}");
    let refused = env.wait_for_status(&sneaky, verdict).await;
    assert_eq!(refused.state, "failure");
    assert!(
        refused
            .description
            .as_deref()
            .is_some_and(|d| d.contains("fork")
                && d.contains("mallory/hello")
                && d.contains("allowed_forks")),
        "{refused:#?}"
    );
    assert_eq!(env.statuses(&sneaky).len(), 1, "only the refusal is posted");
    assert!(
        !env.data_dir().join("results/alice").exists(),
        "a fork's pull request built"
    );

    // The default branch allows the fork's owner: its pull request builds.
    repo.write(
        ".copr.yaml",
        format!("{COPR_YAML}allowed_forks: ['mallory/*']\n"),
    );
    let allowed = repo.commit("allow mallory's forks");
    let (code, body) = env
        .pull_request("alice/hello", &repo, from_fork(&allowed))
        .await;
    assert_eq!(code, 202, "{body}");
    let built = env.wait_for_status(&allowed, verdict).await;
    assert_eq!(built.state, "success", "{:#?}", env.statuses(&allowed));
    assert!(published_releases(&env, "hello:pr:7").contains("rel=\"1.fc41\""));
}
