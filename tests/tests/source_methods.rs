//! The source methods besides SCM (issue 5), each from its source to built RPMs with real
//! rpmbuild: `url` with a `.src.rpm` and with a `.spec` whose tarball is a URL too, an
//! uploaded SRPM, `distgit` with another ferrocopr's DistGit standing in for Fedora's, and a
//! rebuild from our own DistGit alone once the forge, the original SRPM and the web are gone.
//! The upload also carries a `--with` conditional through to rpmbuild.

use ferrocopr_schema::model::DistgitInstance;
use ferrocopr_schema::{BuildId, State};
use ferrocopr_tests::cmd::check;
use ferrocopr_tests::files::FileServer;
use ferrocopr_tests::{DbKind, Status, Submission, TestEnv, packages};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROOT: &str = "fedora-41-x86_64";

/// `Source0` is filled in per test: a file name or a URL.
fn spec(source0: &str) -> String {
    format!(
        "\
Name:           hello
Version:        1.0
Release:        1%{{?dist}}
Summary:        A greeting
License:        MIT
BuildArch:      noarch
Source0:        {source0}

%bcond_with extra

%description
A file that says hello.

%prep
%setup -q

%install
mkdir -p %{{buildroot}}/usr/share/hello
install -m 0644 hello.txt %{{buildroot}}/usr/share/hello/hello.txt
%if %{{with extra}}
install -m 0644 hello.txt %{{buildroot}}/usr/share/hello/extra.txt
%endif

%files
/usr/share/hello/hello.txt
%if %{{with extra}}
/usr/share/hello/extra.txt
%endif
"
    )
}

/// Writes `hello-1.0.tar.gz` and `hello.spec` (with `source0`) into `dir`.
fn sources(dir: &Path, source0: &str) {
    let tree = dir.join("tree/hello-1.0");
    std::fs::create_dir_all(&tree).expect("tree");
    std::fs::write(tree.join("hello.txt"), "hello\n").expect("hello.txt");
    check(
        Command::new("tar")
            .current_dir(dir.join("tree"))
            .arg("czf")
            .arg(dir.join("hello-1.0.tar.gz"))
            .arg("hello-1.0"),
    );
    std::fs::write(dir.join("hello.spec"), spec(source0)).expect("spec");
}

/// Makes `hello-1.0-1.src.rpm` in `dir` with rpmbuild; returns its path.
fn srpm_in(dir: &Path) -> PathBuf {
    sources(dir, "hello-%{version}.tar.gz");
    let define = |k: &str, v: &Path| format!("{k} {}", v.display());
    check(
        Command::new("rpmbuild")
            .args(["-bs", "--nodeps"])
            .arg(dir.join("hello.spec"))
            .args(["--define", &define("_topdir", &dir.join("top"))])
            .args(["--define", &define("_sourcedir", dir)])
            .args(["--define", &define("_srcrpmdir", dir)]),
    );
    dir.join("hello-1.0-1.src.rpm")
}

fn submission(project: &str) -> Submission {
    packages::submission(project, CHROOT)
}

