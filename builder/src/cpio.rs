//! Reading the newc cpio archive that `rpm2cpio` prints for an SRPM, for the DistGit import
//! (seed step 7, REFERENCE §8).
//!
//! An SRPM comes out of a build that ran the packager's code, so its payload is hostile input:
//! an entry may be named `../../x` or `/etc/x`, or be a link, a device or a directory. We read
//! the archive ourselves rather than hand it to `cpio`, so that the only thing ever created is
//! a regular file, under a plain name, directly in the directory we were given, created new
//! (never through an existing file or link). Anything else fails the whole unpack with an
//! error that names the entry; an SRPM's files are flat, so no honest SRPM is refused.
//!
//! The format (`man 5 cpio`, "New ASCII Format"): each entry is a 110-byte header of ASCII
//! hex fields, the NUL-terminated name, padding to a multiple of four, the data, padding to a
//! multiple of four; the entry named `TRAILER!!!` ends the archive.

use anyhow::{Context as _, anyhow, bail, ensure};
use sha2::{Digest, Sha512};
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use crate::paths::is_plain_file_name;

/// One file written by [`unpack_flat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedFile {
    /// A plain file name (the archive's `./` prefix, if any, removed).
    pub name: String,
    pub size: u64,
    /// Lowercase hex SHA-512 of the content, computed while writing it, so the lookaside does
    /// not read the file again.
    pub sha512: String,
}

/// The magic of the "new ASCII" format without checksums, the one rpm writes.
const NEWC_MAGIC: &[u8; 6] = b"070701";
/// rpm's "stripped" variant for payloads with files over 4 GiB, which `rpm2cpio` refuses to
/// convert; seeing it means the archive did not come from `rpm2cpio`.
const STRIPPED_MAGIC: &[u8; 6] = b"07070X";
/// Magic, then 13 fields of 8 hex digits.
const HEADER_LEN: usize = 6 + 13 * 8;
/// The name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";
/// Longer names are refused before they are read, so a crafted size cannot make us allocate.
/// Any name we could accept (255 bytes, a `./` prefix, the NUL) is far shorter; the margin
/// lets a nested path still be named in the error.
const MAX_NAME_SIZE: u32 = 4096;

/// `st_mode` file types (`man 7 inode`).
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;

/// The fields of a header we use.
struct Header {
    mode: u32,
    nlink: u32,
    filesize: u32,
    namesize: u32,
}

/// Reads the newc archive from `archive` and writes its files into the existing directory
/// `dest`, flat. Stops at the trailer; the caller drains whatever follows it.
///
/// Fails on the first entry that is not a regular file with a plain name (optionally prefixed
/// `./`), and on a name seen twice; files written before that stay in `dest`, which the caller
/// throws away.
pub fn unpack_flat(archive: impl Read, dest: &Path) -> anyhow::Result<Vec<UnpackedFile>> {
    let mut archive = archive;
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    loop {
        let header = read_header(&mut archive)?;
        let raw_name = read_name(&mut archive, header.namesize)?;
        if raw_name == TRAILER {
            return Ok(files);
        }
        let name = check_entry(&raw_name, &header)?;
        ensure!(
            seen.insert(name.clone()),
            "the SRPM contains {raw_name:?} twice"
        );
        let path = dest.join(&name);
        // create_new is O_CREAT|O_EXCL: it never opens an existing file and never follows a
        // symbolic link, even one planted in `dest` by someone else.
        let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                bail!(
                    "cannot unpack {raw_name:?}: {} already exists",
                    path.display()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        };
        let size = u64::from(header.filesize);
        let mut out = HashingWriter::new(BufWriter::with_capacity(256 * 1024, file));
        let copied = io::copy(&mut (&mut archive).take(size), &mut out)
            .with_context(|| format!("cannot unpack {raw_name:?} from the SRPM"))?;
        if copied != size {
            return Err(PayloadEnds(format!("{raw_name:?} ({copied} of {size} bytes)")).into());
        }
        let sha512 = out
            .finish()
            .with_context(|| format!("cannot write {}", path.display()))?;
        skip_padding(&mut archive, size)?;
        files.push(UnpackedFile { name, size, sha512 });
    }
}

