//! Building in mock (seed step 11, as Copr does): when `mock` is installed and has a config for
//! the task's chroot, the RPMs are built in a fresh mock chroot that installs the spec's
//! `BuildRequires`, instead of with the host's rpmbuild.
//!
//! The SRPM is made from the DistGit checkout first (`rpmbuild -bs`), then
//! `mock -r <chroot config> --rebuild` builds it with Copr's macros and the task's
//! conditionals. mock keeps the build offline itself unless `--enable-network` is given, and
//! sets `%dist` from its config. Machines without mock (like the test hosts) use rpmbuild.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::run_logged;
use crate::srpm::{define, topdir_defines};

/// Where mock's chroot configs are, unless `FERROCOPR_MOCK_CONFIGS` says otherwise.
const MOCK_CONFIGS: &str = "/etc/mock";

/// `<configs>/<chroot>.cfg`, when `mock` is on the `PATH` and that config exists.
pub(crate) fn config_for(chroot: &str) -> Option<PathBuf> {
    let configs = std::env::var_os("FERROCOPR_MOCK_CONFIGS")
        .map_or_else(|| PathBuf::from(MOCK_CONFIGS), PathBuf::from);
    let config = configs.join(format!("{chroot}.cfg"));
    (program_on_path("mock") && config.is_file()).then_some(config)
}

fn program_on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            dir.join(name)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// What mock is asked to build.
pub(crate) struct MockBuild<'a> {
    pub config: &'a Path,
    pub spec: &'a Path,
    pub sources: &'a Path,
    pub work: &'a Path,
    pub result_dir: &'a Path,
    /// `--define`s, as `name value`.
    pub macros: &'a [String],
    /// `--with x`, `--without y`, as arguments.
    pub conditionals: &'a [String],
    pub enable_net: bool,
    /// Keeps concurrent builds of the same chroot apart (`--uniqueext`).
    pub unique: &'a str,
}

/// Makes the SRPM from the checkout and rebuilds it in mock, results into `result_dir`.
pub(crate) fn build(b: &MockBuild<'_>) -> anyhow::Result<()> {
    let srpm_dir = b.work.join("srpm");
    std::fs::create_dir_all(&srpm_dir).context("cannot create the SRPM directory")?;
    run_logged(
        Command::new("rpmbuild")
            .args(["-bs", "--nodeps"])
            .arg(b.spec)
            .args(topdir_defines(b.work)?)
            .arg("--define")
            .arg(define("_sourcedir", b.sources))
            .arg("--define")
            .arg(define("_srcrpmdir", &srpm_dir)),
    )
    .context("cannot make the SRPM for mock")?;
    let srpm = std::fs::read_dir(&srpm_dir)
        .context("cannot list the SRPM directory")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".src.rpm"))
        .context("rpmbuild -bs made no SRPM")?;

    println!("==> building the RPMs in mock ({})", b.config.display());
    let mut mock = Command::new("mock");
    mock.arg("-r")
        .arg(b.config)
        .arg("--rebuild")
        .arg(&srpm)
        .arg("--resultdir")
        .arg(b.result_dir)
        .arg("--uniqueext")
        .arg(b.unique)
        .args(b.conditionals);
    for m in b.macros {
        mock.arg("--define").arg(m);
    }
    if b.enable_net {
        println!("==> the network is enabled for this build");
        mock.arg("--enable-network");
    }
    run_logged(&mut mock)
}
