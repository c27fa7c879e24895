//! One package's repodata entry, read from its RPM file: the first step of writing repodata.
//!
//! Only the lead, the signature header and the main header are parsed (with the `rpm` crate);
//! the rest of the file is streamed once through SHA-256 for the package checksum, never
//! decompressed. The fields and their rules (which requires are dropped, which are `pre`, how an
//! EVR splits) follow `createrepo_c` 0.17 so that dnf sees the same repository from either.

use anyhow::Context;
use rpm::{DependencyFlags, IndexSignatureTag, IndexTag};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::UNIX_EPOCH;

/// `createrepo_c --changelog-limit` default: other.xml keeps the newest ten entries.
pub const CHANGELOG_LIMIT: usize = 10;

/// A dependency as repodata lists it: flags as `EQ`/`LT`/…, the version split into epoch,
/// version and release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    pub flags: Option<&'static str>,
    pub epoch: Option<String>,
    pub ver: Option<String>,
    pub rel: Option<String>,
    pub pre: bool,
}

/// A file the package owns, as filelists lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgFile {
    pub path: String,
    pub kind: FileKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Ghost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changelog {
    pub author: String,
    pub date: u64,
    pub text: String,
}

/// Everything primary, filelists and other say about one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEntry {
    pub name: String,
    pub arch: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    /// SHA-256 of the whole file, hex: the pkgid.
    pub checksum: String,
    pub summary: String,
    pub description: String,
    pub packager: String,
    pub url: String,
    pub time_file: u64,
    pub time_build: u64,
    pub size_package: u64,
    pub size_installed: u64,
    pub size_archive: u64,
    /// Relative to the repository directory, `/`-separated.
    pub location_href: String,
    pub license: String,
    pub vendor: String,
    pub group: String,
    pub buildhost: String,
    pub sourcerpm: String,
    pub header_start: u64,
    pub header_end: u64,
    pub provides: Vec<Dep>,
    pub requires: Vec<Dep>,
    pub conflicts: Vec<Dep>,
    pub obsoletes: Vec<Dep>,
    pub suggests: Vec<Dep>,
    pub enhances: Vec<Dep>,
    pub recommends: Vec<Dep>,
    pub supplements: Vec<Dep>,
    pub files: Vec<PkgFile>,
    /// Oldest first, at most [`CHANGELOG_LIMIT`].
    pub changelogs: Vec<Changelog>,
}

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// createrepo_c's rule for the files primary.xml carries (those dependencies name most often).
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
}

impl PackageEntry {
    /// Reads `path` once; `href` is its location relative to the repository.
    pub fn read(path: &Path, href: String) -> anyhow::Result<PackageEntry> {
        let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        let meta = file.metadata()?;
        let mut reader = BufReader::with_capacity(
            256 * 1024,
            HashingReader {
                inner: file,
                hasher: Sha256::new(),
                count: 0,
            },
        );
        let pkg = rpm::PackageMetadata::parse(&mut reader)
            .with_context(|| format!("read the RPM header of {}", path.display()))?;
        io::copy(&mut reader, &mut io::sink())
            .with_context(|| format!("read {}", path.display()))?;
        let hashing = reader.into_inner();
        let checksum = hex::encode(hashing.hasher.finalize());
        let time_file = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::from_metadata(&pkg, checksum, hashing.count, time_file, href)
            .with_context(|| format!("read the RPM header of {}", path.display()))
    }

