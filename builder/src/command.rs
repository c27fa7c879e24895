//! Running the external tools of a build (rpmbuild, rpmspec, git archive) so that what they
//! print lands in the live log and a failure names the tool and its exit status.

use anyhow::{Context as _, bail};
use std::process::{Command, Stdio};

/// Runs `cmd` with the builder's stdout and stderr, so its output goes into the live log.
pub(crate) fn run_logged(cmd: &mut Command) -> anyhow::Result<()> {
    let program = program_name(cmd);
    println!("==> running {cmd:?}");
    // Children must never wait on a terminal that is not there.
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("{program} failed with {status}");
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; its stderr still goes into the live log.
pub(crate) fn output_of(cmd: &mut Command) -> anyhow::Result<String> {
    let program = program_name(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("{program} failed with {}", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("{program} printed invalid UTF-8"))
}

fn program_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}
