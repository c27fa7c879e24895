//! DistGit end to end: an SRPM made by rpmbuild is imported (twice, to see it is idempotent),
//! its tarball is served from the lookaside cache, and the builder's RPM task builds the
//! binary RPM from the imported repository over HTTP, as a builder host would. Two projects
//! importing the same 50 MB tarball store it once, and a blob that rots on disk is never
//! served. Needs rpmbuild, rpm, rpm2cpio and tar on the host; fails without them.

mod common;

use common::{incompressible, sha512_hex, spec};
use ferrocopr_builder::sources::{self, SourceEntry};
use ferrocopr_distgit::DistGit;
use ferrocopr_schema::model::ProjectRef;
use ferrocopr_schema::task::{BuilderTask, RESULTS_FILE, Results, SUCCESS_FILE, TaskKind};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use common::TestResult;

const SPEC: &str = r#"Name: hello
Version: 1.0
Release: 1%{?dist}
Summary: Says hello
License: MIT
BuildArch: noarch
Source0: hello-1.0.tar.gz
Patch0: fix.patch

%description
Says hello from %{copr_username}/%{copr_projectname}.

%prep
%setup -q

%build

%install
mkdir -p %{buildroot}/usr/share/hello
install -m 0644 hello.txt %{buildroot}/usr/share/hello/hello.txt

%files
/usr/share/hello/hello.txt
"#;

/// Builds `hello-1.0-1.src.rpm` (spec, a patch and a real tarball) under `dir`; returns its
/// path and the tarball's bytes.
fn make_srpm(dir: &Path) -> TestResult<(PathBuf, Vec<u8>)> {
    let src = dir.join("tree");
    std::fs::create_dir_all(src.join("hello-1.0"))?;
    std::fs::write(src.join("hello-1.0/hello.txt"), "hello\n")?;
    let status = Command::new("tar")
        .current_dir(&src)
        .args(["czf", "hello-1.0.tar.gz", "hello-1.0"])
        .status()?;
    if !status.success() {
        return Err(format!("tar failed with {status}").into());
    }
    let tarball = std::fs::read(src.join("hello-1.0.tar.gz"))?;
    let srpm = common::make_srpm(
        dir,
        "hello",
        SPEC,
        &[
            ("hello-1.0.tar.gz", &tarball),
            ("fix.patch", b"--- a/x\n+++ b/x\n"),
        ],
        None,
    )?;
    Ok((srpm, tarball))
}

fn project() -> ProjectRef {
    ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    }
}

