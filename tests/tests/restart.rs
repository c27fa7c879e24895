//! Never stuck (issue 3): the process is killed (SIGKILL) after a build finished but before its
//! statuses reached the forge; started again on the same data directory, it posts them.

use ferrocopr_schema::Db;
use ferrocopr_schema::state::build_state;
use ferrocopr_tests::process::{ServeProcess, free_port, sqlite_url};
use ferrocopr_tests::{FakeForge, TestRepo, new_delivery_id, push_payload};
use std::time::Duration;

const AGGREGATE: &str = "copr/rpm-build";

const SPEC: &str = "Name: hello\nVersion: 1.0\nRelease: 1%{?dist}\nSummary: s\nLicense: MIT\n\
BuildArch: noarch\nSource0: hello-1.0.tar.gz\n%description\nd\n%prep\n%setup -q\n%build\n\
%install\nmkdir -p %{buildroot}/usr/share/hello\n\
install -m 0644 hello.txt %{buildroot}/usr/share/hello/hello.txt\n\
%files\n/usr/share/hello/hello.txt\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_status_lost_to_a_kill_is_posted_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let forge = FakeForge::start().await;
    let repo = TestRepo::new(dir.path().join("repo"));
    forge.register_repo("alice/hello", repo.path());
    repo.write(
        ".copr.yaml",
        "chroots: [fedora-41-x86_64]\nspec: hello.spec\n",
    );
    repo.write("hello.spec", SPEC);
    repo.write("hello.txt", "hello\n");
    let sha = repo.commit("hello");

    // The forge is down for every status until the process is gone.
    forge.fail_status_posts(usize::MAX);
    let port = free_port();
    let serve = ServeProcess::start(&data_dir, port, &forge).await;
    let body = push_payload("alice/hello", &repo.clone_url(), &sha, "main");
    assert_eq!(
        serve
            .github_webhook("push", &new_delivery_id(), &body)
            .await,
        202
    );

    // Wait, in the database, for the build to finish.
    let db = Db::connect(&sqlite_url(&data_dir))
        .await
        .expect("open the database");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let build = loop {
        let found = db.build(ferrocopr_schema::BuildId(1)).await.expect("read");
        if let Some(build) = found {
            let chroots = db.build_chroots(build.id).await.expect("chroots");
            let states: Vec<_> = chroots.iter().map(|c| c.state).collect();
            if build_state(build.cancel_requested, build.source_state, &states).is_finished() {
                break build;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the build did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    db.close().await;
    serve.kill();
    assert!(
        forge.statuses(&sha).is_empty(),
        "the forge was down: nothing may have reached it: {:#?}",
        forge.statuses(&sha)
    );
    assert!(forge.failed_status_posts() > 0, "the reporter never tried");
    assert!(
        !build
            .reported_status
            .as_deref()
            .unwrap_or_default()
            .starts_with("final:"),
        "a status was remembered as posted although it never was"
    );

    forge.fail_status_posts(0);
    let serve = ServeProcess::start(&data_dir, port, &forge).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let verdict = loop {
        let found = forge
            .statuses(&sha)
            .into_iter()
            .find(|s| s.context.as_deref() == Some(AGGREGATE) && s.state != "pending");
        if let Some(verdict) = found {
            break verdict;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no status after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(verdict.state, "success", "{:#?}", forge.statuses(&sha));
    assert!(
        verdict.target_url.as_deref().is_some_and(
            |u| u.starts_with(serve.url()) && u.ends_with("/coprs/alice/hello/build/1/")
        ),
        "{verdict:#?}"
    );
    let statuses = forge.statuses(&sha);
    assert!(
        statuses.iter().any(
            |s| s.context.as_deref() == Some("copr/rpm-build:fedora-41-x86_64")
                && s.state == "success"
        ),
        "{statuses:#?}"
    );
    // Only final statuses: the restarted reporter posts what is true now, not the history.
    assert!(
        statuses.iter().all(|s| s.state == "success"),
        "{statuses:#?}"
    );
    assert_eq!(forge.unexpected_requests(), vec![]);
    serve.kill();
}
