//! The SRPM task (seed step 5): from the build's sources to a `.src.rpm`.
//!
//! The source methods of Copr (REFERENCE §9): `url` (a `.src.rpm` taken as it is, or a `.spec`
//! whose URL sources are downloaded), uploads (which reach the builder as a URL), `distgit` (a
//! package of a Fedora- or CentOS-style dist-git: clone, lookaside sources checked by hash,
//! `rpmbuild -bs`; also how a build is rebuilt from our own DistGit alone), and the SCM method (REFERENCE §9) with its three ways to make the SRPM from the checkout:
//! `spec` (the `rpkg` way: the spec lives in the repository and, when its `Source0` tarball is
//! not committed next to it, the tarball is made from the checked-out commit with `git
//! archive`), `make_srpm` (`make -f .copr/Makefile srpm outdir=… spec=…`) and `custom` (a
//! script leaves a spec and its sources in `$COPR_RESULTDIR`). Besides these, Copr's own custom
//! method (the API's `create/custom`): a script run in an empty directory, with no checkout,
//! that leaves one spec and its sources in its result directory. The SRPM then goes to DistGit
//! (step 7).

use anyhow::{Context as _, anyhow, bail};
use ferrocopr_schema::copr_yaml::SrpmMethod;
use ferrocopr_schema::model::{BuildSource, DistgitLocation, is_valid_package_name};
use ferrocopr_schema::task::Results;
use git2::Oid;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::{output_of, run_logged};
use crate::paths::{is_plain_file_name, resolve_inside, safe_relative_path};
use crate::{binary, download, git, rpm};

/// Makes the SRPM of `source` into `result_dir`, working under `work`.
pub(crate) fn build(
    source: &BuildSource,
    distgit: Option<&DistgitLocation>,
    work: &Path,
    result_dir: &Path,
) -> anyhow::Result<Results> {
    match source {
        BuildSource::Scm {
            clone_url,
            committish,
            spec,
            srpm,
        } => from_scm(clone_url, committish, spec, srpm, work, result_dir)?,
        BuildSource::Url { url } => from_url(url, work, result_dir)?,
        BuildSource::Distgit {
            package,
            committish,
            ..
        } => {
            let location = distgit.context("the task does not say where the dist-git is")?;
            from_distgit(location, package, committish, work, result_dir)?;
        }
        BuildSource::Upload { .. } => {
            bail!("an uploaded SRPM must reach the builder as a URL")
        }
        BuildSource::Custom {
            script,
            chroot,
            builddeps,
            resultdir,
        } => from_custom(
            script,
            chroot.as_deref(),
            builddeps,
            resultdir,
            work,
            result_dir,
        )?,
    }
    let srpm = only_srpm_in(result_dir)?;
    let info = rpm::query(&srpm)?;
    if !info.is_source {
        bail!("{} is not a source package", srpm.display());
    }
    Ok(Results {
        packages: vec![info.nevra],
    })
}

/// The SCM method: a clone at `committish`, then the SRPM made in one of the three ways.
fn from_scm(
    clone_url: &str,
    committish: &str,
    spec: &str,
    srpm: &SrpmMethod,
    work: &Path,
    result_dir: &Path,
) -> anyhow::Result<()> {
    // An empty spec, or one naming a directory (`pkg/`), means the one spec found there.
    let spec_rel = match spec {
        "" => None,
        spec => Some(safe_relative_path(spec).map_err(|e| anyhow!("invalid spec path: {e}"))?),
    };
    let checkout = work.join("checkout");
    let commit = git::clone_at(clone_url, committish, &checkout)?;
    let spec_path = match &spec_rel {
        None => checkout.clone(),
        Some(rel) => {
            resolve_inside(&checkout, rel).map_err(|e| anyhow!("cannot use the spec: {e}"))?
        }
    };
    let spec_path = if spec_path.is_dir() {
        let found = only_spec_in(&spec_path)?;
        println!(
            "==> using the spec {}",
            found.strip_prefix(&checkout).unwrap_or(&found).display()
        );
        found
    } else {
        spec_path
    };
    match srpm {
        SrpmMethod::Spec => {
            if !spec_path.is_file() {
                bail!("the spec {spec} is not a file");
            }
            let spec_dir = spec_path
                .parent()
                .context("the spec has no directory")?
                .to_path_buf();
            ensure_source0(&checkout, &spec_path, &spec_dir, commit)?;
            build_srpm(&spec_path, &spec_dir, work, result_dir)?;
        }
        SrpmMethod::MakeSrpm => {
            let makefile = checkout.join(MAKEFILE);
            if !makefile.is_file() {
                bail!("the repository has no {MAKEFILE}, which `srpm: {{method: make_srpm}}` runs");
            }
            println!("==> making the SRPM with {MAKEFILE}");
            run_logged(
                Command::new("make")
                    .current_dir(&checkout)
                    .arg("-f")
                    .arg(&makefile)
                    .arg("srpm")
                    .arg(format!("outdir={}", result_dir.display()))
                    .arg(format!("spec={}", spec_path.display())),
            )
            .context("`make -f .copr/Makefile srpm` failed: the SRPM was not made")?;
        }
        SrpmMethod::Custom { script } => {
            let sources = work.join("custom-result");
            std::fs::create_dir_all(&sources)
                .context("cannot create the custom script's result directory")?;
            println!("==> running the custom script");
            run_logged(
                Command::new("/bin/sh")
                    .arg("-e")
                    .arg("-c")
                    .arg(script)
                    .current_dir(&checkout)
                    .env("COPR_RESULTDIR", &sources),
            )
            .context("the custom script failed: the SRPM was not made")?;
            let name = spec_path.file_name().context("the spec has no file name")?;
            let custom_spec = sources.join(name);
            if !custom_spec.is_file() {
                bail!(
                    "the custom script left no {} in $COPR_RESULTDIR",
                    Path::new(name).display()
                );
            }
            build_srpm(&custom_spec, &sources, work, result_dir)?;
        }
    }
    Ok(())
}

