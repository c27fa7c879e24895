//! Native repodata: the publisher's writer of `repodata/` for a directory of RPMs, in place of
//! `createrepo_c` (issue #6).
//!
//! The flow: list what the repository holds (the RPMs under a directory, [`find_rpms`], or the
//! publisher's build directories, [`Build`]), cut that list into segments ([`segment`]), take
//! every segment that is unchanged from the segment cache, make the others (read each new RPM's
//! header into a [`PackageEntry`] ([`package`]) or, with `--update`, take an unchanged package's
//! elements from the cache or the old repodata (`old`), render them ([`xml`]) and compress them),
//! then publish atomically ([`write_repodata`]): each metadata file, the concatenation of a
//! header member, the segments' members and a footer member, lands under a content-addressed name
//! (`<sha256>-primary.xml.gz`, like createrepo_c's default `--unique-md-filenames`), then
//! `repomd.xml` is renamed over the old one last. A reader that fetched the old `repomd.xml` still
//! finds the files it names: those are deleted only after [`GRACE`]. A run killed at any point
//! leaves the old `repomd.xml` or the new one, each naming complete files.

mod old;
pub mod package;
pub mod segment;
pub mod xml;

use anyhow::Context;
pub use package::PackageEntry;
use segment::{Cache, FileId, KINDS, Segment};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long metadata files that `repomd.xml` no longer names stay readable: long enough for a dnf
/// that read the previous `repomd.xml` to fetch what it names, even over a slow link.
pub const GRACE: Duration = Duration::from_secs(60 * 60);

/// A segment of `createrepo` ends after a package whose href hashes to a multiple of this, so
/// segments hold 64 packages on average: one changed package costs re-compressing about 64
/// packages' XML, and a repository of 20,000 packages has about 300 cache files.
const SEGMENT_MEAN: u64 = 64;

/// …and after this many packages in any case, so no run of unlucky hrefs makes a huge segment.
const SEGMENT_MAX: usize = 4 * SEGMENT_MEAN as usize;

/// A segment of the publisher ends after a build whose name hashes to a multiple of this: 16
/// builds on average (a build is often a package with its -devel, -debuginfo and -debugsource),
/// so a chroot of 20,000 builds has about 1,250 cache files rather than 20,000.
const BUILDS_MEAN: u64 = 16;

/// …and after this many builds in any case.
const BUILDS_MAX: usize = 4 * BUILDS_MEAN as usize;

/// zstd's own default level: createrepo_c's too, and fast at both ends.
const ZSTD_LEVEL: i32 = 3;

/// How the metadata files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// `.xml.gz`, createrepo_c's default, which every dnf reads.
    #[default]
    Gzip,
    /// `.xml.zst`: faster to write and to read, smaller; dnf reads it when its libsolv was built
    /// with zstd (Fedora's and Debian's are).
    Zstd,
}

impl Compression {
    /// The file name extension after `.xml`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "gz",
            Compression::Zstd => "zst",
        }
    }

    /// `plain` as one gzip member or one zstd frame.
    pub fn compress(self, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self {
            Compression::Gzip => gzip_member(plain),
            Compression::Zstd => ZSTD.with_borrow_mut(|zstd| {
                let compressor = match zstd {
                    Some(compressor) => compressor,
                    None => zstd.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
                };
                compressor
                    .compress(plain)
                    .context("zstd compression failed")
            }),
        }
    }
}

// One compressor per thread, reset for each member: a fresh deflate state is about 300 KiB to
// allocate and zero, which dominated the first publish of a chroot of many small builds.
thread_local! {
    static DEFLATE: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::default(), false));
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// `plain` as one gzip member (RFC 1952): a fixed header (no name, mtime 0, OS unknown, as
/// flate2's `GzEncoder` writes it), raw deflate, CRC-32 and length.
fn gzip_member(plain: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plain.len() / 4 + 64);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    DEFLATE.with_borrow_mut(|deflate| -> anyhow::Result<()> {
        deflate.reset();
        loop {
            out.reserve(64 * 1024);
            let consumed = usize::try_from(deflate.total_in())?;
            let status = deflate
                .compress_vec(&plain[consumed..], &mut out, flate2::FlushCompress::Finish)
                .context("deflate failed")?;
            if status == flate2::Status::StreamEnd {
                return Ok(());
            }
        }
    })?;
    out.extend_from_slice(&crc32fast::hash(plain).to_le_bytes());
    // ISIZE: the length modulo 2^32, as RFC 1952 says.
    out.extend_from_slice(&(plain.len() as u32).to_le_bytes());
    Ok(out)
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Compression, String> {
        match s {
            "gz" | "gzip" => Ok(Compression::Gzip),
            "zst" | "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression {other:?}: use \"gz\" or \"zstd\""
            )),
        }
    }
}

