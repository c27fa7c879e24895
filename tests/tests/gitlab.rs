//! GitLab (issue 3): the same flow as GitHub's, from GitLab's hooks (`Push Hook`, `Tag Push
//! Hook`, `Merge Request Hook`, `Note Hook`, verified by `X-Gitlab-Token`) to GitLab's commit
//! statuses (pending, running, success, failed, canceled) set through the real gitlab client on
//! the fake forge, which refuses a status set twice to one state as GitLab does.

use ferrocopr_schema::ProjectRef;
use ferrocopr_tests::webhook::{
    MergeRequest, gitlab_merge_request_payload, gitlab_note_payload, gitlab_push_payload,
};
use ferrocopr_tests::{DbKind, FakePull, Status, TestEnv, TestRepo, new_delivery_id};
use std::time::Duration;

const REPO: &str = "alice/hello";
const AGGREGATE: &str = "copr/rpm-build";
const CHROOT_CONTEXT: &str = "copr/rpm-build:fedora-41-x86_64";

fn spec(release: u32, build_step: &str) -> String {
    format!(
        "Name: hello\nVersion: 1.0\nRelease: {release}%{{?dist}}\nSummary: s\nLicense: MIT\n\
         BuildArch: noarch\nSource0: hello-1.0.tar.gz\n%description\nd\n%prep\n%setup -q\n\
         %build\n{build_step}\n%install\nmkdir -p %{{buildroot}}/usr/share/hello\n\
         install -m 0644 hello.txt %{{buildroot}}/usr/share/hello/hello.txt\n\
         %files\n/usr/share/hello/hello.txt\n"
    )
}

fn commit(repo: &TestRepo, copr_yaml: &str, release: u32, build_step: &str) -> String {
    repo.write(".copr.yaml", copr_yaml);
    repo.write("hello.spec", spec(release, build_step));
    repo.write("hello.txt", "hello from GitLab\n");
    repo.commit(&format!("release {release}"))
}

/// The aggregate status once it is final in GitLab's words.
fn verdict(status: &Status) -> bool {
    status.context.as_deref() == Some(AGGREGATE)
        && !["pending", "running"].contains(&status.state.as_str())
}

fn states_of(statuses: &[Status], context: &str) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| s.context.as_deref() == Some(context))
        .map(|s| s.state.clone())
        .collect()
}

async fn count_builds(env: &TestEnv) -> i64 {
    env.db().await.count_builds().await.expect("count builds")
}

const PUSH_AND_TAG_YAML: &str = "\
chroots: [fedora-41-x86_64]
spec: hello.spec
jobs:
  - trigger: push
  - trigger: tag
    branches: ['v*']
    project: hello-releases