/// Copr's custom method: `script` runs with `/bin/sh -e` in an empty directory (network as the
/// builder has it), then the one `*.spec` in `resultdir` with the sources beside it becomes the
/// SRPM.
fn from_custom(
    script: &str,
    chroot: Option<&str>,
    builddeps: &[String],
    resultdir: &str,
    work: &Path,
    result_dir: &Path,
) -> anyhow::Result<()> {
    let dir = work.join("custom");
    std::fs::create_dir_all(&dir).context("cannot create the custom script's directory")?;
    // SRPM tasks run on the builder host itself, never in mock (the RPM tasks may).
    if let Some(chroot) = chroot {
        println!(
            "==> the script was meant for the chroot {chroot}; SRPM tasks here run on the \
             builder host, not in a mock chroot"
        );
    }
    if !builddeps.is_empty() {
        println!(
            "==> build dependencies asked for: {}; NOT installed (no mock chroot for SRPM \
             tasks): the script has only what the builder host has",
            builddeps.join(" ")
        );
    }
    println!("==> running the custom script");
    run_logged(
        Command::new("/bin/sh")
            .arg("-e")
            .arg("-c")
            .arg(script)
            .current_dir(&dir),
    )
    .context("the custom script failed: the SRPM was not made")?;
    let sources = if resultdir.is_empty() {
        dir.clone()
    } else {
        let rel =
            safe_relative_path(resultdir).map_err(|e| anyhow!("invalid result directory: {e}"))?;
        resolve_inside(&dir, &rel).map_err(|e| anyhow!("cannot use the result directory: {e}"))?
    };
    if !sources.is_dir() {
        bail!("the custom script left no result directory {resultdir:?}");
    }
    let spec = only_spec_in(&sources)?;
    build_srpm(&spec, &sources, work, result_dir)
}

