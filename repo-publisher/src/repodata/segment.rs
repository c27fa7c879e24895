//! Segments: what makes a publish incremental (issue #6).
//!
//! The package list of a repository is cut into segments; each segment's `<package>` elements of
//! primary, filelists and other are rendered and compressed once, and kept in a cache under
//! `repodata/.cache/` (a hidden directory: no `repomd.xml` names it, `find_rpms` never enters
//! it). A metadata file is then written as a concatenation of independent compressed members:
//! a small header member (`<metadata … packages="N">`), the cached members of every segment, and a
//! footer member. Concatenated gzip members are one valid gzip file (zlib's `gzread`, which
//! libsolv and createrepo_c read through, reads them all), concatenated zstd frames one valid
//! zstd file. So a publish compresses only its new segments and copies the others' bytes.
//!
//! The cache also keeps each segment's uncompressed XML, split per package: `repomd.xml` needs
//! the checksum of the whole uncompressed file (`open-checksum`), and `createrepo --update` takes
//! an unchanged package's elements from there instead of reading its RPM again.
//!
//! A cache entry is written to a temporary file and renamed into place, and ends with a CRC-32 of
//! its bytes that every load checks: one that is missing, truncated or damaged (say, by a power
//! loss before the kernel wrote it out) only means its segment is made again. Entries are not
//! synced one by one: the cache is derived data, checked on every load, and the first publish of
//! a large repository would otherwise wait for one fsync per segment (hundreds to thousands).
//! The metadata files and `repomd.xml` themselves are synced before `repomd.xml` is renamed.

use super::{Compression, RenderedPackage};
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The three metadata files, in the order segments hold their parts.
pub const KINDS: [&str; 3] = ["primary", "filelists", "other"];

/// Changes whenever the rendering of a `<package>` or the cache file layout changes, so that a
/// newer ferrocopr never reuses what an older one cached.
const FORMAT: &str = concat!("ferrocopr-segment 2 ", env!("CARGO_PKG_VERSION"));

/// First bytes of a cache file.
const MAGIC: &[u8] = b"ferrocopr-segment 2\n";

/// Appends the CRC-32 of `bytes` to them.
fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The bytes [`seal`] sealed, if their CRC-32 matches.
fn unseal(bytes: &[u8]) -> anyhow::Result<&[u8]> {
    let split = bytes.len().checked_sub(4).context("truncated")?;
    let (body, crc) = bytes.split_at(split);
    let mut expected = [0u8; 4];
    expected.copy_from_slice(crc);
    if crc32fast::hash(body) != u32::from_le_bytes(expected) {
        bail!("CRC-32 mismatch");
    }
    Ok(body)
}

/// The previous run's segments, in order, each with its first href: where `createrepo --update`
/// looks for the packages of a segment that changed.
const MANIFEST: &str = "manifest";

/// The file of one package as a segment records it: what `--update` compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileId {
    pub href: String,
    pub size: u64,
    pub mtime: u64,
}

/// One package of a segment: its file and where its elements are in the segment's XML.
#[derive(Debug, Clone)]
struct Entry {
    id: FileId,
    start: [usize; 3],
    len: [usize; 3],
}

/// A run of packages with its rendered and compressed metadata.
#[derive(Debug)]
pub struct Segment {
    pub key: String,
    /// The publisher's build directories it holds, with their markers (none for `createrepo`).
    builds: Vec<(String, String)>,
    entries: Vec<Entry>,
    /// The uncompressed `<package>` elements of primary, filelists and other.
    pub plain: [Vec<u8>; 3],
    /// `plain`, each compressed as one gzip member or zstd frame.
    pub packed: [Vec<u8>; 3],
}

