//! The webhook door (issue 3): verified before anything is parsed, several secrets at once for
//! a rotation, bodies over the limit refused, each delivery recorded once, and events that need
//! no action answered 2xx without a build.

use ferrocopr_tests::webhook::{NEXT_SECRET, real_payload};
use ferrocopr_tests::{DbKind, TestEnv, new_delivery_id, push_payload};

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_door() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let db = env.db().await;

    // GitHub's ping when a webhook is added.
    let ping = serde_json::to_vec(&real_payload("ping.json")).expect("json");
    let (code, _) = env
        .github_webhook("ping", &new_delivery_id(), &ping, None)
        .await;
    assert_eq!(code, 200);

    // Over the limit: refused from its Content-Length before a byte of it is read, nothing
    // recorded. (Sending the body too would race the server's close: the client may get EPIPE.)
    let code = env.github_webhook_announcing("push", 6 * 1024 * 1024).await;
    assert_eq!(code, 413);
    assert_eq!(db.count_deliveries().await.expect("count"), 0);

    // A push to a repository without .copr.yaml, signed with the second (rotated-in) secret:
    // accepted, recorded once however often GitHub redelivers it, and no build.
    let repo = env.new_repo("alice/plain");
    repo.write("README", "no .copr.yaml here\n");
    let sha = repo.commit("plain");
    let body = push_payload("alice/plain", &repo.clone_url(), &sha, "main");
    let delivery = new_delivery_id();
    for _ in 0..3 {
        let (code, text) = env
            .github_webhook("push", &delivery, &body, Some(NEXT_SECRET))
            .await;
        assert_eq!(code, 202, "{text}");
    }
    assert_eq!(db.count_deliveries().await.expect("count"), 1);

    // The real tag-deletion push, unchanged: 2xx, and nothing to build.
    let deleted = serde_json::to_vec(&real_payload("push.json")).expect("json");
    let (code, text) = env
        .github_webhook("push", &new_delivery_id(), &deleted, None)
        .await;
    assert_eq!(code, 202, "{text}");
    assert_eq!(db.count_deliveries().await.expect("count"), 2);

    // A build request would post a pending status at once; give the worker a moment by
    // waiting for something that does happen: a later push with a broken .copr.yaml.
    let broken = env.new_repo("alice/broken");
    broken.write(
        ".copr.yaml",
        "chroots: [fedora-41-x86_64]\nspec: x.spec\nbogus: 1\n",
    );
    let broken_sha = broken.commit("broken");
    env.push("alice/broken", &broken, &broken_sha, "main").await;
    env.wait_for_status(&broken_sha, |s| s.state == "failure")
        .await;
    // Deliveries are handled in order, so the earlier ones are done: none made a status.
    assert!(
        env.statuses(&sha).is_empty(),
        "a repository without .copr.yaml got a status"
    );
    assert!(
        !env.data_dir().join("results/alice").exists(),
        "something was built"
    );
    assert_eq!(env.forge().unexpected_requests(), vec![]);
}

/// GitHub answers 500 to the first 20 status posts, then recovers: the reconciler catches up,
/// and every status ends right.
#[tokio::test(flavor = "multi_thread")]
async fn statuses_catch_up_after_a_forge_outage() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    env.forge().fail_status_posts(20);
    let repo = env.new_repo("alice/hello");
    repo.write(
        ".copr.yaml",
        "chroots: [fedora-41-x86_64]\nspec: hello.spec\n",
    );
    repo.write(
        "hello.spec",
        "Name: hello\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n\
         %description\nd\n%files\n",
    );
    let sha = repo.commit("hello");
    let (code, text) = env.push("alice/hello", &repo, &sha, "main").await;
    assert_eq!(code, 202, "{text}");

    let done = env
        .wait_for_status(&sha, |s| {
            s.state != "pending" && s.context.as_deref() == Some("copr/rpm-build")
        })
        .await;
    assert_eq!(done.state, "success", "{:#?}", env.statuses(&sha));
    assert_eq!(
        env.forge().failed_status_posts(),
        20,
        "the outage did not happen"
    );
    let chroot = env
        .statuses(&sha)
        .into_iter()
        .rev()
        .find(|s| s.context.as_deref() == Some("copr/rpm-build:fedora-41-x86_64"))
        .expect("a status for the chroot");
    assert_eq!(
        chroot.state, "success",
        "the chroot's last status is not final"
    );
}

/// A GitHub tag push builds only through a `tag` job whose glob matches the whole tag name,
/// into the project that job names; a branch push of the same commit goes to the default
/// project, and a deleted tag builds nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_github_tag_builds_through_its_job() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let repo = env.new_repo("alice/hello");
    repo.write(
        ".copr.yaml",
        "chroots: [fedora-41-x86_64]\nspec: hello.spec\njobs:\n  - trigger: tag\n    \
         branches: ['v*']\n    project: hello-releases\n",
    );
    repo.write(
        "hello.spec",
        "Name: hello\nVersion: 1.0\nRelease: 1%{?dist}\nSummary: s\nLicense: MIT\n\
         BuildArch: noarch\nSource0: hello-1.0.tar.gz\n%description\nd\n%prep\n%setup -q\n\
         %build\n%install\nmkdir -p %{buildroot}/usr/share/hello\n\
         install -m 0644 hello.txt %{buildroot}/usr/share/hello/hello.txt\n\
         %files\n/usr/share/hello/hello.txt\n",
    );
    repo.write("hello.txt", "hello\n");
    let sha = repo.commit("release");
    let tag_push = |tag: &str, deleted: bool| {
        let body = push_payload("alice/hello", &repo.clone_url(), &sha, "main");
        let mut payload: serde_json::Value = serde_json::from_slice(&body).expect("json");
        payload["ref"] = format!("refs/tags/{tag}").into();
        payload["deleted"] = deleted.into();
        serde_json::to_vec(&payload).expect("json")
    };
    // Neither a tag the glob does not match as a whole, nor a deleted tag, builds.
    for body in [tag_push("release-v1", false), tag_push("v0.9", true)] {
        let (code, _) = env
            .github_webhook("push", &new_delivery_id(), &body, None)
            .await;
        assert_eq!(code, 202);
    }
    let (code, _) = env
        .github_webhook("push", &new_delivery_id(), &tag_push("v1.0", false), None)
        .await;
    assert_eq!(code, 202);
    let done = env
        .wait_for_status(&sha, |s| {
            s.context.as_deref() == Some("copr/rpm-build") && s.state != "pending"
        })
        .await;
    assert_eq!(done.state, "success", "{:#?}", env.statuses(&sha));
    assert!(
        done.target_url
            .as_deref()
            .is_some_and(|u| u.contains("/coprs/alice/hello-releases/build/1/")),
        "{done:#?}"
    );
    assert_eq!(env.db().await.count_builds().await.expect("count"), 1);
    assert!(
        env.data_dir()
            .join("results/alice/hello-releases/fedora-41-x86_64/repodata/repomd.xml")
            .exists()
    );
    assert_eq!(env.forge().unexpected_requests(), vec![]);
}