/// The one `*.spec` file directly in `dir`; an error saying how many there were otherwise.
fn only_spec_in(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let is_spec = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".spec") && !n.starts_with('.'));
        if is_spec && path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    match <[PathBuf; 1]>::try_from(found) {
        Ok([one]) => Ok(one),
        Err(found) if found.is_empty() => bail!("there is no .spec file in {}", dir.display()),
        Err(found) => bail!(
            "there are {} .spec files in {} ({}); name the one to build",
            found.len(),
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The URL method: a `.src.rpm` is taken as it is; a `.spec` is built into an SRPM with the
/// sources it names by URL downloaded next to it.
fn from_url(url: &str, work: &Path, result_dir: &Path) -> anyhow::Result<()> {
    let name = download::file_name_of(url)?;
    if name.ends_with(".src.rpm") {
        download::to_file(url, &result_dir.join(name))?;
        return Ok(());
    }
    if !name.ends_with(".spec") {
        bail!("{url} names neither a .src.rpm nor a .spec");
    }
    let dir = work.join("url-source");
    std::fs::create_dir_all(&dir).context("cannot create the source directory")?;
    let spec = dir.join(name);
    download::to_file(url, &spec)?;
    let parsed = parse_spec(&spec, &dir)?;
    for value in remote_sources(&parsed) {
        let file = download::file_name_of(&value)?;
        download::to_file(&value, &dir.join(file))?;
    }
    build_srpm(&spec, &dir, work, result_dir)
}

/// The dist-git method: the package's repository at `committish`, its `sources` fetched from
/// the instance's lookaside cache and checked, then `rpmbuild -bs`.
fn from_distgit(
    location: &DistgitLocation,
    package: &str,
    committish: &str,
    work: &Path,
    result_dir: &Path,
) -> anyhow::Result<()> {
    if !is_valid_package_name(package) {
        bail!("invalid package name {package:?}");
    }
    let checkout = work.join("checkout");
    git::clone_at(&location.clone_url, committish, &checkout)?;
    let spec = binary::find_spec(&checkout, package)?;
    for entry in binary::read_sources(&checkout)? {
        let url = location
            .lookaside_url
            .replace("{name}", package)
            .replace("{filename}", &entry.filename)
            .replace("{hashtype}", "sha512")
            .replace("{hash}", &entry.sha512);
        binary::fetch_source(&url, &checkout, &entry)?;
    }
    build_srpm(&spec, &checkout, work, result_dir)
}

/// The Makefile of the `make_srpm` method, in the repository.
const MAKEFILE: &str = ".copr/Makefile";

/// `rpmbuild -bs` of `spec` with its sources in `sources`, into `result_dir`.
fn build_srpm(spec: &Path, sources: &Path, work: &Path, result_dir: &Path) -> anyhow::Result<()> {
    println!("==> building the SRPM");
    run_logged(
        Command::new("rpmbuild")
            // Dependencies are the RPM builds' business; this host's rpmdb may even be empty.
            .args(["-bs", "--nodeps"])
            .arg(spec)
            .args(topdir_defines(work)?)
            .arg("--define")
            .arg(define("_sourcedir", sources))
            .arg("--define")
            .arg(define("_srcrpmdir", result_dir)),
    )
}

/// Makes the `Source0` tarball from `commit` when the repository does not hold it.
fn ensure_source0(
    checkout: &Path,
    spec: &Path,
    spec_dir: &Path,
    commit: Oid,
) -> anyhow::Result<()> {
    let parsed = parse_spec(spec, spec_dir)?;
    let Some(value) = source0(&parsed) else {
        println!("==> the spec has no Source0");
        return Ok(());
    };
    let name = source_basename(&value);
    if !is_plain_file_name(name) {
        bail!("Source0 {value:?} does not end in a file name");
    }
    let target = spec_dir.join(name);
    if target.symlink_metadata().is_ok() {
        println!("==> using {name} from the repository");
        return Ok(());
    }
    let (format, stem) = archive_format(name)?;
    println!("==> making {name} from {commit} with git archive");
    run_logged(
        Command::new("git")
            .current_dir(checkout)
            .arg("archive")
            .arg(format!("--format={format}"))
            .arg(format!("--prefix={stem}/"))
            .arg("-o")
            .arg(&target)
            .arg(commit.to_string()),
    )
}

/// The spec as `rpmspec -P` prints it: macros expanded, so `Source0: %{name}-%{version}.tar.gz`
/// gives a real name.
fn parse_spec(spec: &Path, sources: &Path) -> anyhow::Result<String> {
    output_of(
        Command::new("rpmspec")
            .arg("-P")
            .arg(spec)
            .arg("--define")
            .arg(define("_sourcedir", sources)),
    )
    .context("cannot parse the spec")
}

/// The `Source` and `Patch` tags of a parsed spec's preambles whose values are URLs.
pub(crate) fn remote_sources(parsed_spec: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in parsed_spec.lines() {
        let line = line.trim_start();
        // Tags live in the preambles, which all come before the build sections.
        if ["%prep", "%build", "%install", "%files", "%changelog"]
            .iter()
            .any(|s| line.starts_with(s))
        {
            break;
        }
        let Some((tag, value)) = line.split_once(':') else {
            continue;
        };
        let tag = tag.trim_end().to_ascii_lowercase();
        let numbered = |prefix: &str| {
            tag.strip_prefix(prefix)
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        };
        let value = value.trim();
        if (numbered("source") || numbered("patch"))
            && (value.starts_with("http://") || value.starts_with("https://"))
        {
            found.push(value.to_owned());
        }
    }
    found
}

/// The value of the main package's `Source0:` (or unnumbered `Source:`) in `rpmspec -P` output.
pub(crate) fn source0(parsed_spec: &str) -> Option<String> {
    for line in parsed_spec.lines() {
        let line = line.trim_start();
        // A changelog entry may well mention "Source:"; no tag can follow it.
        if line.starts_with("%changelog") {
            break;
        }
        let Some((tag, value)) = line.split_once(':') else {
            continue;
        };
        let tag = tag.trim_end();
        if tag.eq_ignore_ascii_case("source0") || tag.eq_ignore_ascii_case("source") {
            let value = value.trim();
            if !value.is_empty() {
                return Some(value.to_owned());
            }
        }
    }
    None
}

/// The file name rpm uses for a source: what follows the last `/`, so a URL's
/// `#/name-1.0.tar.gz` fragment names the file as in Fedora specs.
pub(crate) fn source_basename(value: &str) -> &str {
    value.rsplit('/').next().unwrap_or(value)
}

/// `git archive`'s format for a tarball name, and the directory it unpacks to (what `%setup`
/// expects by default: the name without its extension).
pub(crate) fn archive_format(name: &str) -> anyhow::Result<(&'static str, &str)> {
    for (ext, format) in [(".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar", "tar")] {
        if let Some(stem) = name.strip_suffix(ext)
            && !stem.is_empty()
        {
            return Ok((format, stem));
        }
    }
    bail!(
        "Source0 {name} is not in the repository, and it can only be made from git \
         when it is a .tar.gz, .tgz or .tar; commit it next to the spec or change Source0"
    )
}

fn only_srpm_in(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".src.rpm"))
        {
            found.push(path);
        }
    }
    match <[PathBuf; 1]>::try_from(found) {
        Ok([one]) => Ok(one),
        Err(found) => bail!(
            "expected one .src.rpm in the results, found {}",
            found.len()
        ),
    }
}