fn file_in_tree(repo: &git2::Repository, commit: &str, name: &str) -> TestResult<Vec<u8>> {
    let tree = repo.find_commit(git2::Oid::from_str(commit)?)?.tree()?;
    let entry = tree
        .get_name(name)
        .ok_or(format!("{name} is not in the tree"))?;
    Ok(repo.find_blob(entry.id())?.content().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_serve_and_build() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (srpm, tarball) = make_srpm(tmp.path())?;
    let root = tmp.path().join("distgit");
    let distgit = std::sync::Arc::new(DistGit::new(root.clone()));
    let branches = vec!["f41".to_owned(), "epel9".to_owned()];

    let import = {
        let (dg, srpm, branches) = (distgit.clone(), srpm.clone(), branches.clone());
        tokio::task::spawn_blocking(move || dg.import_srpm(&project(), "hello", &srpm, &branches))
            .await??
    };
    assert_eq!(
        (
            import.package.as_str(),
            import.epoch,
            import.version.as_str(),
            import.release.as_str()
        ),
        ("hello", None, "1.0", "1")
    );
    assert_eq!(import.commits.len(), 2);
    let f41 = &import.commits[0];
    assert_eq!(f41.branch, "f41");

    // Spec and patch in git, the tarball only listed in `sources` and kept in the lookaside.
    let repo = git2::Repository::open_bare(root.join("repos/alice/hello/hello.git"))?;
    assert_eq!(
        file_in_tree(&repo, &f41.commit, "hello.spec")?,
        SPEC.as_bytes()
    );
    assert!(file_in_tree(&repo, &f41.commit, "fix.patch").is_ok());
    assert!(file_in_tree(&repo, &f41.commit, "hello-1.0.tar.gz").is_err());
    let listed = sources::parse(std::str::from_utf8(&file_in_tree(
        &repo,
        &f41.commit,
        "sources",
    )?)?)?;
    let hash = sources::copy_hashing(&tarball[..], std::io::sink())?;
    assert_eq!(
        listed,
        vec![SourceEntry {
            filename: "hello-1.0.tar.gz".into(),
            sha512: hash.clone()
        }]
    );
    assert_eq!(
        std::fs::read(root.join("lookaside/sha512").join(&hash))?,
        tarball
    );
    let head = repo.find_reference("refs/heads/epel9")?.peel_to_commit()?;
    assert_eq!(head.id().to_string(), import.commits[1].commit);
    assert_eq!(head.message()?, "Import hello-1.0-1");

    // The same SRPM again changes nothing.
    let again = {
        let (dg, srpm, branches) = (distgit.clone(), srpm.clone(), branches.clone());
        tokio::task::spawn_blocking(move || dg.import_srpm(&project(), "hello", &srpm, &branches))
            .await??
    };
    assert_eq!(again, import);

    // Serve the lookaside cache where the lead mounts it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().nest("/distgit", distgit.router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let lookaside_url = format!("http://{addr}/distgit/lookaside/pkgs");
    let url_of = |hash: &str| {
        format!("{lookaside_url}/alice/hello/hello/hello-1.0.tar.gz/sha512/{hash}/hello-1.0.tar.gz")
    };

    let get = |url: String| {
        tokio::task::spawn_blocking(move || -> TestResult<(u16, Vec<u8>)> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut resp = agent.get(&url).call()?;
            Ok((resp.status().as_u16(), resp.body_mut().read_to_vec()?))
        })
    };
    assert_eq!(get(url_of(&hash)).await??, (200, tarball.clone()));
    assert_eq!(get(url_of(&"0".repeat(128))).await??.0, 404);
    assert_eq!(get(url_of("abc")).await??.0, 400);
    assert_eq!(get(url_of(&hash.to_uppercase())).await??.0, 400);

    // The builder's RPM task, from the imported commit and the served tarball.
    let task = BuilderTask {
        task_id: "7-fedora-41-x86_64".into(),
        build_id: 7,
        chroot: "fedora-41-x86_64".into(),
        project_owner: "alice".into(),
        project_name: "hello".into(),
        project_dirname: "hello".into(),
        timeout: 600,
        enable_net: false,
        kind: TaskKind::Rpm {
            // Cloned with libgit2, the builders' client, over DistGit's smart HTTP.
            git_repo: DistGit::http_repo_url(
                &format!("http://{addr}/distgit"),
                "alice",
                "hello",
                "hello",
            ),
            git_hash: f41.commit.clone(),
            lookaside_url: lookaside_url.clone(),
            package_name: "hello".into(),
            dist: ".fc41".into(),
            bconds: Default::default(),
        },
    };
    let task_file = tmp.path().join("task.json");
    std::fs::write(&task_file, serde_json::to_vec(&task)?)?;
    let results = tmp.path().join("results");
    let code = {
        let (task_file, results) = (task_file.clone(), results.clone());
        tokio::task::spawn_blocking(move || ferrocopr_builder::main(&task_file, &results)).await?
    };
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(results.join(SUCCESS_FILE).is_file());
    assert!(results.join("hello-1.0-1.fc41.noarch.rpm").is_file());
    let built: Results = serde_json::from_slice(&std::fs::read(results.join(RESULTS_FILE))?)?;
    assert_eq!(built.packages.len(), 1);
    let p = &built.packages[0];
    assert_eq!(
        (
            p.name.as_str(),
            p.version.as_str(),
            p.release.as_str(),
            p.arch.as_str()
        ),
        ("hello", "1.0", "1.fc41", "noarch")
    );

    server.abort();
    Ok(())
}