/// A segment key: the hex SHA-256 of what the segment is made from.
pub fn key(compression: Compression, parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(FORMAT.as_bytes());
    hasher.update([0]);
    hasher.update(compression.extension().as_bytes());
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The key of a segment of files known by their ids (`createrepo --update`).
pub fn key_of_files(compression: Compression, ids: &[FileId]) -> String {
    let mut listed = Vec::with_capacity(ids.len() * 64);
    for id in ids {
        listed.extend_from_slice(id.href.as_bytes());
        listed.push(0);
        listed.extend_from_slice(&id.size.to_le_bytes());
        listed.extend_from_slice(&id.mtime.to_le_bytes());
    }
    key(compression, &[b"files", &listed])
}

impl Segment {
    /// Renders nothing: concatenates the packages' elements and compresses them.
    pub fn make(
        key: String,
        packages: &[RenderedPackage],
        compression: Compression,
    ) -> anyhow::Result<Segment> {
        let mut plain: [Vec<u8>; 3] = Default::default();
        let mut entries = Vec::with_capacity(packages.len());
        for p in packages {
            let parts = [&p.primary, &p.filelists, &p.other];
            let start = [plain[0].len(), plain[1].len(), plain[2].len()];
            let len = parts.map(|part| part.len());
            for (plain, part) in plain.iter_mut().zip(parts) {
                plain.extend_from_slice(part.as_bytes());
            }
            entries.push(Entry {
                id: FileId {
                    href: p.href.clone(),
                    size: p.size,
                    mtime: p.mtime,
                },
                start,
                len,
            });
        }
        let packed = [
            compression.compress(&plain[0])?,
            compression.compress(&plain[1])?,
            compression.compress(&plain[2])?,
        ];
        Ok(Segment {
            key,
            builds: Vec::new(),
            entries,
            plain,
            packed,
        })
    }

    /// Records the build directories (name, marker) whose packages this segment holds.
    pub fn with_builds(mut self, builds: Vec<(String, String)>) -> Segment {
        self.builds = builds;
        self
    }

    /// The packages of build directory `name`, if this segment holds it with `marker`.
    pub fn build(&self, name: &str, marker: &str) -> Option<Vec<RenderedPackage>> {
        if !self.builds.iter().any(|(n, m)| n == name && m == marker) {
            return None;
        }
        let prefix = format!("{name}/");
        self.entries
            .iter()
            .filter(|e| e.id.href.starts_with(&prefix))
            .map(|e| self.package(&e.id))
            .collect()
    }

    /// How many packages it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn first_href(&self) -> Option<&str> {
        self.entries.first().map(|e| e.id.href.as_str())
    }

    /// The package of this segment made from exactly the file `id`, if any.
    pub fn package(&self, id: &FileId) -> Option<RenderedPackage> {
        let i = self
            .entries
            .binary_search_by(|e| e.id.href.as_str().cmp(&id.href))
            .ok()?;
        let entry = &self.entries[i];
        if entry.id != *id {
            return None;
        }
        let part = |k: usize| {
            let bytes = self.plain[k].get(entry.start[k]..entry.start[k] + entry.len[k])?;
            String::from_utf8(bytes.to_vec()).ok()
        };
        Some(RenderedPackage {
            href: id.href.clone(),
            size: id.size,
            mtime: id.mtime,
            primary: part(0)?,
            filelists: part(1)?,
            other: part(2)?,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let total: usize = self.plain.iter().chain(&self.packed).map(Vec::len).sum();
        let mut out = Vec::with_capacity(total + self.entries.len() * 96 + 64);
        out.extend_from_slice(MAGIC);
        put(&mut out, self.builds.len() as u64);
        for (name, marker) in &self.builds {
            put(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put(&mut out, marker.len() as u64);
            out.extend_from_slice(marker.as_bytes());
        }
        put(&mut out, self.entries.len() as u64);
        for e in &self.entries {
            put(&mut out, e.id.href.len() as u64);
            out.extend_from_slice(e.id.href.as_bytes());
            put(&mut out, e.id.size);
            put(&mut out, e.id.mtime);
            for len in e.len {
                put(&mut out, len as u64);
            }
        }
        for packed in &self.packed {
            put(&mut out, packed.len() as u64);
        }
        for bytes in self.plain.iter().chain(&self.packed) {
            out.extend_from_slice(bytes);
        }
        seal(out)
    }

    fn decode(key: &str, bytes: &[u8]) -> anyhow::Result<Segment> {
        let bytes = unseal(bytes)?;
        let mut r = Cursor { bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            bail!("not a segment of this format");
        }
        let build_count = usize::try_from(r.u64()?)?;
        let mut builds = Vec::with_capacity(build_count.min(1 << 20));
        for _ in 0..build_count {
            let len = usize::try_from(r.u64()?)?;
            let name = std::str::from_utf8(r.take(len)?)?.to_owned();
            let len = usize::try_from(r.u64()?)?;
            let marker = std::str::from_utf8(r.take(len)?)?.to_owned();
            builds.push((name, marker));
        }
        let count = usize::try_from(r.u64()?)?;
        let mut entries = Vec::with_capacity(count.min(1 << 20));
        let mut totals = [0usize; 3];
        for _ in 0..count {
            let href_len = usize::try_from(r.u64()?)?;
            let href = std::str::from_utf8(r.take(href_len)?)?.to_owned();
            let size = r.u64()?;
            let mtime = r.u64()?;
            let start = totals;
            let mut len = [0; 3];
            for (len, total) in len.iter_mut().zip(&mut totals) {
                *len = usize::try_from(r.u64()?)?;
                *total += *len;
            }
            entries.push(Entry {
                id: FileId { href, size, mtime },
                start,
                len,
            });
        }
        let mut packed_len = [0usize; 3];
        for len in &mut packed_len {
            *len = usize::try_from(r.u64()?)?;
        }
        let mut plain: [Vec<u8>; 3] = Default::default();
        for (plain, total) in plain.iter_mut().zip(totals) {
            *plain = r.take(total)?.to_vec();
        }
        let mut packed: [Vec<u8>; 3] = Default::default();
        for (packed, len) in packed.iter_mut().zip(packed_len) {
            *packed = r.take(len)?.to_vec();
        }
        if r.at != bytes.len() {
            bail!("trailing bytes");
        }
        Ok(Segment {
            key: key.to_owned(),
            builds,
            entries,
            plain,
            packed,
        })
    }
}

fn put(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let end = self.at.checked_add(n).context("length overflow")?;
        let slice = self.bytes.get(self.at..end).context("truncated")?;
        self.at = end;
        Ok(slice)
    }

    fn u64(&mut self) -> anyhow::Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
}

/// The segment cache of one repository: `repodata/.cache/<key>.seg` and the manifest.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(repodata: &Path) -> Cache {
        Cache {
            dir: repodata.join(".cache"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.seg"))
    }

    /// The cached segment `key`; `None` when it is not there or cannot be read.
    pub fn load(&self, key: &str) -> Option<Segment> {
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), "unreadable segment, making it again: {e}");
                return None;
            }
        };
        match Segment::decode(key, &bytes) {
            Ok(segment) => Some(segment),
            Err(e) => {
                tracing::warn!(path = %path.display(), "damaged segment, making it again: {e:#}");
                None
            }
        }
    }

    /// Stores `segment`: written to a temporary file, renamed into place.
    pub fn store(&self, segment: &Segment) -> anyhow::Result<()> {
        write_atomically(&self.dir, &self.path(&segment.key), &segment.encode())
    }

    /// The keys and first hrefs of the segments the last run wrote, in order; `None` when there
    /// is no usable manifest.
    pub fn manifest(&self) -> Option<Vec<(String, String)>> {
        let bytes = std::fs::read(self.dir.join(MANIFEST)).ok()?;
        let mut r = Cursor {
            bytes: unseal(&bytes).ok()?,
            at: 0,
        };
        if r.take(MAGIC.len()).ok()? != MAGIC {
            return None;
        }
        let count = usize::try_from(r.u64().ok()?).ok()?;
        let mut out = Vec::with_capacity(count.min(1 << 20));
        for _ in 0..count {
            let key_len = usize::try_from(r.u64().ok()?).ok()?;
            let key = std::str::from_utf8(r.take(key_len).ok()?).ok()?.to_owned();
            let href_len = usize::try_from(r.u64().ok()?).ok()?;
            let href = std::str::from_utf8(r.take(href_len).ok()?).ok()?.to_owned();
            out.push((key, href));
        }
        Some(out)
    }

    /// Records `segments` as the current ones, then removes every other cache file.
    pub fn commit(&self, segments: &[&Segment]) -> anyhow::Result<()> {
        let mut out = MAGIC.to_vec();
        let listed: Vec<&Segment> = segments.iter().copied().filter(|s| !s.is_empty()).collect();
        put(&mut out, listed.len() as u64);
        for s in &listed {
            let first = s.first_href().unwrap_or_default();
            put(&mut out, s.key.len() as u64);
            out.extend_from_slice(s.key.as_bytes());
            put(&mut out, first.len() as u64);
            out.extend_from_slice(first.as_bytes());
        }
        write_atomically(&self.dir, &self.dir.join(MANIFEST), &seal(out))?;
        let keep: HashSet<String> = segments.iter().map(|s| format!("{}.seg", s.key)).collect();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == MANIFEST || keep.contains(name.as_ref()) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("remove {}", entry.path().display()));
                }
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` (in `dir`, created if needed) through a temporary file.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp.")
        .tempfile_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("rename into {}", path.display()))?;
    Ok(())
}

/// Reads a whole metadata file, however many members or frames it has.
pub fn decompress(
    compression: Compression,
    file: impl Read,
    into: &mut String,
) -> std::io::Result<usize> {
    match compression {
        Compression::Gzip => flate2::read::MultiGzDecoder::new(file).read_to_string(into),
        Compression::Zstd => zstd::stream::read::Decoder::new(file)?.read_to_string(into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(href: &str) -> RenderedPackage {
        RenderedPackage {
            href: href.to_owned(),
            size: 10,
            mtime: 20,
            primary: format!("<package>{href}</package>\n"),
            filelists: format!("<package pkgid=\"{href}\"/>\n"),
            other: String::new(),
        }
    }

    #[test]
    fn a_segment_survives_the_cache_and_gives_its_packages_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(tmp.path());
        for compression in [Compression::Gzip, Compression::Zstd] {
            let packages = [package("a.rpm"), package("b.rpm")];
            let made = Segment::make("k".into(), &packages, compression).expect("make the segment");
            cache.store(&made).expect("store");
            let loaded = cache.load("k").expect("load");
            assert_eq!(loaded.plain, made.plain);
            assert_eq!(loaded.packed, made.packed);
            let id = FileId {
                href: "b.rpm".into(),
                size: 10,
                mtime: 20,
            };
            assert_eq!(loaded.package(&id), Some(package("b.rpm")));
            let changed = FileId { mtime: 21, ..id };
            assert_eq!(loaded.package(&changed), None);
            assert_eq!(loaded.build("b", "m"), None, "no builds recorded");
            let mut text = String::new();
            decompress(compression, &loaded.packed[0][..], &mut text).expect("decompress");
            assert_eq!(text.as_bytes(), made.plain[0]);
        }
    }

    #[test]
    fn a_segment_gives_back_a_build_only_with_its_marker() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(tmp.path());
        let packages = [
            package("1-a/x.rpm"),
            package("1-a/y.rpm"),
            package("2-b/z.rpm"),
        ];
        let made = Segment::make("k".into(), &packages, Compression::Gzip)
            .expect("make the segment")
            .with_builds(vec![
                ("1-a".into(), "m1".into()),
                ("2-b".into(), "m2".into()),
            ]);
        cache.store(&made).expect("store");
        let loaded = cache.load("k").expect("load");
        assert_eq!(
            loaded.build("1-a", "m1"),
            Some(vec![package("1-a/x.rpm"), package("1-a/y.rpm")])
        );
        assert_eq!(loaded.build("1-a", "signed again"), None);
        assert_eq!(loaded.build("3-c", "m3"), None);
    }

    #[test]
    fn a_damaged_cache_entry_is_a_miss() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(tmp.path());
        let made = Segment::make("k".into(), &[package("a.rpm")], Compression::Gzip)
            .expect("make the segment");
        cache.store(&made).expect("store");
        let path = cache.path("k");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 1]).expect("truncate");
        assert!(cache.load("k").is_none());
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 1;
        std::fs::write(&path, &flipped).expect("flip a bit");
        assert!(cache.load("k").is_none());
        std::fs::write(&path, &bytes).expect("restore");
        assert!(cache.load("k").is_some());
    }

    #[test]
    fn concatenated_members_read_as_one_file() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let mut file = compression.compress(b"<a>").expect("compress");
            file.extend(compression.compress(b"text").expect("compress"));
            file.extend(compression.compress(b"</a>").expect("compress"));
            let mut text = String::new();
            decompress(compression, &file[..], &mut text).expect("decompress");
            assert_eq!(text, "<a>text</a>");
        }
    }
}
