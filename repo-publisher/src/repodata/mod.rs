//! Native repodata: the publisher's writer of `repodata/` for a directory of RPMs, in place of
//! `createrepo_c` (issue #6).
//!
//! The flow: find the RPMs under the directory ([`find_rpms`]), read each one's header into a
//! [`PackageEntry`] ([`package`]) or, with `--update`, take its elements unchanged from the old
//! repodata (`old`), render primary, filelists and other ([`xml`]), gzip them, then publish
//! atomically ([`write_repodata`]): each metadata file lands under a content-addressed
//! name (`<sha256>-primary.xml.gz`, like createrepo_c's default `--unique-md-filenames`), then
//! `repomd.xml` is renamed over the old one last. A reader that fetched the old `repomd.xml` still
//! finds the files it names: those are deleted only after [`GRACE`].

mod old;
pub mod package;
pub mod xml;

use anyhow::Context;
pub use package::PackageEntry;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long metadata files that `repomd.xml` no longer names stay readable: long enough for a dnf
/// that read the previous `repomd.xml` to fetch what it names, even over a slow link.
pub const GRACE: Duration = Duration::from_secs(60 * 60);

/// What a run of [`createrepo`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Packages in the new repodata.
    pub packages: usize,
    /// Of those, how many were taken from the old repodata rather than read from their RPM.
    pub reused: usize,
}

/// One package's elements of primary, filelists and other, ready to be written: rendered from
/// a [`PackageEntry`] or copied from the previous repodata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPackage {
    /// The location href, relative to the repository.
    pub href: String,
    /// The RPM file's size and mtime (seconds) when it was read.
    pub size: u64,
    pub mtime: u64,
    pub primary: String,
    pub filelists: String,
    pub other: String,
}

impl From<&PackageEntry> for RenderedPackage {
    fn from(p: &PackageEntry) -> RenderedPackage {
        let mut primary = String::with_capacity(2048);
        let mut filelists = String::with_capacity(1024);
        let mut other = String::with_capacity(1024);
        xml::primary_package(&mut primary, p);
        xml::filelists_package(&mut filelists, p);
        xml::other_package(&mut other, p);
        RenderedPackage {
            href: p.location_href.clone(),
            size: p.size_package,
            mtime: p.time_file,
            primary,
            filelists,
            other,
        }
    }
}

/// `ferrocopr createrepo [--update] DIR`: writes `DIR/repodata` from every RPM under `DIR`.
///
/// With `update`, a package whose file has the size and mtime the old repodata recorded for its
/// href is not read again (like `createrepo_c --update`); unreadable old repodata is reported
/// and replaced by a full run.
pub fn createrepo(dir: &Path, update: bool) -> anyhow::Result<Outcome> {
    let rpms = find_rpms(dir)?;
    publish(dir, rpms, update, None)
}

/// Makes `repomd.xml.asc`, an ASCII-armored detached signature, from the bytes of `repomd.xml`.
pub type SignRepomd<'a> = &'a dyn Fn(&[u8]) -> anyhow::Result<Vec<u8>>;

/// The signature beside `repomd.xml` that dnf checks with `repo_gpgcheck=1`.
pub const REPOMD_SIGNATURE: &str = "repomd.xml.asc";

/// Writes `dir/repodata` listing exactly `rpms` (paths relative to `dir`); with `update`, as
/// [`createrepo`] does with it.
/// With `sign`, `repomd.xml.asc` is written just before `repomd.xml` is renamed into place.
pub fn publish(
    dir: &Path,
    rpms: Vec<PathBuf>,
    update: bool,
    sign: Option<SignRepomd<'_>>,
) -> anyhow::Result<Outcome> {
    let mut old = if update {
        old::read(dir).unwrap_or_else(|e| {
            tracing::warn!(dir = %dir.display(), "old repodata unreadable, reading every package: {e:#}");
            Default::default()
        })
    } else {
        Default::default()
    };
    let mut reused = Vec::new();
    let mut to_read = Vec::new();
    for relative in rpms {
        let meta = std::fs::metadata(dir.join(&relative))?;
        let mtime = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match old.remove(&href(&relative)) {
            Some(known) if known.size == meta.len() && known.mtime == mtime => reused.push(known),
            _ => to_read.push(relative),
        }
    }
    let fresh = read_packages(dir, &to_read)?;
    let reused_count = reused.len();
    let mut packages: Vec<RenderedPackage> = reused;
    packages.extend(fresh.iter().map(RenderedPackage::from));
    packages.sort_by(|a, b| a.href.cmp(&b.href));
    write_repodata(dir, &packages, sign)?;
    Ok(Outcome {
        packages: packages.len(),
        reused: reused_count,
    })
}

