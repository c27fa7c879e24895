//! The native repodata writer against `createrepo_c`: the same RPMs (built here with the real
//! rpmbuild, with epochs, versioned and flagged dependencies, a `Requires(pre)`, obsoletes,
//! conflicts, weak dependencies, files in `/usr/bin` and `/etc`, directories, a ghost and a
//! long changelog) are published by both into two copies of one tree; both repodata are parsed
//! with quick-xml and must say the same of every package, and dnf must resolve the same install
//! from either. rpmbuild, createrepo_c and dnf must be installed (scripts/install-deps.sh).

use ferrocopr_repo_publisher::repodata;
use quick_xml::events::Event;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Twelve changelog entries: more than createrepo_c's default limit of ten.
fn changelog() -> String {
    (1..=12)
        .rev()
        .map(|day| {
            format!(
                "* Mon Jan {day:02} 2024 Dev {day} <dev{day}@example.org> - 1.0-{day}\n\
                 - change {day}\n  continued & <escaped>\n\n"
            )
        })
        .collect()
}

const ALPHA: &str = r#"Name: alpha
Epoch: 2
Version: 1.0
Release: 3
Summary: Alpha: the library & its <tools>
License: MIT and "BSD"
URL: https://example.org/alpha
Vendor: Example Vendor
Packager: Packer <packer@example.org>
Group: System/Libraries
BuildArch: noarch
AutoReqProv: no
Provides: alpha-api = 3.1-2
Provides: alpha-cap
%description
Alpha's description,
on two lines.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/alpha %{buildroot}/usr/share/alpha/sub
echo '#!/bin/sh' > %{buildroot}/usr/bin/alpha
chmod 755 %{buildroot}/usr/bin/alpha
echo conf > %{buildroot}/etc/alpha/alpha.conf
echo data > %{buildroot}/usr/share/alpha/sub/data.txt
%files
/usr/bin/alpha
%dir /etc/alpha
%config(noreplace) /etc/alpha/alpha.conf
/usr/share/alpha
%ghost /var/log/alpha.log
%changelog
"#;

const BETA: &str = r#"Name: beta
Version: 2.5
Release: 1
Summary: Beta uses alpha
License: GPL-2.0-or-later
BuildArch: noarch
AutoReqProv: no
Requires: alpha-api >= 3
Requires: alpha = 2:1.0-3
Requires(pre): alpha-cap
Requires: /usr/bin/alpha
Requires: /usr/bin/beta
Provides: beta-tool = 2.5
Obsoletes: oldbeta < 2.0
Conflicts: gamma < 1.0
Conflicts: delta <= 1:4-1
Conflicts: epsilon > 9
Recommends: alpha-extras
Suggests: beta-docs >= 1
Supplements: alpha
Enhances: alpha-cap
%description
Beta.
%install
mkdir -p %{buildroot}/usr/bin
echo '#!/bin/sh' > %{buildroot}/usr/bin/beta
chmod 755 %{buildroot}/usr/bin/beta
%files
/usr/bin/beta
%changelog
* Tue Jan 02 2024 Dev <dev@example.org> - 2.5-1
- second
* Mon Jan 01 2024 Dev <dev@example.org> - 2.4-1
- first
"#;

const GAMMA: &str = r#"Name: gamma
Version: 1.1
Release: 7
Summary: Gamma needs a file of alpha's
License: MIT
BuildArch: noarch
AutoReqProv: no
Requires: /usr/bin/alpha
Requires: beta-tool
%description
Gamma.
%files
"#;

