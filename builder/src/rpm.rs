//! Reading built packages with the `rpm` tools: their NEVRA for `results.json` and DistGit,
//! and unpacking an SRPM for the DistGit import (with our own [`cpio`] reader).
//!
//! We call `rpm -qp` rather than parsing headers ourselves so that what we report is exactly
//! what rpm and dnf will later see.

use anyhow::{Context as _, bail};
use ferrocopr_schema::task::PackageNevra;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::command::output_of;
use crate::cpio;
pub use crate::cpio::UnpackedFile;

/// How much of rpm2cpio's stderr an error quotes.
const STDERR_LIMIT: u64 = 4096;

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

/// Unpacks the SRPM at `srpm` into the existing, empty directory `dest`, flat; returns what
/// it wrote, with each file's SHA-512.
///
/// `rpm2cpio` only decompresses the payload; the archive it prints is read by
/// [`cpio::unpack_flat`], which writes nothing but regular files directly in `dest` and
/// refuses the SRPM, naming the entry, if it holds anything else. No path is ever shell text,
/// and a failure of either side is seen.
pub fn unpack_srpm(srpm: &Path, dest: &Path) -> anyhow::Result<Vec<UnpackedFile>> {
    let mut rpm2cpio = Command::new("rpm2cpio")
        .arg(srpm)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run rpm2cpio")?;
    // Read in a thread, so that a chatty rpm2cpio can never block on a full stderr pipe while
    // we wait on its stdout.
    let stderr = rpm2cpio.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = (&mut pipe).take(STDERR_LIMIT).read_to_end(&mut text);
            // Keep draining past the limit so rpm2cpio is never blocked.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            String::from_utf8_lossy(&text).trim().to_owned()
        })
    });
    let unpacked = match rpm2cpio.stdout.take() {
        Some(mut archive) => cpio::unpack_flat(&mut archive, dest).and_then(|files| {
            // rpm2cpio pads the archive after its trailer; read it so rpm2cpio can finish.
            std::io::copy(&mut archive, &mut std::io::sink())
                .context("cannot read rpm2cpio's output")?;
            Ok(files)
        }),
        None => Err(anyhow::anyhow!("rpm2cpio has no output pipe")),
    };
    if unpacked.is_err() {
        // We stopped reading; rpm2cpio may be blocked writing, so it must not be waited for
        // alone. It may also have exited already, which makes the kill fail harmlessly.
        let _ = rpm2cpio.kill();
    }
    // Reap rpm2cpio whatever happened, so no zombie is left behind.
    let status = rpm2cpio.wait().context("cannot wait for rpm2cpio")?;
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let separator = if stderr.is_empty() { "" } else { ": " };
    match unpacked {
        // An archive cut short while rpm2cpio failed: its own words say why.
        Err(e) if e.downcast_ref::<cpio::PayloadEnds>().is_some() && !status.success() => {
            Err(anyhow::anyhow!(
                "rpm2cpio {} failed with {status}{separator}{stderr} ({e:#})",
                srpm.display(),
            ))
        }
        // Anything else the reader refused is the SRPM's fault, whatever rpm2cpio said once
        // we killed it.
        Err(e) => Err(e.context(format!("cannot unpack {}", srpm.display()))),
        Ok(_) if !status.success() => bail!(
            "rpm2cpio {} failed with {status}{separator}{stderr}",
            srpm.display(),
        ),
        Ok(files) => Ok(files),
    }
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