/// What a run of [`createrepo`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Packages in the new repodata.
    pub packages: usize,
    /// Of those, how many were taken from the old repodata or the segment cache rather than
    /// read from their RPM.
    pub reused: usize,
    /// Of those, how many RPM files were read (`packages - reused`).
    pub read: usize,
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
/// With `update`, a package whose file has the size and mtime the previous run recorded for its
/// href is not read again (like `createrepo_c --update`), and a segment of packages that are all
/// unchanged is not even rendered or compressed again; unreadable old repodata is reported and
/// replaced by a full run.
pub fn createrepo(dir: &Path, update: bool) -> anyhow::Result<Outcome> {
    createrepo_with(dir, update, Compression::Gzip)
}

/// [`createrepo`] with the metadata files compressed as `compression` says.
pub fn createrepo_with(
    dir: &Path,
    update: bool,
    compression: Compression,
) -> anyhow::Result<Outcome> {
    let rpms = find_rpms(dir)?;
    publish_files(dir, rpms, update, compression, None)
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
    publish_files(dir, rpms, update, Compression::Gzip, sign)
}

/// [`publish`] with the metadata files compressed as `compression` says.
pub fn publish_files(
    dir: &Path,
    rpms: Vec<PathBuf>,
    update: bool,
    compression: Compression,
    sign: Option<SignRepomd<'_>>,
) -> anyhow::Result<Outcome> {
    let cache = Cache::new(&dir.join("repodata"));
    let mut files = Vec::with_capacity(rpms.len());
    for relative in rpms {
        let path = dir.join(&relative);
        let meta = std::fs::metadata(&path).with_context(|| format!("stat {}", path.display()))?;
        let id = FileId {
            href: href(&relative),
            size: meta.len(),
            mtime: mtime_secs(&meta),
        };
        files.push((id, relative));
    }
    files.sort_by(|a, b| a.0.href.cmp(&b.0.href));

    let manifest = if update { cache.manifest() } else { None };
    // Without a segment cache (a repository written by createrepo_c, or by an older
    // ferrocopr), unchanged packages come from the old metadata, as createrepo_c does it.
    let mut old_xml = if update && manifest.is_none() {
        old::read(dir).unwrap_or_else(|e| {
            tracing::warn!(dir = %dir.display(), "old repodata unreadable, reading every package: {e:#}");
            Default::default()
        })
    } else {
        HashMap::new()
    };
    let mut previous = PreviousSegments::new(&cache, manifest.unwrap_or_default());

    let ranges = segment_bounds(files.iter().map(|(id, _)| id.href.as_str()));
    let keys: Vec<String> = ranges
        .iter()
        .map(|range| {
            let ids: Vec<FileId> = files[range.clone()]
                .iter()
                .map(|(id, _)| id.clone())
                .collect();
            segment::key_of_files(compression, &ids)
        })
        .collect();
    let cached = if update {
        parallel_map(&keys, |key| cache.load(key))
    } else {
        keys.iter().map(|_| None).collect()
    };
    let mut plans = Vec::new();
    let mut to_read = Vec::new();
    for ((range, key), cached) in ranges.into_iter().zip(keys).zip(cached) {
        let slice = &files[range];
        if let Some(cached) = cached {
            plans.push(Plan::Cached(cached));
            continue;
        }
        let mut sources = Vec::with_capacity(slice.len());
        for (id, relative) in slice {
            let known = if update {
                previous.package(id).or_else(|| {
                    old_xml
                        .remove(&id.href)
                        .filter(|p| p.size == id.size && p.mtime == id.mtime)
                })
            } else {
                None
            };
            match known {
                Some(package) => sources.push(Source::Known(package)),
                None => {
                    sources.push(Source::Read(to_read.len()));
                    to_read.push(relative.clone());
                }
            }
        }
        plans.push(Plan::Make {
            key,
            sources,
            builds: Vec::new(),
        });
    }
    assemble(dir, plans, &to_read, compression, sign)
}

/// A build directory of the publisher, `<chroot>/<8-digit id>-<package>/`, that may be
/// published: it holds `success` and `signed`, and so never changes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// Its name in the chroot directory.
    pub name: String,
    /// What identifies its `signed` marker (device, inode, mtime, size): a build signed again
    /// gets a new marker, and so a new segment.
    pub marker: String,
}