";

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_push_and_tag_build_with_gitlab_states() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let repo = env.new_repo(REPO);
    let sha = commit(&repo, PUSH_AND_TAG_YAML, 1, "true");
    let clone_url = repo.clone_url();

    // A wrong token is refused before anything is read.
    let push = gitlab_push_payload(REPO, &clone_url, &sha, "refs/heads/main");
    let (code, _) = env
        .gitlab_webhook("Push Hook", &new_delivery_id(), &push, Some("wrong"))
        .await;
    assert_eq!(code, 401);

    let push_uuid = new_delivery_id();
    let (code, body) = env
        .gitlab_webhook("Push Hook", &push_uuid, &push, None)
        .await;
    assert_eq!(code, 202, "{body}");
    let done = env.wait_for_status(&sha, verdict).await;
    let statuses = env.statuses(&sha);
    assert_eq!(done.state, "success", "{statuses:#?}");
    // GitLab's own states, each set once: accepted (pending), SRPM/RPM (running), success.
    let aggregate = states_of(&statuses, AGGREGATE);
    assert_eq!(
        aggregate.first().map(String::as_str),
        Some("pending"),
        "{statuses:#?}"
    );
    assert!(aggregate.iter().any(|s| s == "running"), "{statuses:#?}");
    assert_eq!(aggregate.last().map(String::as_str), Some("success"));
    assert_eq!(
        states_of(&statuses, CHROOT_CONTEXT)
            .last()
            .map(String::as_str),
        Some("success")
    );
    let link = done.target_url.clone().unwrap_or_default();
    assert!(link.contains("/coprs/alice/hello/build/"), "{link}");
    assert!(
        env.data_dir()
            .join("results/alice/hello/fedora-41-x86_64/repodata/repomd.xml")
            .exists()
    );

    // A tag builds into the project its job names.
    let tag_push = gitlab_push_payload(REPO, &clone_url, &sha, "refs/tags/v1.0");
    let tag_uuid = new_delivery_id();
    let (code, body) = env
        .gitlab_webhook("Tag Push Hook", &tag_uuid, &tag_push, None)
        .await;
    assert_eq!(code, 202, "{body}");
    env.wait_for_forge("the tag build's verdict", |forge| {
        forge
            .statuses(&sha)
            .iter()
            .filter(|s| verdict(s) && s.state == "success")
            .count()
            >= 2
    })
    .await;
    assert!(
        env.data_dir()
            .join("results/alice/hello-releases/fedora-41-x86_64/repodata/repomd.xml")
            .exists()
    );

    // Redelivering both makes no further build.
    let builds = count_builds(&env).await;
    assert_eq!(builds, 2);
    for (event, uuid, body) in [
        ("Push Hook", &push_uuid, &push),
        ("Tag Push Hook", &tag_uuid, &tag_push),
    ] {
        let (code, text) = env.gitlab_webhook(event, uuid, body, None).await;
        assert_eq!((code, text.as_str()), (202, "already recorded"));
    }
    // A deleted branch needs no build.
    let delete = gitlab_push_payload(REPO, &clone_url, &"0".repeat(40), "refs/heads/gone");
    let (code, _) = env
        .gitlab_webhook("Push Hook", &new_delivery_id(), &delete, None)
        .await;
    assert_eq!(code, 202);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count_builds(&env).await, builds);
    assert_eq!(env.forge().unexpected_requests(), vec![]);
}

const MR_YAML: &str = "\
chroots: [fedora-41-x86_64]
spec: hello.spec
notifications:
  success_comment: true
";