fn build_rpm(spec_text: &str, name: &str, work: &Path, rpmdir: &Path) {
    let spec = work.join(format!("{name}.spec"));
    std::fs::write(&spec, spec_text).expect("write spec");
    let out = Command::new("rpmbuild")
        .args(["-bb", "--nodeps", "--define"])
        .arg(format!("_topdir {}", work.join("top").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", rpmdir.display()))
        .arg(&spec)
        .output()
        .expect("rpmbuild must be installed");
    assert!(
        out.status.success(),
        "rpmbuild {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the fixtures into `pool/noarch/` and returns `pool`.
fn build_pool(tmp: &Path) -> PathBuf {
    let pool = tmp.join("pool");
    let work = tmp.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    build_rpm(&(ALPHA.to_owned() + &changelog()), "alpha", &work, &pool);
    build_rpm(BETA, "beta", &work, &pool);
    build_rpm(GAMMA, "gamma", &work, &pool);
    pool
}

/// `cp -a`: the copies keep the files' mtimes, which repodata records.
fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> &Element {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>: {self:#?}", self.name))
    }

    fn attr(&self, name: &str) -> &str {
        self.attrs
            .get(name)
            .unwrap_or_else(|| panic!("<{}> has no {name}=", self.name))
    }
}

fn parse(xml: &str) -> Element {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut open: Vec<Element> = Vec::new();
    loop {
        let text = match reader.read_event().expect("well-formed XML") {
            Event::Start(start) => {
                let attrs = start
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        (
                            a.key.into_inner().to_owned(),
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .expect("attribute value")
                                .into_owned(),
                        )
                    })
                    .collect();
                open.push(Element {
                    name: start.name().into_inner().to_owned(),
                    attrs,
                    ..Element::default()
                });
                continue;
            }
            Event::End(_) => {
                let mut done = open.pop().expect("balanced");
                if !done.children.is_empty() && done.text.trim().is_empty() {
                    done.text.clear();
                }
                match open.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return done,
                }
                continue;
            }
            Event::Text(text) => text.xml10_content().into_owned(),
            Event::GeneralRef(reference) => match reference.resolve_char_ref().expect("char") {
                Some(c) => c.to_string(),
                None => quick_xml::escape::resolve_predefined_entity(&reference)
                    .expect("a predefined entity")
                    .to_owned(),
            },
            Event::Eof => panic!("the document ends inside an element"),
            _ => continue,
        };
        if let Some(element) = open.last_mut() {
            element.text.push_str(&text);
        }
    }
}

/// The uncompressed text of a metadata file: every gzip member or zstd frame of it (ours are
/// concatenations of many).
fn decompress(path: &Path) -> String {
    let mut out = String::new();
    let file = std::fs::File::open(path).expect("open metadata");
    if path.extension().is_some_and(|e| e == "zst") {
        zstd::stream::read::Decoder::new(file)
            .expect("zstd")
            .read_to_string(&mut out)
            .expect("unzstd");
    } else {
        flate2::read::MultiGzDecoder::new(file)
            .read_to_string(&mut out)
            .expect("gunzip");
    }
    out
}

/// One repository's metadata: each package's elements.
struct Repodata {
    /// Packages, as primary's `packages=` says and lists.
    count: usize,
    /// Primary's by pkgid and location href, the others' by pkgid.
    primary: BTreeMap<String, Element>,
    filelists: BTreeMap<String, Element>,
    other: BTreeMap<String, Element>,
}

/// Reads `dir/repodata`, checking every repomd record against the file it names.
fn read_repodata(dir: &Path) -> Repodata {
    let repomd =
        parse(&std::fs::read_to_string(dir.join("repodata/repomd.xml")).expect("read repomd.xml"));
    let mut docs = BTreeMap::new();
    for data in repomd.children.iter().filter(|c| c.name == "data") {
        let kind = data.attr("type").to_owned();
        let href = data.child("location").attr("href");
        let path = dir.join(href);
        let compressed = std::fs::read(&path).expect("read the metadata repomd names");
        let checksum = hex::encode(Sha256::digest(&compressed));
        assert_eq!(data.child("checksum").text, checksum, "{kind} checksum");
        let extension = if href.ends_with(".zst") { "zst" } else { "gz" };
        assert_eq!(
            href,
            format!("repodata/{checksum}-{kind}.xml.{extension}"),
            "content-addressed name"
        );
        assert_eq!(data.child("size").text, compressed.len().to_string());
        let open = decompress(&path);
        assert_eq!(
            data.child("open-checksum").text,
            hex::encode(Sha256::digest(open.as_bytes())),
            "{kind} open checksum"
        );
        assert_eq!(data.child("open-size").text, open.len().to_string());
        docs.insert(kind, parse(&open));
    }
    let by_pkgid = |kind: &str| -> BTreeMap<String, Element> {
        let doc = docs
            .get(kind)
            .unwrap_or_else(|| panic!("repomd names no {kind}"));
        let packages: BTreeMap<String, Element> = doc
            .children
            .iter()
            .map(|p| {
                // Copies of one RPM share a pkgid; primary tells them apart by location.
                let id = if kind == "primary" {
                    format!(
                        "{} {}",
                        p.child("checksum").text,
                        p.child("location").attr("href")
                    )
                } else {
                    p.attr("pkgid").to_owned()
                };
                (id, p.clone())
            })
            .collect();
        assert_eq!(doc.attr("packages"), doc.children.len().to_string());
        packages
    };
    Repodata {
        count: docs["primary"].children.len(),
        primary: by_pkgid("primary"),
        filelists: by_pkgid("filelists"),
        other: by_pkgid("other"),
    }
}

fn primary_of<'a>(repo: &'a Repodata, name: &str) -> &'a Element {
    repo.primary
        .values()
        .find(|p| p.child("name").text == name)
        .unwrap_or_else(|| panic!("no {name} in primary"))
}

