//! The SCM method's three ways to make the SRPM (issue 5), each from a pushed repository to
//! built RPMs with real git, make and rpmbuild: `spec` is the walking skeleton's (e2e.rs);
//! here `make_srpm` and `custom`, and a `make_srpm` whose Makefile fails.

use ferrocopr_tests::{DbKind, Status, TestEnv, packages};
use std::path::PathBuf;

const CHROOT: &str = "fedora-41-x86_64";

const SPEC: &str = packages::HELLO_TARBALL_SPEC;

const MAKEFILE: &str = "\
srpm:
\tgit archive --prefix=hello-1.0/ -o $(outdir)/hello-1.0.tar.gz HEAD
\trpmbuild -bs --define \"_sourcedir $(outdir)\" --define \"_srcrpmdir $(outdir)\" $(spec)
";

fn is_final(status: &Status) -> bool {
    status.state != "pending" && status.context.as_deref() == Some("copr/rpm-build")
}

/// Pushes `alice/<project>` with the spec, `.copr.yaml` (`srpm` given) and `extra` files;
/// returns the final aggregate status.
async fn build(env: &TestEnv, project: &str, srpm: &str, extra: &[(&str, &str)]) -> Status {
    let repo = env.new_repo(&format!("alice/{project}"));
    repo.write(
        ".copr.yaml",
        format!("owner: alice\nproject: {project}\nchroots: [{CHROOT}]\nspec: hello.spec\n{srpm}"),
    );
    repo.write("hello.spec", SPEC);
    repo.write("hello.txt", "hello\n");
    for (path, text) in extra {
        repo.write(path, text);
    }
    let sha = repo.commit("hello");
    let (code, body) = env
        .push(&format!("alice/{project}"), &repo, &sha, "main")
        .await;
    assert_eq!(code, 202, "{body}");
    env.wait_for_status(&sha, is_final).await
}

fn rpms_of(env: &TestEnv, project: &str) -> Vec<String> {
    let dir = env
        .data_dir()
        .join("results/alice")
        .join(project)
        .join(CHROOT);
    let mut found = Vec::new();
    for build in std::fs::read_dir(&dir).expect("chroot results") {
        let build = build.expect("entry").path();
        if !build.is_dir() || build.ends_with("repodata") {
            continue;
        }
        for file in std::fs::read_dir(&build).expect("build results") {
            let name = file
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name.ends_with(".noarch.rpm") {
                found.push(name);
            }
        }
    }
    found
}

fn srpm_log(env: &TestEnv, project: &str) -> PathBuf {
    env.data_dir()
        .join("results/alice")
        .join(project)
        .join("srpm-builds/00000001/builder-live.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_srpm_and_custom_scripts_make_the_srpm() {
    let env = TestEnv::start(DbKind::Sqlite).await;

    let done = build(
        &env,
        "made",
        "srpm:\n  method: make_srpm\n",
        &[(".copr/Makefile", MAKEFILE)],
    )
    .await;
    assert_eq!(done.state, "success", "{done:?}");
    assert_eq!(rpms_of(&env, "made"), ["hello-1.0-1.fc41.noarch.rpm"]);

    // The script sets the version and makes the tarball itself.
    let script = "srpm:\n  method: custom\n  script: |\n    \
        sed 's/^Version:.*/Version: 2.5/' hello.spec > \"$COPR_RESULTDIR/hello.spec\"\n    \
        git archive --prefix=hello-2.5/ -o \"$COPR_RESULTDIR/hello-2.5.tar.gz\" HEAD\n";
    let done = build(&env, "scripted", script, &[]).await;
    assert_eq!(done.state, "success", "{done:?}");
    assert_eq!(rpms_of(&env, "scripted"), ["hello-2.5-1.fc41.noarch.rpm"]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_makefile_fails_the_srpm_and_its_log_says_why() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let makefile = "srpm:\n\t@echo 'cannot find the release tarball' >&2; exit 3\n";
    let done = build(
        &env,
        "broken",
        "srpm:\n  method: make_srpm\n",
        &[(".copr/Makefile", makefile)],
    )
    .await;
    assert_eq!(done.state, "failure", "{done:?}");
    let log = std::fs::read_to_string(srpm_log(&env, "broken")).expect("SRPM log");
    assert!(log.contains("cannot find the release tarball"), "{log}");
    assert!(
        log.contains("`make -f .copr/Makefile srpm` failed"),
        "the builder's own line says what failed: {log}"
    );
    assert!(rpms_of_missing(&env, "broken"));
    env.stop().await;
}

fn rpms_of_missing(env: &TestEnv, project: &str) -> bool {
    !env.data_dir()
        .join("results/alice")
        .join(project)
        .join(CHROOT)
        .exists()
        || rpms_of(env, project).is_empty()
}