    fn from_metadata(
        pkg: &rpm::PackageMetadata,
        checksum: String,
        size_package: u64,
        time_file: u64,
        location_href: String,
    ) -> anyhow::Result<PackageEntry> {
        let h = &pkg.header;
        let text = |tag: IndexTag| -> anyhow::Result<String> {
            match h.get_entry_data_as_string(tag) {
                Ok(s) => Ok(s.to_owned()),
                Err(rpm::Error::TagNotFound(_)) => Ok(String::new()),
                // Summary, description and group are i18n strings.
                Err(_) => match h.get_entry_data_as_i18n_string(tag) {
                    Ok(s) => Ok(s.to_owned()),
                    Err(rpm::Error::TagNotFound(_)) => Ok(String::new()),
                    Err(e) => Err(e.into()),
                },
            }
        };
        let offsets = pkg.get_package_segment_offsets();
        let size_archive = pkg
            .signature
            .get_entry_data_as_u64(IndexSignatureTag::RPMSIGTAG_LONGARCHIVESIZE)
            .or_else(|_| {
                pkg.signature
                    .get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE)
                    .map(u64::from)
            })
            .or_else(|_| h.get_entry_data_as_u64(IndexTag::RPMTAG_LONGARCHIVESIZE))
            .or_else(|_| {
                h.get_entry_data_as_u32(IndexTag::RPMTAG_ARCHIVESIZE)
                    .map(u64::from)
            })
            .unwrap_or(0);
        let files = files(pkg)?;
        let provides = deps(pkg.get_provides()?, DepKind::Provides, &HashSet::new(), &[]);
        let file_paths: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let requires = deps(
            pkg.get_requires()?,
            DepKind::Requires,
            &file_paths,
            &provides,
        );
        let sourcerpm = if pkg.is_source_package() {
            String::new()
        } else {
            text(IndexTag::RPMTAG_SOURCERPM)?
        };
        Ok(PackageEntry {
            name: pkg.get_name()?.to_owned(),
            arch: if pkg.is_source_package() {
                "src".to_owned()
            } else {
                pkg.get_arch()?.to_owned()
            },
            epoch: pkg.get_epoch().unwrap_or(0),
            version: pkg.get_version()?.to_owned(),
            release: pkg.get_release()?.to_owned(),
            checksum,
            summary: text(IndexTag::RPMTAG_SUMMARY)?,
            description: text(IndexTag::RPMTAG_DESCRIPTION)?,
            packager: text(IndexTag::RPMTAG_PACKAGER)?,
            url: text(IndexTag::RPMTAG_URL)?,
            time_file,
            time_build: pkg.get_build_time().unwrap_or(0),
            size_package,
            size_installed: pkg.get_installed_size().unwrap_or(0),
            size_archive,
            location_href,
            license: text(IndexTag::RPMTAG_LICENSE)?,
            vendor: text(IndexTag::RPMTAG_VENDOR)?,
            group: text(IndexTag::RPMTAG_GROUP)?,
            buildhost: text(IndexTag::RPMTAG_BUILDHOST)?,
            sourcerpm,
            header_start: offsets.header,
            header_end: offsets.payload,
            provides,
            requires,
            conflicts: deps(pkg.get_conflicts()?, DepKind::Other, &HashSet::new(), &[]),
            obsoletes: deps(pkg.get_obsoletes()?, DepKind::Other, &HashSet::new(), &[]),
            suggests: deps(pkg.get_suggests()?, DepKind::Other, &HashSet::new(), &[]),
            enhances: deps(pkg.get_enhances()?, DepKind::Other, &HashSet::new(), &[]),
            recommends: deps(pkg.get_recommends()?, DepKind::Other, &HashSet::new(), &[]),
            supplements: deps(pkg.get_supplements()?, DepKind::Other, &HashSet::new(), &[]),
            files,
            changelogs: changelogs(pkg)?,
        })
    }
}

#[derive(PartialEq)]
enum DepKind {
    Provides,
    Requires,
    Other,
}

/// createrepo_c's `cr_flag_to_str`: only the comparison bits count.
fn flags_name(flags: u32) -> Option<&'static str> {
    match flags & 0xf {
        2 => Some("LT"),
        4 => Some("GT"),
        8 => Some("EQ"),
        10 => Some("LE"),
        12 => Some("GE"),
        _ => None,
    }
}

/// createrepo_c's `cr_str_to_evr`: `[epoch:]version[-release]`, epoch `0` when absent.
fn split_evr(evr: &str) -> (Option<String>, Option<String>, Option<String>) {
    if evr.is_empty() {
        return (None, None, None);
    }
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.to_owned(), rest)
        }
        Some((_, rest)) => ("0".to_owned(), rest),
        None => ("0".to_owned(), evr),
    };
    let (ver, rel) = match rest.rsplit_once('-') {
        Some((v, r)) => (v.to_owned(), Some(r.to_owned())),
        None => (rest.to_owned(), None),
    };
    (Some(epoch), Some(ver), rel)
}