/// Both repodata list the same packages, and say the same of each, element by element so that a
/// failure names the field.
fn assert_same_packages(ours: &Repodata, theirs: &Repodata) {
    assert_eq!(ours.count, theirs.count, "package counts differ");
    for (kind, a, b) in [
        ("primary", &ours.primary, &theirs.primary),
        ("filelists", &ours.filelists, &theirs.filelists),
        ("other", &ours.other, &theirs.other),
    ] {
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{kind}: the package sets differ"
        );
        for (pkgid, ours) in a {
            let theirs = &b[pkgid];
            assert_eq!(ours.attrs, theirs.attrs, "{kind} {pkgid}");
            assert_eq!(
                ours.children.len(),
                theirs.children.len(),
                "{kind} {pkgid}: {ours:#?}\nvs createrepo_c {theirs:#?}"
            );
            for (o, t) in ours.children.iter().zip(&theirs.children) {
                assert_eq!(
                    o, t,
                    "{kind} {pkgid}: <{}> differs from createrepo_c's",
                    t.name
                );
            }
        }
    }
}

#[test]
fn same_metadata_as_createrepo_c() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pool = build_pool(tmp.path());
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    copy_tree(&pool, &ours);
    copy_tree(&pool, &theirs);

    let outcome = repodata::createrepo(&ours, false).expect("our createrepo");
    assert_eq!(outcome.packages, 3);
    let out = Command::new("createrepo_c")
        .args(["--no-database", "--quiet"])
        .arg(&theirs)
        .output()
        .expect("createrepo_c must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ours = read_repodata(&ours);
    let theirs = read_repodata(&theirs);
    assert_same_packages(&ours, &theirs);

    // The fixtures exercise what they claim to, so the equality above is not vacuous.
    let alpha = primary_of(&ours, "alpha");
    assert_eq!(alpha.child("version").attr("epoch"), "2");
    let beta = primary_of(&ours, "beta").child("format");
    let requires = &beta.child("rpm:requires").children;
    assert!(
        requires
            .iter()
            .any(|r| r.attr("name") == "alpha-cap" && r.attrs.get("pre").is_some_and(|p| p == "1"))
    );
    assert!(requires.iter().any(|r| r.attr("name") == "alpha"
        && r.attr("flags") == "EQ"
        && r.attr("epoch") == "2"
        && r.attr("ver") == "1.0"
        && r.attr("rel") == "3"));
    assert!(
        !requires.iter().any(|r| r.attr("name") == "/usr/bin/beta"),
        "a requirement on one's own primary file is dropped"
    );
    for section in [
        "rpm:obsoletes",
        "rpm:conflicts",
        "rpm:recommends",
        "rpm:suggests",
        "rpm:supplements",
        "rpm:enhances",
    ] {
        assert!(!beta.child(section).children.is_empty(), "{section}");
    }
    let alpha_files = &ours.filelists[&alpha.child("checksum").text].children;
    for (path, kind) in [
        ("/etc/alpha", Some("dir")),
        ("/usr/share/alpha/sub", Some("dir")),
        ("/var/log/alpha.log", Some("ghost")),
        ("/usr/bin/alpha", None),
    ] {
        assert!(
            alpha_files
                .iter()
                .any(|f| f.text == path && f.attrs.get("type").map(String::as_str) == kind),
            "{path} in filelists"
        );
    }
    let alpha_changes = &ours.other[&alpha.child("checksum").text].children;
    assert_eq!(
        alpha_changes
            .iter()
            .filter(|c| c.name == "changelog")
            .count(),
        repodata::package::CHANGELOG_LIMIT
    );
}

