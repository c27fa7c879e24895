//! Acceptance (a) of issue 7: the real copr-cli from PyPI, in a virtualenv this test makes,
//! against a running ferrocopr through the API v3 only. It creates a project with two chroots,
//! builds an uploaded SRPM and one from a URL, reads `status` and `list-builds` (which pages
//! until an empty page), waits with `watch-build` until the build succeeded, cancels a queued
//! build, and then `dnf copr enable` and `dnf install` take the package from the result. A
//! second run does the same in a project of a group (`@devs/tools`), builds there from git
//! (`buildscm`) and from an added package (`add-package-scm`, `build-package`), deletes the
//! package and another project, and dnf's copr plugin finds the project with `dnf copr list`
//! and `dnf copr search`.
//!
//! It needs `python3` with `venv` and PyPI; without them it fails, never skips (STYLE 15).
//! Downloads are cached in `target/pip-cache`.

use ferrocopr_bot::texts::copr_cli_config;
use ferrocopr_bot::users::create_user;
use ferrocopr_schema::{BuildId, State};
use ferrocopr_tests::cmd::{CmdOutput, run_with_env};
use ferrocopr_tests::files::FileServer;
use ferrocopr_tests::{DbKind, TestEnv, TestRepo, packages};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const CHROOT: &str = "fedora-41-x86_64";
const OTHER_CHROOT: &str = "fedora-42-x86_64";

/// pip's cache, kept between runs so only the first one downloads copr-cli.
fn pip_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pip-cache")
}

/// A virtualenv in `dir` with copr-cli installed; returns the path of `copr-cli`.
async fn install_copr_cli(dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    run_with_env(
        "python3",
        [OsStr::new("-m"), "venv".as_ref(), venv.as_os_str()],
        &[],
    )
    .await
    .expect_success();
    let pip = venv.join("bin/pip");
    let cache = pip_cache();
    run_with_env(
        &pip.to_string_lossy(),
        [
            OsStr::new("install"),
            "--quiet".as_ref(),
            "--cache-dir".as_ref(),
            cache.as_os_str(),
            "copr-cli".as_ref(),
        ],
        &[],
    )
    .await
    .expect_success();
    venv.join("bin/copr-cli")
}

struct CoprCli {
    program: PathBuf,
    config: PathBuf,
    home: PathBuf,
}

