//! The signer's keys and signatures must satisfy the real rpm: `rpmkeys --import` takes the
//! public key, and `rpmkeys --checksig` verifies a package signed through `sign_rpm`.

use ferrocopr_schema::ProjectRef;
use ferrocopr_signer::{LocalSigner, SignerClient, rpm_header::sign_rpm};
use std::path::{Path, PathBuf};
use std::process::Command;

const SPEC: &str = "Name: tiny\nVersion: 1\nRelease: 1\nSummary: tiny\nLicense: MIT\nBuildArch: noarch\n\
%description\ntiny\n%install\nmkdir -p %{buildroot}/usr/share/tiny\necho hi > %{buildroot}/usr/share/tiny/hi\n\
%files\n/usr/share/tiny/hi\n";

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is rpm installed?)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn build_rpm(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("tiny.spec"), SPEC).expect("write spec");
    let top = dir.join("top");
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--nodeps")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", dir.display()))
        .arg("--define")
        .arg("_build_name_fmt %%{NAME}.rpm")
        .arg(dir.join("tiny.spec")));
    dir.join("tiny.rpm")
}

#[tokio::test]
async fn rpm_imports_the_key_and_verifies_a_signed_package() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let signer =
        LocalSigner::new(tmp.path().join("keys"), "example.org".into(), None).expect("signer");
    let project = ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    };
    let rpm = build_rpm(tmp.path());
    sign_rpm(&signer, &project, &rpm).await.expect("sign");

    let key = signer.public_key(&project).await.expect("public key");
    let key_file = tmp.path().join("pubkey.gpg");
    std::fs::write(&key_file, &key).expect("write key");
    let db = tmp.path().join("rpmdb");
    std::fs::create_dir_all(&db).expect("dbpath");
    let dbpath = format!("_dbpath {}", db.display());

    // Without the key imported, a strict check must fail: the signature is really checked.
    let strict = ["--define", "_pkgverify_level all", "--define", &dbpath];
    let before = Command::new("rpmkeys")
        .args(strict)
        .arg("--checksig")
        .arg(&rpm)
        .output()
        .expect("rpmkeys");
    assert!(!before.status.success(), "verified without the key?");

    run(Command::new("rpmkeys")
        .args(["--define", &dbpath, "--import"])
        .arg(&key_file));
    let checked = run(Command::new("rpmkeys")
        .args(strict)
        .arg("--checksig")
        .arg(&rpm));
    assert!(checked.contains("digests signatures OK"), "{checked}");

    // The same key signs the next package: it is stored, not made anew.
    let again = signer.public_key(&project).await.expect("public key");
    assert_eq!(key, again);
}