/// The publisher's incremental write of `dir/repodata` for `builds`. The builds, sorted by
/// name, are cut into segments by their names' hashes (like [`createrepo`]'s packages), keyed by
/// the names and markers they hold. A segment that changed (a build added, removed or signed
/// again) takes its other builds' packages from the previous segments, which record each
/// build's marker; so publishing or removing a build reads only that build's RPMs, and nothing
/// of the other builds is stat'ed or read beyond their markers.
pub fn publish_builds(
    dir: &Path,
    mut builds: Vec<Build>,
    compression: Compression,
    sign: Option<SignRepomd<'_>>,
) -> anyhow::Result<Outcome> {
    let cache = Cache::new(&dir.join("repodata"));
    // In the order of their packages' hrefs (`<name>/<file>`), which segments keep.
    builds.sort_by_cached_key(|b| format!("{}/", b.name));
    let ranges = content_bounds(
        builds.iter().map(|b| b.name.as_str()),
        BUILDS_MEAN,
        BUILDS_MAX,
    );
    let keys: Vec<String> = ranges
        .iter()
        .map(|range| {
            let mut listed = Vec::new();
            for build in &builds[range.clone()] {
                for part in [&build.name, &build.marker] {
                    listed.extend_from_slice(&(part.len() as u64).to_le_bytes());
                    listed.extend_from_slice(part.as_bytes());
                }
            }
            segment::key(compression, &[b"builds", &listed])
        })
        .collect();
    let cached = parallel_map(&keys, |key| cache.load(key));
    let mut previous = PreviousSegments::new(&cache, cache.manifest().unwrap_or_default());
    let mut plans = Vec::with_capacity(ranges.len());
    let mut to_read = Vec::new();
    for ((range, key), cached) in ranges.into_iter().zip(keys).zip(cached) {
        if let Some(cached) = cached {
            plans.push(Plan::Cached(cached));
            continue;
        }
        let mut sources = Vec::new();
        let mut members = Vec::new();
        for build in &builds[range] {
            members.push((build.name.clone(), build.marker.clone()));
            if let Some(known) = previous.build(&build.name, &build.marker) {
                sources.extend(known.into_iter().map(Source::Known));
                continue;
            }
            let build_dir = dir.join(&build.name);
            let mut rpms = Vec::new();
            for file in std::fs::read_dir(&build_dir)
                .with_context(|| format!("list {}", build_dir.display()))?
            {
                let file = file?;
                let name = file.file_name();
                if name.to_string_lossy().ends_with(".rpm") && file.file_type()?.is_file() {
                    rpms.push(Path::new(&build.name).join(name));
                }
            }
            rpms.sort();
            for rpm in rpms {
                sources.push(Source::Read(to_read.len()));
                to_read.push(rpm);
            }
        }
        plans.push(Plan::Make {
            key,
            sources,
            builds: members,
        });
    }
    assemble(dir, plans, &to_read, compression, sign)
}

/// Where a package of a segment to be made comes from.
enum Source {
    /// Its elements, unchanged since a previous run.
    Known(RenderedPackage),
    /// The RPM at this index of the list to read.
    Read(usize),
}

/// One segment of the new metadata.
enum Plan {
    Cached(Segment),
    Make {
        key: String,
        sources: Vec<Source>,
        /// The publisher's builds it holds (name, marker); none for `createrepo`.
        builds: Vec<(String, String)>,
    },
}

/// The segments of the previous `createrepo` run, loaded when a package of a changed segment is
/// looked for in them.
struct PreviousSegments<'a> {
    cache: &'a Cache,
    /// Keys and first hrefs, sorted by href.
    manifest: Vec<(String, String)>,
    loaded: HashMap<usize, Option<Segment>>,
}

impl<'a> PreviousSegments<'a> {
    fn new(cache: &'a Cache, manifest: Vec<(String, String)>) -> PreviousSegments<'a> {
        PreviousSegments {
            cache,
            manifest,
            loaded: HashMap::new(),
        }
    }

    /// The packages of build `name` signed as `marker`, if a previous segment has them.
    fn build(&mut self, name: &str, marker: &str) -> Option<Vec<RenderedPackage>> {
        // The segment whose first href is the last before every `<name>/…` ('0' follows '/').
        let probe = format!("{name}0");
        let after = self
            .manifest
            .partition_point(|(_, first)| first.as_str() < probe.as_str());
        self.segment_before(after)?.build(name, marker)
    }

    /// The elements of exactly the file `id`, if a previous segment has them.
    fn package(&mut self, id: &FileId) -> Option<RenderedPackage> {
        let after = self
            .manifest
            .partition_point(|(_, first)| first.as_str() <= id.href.as_str());
        self.segment_before(after)?.package(id)
    }

    /// The segment just before manifest position `after`, loaded on first use.
    fn segment_before(&mut self, after: usize) -> Option<&Segment> {
        let index = after.checked_sub(1)?;
        let cache = self.cache;
        let key = &self.manifest[index].0;
        self.loaded
            .entry(index)
            .or_insert_with(|| cache.load(key))
            .as_ref()
    }
}

/// Cuts a sorted list of hrefs into segments by their content: a segment ends after an href
/// whose hash is a multiple of [`SEGMENT_MEAN`] (or at [`SEGMENT_MAX`]), so adding or removing a
/// package changes only the segment it falls into.
fn segment_bounds<'a>(hrefs: impl Iterator<Item = &'a str>) -> Vec<Range<usize>> {
    content_bounds(hrefs, SEGMENT_MEAN, SEGMENT_MAX)
}

