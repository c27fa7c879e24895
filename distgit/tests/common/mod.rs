//! SRPMs for DistGit's tests and benchmark, made by the real `rpmbuild -bs`.
//!
//! Shared by `distgit/tests/*.rs`, `distgit/examples/import_bench.rs` and the crash test of
//! the `ferrocopr` binary (`cli/tests/distgit_crash.rs`), which include this file by path.
//! Needs rpmbuild on the host; fails without it.

#![allow(
    dead_code,
    reason = "each test crate that includes this file uses a different part of it"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// rpm's payload setting for an uncompressed payload, so tests can patch archive entries in
/// place.
pub const UNCOMPRESSED: &str = "w0.ufdio";

/// A spec for a noarch package `name` 1.0 whose `%prep` unpacks nothing, so any bytes can be
/// its sources; `sources` and `patches` are file names.
pub fn spec(name: &str, sources: &[&str], patches: &[&str]) -> String {
    let mut text = format!(
        "Name: {name}\nVersion: 1.0\nRelease: 1%{{?dist}}\nSummary: A test package\n\
         License: MIT\nBuildArch: noarch\n"
    );
    for (i, s) in sources.iter().enumerate() {
        text.push_str(&format!("Source{i}: {s}\n"));
    }
    for (i, p) in patches.iter().enumerate() {
        text.push_str(&format!("Patch{i}: {p}\n"));
    }
    text.push_str("\n%description\nA test package.\n\n%prep\n\n%build\n\n%install\n\n%files\n");
    text
}

/// Runs `rpmbuild -bs` on `spec_text` (saved as `<name>.spec`) with `files` beside it, all
/// under `dir`; returns the SRPM. `payload` is rpm's `_source_payload` (e.g. [`UNCOMPRESSED`]),
/// or rpm's default when `None`.
pub fn make_srpm(
    dir: &Path,
    name: &str,
    spec_text: &str,
    files: &[(&str, &[u8])],
    payload: Option<&str>,
) -> TestResult<PathBuf> {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src)?;
    let spec_path = src.join(format!("{name}.spec"));
    std::fs::write(&spec_path, spec_text)?;
    for (file, data) in files {
        std::fs::write(src.join(file), data)?;
    }
    let out = dir.join(format!("{name}-srpm"));
    let define = |k: &str, v: &Path| format!("{k} {}", v.display());
    let mut cmd = Command::new("rpmbuild");
    cmd.args(["-bs", "--nodeps", "--quiet"])
        .arg(&spec_path)
        .args([
            "--define",
            &define("_topdir", &dir.join(format!("{name}-top"))),
        ])
        .args(["--define", &define("_sourcedir", &src)])
        .args(["--define", &define("_srcrpmdir", &out)]);
    if let Some(payload) = payload {
        cmd.args(["--define", &format!("_source_payload {payload}")]);
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!("{cmd:?} failed with {status}").into());
    }
    let mut made = std::fs::read_dir(&out)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    match made.pop() {
        Some(srpm) if made.is_empty() => Ok(srpm),
        _ => Err(format!("rpmbuild left no single SRPM in {}", out.display()).into()),
    }
}

/// `len` bytes that no compressor shrinks (xorshift64*, seeded), like a real tarball.
pub fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The lowercase hex SHA-512 of `data`.
pub fn sha512_hex(data: impl std::io::Read) -> TestResult<String> {
    Ok(ferrocopr_builder::sources::copy_hashing(
        data,
        std::io::sink(),
    )?)
}