/// The packages `dnf install --assumeno <packages>` would install from the repository at `dir`,
/// as `name arch version repo` lines of its transaction table.
fn dnf_would_install(dir: &Path, root: &Path, packages: &[&str]) -> Vec<String> {
    let repos = root.join("etc/yum.repos.d");
    std::fs::create_dir_all(&repos).expect("mkdir installroot");
    // The options that work on a Debian host (see tests/src/tools.rs).
    let out = Command::new("dnf")
        .arg("--assumeno")
        .arg("--releasever=41")
        .arg("--disableplugin=local")
        .arg(format!("--installroot={}", root.display()))
        .arg(format!("--setopt=reposdir={}", repos.display()))
        .arg("--setopt=install_weak_deps=False")
        .arg("--nogpgcheck")
        .arg(format!("--repofrompath=parity,{}", dir.display()))
        .args(["--repo=parity", "install"])
        .args(packages)
        .output()
        .expect("dnf must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // --assumeno ends in "Operation aborted", which is dnf's exit code 1.
    let mut lines: Vec<String> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() >= 4 && fields[3] == "parity")
        .map(|fields| fields[..4].join(" "))
        .collect();
    lines.sort();
    assert!(
        !lines.is_empty(),
        "dnf resolved nothing ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

#[test]
fn dnf_resolves_the_same_install_from_both() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pool = build_pool(tmp.path());
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    copy_tree(&pool, &ours);
    copy_tree(&pool, &theirs);
    repodata::createrepo(&ours, false).expect("our createrepo");
    let out = Command::new("createrepo_c")
        .args(["--no-database", "--quiet"])
        .arg(&theirs)
        .output()
        .expect("createrepo_c must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // gamma needs alpha's file /usr/bin/alpha and beta's provide beta-tool; beta needs alpha by
    // an exact EVR with epoch and by a versioned provide.
    let from_ours = dnf_would_install(&ours, &tmp.path().join("root-ours"), &["gamma"]);
    let from_theirs = dnf_would_install(&theirs, &tmp.path().join("root-theirs"), &["gamma"]);
    assert_eq!(from_ours, from_theirs);
    assert_eq!(
        from_ours,
        [
            "alpha noarch 2:1.0-3 parity",
            "beta noarch 2.5-1 parity",
            "gamma noarch 1.1-7 parity"
        ]
    );
}

#[test]
fn update_reuses_unchanged_packages_and_matches_a_full_createrepo_c() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pool = build_pool(tmp.path());
    let ours = tmp.path().join("ours");
    copy_tree(&pool, &ours);
    // A copy of one RPM under another name: two packages with one pkgid.
    std::fs::create_dir_all(ours.join("copies")).expect("mkdir");
    std::fs::copy(
        ours.join("noarch/beta-2.5-1.noarch.rpm"),
        ours.join("copies/beta-copy.rpm"),
    )
    .expect("copy beta");
    repodata::createrepo(&ours, false).expect("our createrepo");
    let first_repomd = std::fs::read(ours.join("repodata/repomd.xml")).expect("repomd");

    // One package added, one removed.
    let delta = BETA
        .replace("Name: beta", "Name: delta")
        .replace("/usr/bin/beta", "/usr/bin/delta")
        .replace("beta-tool", "delta-tool");
    build_rpm(&delta, "delta", &tmp.path().join("work"), &ours);
    std::fs::remove_file(ours.join("noarch/gamma-1.1-7.noarch.rpm")).expect("remove gamma");
    let outcome = repodata::createrepo(&ours, true).expect("our createrepo --update");
    assert_eq!(
        outcome,
        repodata::Outcome {
            packages: 4,
            reused: 3,
            read: 1
        }
    );
    assert_ne!(
        std::fs::read(ours.join("repodata/repomd.xml")).expect("repomd"),
        first_repomd
    );
    // The previous primary stays for readers that fetched the previous repomd.xml.
    let primaries = std::fs::read_dir(ours.join("repodata"))
        .expect("list repodata")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with("-primary.xml.gz"))
        })
        .count();
    assert_eq!(primaries, 2);

    let theirs = tmp.path().join("theirs");
    copy_tree(&ours, &theirs);
    std::fs::remove_dir_all(theirs.join("repodata")).expect("remove our repodata");
    let out = Command::new("createrepo_c")
        .args(["--no-database", "--quiet"])
        .arg(&theirs)
        .output()
        .expect("createrepo_c must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = read_repodata(&ours);
    assert_same_packages(&ours, &read_repodata(&theirs));
    assert!(
        ours.primary
            .values()
            .all(|p| p.child("name").text != "gamma")
    );

    // Nothing changed: everything is reused, and the metadata stays the same.
    let again = repodata::createrepo(&tmp.path().join("ours"), true).expect("update again");
    assert_eq!(again.reused, 4);
    assert_same_packages(&ours, &read_repodata(&tmp.path().join("ours")));
}