impl CoprCli {
    async fn run(&self, args: &[&str]) -> CmdOutput {
        let mut all = vec!["--config", self.config.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        run_with_env(
            &self.program.to_string_lossy(),
            all,
            &[("HOME", self.home.as_os_str())],
        )
        .await
    }

    async fn ok(&self, args: &[&str]) -> CmdOutput {
        self.run(args).await.expect_success()
    }
}

/// The ids in copr-cli's "Created builds: 1 2" line.
fn created_builds(output: &CmdOutput) -> Vec<i64> {
    output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Created builds: "))
        .unwrap_or_else(|| panic!("no \"Created builds\" line:\n{output}"))
        .split_whitespace()
        .map(|id| id.parse().expect("a build id"))
        .collect()
}

/// copr-cli in a fresh virtualenv, configured with a new token of a new user `name` who is a
/// member of `groups`.
async fn copr_cli_of(env: &TestEnv, name: &str, groups: &[&str]) -> CoprCli {
    let program = install_copr_cli(&env.scratch("copr-cli")).await;
    let db = env.db().await;
    let (user, credentials) = create_user(&db, name, false).await.expect("a new user");
    for group in groups {
        db.add_group_member(group, &user)
            .await
            .expect("join the group");
    }
    let config = env.scratch("copr-cli").join("copr");
    std::fs::write(
        &config,
        copr_cli_config(
            env.public_url(),
            name,
            &credentials.login,
            &credentials.token,
            credentials.expires_on,
        ),
    )
    .expect("write copr-cli's config");
    CoprCli {
        program,
        config,
        home: env.scratch("home"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn copr_cli_builds_and_dnf_installs() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let cli = copr_cli_of(&env, "alice", &[]).await;

    let created = cli
        .ok(&[
            "create",
            "hello",
            "--chroot",
            CHROOT,
            "--chroot",
            OTHER_CHROOT,
        ])
        .await;
    assert!(
        created
            .stdout
            .contains("New project was successfully created"),
        "{created}"
    );

    let srpm_dir = env.scratch("srpm");
    packages::srpm(&srpm_dir, "hello", packages::HELLO_SPEC);
    let srpm = srpm_dir.join("hello-1.0-1.src.rpm");
    let srpm = srpm.to_str().expect("utf-8 path");
    let uploaded = cli.ok(&["build", "--nowait", "hello", srpm]).await;
    let [upload_id] = created_builds(&uploaded)[..] else {
        panic!("one build:\n{uploaded}")
    };

    let mut web = FileServer::start(&srpm_dir).await;
    let from_url = cli
        .ok(&[
            "build",
            "--nowait",
            "hello",
            &web.url("hello-1.0-1.src.rpm"),
        ])
        .await;
    let [url_id] = created_builds(&from_url)[..] else {
        panic!("one build:\n{from_url}")
    };

    // A third build, canceled while it is queued behind the other two.
    let queued = cli.ok(&["build", "--nowait", "hello", srpm]).await;
    let [queued_id] = created_builds(&queued)[..] else {
        panic!("one build:\n{queued}")
    };
    // copr-cli prints the state the build is in when the cancel is asked for; the scheduler
    // then cancels it, and `list-builds` below shows it canceled.
    cli.ok(&["cancel", &queued_id.to_string()]).await;

    let watched = cli.ok(&["watch-build", &upload_id.to_string()]).await;
    assert!(watched.stdout.contains("succeeded"), "{watched}");
    let (_, chroots) = env.wait_for_build(BuildId(url_id)).await;
    assert!(
        chroots.iter().all(|c| c.state == State::Succeeded),
        "{chroots:?}"
    );
    web.stop();
    let (_, chroots) = env.wait_for_build(BuildId(queued_id)).await;
    assert!(
        chroots.iter().all(|c| c.state != State::Succeeded),
        "{chroots:?}"
    );

    let status = cli.ok(&["status", &upload_id.to_string()]).await;
    assert_eq!(status.stdout.trim(), "succeeded", "{status}");
    let listed = cli.ok(&["list-builds", "hello"]).await;
    for (id, state) in [
        (upload_id, "succeeded"),
        (url_id, "succeeded"),
        (queued_id, "canceled"),
    ] {
        assert!(
            listed
                .stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [&id.to_string(), "hello", state]),
            "build {id} {state} not listed:\n{listed}"
        );
    }

    let root = env.install_root("hello", "41");
    root.copr_enable(env.public_url(), "alice/hello", CHROOT)
        .await;
    root.install("hello").await;
    assert!(root.file("usr/share/hello/hello.txt").exists());
    env.stop().await;
}

/// A project owned by a group, end to end: a member creates `@devs/tools` and builds in it with
/// copr-cli, dnf's copr plugin finds it with `list` and `search` and enables it (its repository
/// id says `group_devs`), and dnf installs the package.
#[tokio::test(flavor = "multi_thread")]
async fn group_project_from_copr_cli_to_dnf() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let cli = copr_cli_of(&env, "bob", &["devs"]).await;
    cli.ok(&[
        "create",
        "@devs/tools",
        "--chroot",
        CHROOT,
        "--description",
        "Tools the devs share",
    ])
    .await;

    let srpm_dir = env.scratch("srpm");
    packages::srpm(&srpm_dir, "hello", packages::HELLO_SPEC);
    let srpm = srpm_dir.join("hello-1.0-1.src.rpm");
    let built = cli
        .ok(&["build", "@devs/tools", srpm.to_str().expect("utf-8 path")])
        .await;
    assert!(built.stdout.contains("succeeded"), "{built}");

    // The other ways copr-cli builds: from git, and from a package it added; then it deletes
    // the package and a whole project.
    let repo = TestRepo::new(env.scratch("tools-git"));
    repo.write("hello.spec", packages::HELLO_TARBALL_SPEC);
    repo.write("hello.txt", "hello\n");
    repo.commit("hello");
    let clone_url = repo.clone_url();
    let from_git = cli
        .ok(&[
            "buildscm",
            "@devs/tools",
            "--clone-url",
            &clone_url,
            "--spec",
            "hello.spec",
        ])
        .await;
    assert!(from_git.stdout.contains("succeeded"), "{from_git}");
    cli.ok(&[
        "add-package-scm",
        "@devs/tools",
        "--name",
        "hello",
        "--clone-url",
        &clone_url,
        "--spec",
        "hello.spec",
    ])
    .await;
    let packaged = cli
        .ok(&["build-package", "@devs/tools", "--name", "hello"])
        .await;
    assert!(packaged.stdout.contains("succeeded"), "{packaged}");
    let listed = cli.ok(&["list-packages", "@devs/tools"]).await;
    assert!(listed.stdout.contains("\"name\": \"hello\""), "{listed}");
    cli.ok(&["delete-package", "@devs/tools", "--name", "hello"])
        .await;
    cli.ok(&["create", "@devs/scratch", "--chroot", CHROOT])
        .await;
    let deleted = cli.ok(&["delete", "@devs/scratch"]).await;
    assert!(
        deleted.stdout.contains("Project scratch has been deleted."),
        "{deleted}"
    );

    let root = env.install_root("group", "41");
    let listed = root
        .copr(env.public_url(), &["list", "--available-by-user=@devs"])
        .await;
    assert!(
        listed.stdout.contains("@devs/tools") && listed.stdout.contains("Tools the devs share"),
        "{listed}"
    );
    let found = root.copr(env.public_url(), &["search", "tools"]).await;
    assert!(found.stdout.contains("@devs/tools"), "{found}");

    root.copr_enable(env.public_url(), "@devs/tools", CHROOT)
        .await;
    let repo_file = root.repo_file("_copr:127.0.0.1:group_devs:tools.repo");
    assert!(
        repo_file.contains("/results/@devs/tools/fedora-$releasever-$basearch/"),
        "{repo_file}"
    );
    root.install("hello").await;
    assert!(root.file("usr/share/hello/hello.txt").exists());
    env.stop().await;
}
