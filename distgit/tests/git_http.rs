//! DistGit's repositories over git's smart HTTP protocol, driven by the real git CLI: an
//! imported package clones over HTTP from a server on a free port and its branch checks out
//! with the spec in it; a push is refused and changes nothing; only the fetch requests of
//! well-formed paths to existing repositories reach git. Needs git, rpmbuild and rpm2cpio on
//! the host; fails without them.

mod common;

use common::{TestResult, make_srpm, spec};
use ferrocopr_distgit::DistGit;
use ferrocopr_schema::model::ProjectRef;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

/// The real git, isolated from the host's and the user's configuration, never prompting.
fn git(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            "user.name=Mallory",
            "-c",
            "user.email=mallory@example.org",
        ]);
    cmd
}

fn run(cmd: &mut Command) -> TestResult<Output> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> TestResult<T> + Send + 'static,
) -> TestResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// GET or POST `url`; the status and the body.
async fn request(method: &'static str, url: String) -> TestResult<(u16, String)> {
    blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = match method {
            "POST" => agent
                .post(&url)
                .header("Content-Type", "application/x-git-receive-pack-request")
                .send("0000")?,
            _ => agent.get(&url).call()?,
        };
        Ok((resp.status().as_u16(), resp.body_mut().read_to_string()?))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_over_http_and_no_push() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let home = tmp.path().join("home");
    std::fs::create_dir(&home)?;
    let spec_text = spec("hello", &["hello-1.0.tar.gz"], &["fix.patch"]);
    let srpm = make_srpm(
        tmp.path(),
        "hello",
        &spec_text,
        &[
            ("hello-1.0.tar.gz", b"tarball"),
            ("fix.patch", b"--- a/x\n+++ b/x\n"),
        ],
        None,
    )?;
    let distgit = Arc::new(DistGit::new(tmp.path().join("distgit")));
    // A CoprDir with colons, as pull requests have, to see such paths survive the trip.
    let project = ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    };
    let import = {
        let dg = distgit.clone();
        blocking(move || {
            Ok(dg.import_srpm(
                &project,
                "hello:pr:7",
                &srpm,
                &["f41".to_owned(), "epel9".to_owned()],
            )?)
        })
        .await?
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().nest("/distgit", distgit.router());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}/distgit");
    let url = DistGit::http_repo_url(&base, "alice", "hello:pr:7", "hello");
    assert_eq!(url, format!("{base}/git/alice/hello:pr:7/hello.git"));

    // Clone (git's protocol v2 by default) and check out the branch a builder would.
    let clone = tmp.path().join("clone");
    {
        let (home, url, clone) = (home.clone(), url.clone(), clone.clone());
        blocking(move || {
            run(git(&home).arg("clone").arg(&url).arg(&clone))?;
            run(git(&home).arg("-C").arg(&clone).args(["checkout", "epel9"]))?;
            Ok(())
        })
        .await?;
    }
    assert_eq!(
        std::fs::read_to_string(clone.join("hello.spec"))?,
        spec_text
    );
    assert!(clone.join("sources").is_file());
    assert!(!clone.join("hello-1.0.tar.gz").exists());
    let head = {
        let (home, clone) = (home.clone(), clone.clone());
        blocking(move || run(git(&home).arg("-C").arg(&clone).args(["rev-parse", "HEAD"]))).await?
    };
    assert_eq!(
        String::from_utf8(head.stdout)?.trim(),
        import.commits[1].commit
    );
    // The older protocol, as libgit2 (the builders' client) speaks it, works too.
    {
        let (home, url) = (home.clone(), url.clone());
        let v0 = tmp.path().join("clone-v0");
        blocking(move || {
            run(git(&home)
                .args(["-c", "protocol.version=0", "clone", "--branch", "f41"])
                .arg(&url)
                .arg(&v0))?;
            Ok(())
        })
        .await?;
    }

    // A push, to the branch and to a new one, is refused, and the repository is unchanged.
    let pushed = {
        let (home, clone) = (home.clone(), clone.clone());
        blocking(move || {
            std::fs::write(clone.join("hello.spec"), "Name: evil\n")?;
            run(git(&home)
                .arg("-C")
                .arg(&clone)
                .args(["commit", "-qam", "evil"]))?;
            let to_branch = git(&home)
                .arg("-C")
                .arg(&clone)
                .args(["push", "origin", "HEAD:epel9"])
                .output()?;
            let to_new = git(&home)
                .arg("-C")
                .arg(&clone)
                .args(["push", "origin", "HEAD:refs/heads/evil"])
                .output()?;
            Ok([to_branch, to_new])
        })
        .await?
    };
    for out in pushed {
        assert!(!out.status.success(), "a push succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("403"), "{stderr}");
    }
    let repo =
        git2::Repository::open_bare(tmp.path().join("distgit/repos/alice/hello:pr:7/hello.git"))?;
    let branches: Vec<String> = repo
        .references()?
        .map(|r| Ok(r?.name().unwrap_or_default().to_owned()))
        .collect::<Result<_, git2::Error>>()?;
    assert_eq!(branches.len(), 2, "{branches:?}");
    for c in &import.commits {
        let head = repo.find_reference(&format!("refs/heads/{}", c.branch))?;
        assert_eq!(head.target().map(|o| o.to_string()), Some(c.commit.clone()));
    }

    // Only the fetch requests of well-formed, existing repositories get to git.
    let git_url = |path: &str| format!("{base}/git/{path}");
    for (method, path, status) in [
        (
            "GET",
            "alice/hello:pr:7/hello.git/info/refs?service=git-receive-pack",
            403,
        ),
        ("POST", "alice/hello:pr:7/hello.git/git-receive-pack", 403),
        // Git's dumb protocol reads files; we serve none.
        ("GET", "alice/hello:pr:7/hello.git/info/refs", 403),
        ("GET", "alice/hello:pr:7/hello.git/HEAD", 404),
        ("GET", "alice/hello:pr:7/hello.git/objects/info/packs", 404),
        (
            "GET",
            "alice/hello:pr:7/nothere.git/info/refs?service=git-upload-pack",
            404,
        ),
        (
            "GET",
            "alice/hello:pr:7/hello/info/refs?service=git-upload-pack",
            400,
        ),
        (
            "GET",
            "alice/..%2F..%2Fetc/hello.git/info/refs?service=git-upload-pack",
            400,
        ),
        (
            "GET",
            ".hidden/hello/hello.git/info/refs?service=git-upload-pack",
            400,
        ),
    ] {
        let (got, body) = request(method, git_url(path)).await?;
        assert_eq!(got, status, "{method} {path}: {body}");
    }
    let (status, body) = request(
        "GET",
        git_url("alice/hello:pr:7/hello.git/info/refs?service=git-upload-pack"),
    )
    .await?;
    assert_eq!(status, 200);
    assert!(body.starts_with("001e# service=git-upload-pack"), "{body}");

    server.abort();
    Ok(())
}
