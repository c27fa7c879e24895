//! How long DistGit takes to import an SRPM with a large source, against the shell pipeline
//! Copr's importer runs (roughly `rpm2cpio | cpio -idm`, then hashing the sources).
//!
//! Not a test: run it with
//! `cargo run --release -p ferrocopr-distgit --example import_bench`
//! and copy the figures into docs/performance.md. It makes an SRPM with a 100 MB
//! incompressible tarball (rpm's default payload compression), imports it into project A,
//! imports a second package with the same tarball into project B (stored once), imports the
//! first again (nothing changes), then times the pipeline on the same SRPM. Everything runs
//! in one temporary directory, with the SRPM in the page cache for every step.
//! Needs rpmbuild, rpm2cpio, cpio and sha512sum.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{TestResult, incompressible, make_srpm, spec};
use ferrocopr_distgit::DistGit;
use ferrocopr_schema::model::ProjectRef;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SOURCE_LEN: usize = 100 * 1024 * 1024;
const BRANCHES: [&str; 2] = ["f41", "epel9"];

fn timed<T>(what: &str, f: impl FnOnce() -> TestResult<T>) -> TestResult<(T, Duration)> {
    let started = Instant::now();
    let out = f()?;
    let took = started.elapsed();
    println!("{what:<58} {:>8.3} s", took.as_secs_f64());
    Ok((out, took))
}

fn sh(script: &str, dir: &Path) -> TestResult {
    let status = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .status()?;
    if !status.success() {
        return Err(format!("{script:?} failed with {status}").into());
    }
    Ok(())
}

fn main() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tarball = incompressible(SOURCE_LEN, 11);
    let file = "big-1.0.tar.gz";
    let mut srpms = Vec::new();
    for package in ["big", "big-fork"] {
        let srpm = make_srpm(
            &tmp.path().join(package),
            package,
            &spec(package, &[file], &["fix.patch"]),
            &[(file, &tarball), ("fix.patch", b"--- a/x\n+++ b/x\n")],
            None,
        )?;
        srpms.push(srpm);
    }
    drop(tarball);
    println!(
        "SRPM: {} MB source, {} MB file (rpm's default payload compression)",
        SOURCE_LEN >> 20,
        std::fs::metadata(&srpms[0])?.len() >> 20
    );

    let distgit = DistGit::new(tmp.path().join("distgit"));
    let branches: Vec<String> = BRANCHES.iter().map(|b| (*b).to_owned()).collect();
    let import = |owner: &str, package: &str, srpm: &Path| -> TestResult<()> {
        let project = ProjectRef {
            owner: owner.into(),
            project: package.into(),
        };
        distgit.import_srpm(&project, package, srpm, &branches)?;
        Ok(())
    };
    timed("ferrocopr: import into project A (new blob)", || {
        import("alice", "big", &srpms[0])
    })?;
    timed("ferrocopr: other package, same source, project B", || {
        import("bob", "big-fork", &srpms[1])
    })?;
    timed("ferrocopr: re-import into project A (no change)", || {
        import("alice", "big", &srpms[0])
    })?;
    let blobs = std::fs::read_dir(tmp.path().join("distgit/lookaside/sha512"))?.count();
    println!("lookaside blobs after the three imports: {blobs}");

    // Copr's importer: unpack with rpm2cpio and cpio, then hash the sources (it uses md5 and
    // sha512; sha512 alone here).
    let unpack = tmp.path().join("cpio");
    std::fs::create_dir(&unpack)?;
    let srpm = srpms[0].display().to_string();
    let (_, unpacking) = timed("baseline: rpm2cpio | cpio -idm", || {
        sh(&format!("rpm2cpio '{srpm}' | cpio -idm --quiet"), &unpack)
    })?;
    let (_, hashing) = timed("baseline: sha512sum of the unpacked tarball", || {
        sh(&format!("sha512sum {file} > /dev/null"), &unpack)
    })?;
    println!(
        "{:<58} {:>8.3} s",
        "baseline: total",
        (unpacking + hashing).as_secs_f64()
    );
    Ok(())
}
