//! Who owns the builds of a `.copr.yaml` (issue 7): a repository's projects belong to its owner
//! on the forge, and its file may name another owner's project (here a group's) only when that
//! project lets the repository build in it (Copr's `packit_forge_projects_allowed`). Until it
//! does, each event fails with a status naming `.copr.yaml:LINE:COLUMN` and starts nothing; once
//! it does, the same file builds into the group's project.

use ferrocopr_schema::ProjectRef;
use ferrocopr_schema::db::ProjectSettings;
use ferrocopr_tests::{DbKind, Status, TestEnv, packages};

const CHROOT: &str = "fedora-41-x86_64";

const COPR_YAML: &str = "\
owner: \"@devs\"
project: tools
chroots: [fedora-41-x86_64]
spec: hello.spec
";

fn is_final(status: &Status) -> bool {
    status.state != "pending" && status.context.as_deref() == Some("copr/rpm-build")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_builds_into_another_owners_project_only_when_it_allows_the_repository() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let db = env.db().await;
    let tools = ProjectRef {
        owner: "@devs".into(),
        project: "tools".into(),
    };
    assert!(
        db.create_project(&tools, &ProjectSettings::default(), &[CHROOT.to_owned()])
            .await
            .expect("create @devs/tools")
    );

    let repo = env.new_repo("alice/hello");
    repo.write(".copr.yaml", COPR_YAML);
    repo.write("hello.spec", packages::HELLO_SPEC);
    let refused = repo.commit("build into the devs' project");
    let (code, body) = env.push("alice/hello", &repo, &refused, "main").await;
    assert_eq!(code, 202, "{body}");
    let failure = env.wait_for_status(&refused, is_final).await;
    assert_eq!(failure.state, "failure", "{failure:#?}");
    let description = failure.description.clone().unwrap_or_default();
    assert!(
        description.starts_with(".copr.yaml:1:8") && description.contains("does not allow"),
        "the failure names the owner line and why: {failure:#?}"
    );
    assert!(
        !env.data_dir().join("results/@devs").exists(),
        "a build started for a project that does not allow the repository"
    );

    let allowing = ProjectSettings {
        packit_forge_projects_allowed: vec!["github.com/alice/*".into()],
        ..ProjectSettings::default()
    };
    assert!(
        db.edit_project(&tools, &allowing, None)
            .await
            .expect("allow alice's repositories")
    );
    repo.write("NEWS", "allowed now\n");
    let allowed = repo.commit("again, allowed");
    let (code, body) = env.push("alice/hello", &repo, &allowed, "main").await;
    assert_eq!(code, 202, "{body}");
    let success = env.wait_for_status(&allowed, is_final).await;
    assert_eq!(success.state, "success", "{success:#?}");
    let chroot_dir = env.data_dir().join("results/@devs/tools").join(CHROOT);
    let built: Vec<_> = std::fs::read_dir(&chroot_dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", chroot_dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with("-hello"))
        .collect();
    assert_eq!(
        built.len(),
        1,
        "one build of hello in @devs/tools: {built:?}"
    );
    let alice_hello = ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    };
    assert!(
        db.project(&alice_hello).await.expect("read").is_none(),
        "no project of alice's was made"
    );
    env.stop().await;
}
