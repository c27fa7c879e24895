//! Reading back the repodata a previous run wrote, for `createrepo --update`: each package's
//! `<package>` elements of primary, filelists and other are kept verbatim, keyed by their
//! location href, with the file size and mtime they were made from. A package whose RPM still
//! has that size and mtime is not read again (createrepo_c's `--update` rule); its elements are
//! copied into the new metadata as they are. Used when a repository has no segment cache yet
//! (written by createrepo_c or an older ferrocopr); see [`super::segment`].

use super::{Compression, RenderedPackage, segment};
use anyhow::{Context, bail};
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// The packages of `dir/repodata`, by location href; empty when there is no `repomd.xml`.
pub fn read(dir: &Path) -> anyhow::Result<HashMap<String, RenderedPackage>> {
    let repomd_path = dir.join("repodata/repomd.xml");
    let repomd = match std::fs::read_to_string(&repomd_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", repomd_path.display())),
    };
    let locations = repomd_locations(&repomd)?;
    let open = |kind: &str| -> anyhow::Result<String> {
        let href = locations
            .get(kind)
            .with_context(|| format!("{} names no {kind}", repomd_path.display()))?;
        let path = dir.join(href);
        let file =
            std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
        let mut text = String::new();
        // Every member or frame: ferrocopr's metadata files are concatenations of them.
        if href.ends_with(".gz") {
            segment::decompress(Compression::Gzip, file, &mut text)
        } else if href.ends_with(".zst") {
            segment::decompress(Compression::Zstd, file, &mut text)
        } else {
            std::io::BufReader::new(file).read_to_string(&mut text)
        }
        .with_context(|| format!("read {}", path.display()))?;
        Ok(text)
    };
    let primary = open("primary")?;
    let filelists = chunks_by_pkgid(&open("filelists")?)?;
    let other = chunks_by_pkgid(&open("other")?)?;

    let mut packages = HashMap::new();
    for chunk in primary_chunks(&primary)? {
        // Not taken out of the maps: copies of one RPM under several names share a pkgid.
        let (Some(filelists), Some(other)) = (
            filelists.get(&chunk.pkgid).cloned(),
            other.get(&chunk.pkgid).cloned(),
        ) else {
            // Inconsistent metadata: that package is read again.
            continue;
        };
        packages.insert(
            chunk.href.clone(),
            RenderedPackage {
                href: chunk.href,
                size: chunk.size,
                mtime: chunk.mtime,
                primary: chunk.xml,
                filelists,
                other,
            },
        );
    }
    Ok(packages)
}

fn attr(start: &BytesStart<'_>, name: &str) -> anyhow::Result<Option<String>> {
    for a in start.attributes() {
        let a = a?;
        if a.key.into_inner() == name {
            return Ok(Some(
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

fn repomd_locations(repomd: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut reader = quick_xml::Reader::from_str(repomd);
    let mut kind = None;
    let mut locations = HashMap::new();
    loop {
        match reader.read_event()? {
            Event::Start(e) if e.name().into_inner() == "data" => kind = attr(&e, "type")?,
            Event::Empty(e) | Event::Start(e) if e.name().into_inner() == "location" => {
                if let (Some(kind), Some(href)) = (kind.clone(), attr(&e, "href")?) {
                    locations.insert(kind, href);
                }
            }
            Event::Eof => return Ok(locations),
            _ => {}
        }
    }
}

struct PrimaryChunk {
    href: String,
    pkgid: String,
    size: u64,
    mtime: u64,
    xml: String,
}

/// Each `<package>` of primary.xml, verbatim, with what identifies its file.
fn primary_chunks(xml: &str) -> anyhow::Result<Vec<PrimaryChunk>> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut chunks = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let (mut href, mut pkgid, mut size, mut mtime) = (None, String::new(), None, None);
    let mut in_checksum = false;
    loop {
        let before = usize::try_from(reader.buffer_position())?;
        match reader.read_event()? {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && e.name().into_inner() == "package" {
                    start = before;
                    (href, pkgid, size, mtime) = (None, String::new(), None, None);
                }
                in_checksum = depth == 3 && e.name().into_inner() == "checksum";
            }
            Event::Empty(e) if depth == 2 => match e.name().into_inner() {
                "location" => href = attr(&e, "href")?,
                "size" => size = attr(&e, "package")?.and_then(|s| s.parse().ok()),
                "time" => mtime = attr(&e, "file")?.and_then(|s| s.parse().ok()),
                _ => {}
            },
            Event::Text(t) if in_checksum => pkgid.push_str(&t.xml10_content()),
            Event::End(e) => {
                in_checksum = false;
                if depth == 2 && e.name().into_inner() == "package" {
                    let end = usize::try_from(reader.buffer_position())?;
                    let (Some(href), Some(size), Some(mtime)) = (href.take(), size, mtime) else {
                        bail!("a <package> of primary.xml lacks its location, size or time");
                    };
                    chunks.push(PrimaryChunk {
                        href,
                        pkgid: std::mem::take(&mut pkgid),
                        size,
                        mtime,
                        xml: format!("{}\n", &xml[start..end]),
                    });
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => return Ok(chunks),
            _ => {}
        }
    }
}

/// Each `<package pkgid=…>` of filelists.xml or other.xml, verbatim, by pkgid.
fn chunks_by_pkgid(xml: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut chunks = HashMap::new();
    let mut depth = 0usize;
    let mut current: Option<(usize, String)> = None;
    loop {
        let before = usize::try_from(reader.buffer_position())?;
        match reader.read_event()? {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && e.name().into_inner() == "package" {
                    current = attr(&e, "pkgid")?.map(|id| (before, id));
                }
            }
            Event::End(e) => {
                if depth == 2
                    && e.name().into_inner() == "package"
                    && let Some((start, pkgid)) = current.take()
                {
                    let end = usize::try_from(reader.buffer_position())?;
                    chunks.insert(pkgid, format!("{}\n", &xml[start..end]));
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => return Ok(chunks),
            _ => {}
        }
    }
}
