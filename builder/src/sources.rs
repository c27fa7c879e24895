//! The DistGit `sources` file and the lookaside cache it points into (REFERENCE §8).
//!
//! DistGit writes `sources` next to the spec when it imports an SRPM (seed step 7); the RPM
//! task reads it and downloads each file from the lookaside cache (seed step 11). The format
//! is Fedora's, one file per line: `SHA512 (hello-1.0.tar.gz) = <128 hex digits>`.

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha512};
use std::io::{self, Read, Write};

use crate::paths::is_plain_file_name;

/// The name of the file in a DistGit repository that lists the lookaside sources.
pub const SOURCES_FILE: &str = "sources";

/// One line of a `sources` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// A plain file name: it is written into the build's source directory as is.
    pub filename: String,
    /// Lowercase hex SHA-512 of the file's content.
    pub sha512: String,
}

/// Parses a `sources` file; an empty text lists no sources.
///
/// Refuses file names that could leave the source directory and hashes that are not
/// SHA-512, because both end up in paths and URLs.
pub fn parse(text: &str) -> anyhow::Result<Vec<SourceEntry>> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let lineno = i + 1;
        let Some(rest) = line.strip_prefix("SHA512 (") else {
            bail!(
                "{SOURCES_FILE}:{lineno}: expected `SHA512 (FILE) = HASH`, found {line:?} \
                 (only SHA512 lines are supported)"
            );
        };
        let Some((filename, sha512)) = rest.rsplit_once(") = ") else {
            bail!("{SOURCES_FILE}:{lineno}: expected `SHA512 (FILE) = HASH`, found {line:?}");
        };
        if !is_plain_file_name(filename) {
            bail!("{SOURCES_FILE}:{lineno}: {filename:?} is not a plain file name");
        }
        if !is_sha512_hex(sha512) {
            bail!("{SOURCES_FILE}:{lineno}: {sha512:?} is not a lowercase hex SHA-512");
        }
        if entries.iter().any(|e: &SourceEntry| e.filename == filename) {
            bail!("{SOURCES_FILE}:{lineno}: {filename:?} is listed twice");
        }
        entries.push(SourceEntry {
            filename: filename.to_owned(),
            sha512: sha512.to_owned(),
        });
    }
    Ok(entries)
}

/// Renders a `sources` file, sorted by file name so the same files always give the same text
/// (and so the same git tree: re-imports are then no-ops).
pub fn render(entries: &[SourceEntry]) -> String {
    let mut sorted: Vec<&SourceEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.filename.cmp(&b.filename));
    sorted
        .iter()
        .map(|e| format!("SHA512 ({}) = {}\n", e.filename, e.sha512))
        .collect()
}

/// Where the builder downloads `entry` from: Copr's lookaside layout
/// `<base>/<owner>/<dir>/<pkg>/<file>/sha512/<hash>/<file>`.
pub fn lookaside_url(
    base: &str,
    owner: &str,
    dir: &str,
    package: &str,
    entry: &SourceEntry,
) -> String {
    format!(
        "{}/{owner}/{dir}/{package}/{file}/sha512/{hash}/{file}",
        base.trim_end_matches('/'),
        file = entry.filename,
        hash = entry.sha512,
    )
}

/// Whether `s` is a SHA-512 as we write it: 128 lowercase hex digits.
pub fn is_sha512_hex(s: &str) -> bool {
    s.len() == 128 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Copies `reader` into `writer` and returns the lowercase hex SHA-512 of what was copied.
pub fn copy_hashing(mut reader: impl Read, mut writer: impl Write) -> io::Result<String> {
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        writer.write_all(chunk)?;
    }
    writer.flush()?;
    Ok(hex::encode(hasher.finalize()))
}

/// The lowercase hex SHA-512 of the file at `path`.
pub fn sha512_of_file(path: &std::path::Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    copy_hashing(file, io::sink()).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(c: char) -> String {
        std::iter::repeat_n(c, 128).collect()
    }

    #[test]
    fn parses_fedora_lines() -> anyhow::Result<()> {
        let text = format!(
            "SHA512 (hello-1.0.tar.gz) = {}\n\nSHA512 (odd (name).txt) = {}\n",
            hash('a'),
            hash('0')
        );
        let entries = parse(&text)?;
        assert_eq!(
            entries,
            vec![
                SourceEntry {
                    filename: "hello-1.0.tar.gz".into(),
                    sha512: hash('a')
                },
                SourceEntry {
                    filename: "odd (name).txt".into(),
                    sha512: hash('0')
                },
            ]
        );
        Ok(())
    }

    #[test]
    fn empty_file_lists_nothing() -> anyhow::Result<()> {
        assert!(parse("")?.is_empty());
        assert!(parse("\n  \n")?.is_empty());
        Ok(())
    }

    #[test]
    fn refuses_bad_lines() {
        let h = hash('b');
        for bad in [
            format!("{h}  hello.tar.gz"),
            format!("MD5 (hello.tar.gz) = {h}"),
            format!("SHA512 (../hello.tar.gz) = {h}"),
            format!("SHA512 (a/b.tar.gz) = {h}"),
            format!("SHA512 (..) = {h}"),
            format!("SHA512 () = {h}"),
            "SHA512 (x.tar.gz) = abc".to_owned(),
            format!("SHA512 (x.tar.gz) = {}", hash('A')),
            format!("SHA512 (x.tar.gz) = {h}\nSHA512 (x.tar.gz) = {h}"),
        ] {
            assert!(parse(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn render_sorts_and_round_trips() -> anyhow::Result<()> {
        let entries = vec![
            SourceEntry {
                filename: "b.tar.gz".into(),
                sha512: hash('1'),
            },
            SourceEntry {
                filename: "a.tar.gz".into(),
                sha512: hash('2'),
            },
        ];
        let text = render(&entries);
        assert_eq!(
            text,
            format!(
                "SHA512 (a.tar.gz) = {}\nSHA512 (b.tar.gz) = {}\n",
                hash('2'),
                hash('1')
            )
        );
        let mut back = parse(&text)?;
        back.reverse();
        assert_eq!(back, entries);
        assert_eq!(render(&[]), "");
        Ok(())
    }

    #[test]
    fn lookaside_layout() {
        let e = SourceEntry {
            filename: "hello-1.0.tar.gz".into(),
            sha512: hash('c'),
        };
        assert_eq!(
            lookaside_url(
                "http://h/lookaside/pkgs/",
                "alice",
                "proj:pr:1",
                "hello",
                &e
            ),
            format!(
                "http://h/lookaside/pkgs/alice/proj:pr:1/hello/hello-1.0.tar.gz/sha512/{}/hello-1.0.tar.gz",
                hash('c')
            )
        );
    }

    #[test]
    fn hashes_like_sha512sum() -> io::Result<()> {
        let mut out = Vec::new();
        let h = copy_hashing(&b"abc"[..], &mut out)?;
        assert_eq!(out, b"abc");
        assert_eq!(
            h,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert!(is_sha512_hex(&h));
        Ok(())
    }
}
