//! The queue as the web UI reads it (`GET /api/queue`): who waits for what, since when.

use ferrocopr_tests::{DbKind, TestEnv};

const COPR_YAML: &str = "\
owner: alice
project: queued
chroots: [fedora-41-x86_64]
spec: hello.spec
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_shows_who_waits_for_what_since_when() {
    // No builders: whatever is requested stays pending.
    let env = TestEnv::start_with(DbKind::Sqlite, |config| config.local_builders = 0).await;
    let repo = env.new_repo("alice/queued");
    repo.write(".copr.yaml", COPR_YAML);
    repo.write("hello.spec", "Name: hello\n");
    let sha = repo.commit("queued");
    let (code, body) = env.push("alice/queued", &repo, &sha, "main").await;
    assert_eq!(code, 202, "{body}");

    let mut queue = serde_json::Value::Null;
    for _ in 0..100 {
        let response = env.get("/api/queue").await;
        assert_eq!(response.status, 200, "{}", response.text());
        queue = serde_json::from_slice(&response.body).expect("JSON");
        if queue["pending"].as_array().is_some_and(|p| !p.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pending = &queue["pending"][0];
    assert_eq!(pending["owner"], "alice", "{queue:#}");
    assert_eq!(pending["project"], "queued");
    assert_eq!(pending["chroot"], "srpm-builds");
    assert_eq!(pending["arch"], "srpm");
    assert!(
        pending["sandbox"]
            .as_str()
            .expect("present")
            .starts_with("alice/queued--")
    );
    assert!(pending["since"].as_i64().expect("present") > 0);
    assert_eq!(queue["running"].as_array().map(Vec::len), Some(0));
    let summary = &queue["summary"][0];
    assert_eq!(
        (&summary["owner"], &summary["arch"], &summary["pending"]),
        (&"alice".into(), &"srpm".into(), &1.into()),
        "{queue:#}"
    );
    assert_eq!(summary["waiting_since"], pending["since"]);
    env.stop().await;
}
