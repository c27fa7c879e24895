//! Key renewal (issue 6, acceptance): a client that imported a project's key before renewal
//! installs, with `gpgcheck=1` and without importing anything again, a package signed after
//! it; the renewed certificate keeps the fingerprint and expires later. Once for RSA-4096, once
//! for Ed25519 (the latter is also the dnf install test of Ed25519 signatures).
//!
//! The key is made with a two-day validity; a second signer on the same keys, with a longer
//! validity and a renewal window wider than what is left, renews it on its first use, as the
//! long-running signer does when the window is reached.

use ferrocopr_schema::ProjectRef;
use ferrocopr_signer::keys::expiry;
use ferrocopr_signer::rpm_header::sign_rpm;
use ferrocopr_signer::{KeyAlgorithm, KeyPolicy, LocalSigner, SignerClient};
use ferrocopr_tests::InstallRoot;
use ferrocopr_tests::builder_bin::ferrocopr_binary;
use ferrocopr_tests::cmd::check;
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A package `name` that installs `/usr/share/<name>/hi`.
fn spec(name: &str) -> String {
    format!(
        "Name: {name}\nVersion: 1\nRelease: 1\nSummary: {name}\nLicense: MIT\nBuildArch: noarch\n\
         %description\n{name}\n%install\nmkdir -p %{{buildroot}}/usr/share/{name}\n\
         echo hi > %{{buildroot}}/usr/share/{name}/hi\n%files\n/usr/share/{name}/hi\n"
    )
}

/// `<dir>/<name>.rpm`, unsigned, built with rpmbuild.
fn build_rpm(dir: &Path, name: &str) -> PathBuf {
    let spec_file = dir.join(format!("{name}.spec"));
    std::fs::write(&spec_file, spec(name)).expect("spec");
    check(
        Command::new("rpmbuild")
            .args(["-bb", "--nodeps"])
            .arg(&spec_file)
            .arg("--define")
            .arg(format!("_topdir {}", dir.join("top").display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", dir.display()))
            .args(["--define", "_build_name_fmt %%{NAME}.rpm"]),
    );
    dir.join(format!("{name}.rpm"))
}

/// A repository of its own holding `rpm`, written by `ferrocopr createrepo`, enabled in
/// `root` with gpgcheck against the key file `key`.
fn add_repo(root: &InstallRoot, dir: &Path, name: &str, rpm: &Path, key: &Path) {
    let repo = dir.join(format!("repo-{name}"));
    std::fs::create_dir_all(&repo).expect("repo dir");
    std::fs::copy(rpm, repo.join(rpm.file_name().expect("file name"))).expect("copy");
    check(
        Command::new(ferrocopr_binary())
            .arg("createrepo")
            .arg(&repo),
    );
    std::fs::write(
        root.file(&format!("etc/yum.repos.d/{name}.repo")),
        format!(
            "[{name}]\nname={name}\nbaseurl=file://{}\ngpgcheck=1\nrepo_gpgcheck=0\n\
             gpgkey=file://{}\nenabled=1\n",
            repo.display(),
            key.display()
        ),
    )
    .expect("repo file");
}

fn signer(
    keys: &Path,
    algorithm: KeyAlgorithm,
    validity: Duration,
    renew_before: Duration,
) -> LocalSigner {
    LocalSigner::with_policy(
        keys.to_owned(),
        "example.org".into(),
        None,
        KeyPolicy {
            algorithm,
            validity,
            renew_before,
        },
    )
    .expect("signer")
}

async fn renewal_keeps_old_clients_verifying(algorithm: KeyAlgorithm) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let keys = dir.join("keys");
    let project = ProjectRef {
        owner: "alice".into(),
        project: "renewed".into(),
    };

    // Before renewal: the client installs a package and thereby imports the key.
    let before = signer(&keys, algorithm, 2 * DAY, Duration::from_secs(3600));
    let old_key = before.public_key(&project).await.expect("public key");
    let old_key_file = dir.join("old-pubkey.gpg");
    std::fs::write(&old_key_file, &old_key).expect("write the key");
    let first = build_rpm(dir, "first");
    sign_rpm(&before, &project, &first).await.expect("sign");
    let root = InstallRoot::new(dir.join("root"), "41");
    add_repo(&root, dir, "first", &first, &old_key_file);
    root.install("first").await;
    drop(before);

    // Renewal: less than the window is left, so the first use renews.
    let after = signer(&keys, algorithm, 4 * DAY, 3 * DAY);
    let new_key = after.public_key(&project).await.expect("public key");
    assert_ne!(new_key, old_key, "the certificate was not renewed");
    let old_cert = Cert::from_bytes(&old_key).expect("old certificate");
    let new_cert = Cert::from_bytes(&new_key).expect("new certificate");
    assert_eq!(new_cert.fingerprint(), old_cert.fingerprint());
    let old_expiry = expiry(&old_cert).expect("the old key expires");
    let new_expiry = expiry(&new_cert).expect("the new key expires");
    assert!(
        new_expiry >= old_expiry + DAY,
        "{new_expiry:?} is not a day after {old_expiry:?}"
    );
    // It stays renewed: the next signer does not renew again.
    let again = signer(&keys, algorithm, 4 * DAY, 3 * DAY);
    assert_eq!(
        again.public_key(&project).await.expect("public key"),
        new_key
    );

    // After renewal: a new package, signed now, installs with the key imported before; the
    // repository still points at the old key file, so nothing new is imported.
    let second = build_rpm(dir, "second");
    sign_rpm(&after, &project, &second).await.expect("sign");
    let checked = root.checksig(&second).await;
    assert!(
        checked.success && checked.stdout.contains("digests signatures OK"),
        "rpmkeys --checksig with the old key:\n{checked}"
    );
    add_repo(&root, dir, "second", &second, &old_key_file);
    root.install("second").await;
    assert!(root.file("usr/share/second/hi").exists());
    let imported = Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .args(["-q", "gpg-pubkey"])
        .output()
        .expect("rpm -q gpg-pubkey");
    let imported = String::from_utf8_lossy(&imported.stdout);
    assert_eq!(imported.lines().count(), 1, "keys imported: {imported}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_the_old_rsa_key_installs_packages_signed_after_renewal() {
    renewal_keeps_old_clients_verifying(KeyAlgorithm::Rsa4096).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_the_old_ed25519_key_installs_packages_signed_after_renewal() {
    renewal_keeps_old_clients_verifying(KeyAlgorithm::Ed25519).await;
}