fn read_header(archive: &mut impl Read) -> anyhow::Result<Header> {
    let mut buf = [0u8; HEADER_LEN];
    archive
        .read_exact(&mut buf)
        .map_err(|e| truncated(e, "a cpio header"))?;
    let (magic, fields) = buf.split_at(6);
    if magic == STRIPPED_MAGIC {
        bail!("the SRPM's payload is a stripped cpio archive, which only rpm itself can read");
    }
    if magic != NEWC_MAGIC {
        bail!(
            "the SRPM's payload is not a newc cpio archive (an entry starts with {:?})",
            String::from_utf8_lossy(magic)
        );
    }
    let field = |i: usize| -> anyhow::Result<u32> {
        let digits = fields.get(i * 8..i * 8 + 8).context("short cpio header")?;
        std::str::from_utf8(digits)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .ok_or_else(|| {
                anyhow!(
                    "the SRPM's payload has a malformed cpio header field {:?}",
                    String::from_utf8_lossy(digits)
                )
            })
    };
    // Fields in order: ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
    // rdevmajor, rdevminor, namesize, check.
    Ok(Header {
        mode: field(1)?,
        nlink: field(4)?,
        filesize: field(6)?,
        namesize: field(11)?,
    })
}

/// The entry's name, without its NUL, after skipping the padding that follows it.
fn read_name(archive: &mut impl Read, namesize: u32) -> anyhow::Result<String> {
    ensure!(
        (1..=MAX_NAME_SIZE).contains(&namesize),
        "the SRPM's payload has an entry name of {namesize} bytes"
    );
    let mut buf = vec![0u8; usize::try_from(namesize)?];
    archive
        .read_exact(&mut buf)
        .map_err(|e| truncated(e, "an entry name"))?;
    if buf.pop() != Some(0) {
        bail!("the SRPM's payload has an entry name without its final NUL");
    }
    skip_padding(archive, HEADER_LEN as u64 + u64::from(namesize))?;
    let name = String::from_utf8(buf).map_err(|e| {
        anyhow!(
            "the SRPM contains a file with a non-UTF-8 name {:?}",
            String::from_utf8_lossy(e.as_bytes())
        )
    })?;
    ensure!(
        !name.contains('\0'),
        "the SRPM contains a file name with a NUL byte, {name:?}"
    );
    Ok(name)
}

/// The name to write the entry under, if it is a regular file with a plain name.
fn check_entry(raw: &str, header: &Header) -> anyhow::Result<String> {
    // Where the entry would go comes first: it is what makes an archive hostile.
    if raw.starts_with('/') {
        bail!("the SRPM contains {raw:?}, an absolute path");
    }
    if raw.split('/').any(|part| part == "..") {
        bail!("the SRPM contains {raw:?}, which leaves its directory");
    }
    let kind = match header.mode & S_IFMT {
        S_IFREG if header.nlink > 1 => Some("a hard link"),
        S_IFREG => None,
        S_IFDIR => Some("a directory"),
        S_IFLNK => Some("a symbolic link"),
        S_IFCHR | S_IFBLK => Some("a device"),
        _ => Some("a special file"),
    };
    if let Some(kind) = kind {
        bail!("the SRPM contains {raw:?}, which is {kind}; an SRPM holds only regular files");
    }
    let name = raw.strip_prefix("./").unwrap_or(raw);
    if name.contains('/') {
        bail!("the SRPM contains {raw:?}, which is in a subdirectory; an SRPM's files are flat");
    }
    ensure!(
        is_plain_file_name(name),
        "the SRPM contains a file named {raw:?}"
    );
    Ok(name.to_owned())
}

/// Skips the padding after `len` bytes of header and name, or of data.
fn skip_padding(archive: &mut impl Read, len: u64) -> anyhow::Result<()> {
    let pad = (4 - len % 4) % 4;
    let mut buf = [0u8; 3];
    let buf = buf
        .get_mut(..usize::try_from(pad)?)
        .context("cpio padding")?;
    archive
        .read_exact(buf)
        .map_err(|e| truncated(e, "the padding of an entry"))
}

