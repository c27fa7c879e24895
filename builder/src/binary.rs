//! The RPM task (seed step 11): from a package imported into DistGit to binary RPMs.
//!
//! The DistGit repository holds the spec and patches; the `sources` file in it names the
//! other files, which come from the lookaside cache and are checked against their SHA-512
//! before rpmbuild sees them. The macros Copr defines in its mock chroots are defined here too
//! (REFERENCE §9), so specs that use them build the same way. The build itself runs in mock
//! when the host has it and a config for the chroot ([`mock`]), with rpmbuild otherwise.

use anyhow::{Context as _, anyhow, bail, ensure};
use ferrocopr_schema::task::{BuilderTask, Results, TaskKind};
use std::path::{Path, PathBuf};

use crate::command::run_logged;
use crate::sources::{self, SOURCES_FILE, SourceEntry};
use crate::srpm::{define, topdir_defines};
use crate::{download, git, mock, rpm, sandbox};
use ferrocopr_schema::model::{
    NameRule, is_valid_bcond, is_valid_dirname, is_valid_name, is_valid_owner,
    is_valid_package_name,
};

/// Builds the binary RPMs of an RPM task into `result_dir`, working under `work`.
pub(crate) fn build(task: &BuilderTask, work: &Path, result_dir: &Path) -> anyhow::Result<Results> {
    let TaskKind::Rpm {
        git_repo,
        git_hash,
        lookaside_url,
        package_name,
        dist,
        bconds,
    } = &task.kind
    else {
        bail!("not an RPM task");
    };
    // These end up in lookaside URLs and rpm macro values, where `/` or `%` would change
    // their meaning.
    let checks: [(&str, &str, NameRule); 4] = [
        ("owner", &task.project_owner, is_valid_owner),
        ("project", &task.project_name, is_valid_name),
        ("project dirname", &task.project_dirname, is_valid_dirname),
        ("package", package_name, is_valid_package_name),
    ];
    for (what, value, valid) in checks {
        ensure!(valid(value), "invalid {what} name {value:?}");
    }
    ensure!(
        dist.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '~')),
        "invalid dist tag {dist:?}"
    );

    let checkout = work.join("checkout");
    git::clone_at(git_repo, git_hash, &checkout)?;
    let spec = find_spec(&checkout, package_name)?;

    let entries = read_sources(&checkout)?;
    for entry in &entries {
        let url = sources::lookaside_url(
            lookaside_url,
            &task.project_owner,
            &task.project_dirname,
            package_name,
            entry,
        );
        fetch_source(&url, &checkout, entry)?;
    }

    let mut conditionals = Vec::new();
    for (option, names) in [("--with", &bconds.with), ("--without", &bconds.without)] {
        for name in names {
            ensure!(is_valid_bcond(name), "invalid conditional name {name:?}");
            conditionals.extend([option.to_owned(), name.clone()]);
        }
    }
    let owner = &task.project_owner;
    let project = &task.project_name;
    // The macros Copr's mock chroots define (REFERENCE §9).
    let macros = [
        format!("copr_username {owner}"),
        format!("copr_projectname {project}"),
        format!("buildtag .copr{}", task.build_id),
        format!("vendor Fedora Project COPR ({owner}/{project})"),
    ];
    if let Some(config) = mock::config_for(&task.chroot) {
        mock::build(&mock::MockBuild {
            config: &config,
            spec: &spec,
            sources: &checkout,
            work,
            result_dir,
            macros: &macros,
            conditionals: &conditionals,
            enable_net: task.enable_net,
            unique: &task.task_id,
        })?;
    } else {
        println!("==> building the RPMs with rpmbuild (dist {dist:?})");
        let mut rpmbuild = sandbox::offline_unless(task.enable_net, "rpmbuild");
        // mock would install the BuildRequires; here the host must have them.
        rpmbuild
            .args(["-ba", "--nodeps"])
            .args(&conditionals)
            .arg(&spec)
            .args(topdir_defines(work)?)
            .arg("--define")
            .arg(define("_sourcedir", &checkout))
            .arg("--define")
            .arg(define("_srcrpmdir", result_dir))
            .arg("--define")
            .arg(define("_rpmdir", result_dir))
            .args([
                "--define",
                // Flat, as Copr's result directories are: no per-arch subdirectories.
                "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
                "--define",
                &format!("dist {dist}"),
            ]);
        for m in &macros {
            rpmbuild.arg("--define").arg(m);
        }
        run_logged(&mut rpmbuild)?;
    }

    let mut packages = Vec::new();
    for path in rpm_files(result_dir)? {
        let info = rpm::query(&path)?;
        if !info.is_source {
            packages.push(info.nevra);
        }
    }
    ensure!(!packages.is_empty(), "rpmbuild made no binary RPM");
    packages.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    Ok(Results { packages })
}

