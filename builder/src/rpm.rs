//! Reading built packages with the `rpm` tools: their NEVRA for `results.json` and DistGit,
//! and unpacking an SRPM for the DistGit import.
//!
//! We call `rpm -qp` rather than parsing headers ourselves so that what we report is exactly
//! what rpm and dnf will later see.

use anyhow::{Context as _, bail};
use ferrocopr_schema::task::PackageNevra;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::command::output_of;

/// `%{SOURCERPM}` is `(none)` exactly for source packages; that is how rpm itself tells them
/// apart (a `.src.rpm` header's `%{ARCH}` is the arch it was built on, not `src`).
/// `%|epoch?{…}:{}|` is one conditional whose own `|`s delimit it, hence the `||` after it.
const QUERY_FORMAT: &str =
    "%{NAME}|%|epoch?{%{epoch}}:{}||%{VERSION}|%{RELEASE}|%{ARCH}|%{SOURCERPM}\n";

/// The arch we report for source packages, as Copr and dnf name them.
const SOURCE_ARCH: &str = "src";

/// One package file as rpm reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmInfo {
    /// For a source package the arch is `src`.
    pub nevra: PackageNevra,
    pub is_source: bool,
}

/// Reads the NEVRA of the package file at `path`.
pub fn query(path: &Path) -> anyhow::Result<RpmInfo> {
    let out = output_of(
        Command::new("rpm")
            .args(["-qp", "--nosignature", "--qf", QUERY_FORMAT])
            .arg(path),
    )
    .with_context(|| format!("cannot read package {}", path.display()))?;
    parse_query(out.trim_end()).with_context(|| format!("cannot read package {}", path.display()))
}

fn parse_query(line: &str) -> anyhow::Result<RpmInfo> {
    let fields: Vec<&str> = line.split('|').collect();
    let [name, epoch, version, release, arch, sourcerpm] = fields.as_slice() else {
        bail!("unexpected rpm output {line:?}");
    };
    let epoch = match *epoch {
        "" => None,
        e => Some(
            e.parse::<i64>()
                .with_context(|| format!("invalid epoch {e:?}"))?,
        ),
    };
    let is_source = *sourcerpm == "(none)";
    Ok(RpmInfo {
        nevra: PackageNevra {
            name: (*name).to_owned(),
            epoch,
            version: (*version).to_owned(),
            release: (*release).to_owned(),
            arch: if is_source { SOURCE_ARCH } else { arch }.to_owned(),
        },
        is_source,
    })
}

/// Unpacks the SRPM at `srpm` into the existing directory `dest`, flat, as rpm2cpio and cpio do.
///
/// The two are piped directly rather than through `sh -c`, so no path is ever shell text and
/// a failure of either side is seen; `--no-absolute-filenames` keeps cpio inside `dest` even
/// for a crafted archive.
pub fn unpack_srpm(srpm: &Path, dest: &Path) -> anyhow::Result<()> {
    let mut rpm2cpio = Command::new("rpm2cpio")
        .arg(srpm)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run rpm2cpio")?;
    let archive = rpm2cpio
        .stdout
        .take()
        .context("rpm2cpio has no output pipe")?;
    let cpio = Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames"])
        .current_dir(dest)
        .stdin(archive)
        .status();
    // Reap rpm2cpio whatever cpio did, so no zombie is left behind.
    let rpm2cpio = rpm2cpio.wait().context("cannot wait for rpm2cpio")?;
    let cpio = cpio.context("cannot run cpio")?;
    if !rpm2cpio.success() {
        bail!("rpm2cpio {} failed with {rpm2cpio}", srpm.display());
    }
    if !cpio.success() {
        bail!("cpio failed with {cpio} unpacking {}", srpm.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_source() -> anyhow::Result<()> {
        let bin = parse_query("hello|2|1.0|1.fc41|noarch|hello-1.0-1.fc41.src.rpm")?;
        assert!(!bin.is_source);
        assert_eq!(bin.nevra.epoch, Some(2));
        assert_eq!(bin.nevra.arch, "noarch");
        let src = parse_query("hello||1.0|1|x86_64|(none)")?;
        assert!(src.is_source);
        assert_eq!(src.nevra.epoch, None);
        assert_eq!(src.nevra.arch, "src");
        assert!(parse_query("hello|1.0").is_err());
        assert!(parse_query("hello|x|1.0|1|noarch|(none)").is_err());
        Ok(())
    }
}