/// `--define`s that keep rpmbuild's scratch files, scriptlets included, in the work directory.
pub(crate) fn topdir_defines(work: &Path) -> anyhow::Result<[String; 4]> {
    let tmp = work.join("tmp");
    std::fs::create_dir_all(&tmp).context("cannot create rpmbuild's temporary directory")?;
    Ok([
        "--define".to_owned(),
        define("_topdir", &work.join("rpmbuild")),
        "--define".to_owned(),
        define("_tmppath", &tmp),
    ])
}

/// One `--define` argument. Paths come from our own temp and result directories.
pub(crate) fn define(name: &str, value: &Path) -> String {
    format!("{name} {}", value.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_source0() {
        let spec = "\nName: hello\nVersion: 1.0\nSource0: https://example.com/hello-1.0.tar.gz\n\
                    Source1: extra.txt\n%description\nx\n";
        assert_eq!(
            source0(spec).as_deref(),
            Some("https://example.com/hello-1.0.tar.gz")
        );
        assert_eq!(
            source0("SOURCE  :  hello.tgz\n").as_deref(),
            Some("hello.tgz")
        );
        assert_eq!(source0("source0:hello.tar\n").as_deref(), Some("hello.tar"));
        assert_eq!(
            source0("Name: x\nSource1: a.tar.gz\nSourceLicense: MIT\n"),
            None
        );
        assert_eq!(
            source0("Name: x\n%changelog\n- Source: nope.tar.gz\n"),
            None
        );
    }

    #[test]
    fn finds_remote_sources() {
        let spec = "Name: x\nSource0: https://x.org/x-1.tar.gz\nSource1: local.txt\n\
                    Patch: http://x.org/fix.patch\nSourceLicense: https://no\nURL: https://x.org\n\
                    %prep\nSource2: https://not.a/tag\n";
        assert_eq!(
            remote_sources(spec),
            ["https://x.org/x-1.tar.gz", "http://x.org/fix.patch"]
        );
    }

    #[test]
    fn basenames() {
        assert_eq!(source_basename("hello-1.0.tar.gz"), "hello-1.0.tar.gz");
        assert_eq!(
            source_basename("https://example.com/a/hello-1.0.tar.gz"),
            "hello-1.0.tar.gz"
        );
        assert_eq!(
            source_basename("https://github.com/o/r/archive/v1.0.tar.gz#/r-1.0.tar.gz"),
            "r-1.0.tar.gz"
        );
        assert_eq!(source_basename("https://example.com/"), "");
    }

    #[test]
    fn one_spec_or_an_error_naming_them() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let none = only_spec_in(dir.path()).expect_err("no spec");
        assert!(
            none.to_string().starts_with("there is no .spec file in"),
            "{none}"
        );
        std::fs::write(dir.path().join("b.spec"), "")?;
        std::fs::write(dir.path().join(".hidden.spec"), "")?;
        std::fs::create_dir(dir.path().join("dir.spec"))?;
        assert_eq!(only_spec_in(dir.path())?, dir.path().join("b.spec"));
        std::fs::write(dir.path().join("a.spec"), "")?;
        let two = only_spec_in(dir.path()).expect_err("two specs");
        assert!(
            two.to_string()
                .ends_with("(a.spec, b.spec); name the one to build"),
            "{two}"
        );
        Ok(())
    }

    #[test]
    fn archive_formats() -> anyhow::Result<()> {
        assert_eq!(archive_format("hello-1.0.tar.gz")?, ("tar.gz", "hello-1.0"));
        assert_eq!(archive_format("hello-1.0.tgz")?, ("tar.gz", "hello-1.0"));
        assert_eq!(archive_format("hello-1.0.tar")?, ("tar", "hello-1.0"));
        assert!(archive_format("hello-1.0.tar.xz").is_err());
        assert!(archive_format("hello.zip").is_err());
        assert!(archive_format(".tar.gz").is_err());
        Ok(())
    }
}