#[test]
fn zstd_metadata_says_the_same_and_dnf_reads_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pool = build_pool(tmp.path());
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    copy_tree(&pool, &ours);
    copy_tree(&pool, &theirs);
    repodata::createrepo_with(&ours, false, repodata::Compression::Zstd).expect("our createrepo");
    let repomd = std::fs::read_to_string(ours.join("repodata/repomd.xml")).expect("repomd");
    assert_eq!(repomd.matches(".xml.zst\"").count(), 3, "{repomd}");
    let out = Command::new("createrepo_c")
        .args(["--no-database", "--quiet"])
        .arg(&theirs)
        .output()
        .expect("createrepo_c must be installed");
    assert!(out.status.success());
    assert_same_packages(&read_repodata(&ours), &read_repodata(&theirs));
    assert_eq!(
        dnf_would_install(&ours, &tmp.path().join("root"), &["gamma"]),
        [
            "alpha noarch 2:1.0-3 parity",
            "beta noarch 2.5-1 parity",
            "gamma noarch 1.1-7 parity"
        ]
    );
}

/// createrepo_c reads our concatenated gzip members: its `--update` takes every package from
/// our metadata and writes what it would have written itself.
#[test]
fn createrepo_c_update_reads_our_metadata() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pool = build_pool(tmp.path());
    let ours = tmp.path().join("ours");
    copy_tree(&pool, &ours);
    repodata::createrepo(&ours, false).expect("our createrepo");
    let expected = read_repodata(&ours);
    let out = Command::new("createrepo_c")
        .args(["--no-database", "--update", "--verbose"])
        .arg(&ours)
        .output()
        .expect("createrepo_c must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("Loaded information about 3 packages"),
        "createrepo_c did not load our metadata:\n{log}"
    );
    assert_same_packages(&read_repodata(&ours), &expected);
}
