//! `serve` with a separate signing service (issue 6): the backend holds no private key, signs
//! every package and `repomd.xml` through `ferrocopr signer` over HTTP with its bearer token,
//! and dnf installs from the published repository with `gpgcheck=1` and `repo_gpgcheck=1`.
//! The service makes Ed25519 keys here, so this is also the whole pipeline with Ed25519.

use ferrocopr_schema::State;
use ferrocopr_signer::callers::token_sha256;
use ferrocopr_signer::service::{ServiceConfig, run};
use ferrocopr_signer::{KeyAlgorithm, KeyPolicy};
use ferrocopr_tests::packages::{self, HELLO_SPEC};
use ferrocopr_tests::{DbKind, TestEnv};
use std::ffi::OsStr;

const CHROOT: &str = "fedora-41-x86_64";
const TOKEN: &str = "the-backend's-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_signs_through_the_signing_service() {
    let signer_dir = tempfile::tempdir().expect("tempdir");
    let callers = signer_dir.path().join("callers.yaml");
    std::fs::write(
        &callers,
        format!(
            "callers:\n  - name: backend\n    token_sha256: {}\n    projects: [\"*\"]\n",
            token_sha256(TOKEN)
        ),
    )
    .expect("callers file");
    let config = ServiceConfig {
        keys_dir: signer_dir.path().join("keys"),
        domain: "example.org".into(),
        kek_file: signer_dir.path().join("kek"),
        callers_file: callers,
        policy: KeyPolicy {
            algorithm: KeyAlgorithm::Ed25519,
            ..KeyPolicy::default()
        },
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the signer");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(run(config, listener, async move {
        let _ = stopped.await;
    }));

    let env = TestEnv::start_with(DbKind::Sqlite, |config| {
        config.signer_remote = Some(ferrocopr::RemoteSignerConfig {
            url: url.clone(),
            token: ferrocopr::Secret::new(TOKEN.to_owned()).expect("token"),
        });
    })
    .await;
    let srpm = packages::srpm(&env.scratch("srpm"), "hello", HELLO_SPEC);
    let id = env
        .submissions()
        .await
        .from_upload(
            packages::submission("hello", CHROOT),
            "hello-1.0-1.src.rpm",
            &srpm,
        )
        .await
        .expect("the upload is taken");
    let (_, chroots) = env.wait_for_build(id).await;
    assert_eq!(chroots[0].state, State::Succeeded, "{chroots:?}");

    // The keys are the service's alone.
    assert!(signer_dir.path().join("keys/alice/hello.tsk.asc").exists());
    assert!(!env.data_dir().join("signer/keys/alice").exists());

    let root = env.install_root("remote", "41");
    root.copr_enable(env.public_url(), "alice/hello", CHROOT)
        .await;
    let repo_file = root.repo_file("_copr:127.0.0.1:alice:hello.repo");
    assert!(repo_file.contains("repo_gpgcheck=1\n"), "{repo_file}");
    root.install("hello").await;
    let described = ferrocopr_tests::cmd::run(
        "rpm",
        [
            OsStr::new("--root"),
            root.path().as_os_str(),
            OsStr::new("-q"),
            OsStr::new("--qf"),
            OsStr::new("%{DSAHEADER:pgpsig}\\n"),
            OsStr::new("hello"),
        ],
    )
    .await
    .expect_success();
    // rpmsign's tag for EdDSA (see signer/tests/rpm_accepts_signatures.rs).
    assert!(described.stdout.starts_with("EdDSA/SHA256"), "{described}");
    env.stop().await;
    let _ = stop.send(());
    service
        .await
        .expect("the signer task")
        .expect("the signer stopped cleanly");
}