/// A merge request's whole life: opened, updated while building (the superseded build ends
/// canceled), commands in notes (a stranger refused, the author accepted), one success comment
/// updated by the next success, and closing it deletes its CoprDir after the retention period
/// (zero here).
#[tokio::test(flavor = "multi_thread")]
async fn gitlab_merge_request_lifecycle() {
    let env = TestEnv::start_with(DbKind::Sqlite, |config| {
        config.pr_dir_retention = Duration::ZERO;
    })
    .await;
    let repo = env.new_repo(REPO);
    let clone_url = repo.clone_url();
    let author_id = env.forge().gitlab_user_id("alice");
    let mr = |action, head_sha, oldrev| MergeRequest {
        action,
        iid: 3,
        head_sha,
        oldrev,
        author_id,
    };

    let first = commit(&repo, MR_YAML, 1, "sleep 300");
    let body = gitlab_merge_request_payload(REPO, &clone_url, mr("open", &first, None));
    let (code, text) = env
        .gitlab_webhook("Merge Request Hook", &new_delivery_id(), &body, None)
        .await;
    assert_eq!(code, 202, "{text}");
    env.wait_for_status(&first, |s| {
        s.context.as_deref() == Some(AGGREGATE)
            && s.description
                .as_deref()
                .is_some_and(|d| d.starts_with("RPM build"))
    })
    .await;

    let second = commit(&repo, MR_YAML, 2, "true");
    let body = gitlab_merge_request_payload(REPO, &clone_url, mr("update", &second, Some(&first)));
    let (code, text) = env
        .gitlab_webhook("Merge Request Hook", &new_delivery_id(), &body, None)
        .await;
    assert_eq!(code, 202, "{text}");
    let superseded = env.wait_for_status(&first, verdict).await;
    assert_eq!(superseded.state, "canceled", "{:#?}", env.statuses(&first));
    let newest = env.wait_for_status(&second, verdict).await;
    assert_eq!(newest.state, "success", "{:#?}", env.statuses(&second));
    assert!(
        newest
            .target_url
            .as_deref()
            .is_some_and(|u| u.contains("/coprs/alice/hello:pr:3/build/2/")),
        "{newest:#?}"
    );

    // One success comment, with the dnf line for the merge request's CoprDir.
    env.wait_for_forge("the success comment", |forge| {
        !forge.comments(REPO, 3).is_empty()
    })
    .await;
    let comments = env.forge().comments(REPO, 3);
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(
        comments[0].contains("enable alice/hello:pr:3"),
        "{comments:#?}"
    );
    assert!(comments[0].contains("Build 2 succeeded"), "{comments:#?}");
    assert!(
        comments[0].contains("hello-1.0-2.fc41.noarch.rpm"),
        "{comments:#?}"
    );

    env.forge().register_pull(
        REPO,
        3,
        FakePull {
            head_sha: second.clone(),
            head_full_name: REPO.to_owned(),
            head_clone_url: clone_url.clone(),
            base_ref: "main".to_owned(),
            author: "alice".to_owned(),
        },
    );
    // A stranger's command is refused with the rule; the bot reacts to it all the same.
    let mallory = ("mallory", env.forge().gitlab_user_id("mallory"));
    let note = gitlab_note_payload(REPO, &clone_url, 3, author_id, 501, mallory, "/copr build");
    let (code, _) = env
        .gitlab_webhook("Note Hook", &new_delivery_id(), &note, None)
        .await;
    assert_eq!(code, 202);
    env.wait_for_forge("the refusal", |forge| forge.comments(REPO, 3).len() == 2)
        .await;
    assert!(env.forge().comments(REPO, 3)[1].contains("@mallory, only the pull request's author"));
    assert_eq!(env.forge().reactions(501), ["eyes"]);

    // The author's command builds again; its success edits the one success comment.
    let note = gitlab_note_payload(
        REPO,
        &clone_url,
        3,
        author_id,
        502,
        ("alice", author_id),
        "Retrying:\n\n/copr build",
    );
    let note_uuid = new_delivery_id();
    let (code, _) = env
        .gitlab_webhook("Note Hook", &note_uuid, &note, None)
        .await;
    assert_eq!(code, 202);
    env.wait_for_forge("the rebuild's comment", |forge| {
        forge
            .comments(REPO, 3)
            .first()
            .is_some_and(|c| c.contains("Build 3 succeeded"))
    })
    .await;
    assert_eq!(
        env.forge().comments(REPO, 3).len(),
        2,
        "{:#?}",
        env.forge().comments(REPO, 3)
    );
    assert_eq!(env.forge().reactions(502), ["eyes"]);
    let (code, text) = env
        .gitlab_webhook("Note Hook", &note_uuid, &note, None)
        .await;
    assert_eq!((code, text.as_str()), (202, "already recorded"));
    assert_eq!(count_builds(&env).await, 3);

    // Closing it: the CoprDir is deleted once the retention period (zero) has passed.
    let pr_dir = env.data_dir().join("results/alice/hello:pr:3");
    assert!(pr_dir.exists());
    let body = gitlab_merge_request_payload(REPO, &clone_url, mr("close", &second, None));
    let (code, _) = env
        .gitlab_webhook("Merge Request Hook", &new_delivery_id(), &body, None)
        .await;
    assert_eq!(code, 202);
    let project = ProjectRef {
        owner: "alice".to_owned(),
        project: "hello".to_owned(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while pr_dir.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed MR's CoprDir is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let date = env
        .db()
        .await
        .dir_deletion_date(&project, "hello:pr:3")
        .await
        .expect("read the deletion date");
    assert!(date.is_some());
    assert_eq!(env.forge().unexpected_requests(), vec![]);
}
