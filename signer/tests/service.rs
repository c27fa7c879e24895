//! The signer as a service (issue 6): callers authenticate with a bearer token and may use only
//! their projects (401, 403), bodies are capped (413), and `RemoteSigner` signs through it with
//! signatures that verify with the project's certificate and that `rpmkeys --checksig` accepts.

use ferrocopr_schema::ProjectRef;
use ferrocopr_signer::callers::{Callers, token_sha256};
use ferrocopr_signer::keys::KeyStore;
use ferrocopr_signer::remote::RemoteSigner;
use ferrocopr_signer::rpm_header::sign_rpm;
use ferrocopr_signer::service::{MAX_SIGNED_BYTES, ServiceState, app};
use ferrocopr_signer::{KeyAlgorithm, KeyPolicy, SignerClient};
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::{Cert, Packet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const BACKEND: &str = "backend-token";
const BOB: &str = "bob-token";

fn project(owner: &str, project: &str) -> ProjectRef {
    ProjectRef {
        owner: owner.into(),
        project: project.into(),
    }
}

/// The service on port 0 with Ed25519 keys (fast to make); the backend may use alice's
/// projects, bob only `bob/hello`.
async fn start(keys: &Path) -> String {
    let callers = Callers::parse(&format!(
        "callers:\n  - name: backend\n    token_sha256: {}\n    projects: [\"alice/*\"]\n  \
         - name: bob\n    token_sha256: {}\n    projects: [\"bob/hello\"]\n",
        token_sha256(BACKEND),
        token_sha256(BOB)
    ))
    .expect("callers");
    let store = KeyStore::with_policy(
        keys.to_owned(),
        "example.org".into(),
        "test kek".into(),
        KeyPolicy {
            algorithm: KeyAlgorithm::Ed25519,
            ..KeyPolicy::default()
        },
    );
    let state = ServiceState {
        store: Arc::new(store),
        callers: Arc::new(callers),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    url
}

async fn request(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let mut builder = reqwest::Client::new().request(method, url).body(body);
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    let response = builder.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, text)
}

#[tokio::test]
async fn callers_authenticate_and_use_only_their_projects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = start(&tmp.path().join("keys")).await;
    let post = reqwest::Method::POST;
    let key = format!("{url}/keys/alice/hello");

    let (status, text) = request(post.clone(), &key, None, Vec::new()).await;
    assert_eq!(
        (status, text.trim()),
        (401, "missing or unknown bearer token")
    );
    let (status, _) = request(post.clone(), &key, Some("guess"), Vec::new()).await;
    assert_eq!(status, 401);
    let (status, text) = request(
        post.clone(),
        &format!("{key}/sign"),
        Some(BOB),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(
        (status, text.trim()),
        (403, "caller bob may not use the key of alice/hello")
    );
    let (status, _) = request(
        post.clone(),
        &format!("{url}/keys/bob/other"),
        Some(BOB),
        Vec::new(),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = request(
        post.clone(),
        &format!("{url}/keys/bob/hello"),
        Some(BOB),
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);

    // No key yet: GET says so; POST makes it, twice the same (idempotent); GET then has it.
    let pubkey = format!("{key}/pubkey.gpg");
    let (status, text) = request(reqwest::Method::GET, &pubkey, Some(BACKEND), Vec::new()).await;
    assert_eq!(status, 404, "{text}");
    let (status, made) = request(post.clone(), &key, Some(BACKEND), Vec::new()).await;
    assert_eq!(status, 200);
    assert!(
        made.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{made}"
    );
    assert!(!made.contains("PRIVATE"), "{made}");
    let (_, again) = request(post.clone(), &key, Some(BACKEND), Vec::new()).await;
    assert_eq!(again, made);
    let (status, got) = request(reqwest::Method::GET, &pubkey, Some(BACKEND), Vec::new()).await;
    assert_eq!((status, got), (200, made));

    // Too much to sign: a clear 413.
    let (status, text) = request(
        post.clone(),
        &format!("{key}/sign"),
        Some(BACKEND),
        vec![0; MAX_SIGNED_BYTES + 1],
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("not a whole package"), "{text}");

    // A path that is not a name.
    let (status, _) = request(
        post,
        &format!("{url}/keys/alice/.hidden"),
        Some(BACKEND),
        Vec::new(),
    )
    .await;
    assert_eq!(status, 400);
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn build_rpm(dir: &Path) -> PathBuf {
    let spec = "Name: tiny\nVersion: 1\nRelease: 1\nSummary: tiny\nLicense: MIT\nBuildArch: noarch\n\
                %description\ntiny\n%files\n";
    std::fs::write(dir.join("tiny.spec"), spec).expect("write spec");
    run(Command::new("rpmbuild")
        .args(["-bb", "--nodeps"])
        .arg("--define")
        .arg(format!("_topdir {}", dir.join("top").display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", dir.display()))
        .args(["--define", "_build_name_fmt %%{NAME}.rpm"])
        .arg(dir.join("tiny.spec")));
    dir.join("tiny.rpm")
}

#[tokio::test]
async fn remote_signatures_verify_with_the_certificate_and_in_rpm() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = start(&tmp.path().join("keys")).await;
    let signer = RemoteSigner::new(&url, BACKEND.to_owned()).expect("remote signer");
    let alice = project("alice", "hello");

    let cert =
        Cert::from_bytes(&signer.public_key(&alice).await.expect("public key")).expect("cert");
    let data = b"<repomd/>".to_vec();
    let signature = signer.sign(&alice, data.clone()).await.expect("sign");
    let Packet::Signature(signature) = Packet::from_bytes(&signature).expect("a packet") else {
        panic!("not a signature packet");
    };
    signature
        .verify_message(cert.primary_key().key(), &data)
        .expect("the signature verifies with the project's certificate");
    assert!(
        signature
            .verify_message(cert.primary_key().key(), b"<repomd>changed</repomd>")
            .is_err()
    );

    // Refused calls come back as errors that say why.
    let refused = signer.sign(&project("bob", "hello"), data).await;
    let message = format!("{:#}", refused.expect_err("signed for bob"));
    assert!(message.contains("403"), "{message}");

    // An RPM signed through the service passes rpm's strict check with the certificate.
    let rpm = build_rpm(tmp.path());
    sign_rpm(&signer, &alice, &rpm).await.expect("sign the RPM");
    let key_file = tmp.path().join("pubkey.gpg");
    std::fs::write(&key_file, signer.public_key(&alice).await.expect("key")).expect("write key");
    let dbpath = format!("_dbpath {}", tmp.path().join("rpmdb").display());
    std::fs::create_dir_all(tmp.path().join("rpmdb")).expect("rpmdb");
    run(Command::new("rpmkeys")
        .args(["--define", &dbpath, "--import"])
        .arg(&key_file));
    let checked = run(Command::new("rpmkeys")
        .args([
            "--define",
            &dbpath,
            "--define",
            "_pkgverify_level all",
            "--checksig",
        ])
        .arg(&rpm));
    assert!(checked.contains("digests signatures OK"), "{checked}");
}