/// Waits for build `id` and checks it ended with `hello`'s RPM in its results; returns the
/// RPM's file list.
async fn assert_built(env: &TestEnv, project: &str, id: BuildId) -> String {
    let (build, chroots) = env.wait_for_build(id).await;
    let log = std::fs::read_to_string(env.data_dir().join(format!(
        "results/alice/{project}/srpm-builds/{}/builder-live.log",
        id.padded()
    )))
    .unwrap_or_default();
    assert_eq!(build.source_state, State::Succeeded, "SRPM log:\n{log}");
    assert_eq!(chroots[0].state, State::Succeeded, "{chroots:?}");
    let rpm = env.data_dir().join(format!(
        "results/alice/{project}/{CHROOT}/{}-hello/hello-1.0-1.fc41.noarch.rpm",
        id.padded()
    ));
    assert!(rpm.is_file(), "{} is missing", rpm.display());
    let files = Command::new("rpm")
        .args(["-qlp", "--nosignature"])
        .arg(&rpm)
        .output()
        .expect("rpm -qlp");
    String::from_utf8_lossy(&files.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_of_an_srpm_and_of_a_spec() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let web = env.scratch("web");
    srpm_in(&web);
    let mut server = FileServer::start(&web).await;
    let submissions = env.submissions().await;

    let from_srpm = submissions
        .from_url(submission("from-srpm"), &server.url("hello-1.0-1.src.rpm"))
        .await
        .expect("a build from the SRPM's URL");

    // A spec whose Source0 is a URL: the builder fetches it next to the spec.
    let spec_dir = env.scratch("spec");
    sources(&spec_dir, &server.url("hello-1.0.tar.gz"));
    std::fs::copy(spec_dir.join("hello.spec"), web.join("hello-url.spec")).expect("copy");
    let from_spec = submissions
        .from_url(submission("from-spec"), &server.url("hello-url.spec"))
        .await
        .expect("a build from the spec's URL");

    let files = assert_built(&env, "from-srpm", from_srpm).await;
    assert!(!files.contains("extra.txt"), "{files}");
    assert_built(&env, "from-spec", from_spec).await;

    // Neither the web nor the SRPM is needed again: a rebuild comes from DistGit alone.
    server.stop();
    let seen = server.requests();
    std::fs::remove_dir_all(env.data_dir().join(format!(
        "results/alice/from-srpm/srpm-builds/{}",
        from_srpm.padded()
    )))
    .expect("remove the original SRPM");
    let rebuild = submissions
        .rebuild(from_srpm, "bob")
        .await
        .expect("a rebuild");
    assert_built(&env, "from-srpm", rebuild).await;
    assert_eq!(server.requests(), seen, "the rebuild went to the web");

    // What users get wrong is refused before anything is built.
    for bad in ["ftp://x.org/hello.src.rpm", "https://x.org/hello.zip"] {
        let refused = submissions.from_url(submission("from-srpm"), bad).await;
        assert!(
            matches!(refused, Err(ferrocopr_bot::submit::SubmitError::Invalid(_))),
            "{bad}: {refused:?}"
        );
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_srpm() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let srpm = srpm_in(&env.scratch("upload"));
    let bytes = std::fs::read(&srpm).expect("read the SRPM");
    let submissions = env.submissions().await;
    // With the spec's `extra` conditional on, as `with_opts: [extra]` asks.
    let mut with_extra = submission("uploaded");
    with_extra.bconds.with = vec!["extra".into()];
    let id = submissions
        .from_upload(with_extra, "hello-1.0-1.src.rpm", &bytes)
        .await
        .expect("a build from the upload");
    let files = assert_built(&env, "uploaded", id).await;
    assert!(files.contains("/usr/share/hello/extra.txt"), "{files}");
    let refused = submissions
        .from_upload(submission("uploaded"), "../hello.src.rpm", &bytes)
        .await;
    assert!(
        matches!(refused, Err(ferrocopr_bot::submit::SubmitError::Invalid(_))),
        "{refused:?}"
    );
    env.stop().await;
}

/// Another ferrocopr plays Fedora's dist-git: a package pushed there is imported into its
/// DistGit; this one builds it from there by name, cloning its repository and fetching the
/// tarball from its lookaside cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_of_another_dist_git() {
    let upstream = TestEnv::start(DbKind::Sqlite).await;
    let repo = upstream.new_repo("alice/hello");
    repo.write(
        ".copr.yaml",
        format!("owner: alice\nproject: hello\nchroots: [{CHROOT}]\nspec: hello.spec\n"),
    );
    repo.write("hello.spec", spec("hello-%{version}.tar.gz"));
    repo.write("hello.txt", "hello\n");
    let sha = repo.commit("hello");
    let (code, body) = upstream.push("alice/hello", &repo, &sha, "main").await;
    assert_eq!(code, 202, "{body}");
    let is_final =
        |s: &Status| s.state != "pending" && s.context.as_deref() == Some("copr/rpm-build");
    let status = upstream.wait_for_status(&sha, is_final).await;
    assert_eq!(status.state, "success", "{status:?}");

    let base = upstream.public_url().to_owned();
    let env = TestEnv::start_with(DbKind::Sqlite, |config| {
        config.distgit_instances.insert(
            "upstream".into(),
            DistgitInstance {
                clone_url: format!("{base}/distgit/git/alice/hello/{{name}}.git"),
                lookaside_url: format!(
                    "{base}/distgit/lookaside/pkgs/alice/hello/{{name}}/{{filename}}/{{hashtype}}/{{hash}}/{{filename}}"
                ),
                default_committish: "f41".into(),
            },
        );
    })
    .await;
    let submissions = env.submissions().await;
    let id = submissions
        .from_distgit(submission("from-distgit"), "upstream", "hello", None)
        .await
        .expect("a build from the other dist-git");
    assert_built(&env, "from-distgit", id).await;

    let unknown = submissions
        .from_distgit(submission("from-distgit"), "nowhere", "hello", None)
        .await;
    assert!(
        matches!(unknown, Err(ferrocopr_bot::submit::SubmitError::Invalid(ref t)) if t.contains("upstream")),
        "{unknown:?}"
    );
    env.stop().await;
    upstream.stop().await;
}