fn deps(
    raw: Vec<rpm::Dependency>,
    kind: DepKind,
    own_files: &HashSet<&str>,
    provides: &[Dep],
) -> Vec<Dep> {
    let mut out: Vec<Dep> = Vec::with_capacity(raw.len());
    let mut seen: HashSet<(String, Option<&'static str>, String, bool)> = HashSet::new();
    let mut provided: HashMap<&str, Vec<&Dep>> = HashMap::new();
    for p in provides {
        provided.entry(p.name.as_str()).or_default().push(p);
    }
    for d in raw {
        let bits = d.flags.bits();
        let flags = flags_name(bits);
        let mut pre = false;
        if kind == DepKind::Requires {
            if d.name.starts_with("rpmlib(") {
                continue;
            }
            // A package needs no metadata to find the files it holds itself.
            if d.name.starts_with('/')
                && own_files.contains(d.name.as_str())
                && is_primary_file(&d.name)
            {
                continue;
            }
            pre = d.flags.intersects(
                DependencyFlags::PREREQ
                    | DependencyFlags::SCRIPT_PRE
                    | DependencyFlags::SCRIPT_POST,
            );
        }
        let (epoch, ver, rel) = split_evr(&d.version);
        // A requirement the package satisfies itself, to the letter.
        if kind == DepKind::Requires
            && provided.get(d.name.as_str()).is_some_and(|same_name| {
                same_name
                    .iter()
                    .any(|p| p.flags == flags && p.epoch == epoch && p.ver == ver && p.rel == rel)
            })
        {
            continue;
        }
        if kind != DepKind::Other && !seen.insert((d.name.clone(), flags, d.version.clone(), pre)) {
            continue;
        }
        out.push(Dep {
            name: d.name,
            flags,
            epoch,
            ver,
            rel,
            pre,
        });
    }
    out
}

fn files(pkg: &rpm::PackageMetadata) -> anyhow::Result<Vec<PkgFile>> {
    let h = &pkg.header;
    let paths = pkg.get_file_paths_split()?;
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let modes = h
        .get_entry_data_as_u16_array(IndexTag::RPMTAG_FILEMODES)
        .unwrap_or_default();
    let flags = h
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEFLAGS)
        .unwrap_or_default();
    /// `S_IFMT` and `S_IFDIR`.
    const FORMAT: u16 = 0o170000;
    const DIR: u16 = 0o040000;
    /// `RPMFILE_GHOST`.
    const GHOST: u32 = 1 << 6;
    Ok(paths
        .into_iter()
        .enumerate()
        .map(|(i, (dir, base))| {
            let kind = if modes.get(i).is_some_and(|m| m & FORMAT == DIR) {
                FileKind::Dir
            } else if flags.get(i).is_some_and(|f| f & GHOST != 0) {
                FileKind::Ghost
            } else {
                FileKind::File
            };
            PkgFile {
                path: format!("{dir}{base}"),
                kind,
            }
        })
        .collect())
}

fn changelogs(pkg: &rpm::PackageMetadata) -> anyhow::Result<Vec<Changelog>> {
    // The header lists the newest first; other.xml lists the newest ten, oldest first.
    let mut entries: Vec<Changelog> = pkg
        .iter_changelog_entries()?
        .take(CHANGELOG_LIMIT)
        .map(|c| Changelog {
            author: c.name,
            date: c.timestamp,
            text: c.description,
        })
        .collect();
    entries.reverse();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_splits_like_createrepo_c() {
        let s = |e: &str, v: &str, r: Option<&str>| {
            (Some(e.to_owned()), Some(v.to_owned()), r.map(str::to_owned))
        };
        assert_eq!(split_evr("1:2.0-3.fc41"), s("1", "2.0", Some("3.fc41")));
        assert_eq!(split_evr("2.0-1"), s("0", "2.0", Some("1")));
        assert_eq!(split_evr("4.0"), s("0", "4.0", None));
        assert_eq!(split_evr(""), (None, None, None));
    }

    #[test]
    fn flags_keep_only_the_comparison() {
        assert_eq!(flags_name(8), Some("EQ"));
        assert_eq!(flags_name(12 | (1 << 9)), Some("GE"));
        assert_eq!(flags_name(1 << 9), None);
    }

    #[test]
    fn primary_files_are_createrepo_c_s() {
        assert!(is_primary_file("/etc/demo.conf"));
        assert!(is_primary_file("/usr/sbin/x"));
        assert!(is_primary_file("/usr/lib/sendmail"));
        assert!(!is_primary_file("/usr/share/doc/x"));
        assert!(!is_primary_file("/etc"));
    }
}
