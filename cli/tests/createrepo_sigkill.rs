//! `ferrocopr createrepo --update` killed with SIGKILL at any moment leaves a repository dnf can
//! read, showing the packages of before the run or of after it, never an error (issue #6).
//!
//! A repository of a few hundred generated RPMs grows by a few packages per round; each round
//! runs the real binary and kills it after a delay drawn (from a fixed seed) between zero and a
//! little more than an uninterrupted run takes, so kills land while the RPMs are read, segments
//! are written to the cache, metadata files are written and synced, and around the rename of
//! `repomd.xml`. Every fourth round starts without the segment cache, so that a long full write
//! is interrupted too. After each kill dnf (it must be installed; the test fails without it)
//! lists the repository from a fresh cache. A last run, not killed, must then show everything.

#[path = "../../repo-publisher/tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ferrocopr");
/// Packages in the repository before the first round.
const INITIAL: usize = 300;
/// Packages added per round.
const ADDED: usize = 5;
const ROUNDS: usize = 20;
/// The seed of the kill delays: the same delays on every run of the test.
const SEED: u64 = 0x5eed_6006;

/// xorshift64*: a few lines instead of a dependency.
struct Rng(u64);

impl Rng {
    fn next_fraction(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn createrepo(dir: &Path) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.args(["createrepo", "--update"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `createrepo --update` to its end; returns how long it took.
fn run_to_end(dir: &Path) -> Duration {
    let start = Instant::now();
    let out = createrepo(dir).output().expect("run ferrocopr");
    assert!(
        out.status.success(),
        "createrepo failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

/// The package names dnf lists from the repository at `dir`, read into a fresh cache; panics
/// when dnf cannot read the repository.
fn dnf_names(dir: &Path, work: &Path, round: usize) -> BTreeSet<String> {
    let root = work.join("root");
    let repos = root.join("etc/yum.repos.d");
    std::fs::create_dir_all(&repos).expect("mkdir installroot");
    let out = Command::new("dnf")
        .args(["-q", "--releasever=41", "--disableplugin=local"])
        .arg(format!("--installroot={}", root.display()))
        .arg(format!("--setopt=reposdir={}", repos.display()))
        .arg(format!(
            "--setopt=cachedir={}",
            work.join(format!("dnf-cache-{round}")).display()
        ))
        .arg(format!("--repofrompath=t,file://{}", dir.display()))
        .args(["--repo=t", "repoquery", "--available", "--qf", "%{name}"])
        .output()
        .expect("dnf must be installed (scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "round {round}: dnf cannot read the repository ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn names(count: usize) -> BTreeSet<String> {
    (0..count).map(common::package_name).collect()
}

#[test]
fn createrepo_killed_at_random_points_leaves_a_readable_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    for i in 0..INITIAL {
        common::write_rpm(&repo, i);
    }
    // A full write (no cache yet) and an incremental one, uninterrupted: how long a run takes.
    let full = run_to_end(&repo);
    common::write_rpm(&repo, INITIAL);
    let incremental = run_to_end(&repo);
    let mut count = INITIAL + 1;
    let mut published = names(count);
    assert_eq!(dnf_names(&repo, tmp.path(), 0), published);

    let mut rng = Rng(SEED);
    let (mut old_seen, mut new_seen) = (0, 0);
    for round in 1..=ROUNDS {
        for i in count..count + ADDED {
            common::write_rpm(&repo, i);
        }
        count += ADDED;
        let took = if round % 4 == 0 {
            match std::fs::remove_dir_all(repo.join("repodata/.cache")) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("remove the segment cache: {e}"),
            }
            full
        } else {
            incremental
        };
        let delay = took.mul_f64(1.2 * rng.next_fraction());
        let mut child = createrepo(&repo).spawn().expect("start ferrocopr");
        std::thread::sleep(delay);
        // Kill it even if it has finished (then the kill does nothing).
        let _ = child.kill();
        let status = child.wait().expect("wait for ferrocopr");

        let seen = dnf_names(&repo, tmp.path(), round);
        let now = names(count);
        if seen == now {
            new_seen += 1;
            published = now;
        } else {
            assert_eq!(
                seen, published,
                "round {round} (killed after {delay:?}, {status}): dnf sees neither the old nor \
                 the new package set"
            );
            old_seen += 1;
        }
    }
    println!("after the kills dnf saw the old packages {old_seen} times, the new {new_seen} times");
    // Kills landing both before and after the rename of repomd.xml, or the delays are wrong.
    assert!(old_seen > 0, "no kill landed before repomd.xml was renamed");

    run_to_end(&repo);
    assert_eq!(dnf_names(&repo, tmp.path(), ROUNDS + 1), names(count));
}
