//! Signing keys at rest (issue 6): encrypted with the key-encryption key, usable only with it,
//! and a key written before encryption existed is encrypted when first loaded.

use ferrocopr_schema::ProjectRef;
use ferrocopr_signer::keys::{KEK_FILE, generate, user_id};
use ferrocopr_signer::{LocalSigner, SignerClient};
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::serialize::SerializeInto;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn project() -> ProjectRef {
    ProjectRef {
        owner: "alice".into(),
        project: "hello".into(),
    }
}

/// The secret key as stored: present, and encrypted.
fn stored_secret_is_encrypted(
    path: &std::path::Path,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let tsk = Cert::from_file(path)?;
    let key = tsk.primary_key().key();
    Ok(key.has_secret() && !key.has_unencrypted_secret())
}

#[tokio::test]
async fn keys_are_encrypted_at_rest_and_need_their_kek() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    let signer = LocalSigner::new(keys.clone(), "example.org".into(), None)?;
    let public = signer.public_key(&project()).await?;
    signer.sign(&project(), b"data".to_vec()).await?;

    let stored = keys.join("alice/hello.tsk.asc");
    assert!(stored_secret_is_encrypted(&stored)?);
    let kek = std::fs::metadata(keys.join(KEK_FILE))?;
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&kek.permissions()) & 0o777,
        0o600
    );

    // Another process with the same key-encryption key signs with the same key.
    let again = LocalSigner::new(keys.clone(), "example.org".into(), None)?;
    assert_eq!(again.public_key(&project()).await?, public);
    again.sign(&project(), b"data".to_vec()).await?;

    // With another one, it cannot.
    let wrong = tmp.path().join("wrong.kek");
    std::fs::write(&wrong, "not the key")?;
    let stranger = LocalSigner::new(keys, "example.org".into(), Some(wrong))?;
    let refused = stranger.sign(&project(), b"data".to_vec()).await;
    let message = format!("{:#}", refused.err().ok_or("signed with the wrong key")?);
    assert!(message.contains("key-encryption key"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_key_stored_in_the_clear_is_encrypted_on_first_use() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    let stored = keys.join("alice/hello.tsk.asc");
    std::fs::create_dir_all(keys.join("alice"))?;
    let cert = generate(&user_id(&project(), "example.org"))?;
    std::fs::write(&stored, cert.as_tsk().armored().to_vec()?)?;
    assert!(!stored_secret_is_encrypted(&stored)?);

    let signer = LocalSigner::new(keys, "example.org".into(), None)?;
    signer.sign(&project(), b"data".to_vec()).await?;
    assert!(stored_secret_is_encrypted(&stored)?);
    let public = Cert::from_bytes(&signer.public_key(&project()).await?)?;
    assert_eq!(public.fingerprint(), cert.fingerprint());
    Ok(())
}

/// Renewal (issue 6): within the renewal window the next use renews the key: same fingerprint,
/// later expiry, still encrypted at rest; a manual renewal moves it later again.
#[tokio::test]
async fn a_key_near_its_expiry_is_renewed_in_place() -> TestResult {
    use ferrocopr_signer::keys::expiry;
    use ferrocopr_signer::{KeyAlgorithm, KeyPolicy};
    use std::time::Duration;
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let policy = |validity, renew_before| KeyPolicy {
        algorithm: KeyAlgorithm::Ed25519,
        validity,
        renew_before,
    };
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    let first = LocalSigner::with_policy(
        keys.clone(),
        "example.org".into(),
        None,
        policy(DAY, DAY / 24),
    )?;
    let old = Cert::from_bytes(&first.public_key(&project()).await?)?;
    let old_expiry = expiry(&old).ok_or("no expiry")?;

    let second = LocalSigner::with_policy(
        keys.clone(),
        "example.org".into(),
        None,
        policy(3 * DAY, 2 * DAY),
    )?;
    second.sign(&project(), b"data".to_vec()).await?;
    let new = Cert::from_bytes(&second.public_key(&project()).await?)?;
    assert_eq!(new.fingerprint(), old.fingerprint());
    let new_expiry = expiry(&new).ok_or("no expiry")?;
    assert!(
        new_expiry >= old_expiry + DAY,
        "{new_expiry:?} vs {old_expiry:?}"
    );
    assert!(stored_secret_is_encrypted(
        &keys.join("alice/hello.tsk.asc")
    )?);
    assert_eq!(new.userids().count(), 1);

    let third = LocalSigner::with_policy(keys, "example.org".into(), None, policy(5 * DAY, DAY))?;
    let info = third.store().renew_now(&project())?;
    assert_eq!(info.fingerprint, old.fingerprint().to_hex());
    assert_eq!(info.algorithm, KeyAlgorithm::Ed25519);
    assert!(info.expires.ok_or("no expiry")? >= new_expiry + DAY);
    Ok(())
}
