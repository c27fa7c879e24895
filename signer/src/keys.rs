//! Key generation and storage: one key per project, kept on the signer's disk.
//!
//! Keys are built by hand rather than with sequoia's `CertBuilder`, because rpm 4.18 refuses to
//! import a certificate whose self-signature carries a subpacket it does not know marked
//! critical ("key 1 import failed"), and `CertBuilder` marks primary-user-id and
//! embedded-signature critical. Here only the signature creation time is critical, and the key
//! has no subkeys: the primary key certifies and signs.

use anyhow::{Context, anyhow};
use ferrocopr_schema::ProjectRef;
use openpgp::crypto::{KeyPair, Password};
use openpgp::packet::key::{Key4, PrimaryRole, SecretParts};
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::signature::subpacket::{Subpacket, SubpacketValue};
use openpgp::packet::{Key, UserID};
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::types::{Features, HashAlgorithm, KeyFlags, SignatureType};
use openpgp::{Cert, Packet};
use sequoia_openpgp as openpgp;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// RSA-4096: what older EL clients still verify, and a margin over Copr's RSA-2048.
const RSA_BITS: usize = 4096;

/// Keys on disk, one armored TSK per project whose secret key material is encrypted with the
/// key-encryption key; the decrypted keys are cached in this process only.
pub struct KeyStore {
    dir: PathBuf,
    domain: String,
    kek: Password,
    cache: Mutex<HashMap<ProjectRef, Arc<Unlocked>>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// A project's key as the signer uses it: the certificate (no secrets) and the decrypted key.
struct Unlocked {
    cert: Cert,
    secret: Key<SecretParts, PrimaryRole>,
}

/// The key-encryption key's file name when the keys' directory keeps it (the embedded default).
pub const KEK_FILE: &str = ".kek";

/// The key-encryption key in `file`, made (32 random bytes, hex, readable by its owner only)
/// when there is none yet.
pub fn load_or_create_kek(file: &Path) -> anyhow::Result<Password> {
    match std::fs::read_to_string(file) {
        Ok(text) if !text.trim().is_empty() => return Ok(Password::from(text.trim())),
        Ok(_) => anyhow::bail!("the key-encryption key file {} is empty", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("reading the key-encryption key {}", file.display())));
        }
    }
    let mut bytes = [0u8; 32];
    openpgp::crypto::random(&mut bytes)?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(file, text.as_bytes())?;
    tracing::info!(file = %file.display(), "made a key-encryption key");
    Ok(Password::from(text))
}

impl KeyStore {
    /// Keys under `dir`, encrypted at rest with `kek`.
    pub fn new(dir: PathBuf, domain: String, kek: Password) -> KeyStore {
        KeyStore {
            dir,
            domain,
            kek,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, project: &ProjectRef) -> PathBuf {
        self.dir
            .join(&project.owner)
            .join(format!("{}.tsk.asc", project.project))
    }

    /// The project's certificate and decrypted key, generated and saved on first use.
    fn unlocked(&self, project: &ProjectRef) -> anyhow::Result<Arc<Unlocked>> {
        // The lock is held through generation so two callers never make two keys.
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| anyhow!("key cache poisoned"))?;
        if let Some(cert) = cache.get(project) {
            return Ok(Arc::clone(cert));
        }
        let path = self.path(project);
        let (tsk, secret) = if path.exists() {
            let tsk =
                Cert::from_file(&path).with_context(|| format!("reading {}", path.display()))?;
            let key = tsk.primary_key().key().clone().parts_into_secret()?;
            if key.has_unencrypted_secret() {
                // Written before keys were encrypted at rest: encrypt it now.
                self.save(&path, &tsk, &key)?;
                (tsk, key)
            } else {
                let key = key.decrypt_secret(&self.kek).map_err(|_| {
                    anyhow!(
                        "cannot decrypt the signing key {}: the key-encryption key is not the \
                         one it was encrypted with",
                        path.display()
                    )
                })?;
                (tsk, key)
            }
        } else {
            let tsk = generate(&user_id(project, &self.domain))?;
            let key = tsk.primary_key().key().clone().parts_into_secret()?;
            self.save(&path, &tsk, &key)?;
            tracing::info!(%project, fingerprint = %tsk.fingerprint(), "generated signing key");
            (tsk, key)
        };
        let unlocked = Arc::new(Unlocked {
            cert: tsk.strip_secret_key_material(),
            secret,
        });
        cache.insert(project.clone(), Arc::clone(&unlocked));
        Ok(unlocked)
    }