/// Cuts a sorted list of names into runs that end after a name whose hash is a multiple of
/// `mean`, or after `max` names.
fn content_bounds<'a>(
    names: impl Iterator<Item = &'a str>,
    mean: u64,
    max: usize,
) -> Vec<Range<usize>> {
    let mut bounds = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for name in names {
        end += 1;
        if fnv1a(name.as_bytes()).is_multiple_of(mean) || end - start >= max {
            bounds.push(start..end);
            start = end;
        }
    }
    if start < end {
        bounds.push(start..end);
    }
    bounds
}

/// `f` of every item, in order, computed on every core.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let chunk = items.len().div_ceil(workers).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => all.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
}

/// FNV-1a, 64 bits: a stable hash (unlike `std`'s, which is seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn mtime_secs(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads what `plans` need, makes their new segments (in parallel, each stored in the cache as
/// soon as it is made) and writes the repodata of all of them.
fn assemble(
    dir: &Path,
    plans: Vec<Plan>,
    to_read: &[PathBuf],
    compression: Compression,
    sign: Option<SignRepomd<'_>>,
) -> anyhow::Result<Outcome> {
    let entries = read_packages(dir, to_read)?;
    let cache = Cache::new(&dir.join("repodata"));
    let mut segments: Vec<Option<Segment>> = Vec::with_capacity(plans.len());
    let mut jobs = Vec::new();
    for (index, plan) in plans.into_iter().enumerate() {
        match plan {
            Plan::Cached(segment) => segments.push(Some(segment)),
            Plan::Make {
                key,
                sources,
                builds,
            } => {
                segments.push(None);
                jobs.push((index, key, sources, builds));
            }
        }
    }
    let jobs = Mutex::new(jobs);
    let made = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let job = jobs
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .pop();
                        let Some((index, key, sources, builds)) = job else {
                            return Ok(());
                        };
                        let packages: Vec<RenderedPackage> = sources
                            .into_iter()
                            .map(|source| match source {
                                Source::Known(package) => package,
                                Source::Read(i) => RenderedPackage::from(&entries[i]),
                            })
                            .collect();
                        let segment =
                            Segment::make(key, &packages, compression)?.with_builds(builds);
                        if let Err(e) = cache.store(&segment) {
                            tracing::warn!(dir = %dir.display(), "cannot cache a segment: {e:#}");
                        }
                        made.lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push((index, segment));
                    }
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(result) => result?,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(())
    })?;
    for (index, segment) in made.into_inner().unwrap_or_else(|p| p.into_inner()) {
        segments[index] = Some(segment);
    }
    let segments: Vec<Segment> = segments.into_iter().flatten().collect();
    write_segments(dir, &segments, compression, sign)?;
    if let Err(e) = cache.commit(&segments.iter().collect::<Vec<_>>()) {
        tracing::warn!(dir = %dir.display(), "cannot tidy the segment cache: {e:#}");
    }
    let packages = segments.iter().map(Segment::len).sum();
    Ok(Outcome {
        packages,
        reused: packages.saturating_sub(to_read.len()),
        read: to_read.len(),
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

/// Writes `dir/repodata` for `packages`, atomically, as one segment that is not cached, and
/// removes metadata files that are no longer named and older than [`GRACE`].
pub fn write_repodata(
    dir: &Path,
    packages: &[RenderedPackage],
    sign: Option<SignRepomd<'_>>,
) -> anyhow::Result<()> {
    let segment = Segment::make(String::new(), packages, Compression::Gzip)?;
    write_segments(dir, &[segment], Compression::Gzip, sign)
}

/// Writes `dir/repodata` made of `segments`, in their order: the three metadata files (in
/// parallel), then `repomd.xml.asc` if signed, then `repomd.xml` renamed into place; then removes
/// metadata files that are no longer named and older than [`GRACE`].
fn write_segments(
    dir: &Path,
    segments: &[Segment],
    compression: Compression,
    sign: Option<SignRepomd<'_>>,
) -> anyhow::Result<()> {
    let repodata = dir.join("repodata");
    std::fs::create_dir_all(&repodata).with_context(|| format!("create {}", repodata.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let count = segments.iter().map(Segment::len).sum();
    let records = std::thread::scope(|scope| {
        let handles: Vec<_> = KINDS
            .iter()
            .enumerate()
            .map(|(k, &kind)| {
                let repodata = &repodata;
                scope.spawn(move || {
                    let mut header = String::with_capacity(256);
                    let footer = match kind {
                        "primary" => {
                            xml::primary_header(&mut header, count);
                            "</metadata>"
                        }
                        "filelists" => {
                            xml::filelists_header(&mut header, count);
                            "</filelists>"
                        }
                        _ => {
                            xml::other_header(&mut header, count);
                            "</otherdata>"
                        }
                    };
                    write_metadata_file(
                        repodata,
                        kind,
                        MetadataParts {
                            header: &header,
                            segments,
                            index: k,
                            footer,
                        },
                        compression,
                        now,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(record) => record,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
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

/// What one metadata file is made of: its header, part `index` of every segment, its footer.
struct MetadataParts<'a> {
    header: &'a str,
    segments: &'a [Segment],
    index: usize,
    footer: &'a str,
}

/// Writes `repodata/<sha256>-<kind>.xml.<ext>` as the concatenation of a compressed header,
/// the segments' compressed parts and a compressed footer, and describes it for repomd.
fn write_metadata_file(
    repodata: &Path,
    kind: &'static str,
    parts: MetadataParts<'_>,
    compression: Compression,
    now: u64,
) -> anyhow::Result<xml::RepomdRecord> {
    let k = parts.index;
    let head = compression.compress(parts.header.as_bytes())?;
    let foot = compression.compress(parts.footer.as_bytes())?;
    // An empty segment (a build without RPMs) adds nothing, not even an empty member.
    let members = || {
        std::iter::once(head.as_slice())
            .chain(
                parts
                    .segments
                    .iter()
                    .filter(move |s| !s.plain[k].is_empty())
                    .map(move |s| s.packed[k].as_slice()),
            )
            .chain(std::iter::once(foot.as_slice()))
    };
    let mut packed_hash = Sha256::new();
    let mut size = 0u64;
    for member in members() {
        packed_hash.update(member);
        size += member.len() as u64;
    }
    let mut open_hash = Sha256::new();
    open_hash.update(parts.header.as_bytes());
    let mut open_size = parts.header.len() as u64;
    for s in parts.segments {
        open_hash.update(&s.plain[k]);
        open_size += s.plain[k].len() as u64;
    }
    open_hash.update(parts.footer.as_bytes());
    open_size += parts.footer.len() as u64;

    let checksum = hex::encode(packed_hash.finalize());
    let name = format!("{checksum}-{kind}.xml.{}", compression.extension());
    let path = repodata.join(&name);
    // Content-addressed: a file already there under this name holds these very bytes.
    if !path.exists() {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{kind}."))
            .tempfile_in(repodata)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp);
        for member in members() {
            out.write_all(member)?;
        }
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path)
            .with_context(|| format!("rename into {}", path.display()))?;
    }
    Ok(xml::RepomdRecord {
        kind,
        checksum,
        open_checksum: hex::encode(open_hash.finalize()),
        href: format!("repodata/{name}"),
        timestamp: now,
        size,
        open_size,
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
    fn adding_a_package_changes_only_the_segment_it_falls_into() {
        let hrefs: Vec<String> = (0..5000).map(|i| format!("p/pkg{i:05}.rpm")).collect();
        let cut = |hrefs: &[String]| -> Vec<Vec<String>> {
            segment_bounds(hrefs.iter().map(String::as_str))
                .into_iter()
                .map(|range| hrefs[range].to_vec())
                .collect()
        };
        let before = cut(&hrefs);
        assert!(
            (40..160).contains(&before.len()),
            "{} segments",
            before.len()
        );
        assert_eq!(before.concat(), hrefs);
        let mut more = hrefs.clone();
        more.push("p/pkg02500a.rpm".to_owned());
        more.sort();
        let after = cut(&more);
        let changed = after.iter().filter(|s| !before.contains(s)).count();
        // The segment it joins, or that one cut in two if the new href ends a segment.
        assert!((1..=2).contains(&changed), "{changed} segments changed");
    }

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
