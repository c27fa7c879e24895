//! Signed repository metadata (issue 6): the `.repo` file asks for `repo_gpgcheck=1`, each
//! publish writes `repomd.xml.asc` with the project's key, and dnf installs from it; a
//! `repomd.xml` changed after signing, or one without its signature, is refused by dnf.

use ferrocopr_schema::State;
use ferrocopr_tests::packages::{self, HELLO_SPEC};
use ferrocopr_tests::{DbKind, TestEnv};

const CHROOT: &str = "fedora-41-x86_64";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_checks_the_signed_metadata() {
    let env = TestEnv::start(DbKind::Sqlite).await;
    let srpm = packages::srpm(&env.scratch("srpm"), "hello", HELLO_SPEC);
    let submission = packages::submission("hello", CHROOT);
    let id = env
        .submissions()
        .await
        .from_upload(submission, "hello-1.0-1.src.rpm", &srpm)
        .await
        .expect("the upload is taken");
    let (_, chroots) = env.wait_for_build(id).await;
    assert_eq!(chroots[0].state, State::Succeeded, "{chroots:?}");

    let repodata = env
        .data_dir()
        .join(format!("results/alice/hello/{CHROOT}/repodata"));
    let signature = std::fs::read_to_string(repodata.join("repomd.xml.asc")).expect("signature");
    assert!(
        signature.starts_with("-----BEGIN PGP SIGNATURE-----"),
        "{signature}"
    );

    // Signed as published: dnf installs with gpgcheck=1 and repo_gpgcheck=1.
    let root = env.install_root("signed", "41");
    root.copr_enable(env.public_url(), "alice/hello", CHROOT)
        .await;
    let repo_file = root.repo_file("_copr:127.0.0.1:alice:hello.repo");
    assert!(repo_file.contains("repo_gpgcheck=1\n"), "{repo_file}");
    root.install("hello").await;

    // repomd.xml changed after signing: refused.
    let repomd = repodata.join("repomd.xml");
    let original = std::fs::read(&repomd).expect("repomd.xml");
    let mut changed = original.clone();
    changed.extend_from_slice(b"<!-- changed after signing -->\n");
    std::fs::write(&repomd, &changed).expect("change repomd.xml");
    let root = env.install_root("changed", "41");
    root.copr_enable(env.public_url(), "alice/hello", CHROOT)
        .await;
    let refused = root.try_install("hello").await;
    assert!(
        !refused.success,
        "dnf took a changed repomd.xml:\n{refused}"
    );
    assert!(
        refused.to_string().contains("GPG"),
        "refused for another reason:\n{refused}"
    );
    std::fs::write(&repomd, &original).expect("restore repomd.xml");

    // No signature at all: refused.
    let asc = repodata.join("repomd.xml.asc");
    std::fs::rename(&asc, repodata.join("moved.asc")).expect("move the signature");
    let root = env.install_root("unsigned", "41");
    root.copr_enable(env.public_url(), "alice/hello", CHROOT)
        .await;
    let refused = root.try_install("hello").await;
    assert!(
        !refused.success,
        "dnf took an unsigned repomd.xml:\n{refused}"
    );
    assert!(
        refused.to_string().contains("GPG"),
        "refused for another reason:\n{refused}"
    );
    env.stop().await;
}