/// `<package>.spec`, or else the only spec in the repository's top directory.
pub(crate) fn find_spec(checkout: &Path, package: &str) -> anyhow::Result<PathBuf> {
    let named = checkout.join(format!("{package}.spec"));
    if named.is_file() {
        return Ok(named);
    }
    let mut specs = Vec::new();
    for entry in std::fs::read_dir(checkout).context("cannot list the DistGit checkout")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "spec") && path.is_file() {
            specs.push(path);
        }
    }
    match <[PathBuf; 1]>::try_from(specs) {
        Ok([one]) => Ok(one),
        Err(specs) => bail!(
            "expected {package}.spec or exactly one .spec in the DistGit repository, found {}",
            specs.len()
        ),
    }
}

/// The entries of the checkout's `sources` file; none when it is missing.
pub(crate) fn read_sources(checkout: &Path) -> anyhow::Result<Vec<SourceEntry>> {
    let path = checkout.join(SOURCES_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => sources::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(anyhow!(e).context(format!("cannot read {SOURCES_FILE}"))),
    }
}

/// Downloads one listed source into `dir` and checks its SHA-512; a bad file is removed.
pub(crate) fn fetch_source(url: &str, dir: &Path, entry: &SourceEntry) -> anyhow::Result<()> {
    let dest = dir.join(&entry.filename);
    // A listed file must not replace the spec or a patch that the repository keeps in git.
    ensure!(
        dest.symlink_metadata().is_err(),
        "{SOURCES_FILE} lists {}, which the repository already has",
        entry.filename
    );
    let got = download::to_file(url, &dest)?;
    if got != entry.sha512 {
        let _ = std::fs::remove_file(&dest);
        bail!(
            "{} from the lookaside cache has SHA-512 {got}, but {SOURCES_FILE} says {}; refusing to build with it",
            entry.filename,
            entry.sha512
        );
    }
    Ok(())
}

fn rpm_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rpm") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_checks_the_hash() -> anyhow::Result<()> {
        let store = tempfile::tempdir()?;
        let dir = tempfile::tempdir()?;
        std::fs::write(store.path().join("blob"), b"abc")?;
        let url = format!("file://{}", store.path().join("blob").display());
        let good = SourceEntry {
            filename: "a.tar.gz".into(),
            sha512: sources::copy_hashing(&b"abc"[..], std::io::sink())?,
        };
        fetch_source(&url, dir.path(), &good)?;
        assert_eq!(std::fs::read(dir.path().join("a.tar.gz"))?, b"abc");
        // A second copy must not overwrite what is there.
        assert!(fetch_source(&url, dir.path(), &good).is_err());

        let bad = SourceEntry {
            filename: "b.tar.gz".into(),
            sha512: "0".repeat(128),
        };
        let err = fetch_source(&url, dir.path(), &bad)
            .err()
            .context("accepted a bad hash")?;
        assert!(format!("{err:#}").contains("SHA-512"), "{err:#}");
        assert!(!dir.path().join("b.tar.gz").exists());
        assert!(fetch_source("ftp://x/y", dir.path(), &bad).is_err());
        Ok(())
    }

    #[test]
    fn finds_the_spec() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(find_spec(dir.path(), "hello").is_err());
        std::fs::write(dir.path().join("other.spec"), "")?;
        assert_eq!(
            find_spec(dir.path(), "hello")?,
            dir.path().join("other.spec")
        );
        std::fs::write(dir.path().join("third.spec"), "")?;
        assert!(find_spec(dir.path(), "hello").is_err());
        std::fs::write(dir.path().join("hello.spec"), "")?;
        assert_eq!(
            find_spec(dir.path(), "hello")?,
            dir.path().join("hello.spec")
        );
        Ok(())
    }
}
