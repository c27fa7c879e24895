//! A DistGit import killed with SIGKILL at any moment leaves a consistent store, and running it
//! again gives what an uninterrupted import gives.
//!
//! The import runs in the real binary (`ferrocopr distgit-import`), so the kill lands wherever
//! it lands: starting up, unpacking the 50 MB tarball, storing it, writing git objects, moving
//! the branches. After each kill: every blob in the lookaside hashes to its name, every branch
//! names a complete commit whose `sources` all exist in the lookaside; then the retry succeeds,
//! leaves nothing of the killed run behind, and has the trees and blobs of an import that was
//! never interrupted. Needs rpmbuild and rpm2cpio on the host; fails without them.

#[path = "../../distgit/tests/common/mod.rs"]
mod common;

use common::{TestResult, incompressible, make_srpm, sha512_hex, spec};
use ferrocopr_builder::sources::{self, is_sha512_hex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ferrocopr");
const TARBALL_LEN: usize = 50 * 1024 * 1024;
const BRANCHES: [&str; 2] = ["f41", "epel9"];
/// Kill points in milliseconds after the start, whatever the machine's speed…
const FIXED_KILLS_MS: [u64; 4] = [10, 50, 150, 400];
/// …and as fractions of how long an uninterrupted import takes here, so that every phase of
/// the import is hit on a fast machine as on a slow one: unpacking takes most of the time,
/// so the short phases after it (storing, writing git objects, moving branches) get many.
const KILL_FRACTIONS: [f64; 16] = [
    0.05, 0.2, 0.4, 0.6, 0.75, 0.85, 0.88, 0.91, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.02,
];

fn import(root: &Path, srpm: &Path) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.arg("distgit-import").arg("--root").arg(root).args([
        "--owner",
        "alice",
        "--project",
        "big",
    ]);
    for branch in BRANCHES {
        cmd.args(["--branch", branch]);
    }
    cmd.arg(srpm)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs an import to its end; returns its JSON.
fn import_to_end(root: &Path, srpm: &Path) -> TestResult<serde_json::Value> {
    let out = import(root, srpm).output()?;
    if !out.status.success() {
        return Err(format!(
            "import failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// What an import leaves that must not depend on when it ran: per branch, the tree of its
/// head and whether that head has parents; the lookaside's blob names.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    trees: BTreeMap<String, (String, usize)>,
    blobs: Vec<String>,
}

/// When the test kills an import.
enum Kill {
    After(Duration),
    /// As soon as this path under the root exists.
    When(PathBuf, &'static str),
}

impl std::fmt::Display for Kill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kill::After(d) => write!(f, "at {d:?}"),
            Kill::When(_, what) => write!(f, "when {what} appeared"),
        }
    }
}

fn repo_dir(root: &Path) -> PathBuf {
    root.join("repos/alice/big/big.git")
}

/// Checks the store is consistent, whatever point the import reached; returns what it holds.
fn check_consistent(root: &Path) -> TestResult<Outcome> {
    let lookaside = root.join("lookaside/sha512");
    let mut blobs = Vec::new();
    if lookaside.exists() {
        for entry in std::fs::read_dir(&lookaside)? {
            let entry = entry?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| format!("{n:?}"))?;
            if is_sha512_hex(&name) {
                let actual = sha512_hex(std::fs::File::open(entry.path())?)?;
                assert_eq!(actual, name, "a lookaside blob does not hash to its name");
                blobs.push(name);
            }
        }
    }
    blobs.sort();

    let mut trees = BTreeMap::new();
    let repo = repo_dir(root);
    if repo.exists() {
        let repo = git2::Repository::open_bare(&repo)?;
        for reference in repo.references_glob("refs/heads/*")? {
            let reference = reference?;
            let name = reference.shorthand()?.to_owned();
            let commit = reference.peel_to_commit()?;
            let tree = commit.tree()?;
            // Complete: every object of the tree reads back.
            for entry in tree.iter() {
                repo.find_blob(entry.id())?;
            }
            for file in ["big.spec", "fix.patch"] {
                assert!(tree.get_name(file).is_some(), "{name} lacks {file}");
            }
            let listed = tree.get_name("sources").ok_or("no sources file")?;
            let listed =
                sources::parse(std::str::from_utf8(repo.find_blob(listed.id())?.content())?)?;
            assert_eq!(listed.len(), 1);
            for entry in &listed {
                assert!(
                    blobs.contains(&entry.sha512),
                    "branch {name} names {} but the lookaside lacks it",
                    entry.filename
                );
            }
            trees.insert(name, (tree.id().to_string(), commit.parent_count()));
        }
    }
    Ok(Outcome { trees, blobs })
}

/// What is left in the lookaside's directory besides blobs.
fn leftovers(root: &Path) -> TestResult<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join("lookaside/sha512"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !is_sha512_hex(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

#[test]
fn killed_imports_leave_a_consistent_store_and_retry_to_the_same_result() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tarball = incompressible(TARBALL_LEN, 5);
    let srpm = make_srpm(
        tmp.path(),
        "big",
        &spec("big", &["big-1.0.tar.gz"], &["fix.patch"]),
        &[
            ("big-1.0.tar.gz", &tarball),
            ("fix.patch", b"--- a/x\n+++ b/x\n"),
        ],
        None,
    )?;
    let tarball_hash = sha512_hex(&tarball[..])?;
    drop(tarball);

    // The reference: one import, never interrupted.
    let reference_root = tmp.path().join("reference");
    let started = Instant::now();
    let reference_json = import_to_end(&reference_root, &srpm)?;
    let duration = started.elapsed();
    let reference = check_consistent(&reference_root)?;
    assert_eq!(reference.blobs, std::slice::from_ref(&tarball_hash));
    assert_eq!(reference.trees.len(), BRANCHES.len());
    assert!(reference.trees.values().all(|(_, parents)| *parents == 0));
    assert_eq!(reference_json["package"], "big");

    let mut kills: Vec<Kill> = FIXED_KILLS_MS
        .iter()
        .map(|ms| Duration::from_millis(*ms))
        .chain(KILL_FRACTIONS.iter().map(|f| duration.mul_f64(*f)))
        .map(Kill::After)
        .collect();
    // The phases after unpacking take a few milliseconds, too short to hit by time: watch for
    // what each one makes and kill the moment it appears.
    let repo = Path::new("repos/alice/big/big.git");
    for (path, what) in [
        (
            Path::new("lookaside/sha512").join(&tarball_hash),
            "the blob",
        ),
        (repo.to_path_buf(), "the repository"),
        (repo.join("refs/heads/f41.lock"), "git's lock on f41"),
        (repo.join("refs/heads/f41"), "branch f41"),
    ] {
        kills.push(Kill::When(path, what));
    }
    let mut interrupted = 0;
    for (i, kill) in kills.iter().enumerate() {
        let root = tmp.path().join(format!("kill-{i}"));
        let mut child = import(&root, &srpm).spawn()?;
        match kill {
            Kill::After(delay) => std::thread::sleep(*delay),
            Kill::When(path, _) => {
                let deadline = Instant::now() + duration * 10;
                while !root.join(path).exists() && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
            }
        }
        // SIGKILL: no destructor, no cleanup, as when the machine's OOM killer strikes.
        child.kill()?;
        let status = child.wait()?;
        if !status.success() {
            interrupted += 1;
        }
        let seen = check_consistent(&root).map_err(|e| format!("after a kill {kill}: {e}"))?;
        let git_locks: Vec<String> = std::fs::read_dir(repo_dir(&root).join("refs/heads"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".lock"))
            .collect();
        eprintln!(
            "killed {kill}: {} branch(es), {} blob(s), leftovers {:?}, git locks {git_locks:?}",
            seen.trees.len(),
            seen.blobs.len(),
            leftovers(&root).unwrap_or_default()
        );

        let retried = import_to_end(&root, &srpm)
            .map_err(|e| format!("the retry after a kill {kill}: {e}"))?;
        assert_eq!(retried["package"], reference_json["package"]);
        assert_eq!(
            check_consistent(&root)?,
            reference,
            "after a kill {kill} and a retry"
        );
        // The retry's commits are the branches' heads.
        let repo = git2::Repository::open_bare(repo_dir(&root))?;
        for commit in retried["commits"].as_array().ok_or("no commits")? {
            let branch = commit["branch"].as_str().ok_or("no branch")?;
            let head = repo.find_reference(&format!("refs/heads/{branch}"))?;
            assert_eq!(
                Some(head.target().ok_or("symbolic branch")?.to_string().as_str()),
                commit["commit"].as_str()
            );
        }
        assert_eq!(
            leftovers(&root)?,
            Vec::<String>::new(),
            "the retry after a kill {kill} left these"
        );
    }
    // Most kill points must have landed inside the import, or this test tested nothing.
    assert!(
        interrupted * 2 > kills.len(),
        "only {interrupted} of {} imports were interrupted (an import takes {duration:?})",
        kills.len()
    );
    Ok(())
}

#[test]
fn a_bad_srpm_fails_with_a_message() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let missing = tmp.path().join("missing.src.rpm");
    let out = import(&tmp.path().join("root"), &missing).output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr)?;
    assert!(
        stderr.contains("ferrocopr: cannot read package") && stderr.contains("missing.src.rpm"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    Ok(())
}