/// The archive stopped early: a damaged SRPM, or `rpm2cpio` failing halfway, which its caller
/// tells apart by its exit status.
#[derive(Debug)]
pub struct PayloadEnds(String);

impl std::fmt::Display for PayloadEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the SRPM's payload ends inside {}", self.0)
    }
}

impl std::error::Error for PayloadEnds {}

fn truncated(e: io::Error, what: &str) -> anyhow::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        PayloadEnds(what.to_owned()).into()
    } else {
        anyhow::Error::from(e).context("cannot read the SRPM's payload")
    }
}

/// Writes through to a file, hashing what passes.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha512,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha512::new(),
        }
    }

    /// Flushes and returns the hex SHA-512 of everything written.
    fn finish(mut self) -> io::Result<String> {
        self.inner.flush()?;
        Ok(hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: u32 = S_IFREG | 0o644;

    /// One newc entry, padded as rpm pads it.
    fn entry(name: &str, mode: u32, nlink: u32, data: &[u8]) -> Vec<u8> {
        let namesize = name.len() + 1;
        let mut out = format!(
            "070701{:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
            1,
            0,
            0,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            0
        )
        .into_bytes();
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend(entry(TRAILER, 0, 1, b""));
        // rpm2cpio pads to a 512-byte block, which follows the trailer.
        out.resize(out.len().next_multiple_of(512), 0);
        out
    }

    fn sha512(data: &[u8]) -> String {
        hex::encode(Sha512::digest(data))
    }

    #[test]
    fn unpacks_regular_files_flat() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = archive(&[
            entry("hello.spec", REG, 1, b"Name: hello\n"),
            entry("./hello-1.0.tar.gz", REG, 1, b"tar"),
            entry("empty", REG, 1, b""),
        ]);
        let files = unpack_flat(&data[..], dir.path())?;
        assert_eq!(
            files,
            [
                UnpackedFile {
                    name: "hello.spec".into(),
                    size: 12,
                    sha512: sha512(b"Name: hello\n"),
                },
                UnpackedFile {
                    name: "hello-1.0.tar.gz".into(),
                    size: 3,
                    sha512: sha512(b"tar"),
                },
                UnpackedFile {
                    name: "empty".into(),
                    size: 0,
                    sha512: sha512(b""),
                },
            ]
        );
        assert_eq!(
            std::fs::read(dir.path().join("hello.spec"))?,
            b"Name: hello\n"
        );
        assert_eq!(std::fs::read(dir.path().join("hello-1.0.tar.gz"))?, b"tar");
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 3);
        Ok(())
    }

    /// Unpacks `entries` after a harmless first file into a directory inside a scratch
    /// directory; returns the error and checks nothing but that first file was written
    /// anywhere in the scratch directory.
    fn refused(entries: &[Vec<u8>]) -> String {
        let scratch = tempfile::tempdir().expect("tempdir");
        let dest = scratch.path().join("a").join("b");
        std::fs::create_dir_all(&dest).expect("mkdir");
        let mut all = vec![entry("ok.spec", REG, 1, b"x")];
        all.extend_from_slice(entries);
        let err = unpack_flat(&archive(&all)[..], &dest).expect_err("must be refused");
        let mut found = Vec::new();
        let mut stack = vec![scratch.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read_dir") {
                let e = e.expect("entry");
                let ty = e.file_type().expect("file type");
                if ty.is_dir() {
                    stack.push(e.path());
                } else {
                    found.push(e.path());
                }
            }
        }
        assert_eq!(found, [dest.join("ok.spec")], "for {err:#}");
        format!("{err:#}")
    }

    #[test]
    fn refuses_hostile_entries() {
        let cases: [(Vec<u8>, &str); 12] = [
            (
                entry("../evil", REG, 1, b"x"),
                r#"the SRPM contains "../evil", which leaves its directory"#,
            ),
            (
                entry("./../../evil", REG, 1, b"x"),
                r#""./../../evil", which leaves its directory"#,
            ),
            (
                entry("..", S_IFDIR | 0o755, 2, b""),
                r#""..", which leaves its directory"#,
            ),
            (
                entry("/tmp/evil", REG, 1, b"x"),
                r#"the SRPM contains "/tmp/evil", an absolute path"#,
            ),
            (
                entry("usr/evil", REG, 1, b"x"),
                r#""usr/evil", which is in a subdirectory"#,
            ),
            (
                entry("link", S_IFLNK | 0o777, 1, b"/etc/passwd"),
                r#""link", which is a symbolic link"#,
            ),
            (
                entry("hard", REG, 2, b""),
                r#""hard", which is a hard link"#,
            ),
            (
                entry("null", S_IFCHR | 0o666, 1, b""),
                r#""null", which is a device"#,
            ),
            (
                entry("disk", S_IFBLK | 0o660, 1, b""),
                r#""disk", which is a device"#,
            ),
            (
                entry("fifo", 0o010_644, 1, b""),
                r#""fifo", which is a special file"#,
            ),
            (
                entry(".", S_IFDIR | 0o755, 2, b""),
                r#"".", which is a directory"#,
            ),
            (
                entry("ok.spec", REG, 1, b"again"),
                r#"the SRPM contains "ok.spec" twice"#,
            ),
        ];
        for (bad, expected) in cases {
            let err = refused(&[bad]);
            assert!(err.contains(expected), "{err:?} should say {expected:?}");
        }
    }

    #[test]
    fn refuses_odd_names_and_broken_archives() {
        assert!(refused(&[entry("./", REG, 1, b"")]).contains(r#"a file named "./""#));
        let long = "x".repeat(256);
        assert!(refused(&[entry(&long, REG, 1, b"")]).contains("a file named"));

        let mut bad_magic = entry("a", REG, 1, b"");
        bad_magic
            .get_mut(..6)
            .expect("magic")
            .copy_from_slice(b"070707");
        assert!(refused(&[bad_magic]).contains("not a newc cpio archive"));

        let mut stripped = entry("a", REG, 1, b"");
        stripped
            .get_mut(..6)
            .expect("magic")
            .copy_from_slice(STRIPPED_MAGIC);
        assert!(refused(&[stripped]).contains("stripped"));

        let mut huge_name = entry("a", REG, 1, b"");
        huge_name
            .get_mut(94..102)
            .expect("namesize")
            .copy_from_slice(b"7fffffff");
        assert!(refused(&[huge_name]).contains("an entry name of 2147483647 bytes"));

        let mut not_hex = entry("a", REG, 1, b"");
        not_hex
            .get_mut(54..62)
            .expect("filesize")
            .copy_from_slice(b"0000000g");
        assert!(refused(&[not_hex]).contains("malformed cpio header field"));

        let mut non_utf8 = entry("a\u{e9}", REG, 1, b"");
        // "é" is two bytes in UTF-8; make the second one invalid.
        non_utf8.insert(HEADER_LEN + 2, 0xff);
        non_utf8.remove(HEADER_LEN + 1);
        assert!(refused(&[non_utf8]).contains("non-UTF-8 name"));

        // An archive cut inside a file's data, and one without its trailer.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cut = entry("big.tar.gz", REG, 1, &[7u8; 1000]);
        // 110 header bytes, 11 of name, 3 of padding, then the data.
        cut.truncate(HEADER_LEN + 14 + 500);
        let err = unpack_flat(&cut[..], dir.path()).expect_err("truncated");
        assert!(
            format!("{err:#}").contains(r#"ends inside "big.tar.gz" (500 of 1000 bytes)"#),
            "{err:#}"
        );
        let no_trailer = entry("a.spec", REG, 1, b"x");
        let dir = tempfile::tempdir().expect("tempdir");
        let err = unpack_flat(&no_trailer[..], dir.path()).expect_err("no trailer");
        assert!(format!("{err:#}").contains("ends inside a cpio header"));
    }

    #[test]
    fn never_writes_through_a_planted_link() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"precious")?;
        std::os::unix::fs::symlink(&victim, dir.path().join("hello.spec"))?;
        let data = archive(&[entry("hello.spec", REG, 1, b"overwritten")]);
        let err = unpack_flat(&data[..], dir.path()).expect_err("refused");
        assert!(format!("{err:#}").contains("already exists"), "{err:#}");
        assert_eq!(std::fs::read(&victim)?, b"precious");
        Ok(())
    }
}