/// GETs `url`; returns the status and the body, which may be large.
async fn get_big(url: String) -> TestResult<(u16, Vec<u8>)> {
    tokio::task::spawn_blocking(move || -> TestResult<(u16, Vec<u8>)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent.get(&url).call()?;
        let body = resp.body_mut().with_config().limit(1 << 30).read_to_vec()?;
        Ok((resp.status().as_u16(), body))
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_share_a_tarball_and_rot_is_never_served() -> TestResult {
    const LEN: usize = 50 * 1024 * 1024;
    let tmp = tempfile::tempdir()?;
    let tarball = incompressible(LEN, 7);
    let hash = sha512_hex(&tarball[..])?;
    // Two packages of two owners' projects, the same bytes under two file names.
    let imports = [
        ("alice", "alpha", "alpha-1.0.tar.gz"),
        ("bob", "beta", "vendored.tar.gz"),
    ];
    let root = tmp.path().join("distgit");
    let distgit = std::sync::Arc::new(DistGit::new(root.clone()));
    let mut srpms = Vec::new();
    for (owner, package, file) in imports {
        let srpm = common::make_srpm(
            &tmp.path().join(owner),
            package,
            &spec(package, &[file], &[]),
            &[(file, &tarball)],
            None,
        )?;
        let dg = distgit.clone();
        let project = ProjectRef {
            owner: owner.into(),
            project: package.into(),
        };
        let import_of = srpm.clone();
        let import = tokio::task::spawn_blocking(move || {
            dg.import_srpm(&project, package, &import_of, &["f41".to_owned()])
        })
        .await??;
        assert_eq!(import.package, package);
        srpms.push(srpm);
    }

    // One blob, the tarball's size, nothing else beside it.
    let lookaside = root.join("lookaside/sha512");
    let stored: Vec<_> = std::fs::read_dir(&lookaside)?.collect::<Result<_, _>>()?;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].file_name().to_str(), Some(hash.as_str()));
    assert_eq!(stored[0].metadata()?.len(), LEN as u64);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().nest("/distgit", distgit.router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let urls: Vec<String> = imports
        .iter()
        .map(|(owner, package, file)| {
            format!(
                "http://{addr}/distgit/lookaside/pkgs/{owner}/{package}/{package}/{file}/sha512/{hash}/{file}"
            )
        })
        .collect();
    for url in &urls {
        let (status, body) = get_big(url.clone()).await?;
        assert_eq!(status, 200);
        assert!(body == tarball, "{url} served other bytes");
    }

    // Flip one byte in the middle, in place: same size, same name, other content.
    {
        use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
        let mut blob = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(lookaside.join(&hash))?;
        let mut byte = [0u8; 1];
        blob.seek(SeekFrom::Start(LEN as u64 / 2))?;
        blob.read_exact(&mut byte)?;
        blob.seek(SeekFrom::Start(LEN as u64 / 2))?;
        blob.write_all(&[!byte[0]])?;
    }
    assert_eq!(std::fs::metadata(lookaside.join(&hash))?.len(), LEN as u64);
    for url in &urls {
        let (status, body) = get_big(url.clone()).await?;
        assert_eq!(status, 500, "{url} served a corrupt blob");
        assert_eq!(body, b"internal error\n");
    }

    // Importing either SRPM again puts the right bytes back.
    let (dg, srpm) = (distgit.clone(), srpms[1].clone());
    tokio::task::spawn_blocking(move || {
        let project = ProjectRef {
            owner: "bob".into(),
            project: "beta".into(),
        };
        dg.import_srpm(&project, "beta", &srpm, &["f41".to_owned()])
    })
    .await??;
    let (status, body) = get_big(urls[0].clone()).await?;
    assert_eq!(status, 200);
    assert!(body == tarball, "the repaired blob differs");
    server.abort();
    Ok(())
}

#[test]
fn refuses_bad_names() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dg = DistGit::new(tmp.path().join("distgit"));
    let srpm = tmp.path().join("missing.src.rpm");
    let f41 = ["f41".to_owned()];
    let evil = ProjectRef {
        owner: "../evil".into(),
        project: "hello".into(),
    };
    assert!(dg.import_srpm(&evil, "hello", &srpm, &f41).is_err());
    assert!(dg.import_srpm(&project(), "other", &srpm, &f41).is_err());
    assert!(dg.import_srpm(&project(), "hello/..", &srpm, &f41).is_err());
    assert!(
        dg.import_srpm(&project(), "hello", &srpm, &["a..b".to_owned()])
            .is_err()
    );
    assert!(dg.import_srpm(&project(), "hello", &srpm, &[]).is_err());
    assert!(!tmp.path().join("distgit").exists());
    Ok(())
}
