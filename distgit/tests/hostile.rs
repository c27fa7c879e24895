//! Hostile SRPMs: real SRPMs made by rpmbuild with an uncompressed payload, whose cpio entries
//! are then patched in place (same lengths) into what a malicious build could hand DistGit:
//! a name that climbs out with `..`, an absolute name, a symbolic link to `/etc/passwd`.
//!
//! rpm2cpio does not check the payload digest (rpm 4.18: `rpm -K` reports "DIGESTS NOT OK" for
//! these files, rpm2cpio prints them as they are), so the patched archive reaches our reader
//! exactly as a crafted SRPM would. Each import must fail naming the entry, write nothing
//! outside its own unpacking directory, store no blob and create no repository or ref.

mod common;

use common::{TestResult, UNCOMPRESSED, make_srpm, spec};
use ferrocopr_distgit::DistGit;
use ferrocopr_schema::model::ProjectRef;
use std::path::{Path, PathBuf};

/// Git's and cpio's mode for a symbolic link, as 8 hex digits of a newc header.
const SYMLINK_MODE: &[u8; 8] = b"0000a1ff";
/// Where the mode field sits in a newc header: after the magic and the inode.
const MODE_OFFSET: usize = 6 + 8;
const NEWC_HEADER_LEN: usize = 110;

fn project() -> ProjectRef {
    ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    }
}

/// An SRPM of `hello` whose second source is named `placeholder` (made as long as `name`) and
/// holds `data`; its payload entry is then renamed to `name`, and given `mode` if any.
fn hostile_srpm(
    dir: &Path,
    name: &str,
    data: &[u8],
    mode: Option<&[u8; 8]>,
) -> TestResult<PathBuf> {
    let placeholder = "p".repeat(name.len());
    let spec_text = spec("hello", &["hello-1.0.tar.gz", &placeholder], &["fix.patch"]);
    let srpm = make_srpm(
        dir,
        "hello",
        &spec_text,
        &[
            ("hello-1.0.tar.gz", b"tarball"),
            (&placeholder, data),
            ("fix.patch", b"--- a/x\n+++ b/x\n"),
        ],
        Some(UNCOMPRESSED),
    )?;
    let mut bytes = std::fs::read(&srpm)?;
    // The header lists the file names too; the payload, which comes last, holds the entry.
    let needle = format!("{placeholder}\0");
    let at = bytes
        .windows(needle.len())
        .rposition(|w| w == needle.as_bytes())
        .ok_or("the placeholder is not in the SRPM")?;
    let header = at
        .checked_sub(NEWC_HEADER_LEN)
        .ok_or("the placeholder has no cpio header before it")?;
    if bytes.get(header..header + 6) != Some(b"070701".as_slice()) {
        return Err("the placeholder is not a cpio entry name in the payload".into());
    }
    bytes
        .get_mut(at..at + name.len())
        .ok_or("short SRPM")?
        .copy_from_slice(name.as_bytes());
    if let Some(mode) = mode {
        bytes
            .get_mut(header + MODE_OFFSET..header + MODE_OFFSET + 8)
            .ok_or("short SRPM")?
            .copy_from_slice(mode);
    }
    let patched = dir.join("hostile.src.rpm");
    std::fs::write(&patched, bytes)?;
    Ok(patched)
}

/// Imports `srpm` into a fresh DistGit at `root`, expects it refused with `expected` in the
/// message, and checks the refusal left no repository and no blob.
fn refused(root: &Path, srpm: &Path, expected: &str) -> TestResult {
    let dg = DistGit::new(root.to_path_buf());
    let err = match dg.import_srpm(&project(), "hello", srpm, &["f41".to_owned()]) {
        Ok(import) => return Err(format!("imported a hostile SRPM: {import:?}").into()),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(expected), "{err:?} should say {expected:?}");
    assert!(
        err.contains(&srpm.display().to_string()),
        "{err:?} should name the SRPM"
    );
    // Unpacking comes before anything else: no repository, so no ref, and no blob.
    assert!(!root.join("repos").exists(), "a repository was created");
    let lookaside = root.join("lookaside/sha512");
    let left: Vec<_> = std::fs::read_dir(&lookaside)?.collect::<Result<_, _>>()?;
    assert!(left.is_empty(), "the lookaside kept {left:?}");
    Ok(())
}

/// Every path under `dir`, links not followed.
fn walk(dir: &Path) -> TestResult<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    Ok(out)
}

#[test]
fn a_name_climbing_out_is_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("distgit");
    // Unpacking happens in `<root>/lookaside/sha512/.incoming-*/`; three levels up is the
    // DistGit root, four the test's directory.
    let climbs = ["../../../evil", "../../../../evil"];
    for (i, name) in climbs.into_iter().enumerate() {
        let work = tmp.path().join(format!("srpm{i}"));
        let srpm = hostile_srpm(&work, name, b"pwned", None)?;
        refused(
            &root,
            &srpm,
            &format!("the SRPM contains {name:?}, which leaves its directory"),
        )?;
    }
    for target in [
        root.join("evil"),
        tmp.path().join("evil"),
        root.join("lookaside/evil"),
    ] {
        assert!(!target.exists(), "{} was written", target.display());
    }
    Ok(())
}

#[test]
fn an_absolute_name_is_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("distgit");
    let target = tmp.path().join("absolute-evil");
    let name = target.to_str().ok_or("non-UTF-8 temporary directory")?;
    let srpm = hostile_srpm(tmp.path(), name, b"pwned", None)?;
    refused(
        &root,
        &srpm,
        &format!("the SRPM contains {name:?}, an absolute path"),
    )?;
    assert!(!target.exists(), "{} was written", target.display());
    // Nor under the unpacking directory, as `cpio --no-absolute-filenames` would have put it.
    let stripped = name.trim_start_matches('/');
    assert!(
        walk(tmp.path())?.iter().all(|p| !p.ends_with(stripped)),
        "the entry was written with its leading / stripped"
    );
    Ok(())
}

#[test]
fn a_symbolic_link_is_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("distgit");
    let passwd = std::fs::read("/etc/passwd")?;
    // A symlink entry's data is its target.
    let srpm = hostile_srpm(
        tmp.path(),
        "passwd-link",
        b"/etc/passwd",
        Some(SYMLINK_MODE),
    )?;
    refused(
        &root,
        &srpm,
        r#"the SRPM contains "passwd-link", which is a symbolic link"#,
    )?;
    let links: Vec<_> = walk(tmp.path())?
        .into_iter()
        .filter(|p| p.is_symlink())
        .collect();
    assert!(links.is_empty(), "links were created: {links:?}");
    assert_eq!(std::fs::read("/etc/passwd")?, passwd);
    Ok(())
}

#[test]
fn the_unpatched_srpm_imports() -> TestResult {
    // The same SRPM before patching is fine, so the refusals above are the patches' doing.
    let tmp = tempfile::tempdir()?;
    let spec_text = spec("hello", &["hello-1.0.tar.gz", "data.bin"], &["fix.patch"]);
    let srpm = make_srpm(
        tmp.path(),
        "hello",
        &spec_text,
        &[
            ("hello-1.0.tar.gz", b"tarball"),
            ("data.bin", b"/etc/passwd"),
            ("fix.patch", b"--- a/x\n+++ b/x\n"),
        ],
        Some(UNCOMPRESSED),
    )?;
    let dg = DistGit::new(tmp.path().join("distgit"));
    let import = dg.import_srpm(&project(), "hello", &srpm, &["f41".to_owned()])?;
    assert_eq!(import.package, "hello");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("distgit/lookaside/sha512"))?.count(),
        2
    );
    Ok(())
}
