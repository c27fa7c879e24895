//! `/copr` commands in pull request comments (issue 3): acknowledged at once, run for the pull
//! request's author and for people with write access, answered with the rule for anyone else,
//! with help for a command that cannot be run; a redelivered comment builds nothing more.

use ferrocopr_tests::webhook::pull_request_comment_payload;
use ferrocopr_tests::{DbKind, FakePull, Status, TestEnv, TestRepo, new_delivery_id};

const REPO: &str = "alice/hello";
const PR: u64 = 3;

const COPR_YAML: &str = "chroots: [fedora-41-x86_64]\nspec: hello.spec\n";
const SPEC: &str = "Name: hello\nVersion: 1.0\nRelease: 1%{?dist}\nSummary: s\nLicense: MIT\n\
BuildArch: noarch\nSource0: hello-1.0.tar.gz\n%description\nd\n%prep\n%setup -q\n%install\n\
mkdir -p %{buildroot}/usr/share/hello\ninstall -m 0644 hello.txt %{buildroot}/usr/share/hello/\n\
%files\n/usr/share/hello/hello.txt\n";

fn verdict(status: &Status) -> bool {
    status.state != "pending" && status.context.as_deref() == Some("copr/rpm-build")
}

/// `alice/hello` with pull request #3 by alice, whose head commit is returned.
fn pull_request(env: &TestEnv) -> (TestRepo, String) {
    let repo = env.new_repo(REPO);
    repo.write(".copr.yaml", COPR_YAML);
    repo.write("hello.spec", SPEC);
    repo.write("hello.txt", "hello\n");
    let sha = repo.commit("hello");
    env.forge().register_pull(
        REPO,
        PR,
        FakePull {
            head_sha: sha.clone(),
            head_full_name: REPO.into(),
            head_clone_url: repo.clone_url(),
            base_ref: "main".into(),
            author: "alice".into(),
        },
    );
    (repo, sha)
}

/// Sends comment `id` by `who`; returns the delivery id, to redeliver it.
async fn comment(env: &TestEnv, repo: &TestRepo, id: u64, who: &str, body: &str) -> String {
    let payload = pull_request_comment_payload(REPO, &repo.clone_url(), PR, "alice", id, who, body);
    let delivery = new_delivery_id();
    let (code, text) = env
        .github_webhook("issue_comment", &delivery, &payload, None)
        .await;
    assert_eq!(code, 202, "{text}");
    delivery
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authors_build_command_builds_once() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let (repo, sha) = pull_request(&env);
    let payload = pull_request_comment_payload(
        REPO,
        &repo.clone_url(),
        PR,
        "alice",
        101,
        "alice",
        "Ready.\n\n/copr build\n",
    );
    let delivery = new_delivery_id();
    let (code, text) = env
        .github_webhook("issue_comment", &delivery, &payload, None)
        .await;
    assert_eq!(code, 202, "{text}");

    let done = env.wait_for_status(&sha, verdict).await;
    assert_eq!(done.state, "success", "{:#?}", env.statuses(&sha));
    assert!(
        done.target_url
            .unwrap_or_default()
            .contains("/coprs/alice/hello:pr:3/build/")
    );
    assert_eq!(
        env.forge().reactions(101),
        ["eyes"],
        "the command was not acknowledged"
    );

    // GitHub redelivers the same delivery: recorded once, nothing more is built.
    let (code, text) = env
        .github_webhook("issue_comment", &delivery, &payload, None)
        .await;
    assert_eq!(code, 202, "{text}");
    let db = env.db().await;
    assert_eq!(db.count_deliveries().await.expect("count"), 1);
    let project = ferrocopr_schema::ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    };
    let latest = db
        .latest_build_in_dir(&project, "hello:pr:3")
        .await
        .expect("query")
        .expect("a build");
    assert_eq!(latest.id.0, 1, "a second build was made");
    assert!(
        env.forge().comments(REPO, PR).is_empty(),
        "a build command needs no reply"
    );
    assert_eq!(env.forge().unexpected_requests(), vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_command_is_refused_with_the_rule() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let (repo, sha) = pull_request(&env);
    comment(&env, &repo, 102, "mallory", "/copr build").await;
    env.wait_for_forge("the refusal", |gh| !gh.comments(REPO, PR).is_empty())
        .await;
    let replies = env.forge().comments(REPO, PR);
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        replies[0]
            .starts_with("@mallory, only the pull request's author and people with write access"),
        "{replies:#?}"
    );
    assert!(
        env.statuses(&sha).is_empty(),
        "a stranger's command started a build"
    );
    assert_eq!(env.forge().reactions(102), ["eyes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collaborator_with_write_access_may_build_one_chroot_and_gets_help() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let (repo, sha) = pull_request(&env);
    env.forge().grant(REPO, "bob", "write");
    comment(
        &env,
        &repo,
        103,
        "bob",
        "/copr build fedora-41-x86_64\n/copr frobnicate\n```\n/copr cancel\n```\n",
    )
    .await;

    let done = env.wait_for_status(&sha, verdict).await;
    assert_eq!(done.state, "success", "{:#?}", env.statuses(&sha));
    env.wait_for_forge("the help reply", |gh| !gh.comments(REPO, PR).is_empty())
        .await;
    let replies = env.forge().comments(REPO, PR);
    assert_eq!(
        replies.len(),
        1,
        "the fenced /copr cancel was not ignored: {replies:#?}"
    );
    assert!(
        replies[0].starts_with("Unknown command `/copr frobnicate`."),
        "{replies:#?}"
    );
    assert!(
        replies[0].contains("/copr build"),
        "no help text in the reply: {replies:#?}"
    );

    // The bot's own comment, delivered back to it, is no command.
    let own = format!("/copr build\n{}", "<!-- ferrocopr -->");
    comment(&env, &repo, 104, "bob", &own).await;
    comment(&env, &repo, 105, "bob", "/copr help").await;
    env.wait_for_forge("the help", |gh| gh.comments(REPO, PR).len() == 2)
        .await;
    assert!(
        env.forge().reactions(104).is_empty(),
        "the bot answered its own comment"
    );
}
