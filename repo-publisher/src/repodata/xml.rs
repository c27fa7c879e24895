//! The XML of repodata: one package's `<package>` element in primary, filelists and other, and
//! `repomd.xml`. Written by hand into a `String` (the layout is fixed and this is the hot loop of
//! a full publish); the layout and escaping follow what `createrepo_c` writes through libxml2.

use super::package::{Dep, FileKind, PackageEntry, PkgFile, is_primary_file};
use std::fmt::Write;

pub const PRIMARY_NS: &str = "http://linux.duke.edu/metadata/common";
pub const FILELISTS_NS: &str = "http://linux.duke.edu/metadata/filelists";
pub const OTHER_NS: &str = "http://linux.duke.edu/metadata/other";
pub const REPO_NS: &str = "http://linux.duke.edu/metadata/repo";
pub const RPM_NS: &str = "http://linux.duke.edu/metadata/rpm";

/// Escapes element text.
pub fn text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Escapes an attribute value (quoted with `"`).
pub fn attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

fn element(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(indent);
    if value.is_empty() {
        let _ = writeln!(out, "<{name}/>");
    } else {
        let _ = write!(out, "<{name}>");
        text(out, value);
        let _ = writeln!(out, "</{name}>");
    }
}

fn version(out: &mut String, p: &PackageEntry) {
    out.push_str("  <version epoch=\"");
    let _ = write!(out, "{}", p.epoch);
    out.push_str("\" ver=\"");
    attr(out, &p.version);
    out.push_str("\" rel=\"");
    attr(out, &p.release);
    out.push_str("\"/>\n");
}

fn deps(out: &mut String, section: &str, deps: &[Dep]) {
    if deps.is_empty() {
        return;
    }
    let _ = writeln!(out, "    <rpm:{section}>");
    for d in deps {
        out.push_str("      <rpm:entry name=\"");
        attr(out, &d.name);
        out.push('"');
        if let Some(flags) = d.flags {
            let _ = write!(out, " flags=\"{flags}\"");
            for (key, value) in [("epoch", &d.epoch), ("ver", &d.ver), ("rel", &d.rel)] {
                if let Some(value) = value {
                    let _ = write!(out, " {key}=\"");
                    attr(out, value);
                    out.push('"');
                }
            }
        }
        if d.pre {
            out.push_str(" pre=\"1\"");
        }
        out.push_str("/>\n");
    }
    let _ = writeln!(out, "    </rpm:{section}>");
}

fn file(out: &mut String, indent: &str, f: &PkgFile) {
    out.push_str(indent);
    out.push_str(match f.kind {
        FileKind::File => "<file>",
        FileKind::Dir => "<file type=\"dir\">",
        FileKind::Ghost => "<file type=\"ghost\">",
    });
    text(out, &f.path);
    out.push_str("</file>\n");
}

pub fn primary_header(out: &mut String, count: usize) {
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"{PRIMARY_NS}\" \
         xmlns:rpm=\"{RPM_NS}\" packages=\"{count}\">\n"
    );
}

pub fn filelists_header(out: &mut String, count: usize) {
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"{FILELISTS_NS}\" \
         packages=\"{count}\">\n"
    );
}

pub fn other_header(out: &mut String, count: usize) {
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"{OTHER_NS}\" \
         packages=\"{count}\">\n"
    );
}

/// `<package type="rpm">…</package>` of primary.xml.
pub fn primary_package(out: &mut String, p: &PackageEntry) {
    out.push_str("<package type=\"rpm\">\n");
    element(out, "  ", "name", &p.name);
    element(out, "  ", "arch", &p.arch);
    version(out, p);
    let _ = writeln!(
        out,
        "  <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>",
        p.checksum
    );
    element(out, "  ", "summary", &p.summary);
    element(out, "  ", "description", &p.description);
    element(out, "  ", "packager", &p.packager);
    element(out, "  ", "url", &p.url);
    let _ = writeln!(
        out,
        "  <time file=\"{}\" build=\"{}\"/>",
        p.time_file, p.time_build
    );
    let _ = writeln!(
        out,
        "  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>",
        p.size_package, p.size_installed, p.size_archive
    );
    out.push_str("  <location href=\"");
    attr(out, &p.location_href);
    out.push_str("\"/>\n  <format>\n");
    element(out, "    ", "rpm:license", &p.license);
    element(out, "    ", "rpm:vendor", &p.vendor);
    element(out, "    ", "rpm:group", &p.group);
    element(out, "    ", "rpm:buildhost", &p.buildhost);
    element(out, "    ", "rpm:sourcerpm", &p.sourcerpm);
    let _ = writeln!(
        out,
        "    <rpm:header-range start=\"{}\" end=\"{}\"/>",
        p.header_start, p.header_end
    );
    deps(out, "provides", &p.provides);
    deps(out, "requires", &p.requires);
    deps(out, "conflicts", &p.conflicts);
    deps(out, "obsoletes", &p.obsoletes);
    deps(out, "suggests", &p.suggests);
    deps(out, "enhances", &p.enhances);
    deps(out, "recommends", &p.recommends);
    deps(out, "supplements", &p.supplements);
    for f in p.files.iter().filter(|f| is_primary_file(&f.path)) {
        file(out, "    ", f);
    }
    out.push_str("  </format>\n</package>\n");
}

fn package_open(out: &mut String, p: &PackageEntry) {
    let _ = write!(out, "<package pkgid=\"{}\" name=\"", p.checksum);
    attr(out, &p.name);
    out.push_str("\" arch=\"");
    attr(out, &p.arch);
    out.push_str("\">\n");
    version(out, p);
}

/// `<package pkgid=…>` of filelists.xml.
pub fn filelists_package(out: &mut String, p: &PackageEntry) {
    package_open(out, p);
    for f in &p.files {
        file(out, "  ", f);
    }
    out.push_str("</package>\n");
}

/// `<package pkgid=…>` of other.xml.
pub fn other_package(out: &mut String, p: &PackageEntry) {
    package_open(out, p);
    for c in &p.changelogs {
        out.push_str("  <changelog author=\"");
        attr(out, &c.author);
        let _ = write!(out, "\" date=\"{}\">", c.date);
        text(out, &c.text);
        out.push_str("</changelog>\n");
    }
    out.push_str("</package>\n");
}

/// One `<data>` of repomd.xml.
pub struct RepomdRecord {
    pub kind: &'static str,
    pub checksum: String,
    pub open_checksum: String,
    pub href: String,
    pub timestamp: u64,
    pub size: u64,
    pub open_size: u64,
}

pub fn repomd(revision: u64, records: &[RepomdRecord]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"{REPO_NS}\" \
         xmlns:rpm=\"{RPM_NS}\">\n  <revision>{revision}</revision>\n"
    );
    for r in records {
        let _ = write!(
            out,
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{}</checksum>\n    \
             <open-checksum type=\"sha256\">{}</open-checksum>\n    <location href=\"",
            r.kind, r.checksum, r.open_checksum
        );
        attr(&mut out, &r.href);
        let _ = write!(
            out,
            "\"/>\n    <timestamp>{}</timestamp>\n    <size>{}</size>\n    \
             <open-size>{}</open-size>\n  </data>\n",
            r.timestamp, r.size, r.open_size
        );
    }
    out.push_str("</repomd>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_libxml2() {
        let mut s = String::new();
        text(&mut s, "a & <b> \"c\"");
        assert_eq!(s, "a &amp; &lt;b&gt; \"c\"");
        let mut s = String::new();
        attr(&mut s, "A <a@x> \"q\"");
        assert_eq!(s, "A &lt;a@x&gt; &quot;q&quot;");
    }
}