/// The RPMs under `dir`, recursively, relative to it and sorted; `repodata` and hidden
/// directories are skipped, symlinks are not followed.
pub fn find_rpms(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let path = dir.join(&relative);
        let entries =
            std::fs::read_dir(&path).with_context(|| format!("list {}", path.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name_str) = name.to_str() else {
                continue;
            };
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                if name_str.starts_with('.')
                    || (relative.as_os_str().is_empty() && name_str == "repodata")
                {
                    continue;
                }
                stack.push(relative.join(&name));
            } else if file_type.is_file() && name_str.ends_with(".rpm") {
                found.push(relative.join(&name));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads the packages at `relative` paths under `dir`, spread over the machine's cores.
pub fn read_packages(dir: &Path, relative: &[PathBuf]) -> anyhow::Result<Vec<PackageEntry>> {
    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(relative.len().max(1));
    let chunk = relative.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = relative
            .chunks(chunk)
            .map(|paths| {
                scope.spawn(move || {
                    paths
                        .iter()
                        .map(|p| PackageEntry::read(&dir.join(p), href(p)))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(relative.len());
        for handle in handles {
            match handle.join() {
                Ok(entries) => all.extend(entries?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(all)
    })
}

/// A location href: the relative path with `/` separators.
fn href(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Writes `dir/repodata` for `packages`, atomically, and removes metadata files that are no
/// longer named and older than [`GRACE`].
pub fn write_repodata(
    dir: &Path,
    packages: &[RenderedPackage],
    sign: Option<SignRepomd<'_>>,
) -> anyhow::Result<()> {
    let repodata = dir.join("repodata");
    std::fs::create_dir_all(&repodata).with_context(|| format!("create {}", repodata.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    let mut primary =
        String::with_capacity(packages.iter().map(|p| p.primary.len()).sum::<usize>() + 256);
    let mut filelists =
        String::with_capacity(packages.iter().map(|p| p.filelists.len()).sum::<usize>() + 256);
    let mut other =
        String::with_capacity(packages.iter().map(|p| p.other.len()).sum::<usize>() + 256);
    xml::primary_header(&mut primary, packages.len());
    xml::filelists_header(&mut filelists, packages.len());
    xml::other_header(&mut other, packages.len());
    for p in packages {
        primary.push_str(&p.primary);
        filelists.push_str(&p.filelists);
        other.push_str(&p.other);
    }
    primary.push_str("</metadata>");
    filelists.push_str("</filelists>");
    other.push_str("</otherdata>");

    let mut records = Vec::with_capacity(3);
    for (kind, content) in [
        ("primary", primary),
        ("filelists", filelists),
        ("other", other),
    ] {
        records.push(write_metadata_file(
            &repodata,
            kind,
            content.as_bytes(),
            now,
        )?);
    }
    let repomd = xml::repomd(now, &records);
    if let Some(sign) = sign {
        let signature = sign(repomd.as_bytes()).context("signing repomd.xml")?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".repomd.xml.asc.")
            .tempfile_in(&repodata)?;
        tmp.write_all(&signature)?;
        tmp.as_file().sync_all()?;
        tmp.persist(repodata.join(REPOMD_SIGNATURE))
            .with_context(|| format!("rename into {}", repodata.display()))?;
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".repomd.xml.")
        .tempfile_in(&repodata)?;
    tmp.write_all(repomd.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(repodata.join("repomd.xml"))
        .with_context(|| format!("rename into {}", repodata.display()))?;
    sync_dir(&repodata)?;

    let keep: Vec<&str> = records
        .iter()
        .filter_map(|r| r.href.strip_prefix("repodata/"))
        .collect();
    remove_stale(&repodata, &keep, GRACE)
}

/// Gzips `content` into `repodata/<sha256>-<kind>.xml.gz` and describes it for repomd.
fn write_metadata_file(
    repodata: &Path,
    kind: &'static str,
    content: &[u8],
    now: u64,
) -> anyhow::Result<xml::RepomdRecord> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(content.len() / 4),
        flate2::Compression::default(),
    );
    gz.write_all(content)?;
    let compressed = gz.finish()?;
    let checksum = hex::encode(Sha256::digest(&compressed));
    let name = format!("{checksum}-{kind}.xml.gz");
    let path = repodata.join(&name);
    // Content-addressed: a file already there under this name holds these very bytes.
    if !path.exists() {
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{kind}."))
            .tempfile_in(repodata)?;
        tmp.write_all(&compressed)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path)
            .with_context(|| format!("rename into {}", path.display()))?;
    }
    Ok(xml::RepomdRecord {
        kind,
        checksum,
        open_checksum: hex::encode(Sha256::digest(content)),
        href: format!("repodata/{name}"),
        timestamp: now,
        size: compressed.len() as u64,
        open_size: content.len() as u64,
    })
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("sync {}", dir.display()))
}

/// Deletes files of `repodata` other than `repomd.xml` and `keep` whose last change is older than
/// `grace` (left-over metadata and temporary files of interrupted runs alike).
fn remove_stale(repodata: &Path, keep: &[&str], grace: Duration) -> anyhow::Result<()> {
    let now = SystemTime::now();
    for entry in std::fs::read_dir(repodata)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let current = name == "repomd.xml" || name == REPOMD_SIGNATURE;
        if current || keep.contains(&name.as_ref()) || !entry.file_type()?.is_file() {
            continue;
        }
        let modified = entry.metadata()?.modified()?;
        if now.duration_since(modified).unwrap_or_default() >= grace {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("remove {}", entry.path().display()));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_metadata_goes_only_after_the_grace_period() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repodata = tmp.path();
        for name in ["repomd.xml", "new-primary.xml.gz", "old-primary.xml.gz"] {
            std::fs::write(repodata.join(name), "x").expect("write");
        }
        remove_stale(repodata, &["new-primary.xml.gz"], GRACE).expect("prune");
        assert!(
            repodata.join("old-primary.xml.gz").exists(),
            "removed within grace"
        );
        remove_stale(repodata, &["new-primary.xml.gz"], Duration::ZERO).expect("prune");
        assert!(!repodata.join("old-primary.xml.gz").exists());
        assert!(repodata.join("new-primary.xml.gz").exists());
        assert!(repodata.join("repomd.xml").exists());
    }
}
