//! The user's side of ferrocopr, driven through the real tools: `dnf copr enable` and
//! `dnf install` into a fresh installroot, rpm's signature checks, gpg's view of a key.
//!
//! The dnf options are the ones that work on a Debian host: the copr plugin would guess `epel-12`
//! (so the chroot is explicit), `--releasever` cannot be detected, Debian's `local` plugin breaks
//! gpg-checked installs, and `reposdir` keeps the host's repositories out.

use crate::cmd::{self, CmdOutput};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A fresh root to install packages into, with its own repositories and rpm database.
pub struct InstallRoot {
    path: PathBuf,
    releasever: String,
}

impl InstallRoot {
    /// Prepares `path` (which dnf requires to hold `etc/yum.repos.d`) for release `releasever`.
    pub fn new(path: impl AsRef<Path>, releasever: &str) -> InstallRoot {
        let path = path.as_ref().to_path_buf();
        let repos = path.join("etc/yum.repos.d");
        std::fs::create_dir_all(&repos)
            .unwrap_or_else(|e| panic!("create {}: {e}", repos.display()));
        InstallRoot {
            path,
            releasever: releasever.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the root, e.g. `usr/share/hello/hello.txt`.
    pub fn file(&self, relative: &str) -> PathBuf {
        self.path.join(relative)
    }

    fn dnf_args(&self) -> Vec<String> {
        vec![
            "-y".to_owned(),
            format!("--releasever={}", self.releasever),
            "--disableplugin=local".to_owned(),
            format!("--installroot={}", self.path.display()),
            format!(
                "--setopt=reposdir={}",
                self.path.join("etc/yum.repos.d").display()
            ),
        ]
    }

    /// `dnf copr --hub <hub> enable <project> <chroot>`; panics unless it succeeds.
    pub async fn copr_enable(&self, hub: &str, project: &str, chroot: &str) -> CmdOutput {
        let mut args = self.dnf_args();
        args.extend(["copr", "--hub", hub, "enable", project, chroot].map(str::to_owned));
        cmd::run("dnf", args).await.expect_success()
    }

    /// `dnf copr --hub <hub> <args…>` (`list --available-by-user=…`, `search …`); panics unless
    /// it succeeds.
    pub async fn copr(&self, hub: &str, args: &[&str]) -> CmdOutput {
        let mut all = self.dnf_args();
        all.extend(["copr", "--hub", hub].map(str::to_owned));
        all.extend(args.iter().map(|a| (*a).to_owned()));
        cmd::run("dnf", all).await.expect_success()
    }

    /// `dnf install <package>` with gpgcheck as the repository file says; panics unless it succeeds.
    pub async fn install(&self, package: &str) -> CmdOutput {
        self.try_install(package).await.expect_success()
    }

    /// [`InstallRoot::install`] that may fail: for what dnf must refuse.
    pub async fn try_install(&self, package: &str) -> CmdOutput {
        let mut args = self.dnf_args();
        args.extend(
            [
                "--setopt=install_weak_deps=False",
                "--nodocs",
                "install",
                package,
            ]
            .map(str::to_owned),
        );
        cmd::run("dnf", args).await
    }

    /// The URL dnf downloads the binary `package` from (`dnf repoquery --location`).
    pub async fn package_url(&self, package: &str) -> String {
        let mut args = self.dnf_args();
        args.extend(["-q", "repoquery", "--location", package].map(str::to_owned));
        let output = cmd::run("dnf", args).await.expect_success();
        let urls: Vec<&str> = output
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("http") && !l.ends_with(".src.rpm"))
            .collect();
        match urls.as_slice() {
            [url] => (*url).to_owned(),
            _ => panic!("expected exactly one location for {package}:\n{output}"),
        }
    }

    /// The contents of a repository file in `etc/yum.repos.d`.
    pub fn repo_file(&self, name: &str) -> String {
        let path = self.path.join("etc/yum.repos.d").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            let present: Vec<_> = std::fs::read_dir(self.path.join("etc/yum.repos.d"))
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            panic!(
                "read {}: {e}; the directory holds {present:?}",
                path.display()
            )
        })
    }

    /// The 16-hex key id of the signature on the installed `package` (from `%{RSAHEADER:pgpsig}`).
    pub async fn installed_signature_key_id(&self, package: &str) -> String {
        let output = cmd::run(
            "rpm",
            [
                OsStr::new("--root"),
                self.path.as_os_str(),
                OsStr::new("-q"),
                OsStr::new("--qf"),
                OsStr::new("%{RSAHEADER:pgpsig}\\n"),
                OsStr::new(package),
            ],
        )
        .await
        .expect_success();
        // "RSA/SHA256, Mon 01 Jan 2024 00:00:00 UTC, Key ID 0123456789abcdef"
        output
            .stdout
            .trim()
            .rsplit_once("Key ID ")
            .map(|(_, id)| id.trim().to_owned())
            .unwrap_or_else(|| panic!("{package} carries no header signature:\n{output}"))
    }

    /// `rpmkeys --checksig` of `rpm_file` against the keys imported into this root, at
    /// `_pkgverify_level all` (without it, rpm calls an unsigned package OK).
    pub async fn checksig(&self, rpm_file: &Path) -> CmdOutput {
        cmd::run(
            "rpmkeys",
            [
                OsStr::new("--root"),
                self.path.as_os_str(),
                OsStr::new("--define"),
                OsStr::new("_pkgverify_level all"),
                OsStr::new("--checksig"),
                rpm_file.as_os_str(),
            ],
        )
        .await
    }
}

/// The 16-hex key id of the primary key in an OpenPGP key file, as gpg reads it.
pub async fn gpg_key_id(key_file: &Path) -> String {
    let home = tempfile::tempdir().expect("make a GNUPGHOME");
    let output = cmd::run_with_env(
        "gpg",
        [
            OsStr::new("--batch"),
            OsStr::new("--with-colons"),
            OsStr::new("--show-keys"),
            key_file.as_os_str(),
        ],
        &[("GNUPGHOME", home.path().as_os_str())],
    )
    .await
    .expect_success();
    output
        .stdout
        .lines()
        .find(|l| l.starts_with("pub:"))
        .and_then(|l| l.split(':').nth(4))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no primary key in {}:\n{output}", key_file.display()))
}

/// The bytes themselves, or their gunzipped form when they are gzip (a finished build's
/// `builder-live.log.gz`).
pub async fn gunzip_if_gzip(bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return bytes;
    }
    let dir = tempfile::tempdir().expect("make a temp dir");
    let file = dir.path().join("log.gz");
    std::fs::write(&file, &bytes).expect("write the gzip file");
    let output = cmd::run("gzip", [OsStr::new("-dc"), file.as_os_str()])
        .await
        .expect_success();
    output.stdout.into_bytes()
}
