//! Key refresh (issue 6): after the signer renews a project's key, the hourly pass rewrites the
//! `pubkey.gpg` of each of the project's CoprDirs that has one, and leaves alone CoprDirs that
//! never published a key (no key is made for them).

use ferrocopr_repo_publisher::Publisher;
use ferrocopr_schema::db::ProjectSettings;
use ferrocopr_schema::{Db, ProjectRef};
use ferrocopr_signer::{SignError, SignerClient};
use std::sync::Mutex;

/// A signer whose certificate is whatever the test says, recording who asked.
struct FakeSigner {
    key: Vec<u8>,
    asked: Mutex<Vec<ProjectRef>>,
}

#[async_trait::async_trait]
impl SignerClient for FakeSigner {
    async fn public_key(&self, project: &ProjectRef) -> Result<Vec<u8>, SignError> {
        self.asked.lock().expect("lock").push(project.clone());
        Ok(self.key.clone())
    }

    async fn sign(&self, _: &ProjectRef, _: Vec<u8>) -> Result<Vec<u8>, SignError> {
        unreachable!("the refresh never signs")
    }
}

#[tokio::test]
async fn renewed_keys_are_republished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("db.sqlite").display()
    );
    let db = Db::connect(&url).await.expect("db");
    let project = |name: &str| ProjectRef {
        owner: "alice".into(),
        project: name.into(),
    };
    for name in ["built", "never-built"] {
        db.create_project(&project(name), &ProjectSettings::default(), &[])
            .await
            .expect("project");
    }
    let results = dir.path().join("results");
    let published = results.join("alice/built/pubkey.gpg");
    std::fs::create_dir_all(published.parent().expect("parent")).expect("mkdir");
    std::fs::write(&published, "old certificate").expect("write");

    let signer = FakeSigner {
        key: b"renewed certificate".to_vec(),
        asked: Mutex::default(),
    };
    let publisher = Publisher::new();
    let rewritten = ferrocopr_scheduler::keys::refresh_pubkeys(&db, &signer, &publisher, &results)
        .await
        .expect("refresh");
    assert_eq!(rewritten, 1);
    assert_eq!(
        std::fs::read(&published).expect("read"),
        b"renewed certificate"
    );
    assert_eq!(*signer.asked.lock().expect("lock"), [project("built")]);
    assert!(!results.join("alice/never-built/pubkey.gpg").exists());

    // Nothing changed since: nothing is rewritten.
    let again = ferrocopr_scheduler::keys::refresh_pubkeys(&db, &signer, &publisher, &results)
        .await
        .expect("refresh");
    assert_eq!(again, 0);
}