    /// Writes the TSK with its secret key material encrypted with the key-encryption key.
    fn save(
        &self,
        path: &Path,
        cert: &Cert,
        key: &Key<SecretParts, PrimaryRole>,
    ) -> anyhow::Result<()> {
        let encrypted = key.clone().encrypt_secret(&self.kek)?;
        let (tsk, _) = cert
            .clone()
            .strip_secret_key_material()
            .insert_packets(Packet::from(encrypted))?;
        write_private(path, &tsk.as_tsk().armored().to_vec()?)
    }

    pub fn public_key(&self, project: &ProjectRef) -> anyhow::Result<Vec<u8>> {
        self.unlocked(project)?.cert.armored().to_vec()
    }

    pub fn sign(&self, project: &ProjectRef, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut keypair = self.unlocked(project)?.secret.clone().into_keypair()?;
        sign_detached(&mut keypair, data)
    }
}

/// Copr's user id form (REFERENCE §7): `<owner>_<project> <<owner>#<project>@copr.<domain>>`.
pub fn user_id(project: &ProjectRef, domain: &str) -> String {
    format!(
        "{}_{} <{}#{}@copr.{}>",
        project.owner, project.project, project.owner, project.project, domain
    )
}

/// Makes an RSA key whose self-signature rpm 4.18 accepts.
pub fn generate(uid: &str) -> anyhow::Result<Cert> {
    let now = SystemTime::now();
    let mut key4: Key4<SecretParts, PrimaryRole> = Key4::generate_rsa(RSA_BITS)?;
    key4.set_creation_time(now)?;
    let key: Key<SecretParts, PrimaryRole> = key4.into();
    let mut signer = key.clone().into_keypair()?;
    let uid = UserID::from(uid);
    let binding = SignatureBuilder::new(SignatureType::PositiveCertification)
        .set_hash_algo(HashAlgorithm::SHA256)
        .set_signature_creation_time(now)?
        .modify_hashed_area(|mut area| {
            let flags = KeyFlags::empty().set_certification().set_signing();
            area.add(Subpacket::new(SubpacketValue::KeyFlags(flags), false)?)?;
            area.add(Subpacket::new(SubpacketValue::PrimaryUserID(true), false)?)?;
            area.add(Subpacket::new(
                SubpacketValue::PreferredHashAlgorithms(vec![
                    HashAlgorithm::SHA256,
                    HashAlgorithm::SHA512,
                ]),
                false,
            )?)?;
            area.add(Subpacket::new(
                SubpacketValue::Features(Features::empty().set_seipdv1()),
                false,
            )?)?;
            Ok(area)
        })?
        .sign_userid_binding(&mut signer, None, &uid)?;
    let cert = Cert::try_from(vec![Packet::from(key), uid.into(), binding.into()])?;
    anyhow::ensure!(cert.userids().count() == 1, "self-signature did not verify");
    Ok(cert)
}

/// One binary v4 signature packet with SHA-256 over `data`: what rpm stores in a header
/// signature tag, and what a detached `.asc` holds unarmored.
pub fn sign_detached(keypair: &mut KeyPair, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let signature = SignatureBuilder::new(SignatureType::Binary)
        .set_hash_algo(HashAlgorithm::SHA256)
        .sign_message(keypair, data)?;
    Packet::from(signature).to_vec()
}

/// A detached signature from [`sign_detached`] in ASCII armor, as `repomd.xml.asc` holds it.
pub fn armor_signature(binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut writer = openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::Signature)?;
    writer.write_all(binary)?;
    Ok(writer.finalize()?)
}

/// Writes a secret file readable by its owner only, atomically.
///
/// Also used for the key-encryption key.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().context("key path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
