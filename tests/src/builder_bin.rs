//! The `ferrocopr` binary that the local builder pool runs as `ferrocopr builder …`.
//!
//! Cargo builds binaries of the package under test only, so the harness builds this one itself,
//! once per test process, into the target directory the tests were built in.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Path of a freshly built `ferrocopr` binary; blocks while cargo builds it the first time.
pub fn ferrocopr_binary() -> PathBuf {
    match BINARY.get_or_init(build) {
        Ok(path) => path.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// `…/target/debug/deps/<test exe>` → `…/target`, unless an absolute `CARGO_TARGET_DIR` says
/// otherwise (a relative one depends on where cargo was started, which the tests cannot know).
fn target_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from)
        && dir.is_absolute()
    {
        return Ok(dir);
    }
    let exe = std::env::current_exe().map_err(|e| format!("where is this test binary? {e}"))?;
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .ok_or_else(|| format!("cannot derive the target dir from {}", exe.display()))
}

fn build() -> Result<PathBuf, String> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .ok_or("the tests crate has no parent directory")?;
    let target = target_dir()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "build",
            "-p",
            "ferrocopr",
            "--bin",
            "ferrocopr",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&workspace)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("could not run {}: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "building the ferrocopr binary for the builders failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    let binary = target.join("debug/ferrocopr");
    if !binary.is_file() {
        return Err(format!(
            "cargo built ferrocopr but {} does not exist",
            binary.display()
        ));
    }
    Ok(binary)
}
