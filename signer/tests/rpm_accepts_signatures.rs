//! The signer's keys and signatures must satisfy the real rpm: `rpmkeys --import` takes the
//! public key, and `rpmkeys --checksig` verifies a package signed through `sign_rpm`, for each
//! key algorithm; and for Ed25519, `rpmsign` itself puts the signature where we do (RSAHEADER).

use ferrocopr_schema::ProjectRef;
use ferrocopr_signer::{KeyAlgorithm, KeyPolicy, LocalSigner, SignerClient, rpm_header::sign_rpm};
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
async fn rpm_imports_the_rsa_key_and_verifies_a_signed_package() {
    imports_and_verifies(KeyAlgorithm::Rsa4096).await;
}

#[tokio::test]
async fn rpm_imports_the_ed25519_key_and_verifies_a_signed_package() {
    imports_and_verifies(KeyAlgorithm::Ed25519).await;
}

async fn imports_and_verifies(algorithm: KeyAlgorithm) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let policy = KeyPolicy {
        algorithm,
        ..KeyPolicy::default()
    };
    let signer =
        LocalSigner::with_policy(tmp.path().join("keys"), "example.org".into(), None, policy)
            .expect("signer");
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
    // In the tag rpmsign uses for the algorithm (see the test below).
    let (tag, expected) = match algorithm {
        KeyAlgorithm::Ed25519 => ("DSAHEADER", "EdDSA/SHA256"),
        _ => ("RSAHEADER", "RSA/SHA256"),
    };
    let described = run(Command::new("rpm")
        .args(["--define", &dbpath, "-qp", "--qf"])
        .arg(format!("%{{{tag}:pgpsig}}\\n"))
        .arg(&rpm));
    assert!(described.starts_with(expected), "{described}");

    // The same key signs the next package: it is stored, not made anew.
    let again = signer.public_key(&project).await.expect("public key");
    assert_eq!(key, again);
}

/// What `rpmsign --addsign` of rpm 4.18 writes for an Ed25519 key: the header signature in
/// DSAHEADER (267), not RSAHEADER (268) nor OPENPGP (278); `sign_rpm` does the same.
#[tokio::test]
async fn rpmsign_and_sign_rpm_put_an_ed25519_header_signature_in_dsaheader() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("gnupg");
    std::fs::create_dir_all(&home).expect("GNUPGHOME");
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod GNUPGHOME");
    let gpg = |args: &[&str]| {
        run(Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args))
    };
    gpg(&[
        "--quick-gen-key",
        "Ed Tester <ed@example.org>",
        "ed25519",
        "sign",
        "never",
    ]);
    let rpm = build_rpm(tmp.path());
    run(Command::new("rpmsign")
        .env("GNUPGHOME", &home)
        .args(["--define", "_gpg_name Ed Tester <ed@example.org>"])
        // Debian's rpm looks for gpg2, which gnupg 2.2 and later no longer install.
        .arg("--define")
        .arg(format!("__gpg {}", on_path("gpg").display()))
        .arg("--addsign")
        .arg(&rpm));
    let tags = signature_tags(&rpm);
    assert_eq!(tags, [267], "rpmsign's header signature tags");

    let ours = tmp.path().join("ours");
    std::fs::create_dir_all(&ours).expect("dir");
    let rpm = build_rpm(&ours);
    let policy = KeyPolicy {
        algorithm: KeyAlgorithm::Ed25519,
        ..KeyPolicy::default()
    };
    let signer =
        LocalSigner::with_policy(tmp.path().join("keys"), "example.org".into(), None, policy)
            .expect("signer");
    let project = ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    };
    sign_rpm(&signer, &project, &rpm).await.expect("sign");
    assert_eq!(
        signature_tags(&rpm),
        tags,
        "sign_rpm's header signature tags"
    );
}

/// The header-signature tags of a package: DSAHEADER 267, RSAHEADER 268, OPENPGP 278.
fn signature_tags(rpm: &Path) -> Vec<u32> {
    let package = rpm::Package::open(rpm).expect("read the signed RPM");
    package
        .metadata
        .signature
        .get_all_entries()
        .expect("signature header")
        .into_iter()
        .map(|(tag, _)| tag)
        .filter(|tag| [267, 268, 278].contains(tag))
        .collect()
}

/// `program`'s full path, from `PATH`.
fn on_path(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| panic!("{program} is not on PATH (is gnupg installed?)"))
}
