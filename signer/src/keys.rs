//! Key generation and storage: one key per project, kept on the signer's disk.
//!
//! Keys are built by hand rather than with sequoia's `CertBuilder`, because rpm 4.18 refuses to
//! import a certificate whose self-signature carries a subpacket it does not know marked
//! critical ("key 1 import failed"), and `CertBuilder` marks primary-user-id and
//! embedded-signature critical. Here only the signature creation time is critical, and the key
//! has no subkeys: the primary key certifies and signs.

use anyhow::{Context, anyhow};
use ferrocopr_schema::ProjectRef;
use openpgp::crypto::KeyPair;
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

/// Keys on disk, one armored TSK per project, with the parsed certificates cached.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    domain: String,
    cache: Mutex<HashMap<ProjectRef, Arc<Cert>>>,
}

impl KeyStore {
    pub fn new(dir: PathBuf, domain: String) -> KeyStore {
        KeyStore {
            dir,
            domain,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, project: &ProjectRef) -> PathBuf {
        self.dir
            .join(&project.owner)
            .join(format!("{}.tsk.asc", project.project))
    }

    /// The project's certificate with its secret key, generated and saved on first use.
    fn cert(&self, project: &ProjectRef) -> anyhow::Result<Arc<Cert>> {
        // The lock is held through generation so two callers never make two keys.
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| anyhow!("key cache poisoned"))?;
        if let Some(cert) = cache.get(project) {
            return Ok(Arc::clone(cert));
        }
        let path = self.path(project);
        let cert = if path.exists() {
            Cert::from_file(&path).with_context(|| format!("reading {}", path.display()))?
        } else {
            let cert = generate(&user_id(project, &self.domain))?;
            write_private(&path, &cert.as_tsk().armored().to_vec()?)?;
            tracing::info!(%project, fingerprint = %cert.fingerprint(), "generated signing key");
            cert
        };
        let cert = Arc::new(cert);
        cache.insert(project.clone(), Arc::clone(&cert));
        Ok(cert)
    }

    pub fn public_key(&self, project: &ProjectRef) -> anyhow::Result<Vec<u8>> {
        self.cert(project)?.armored().to_vec()
    }

    pub fn sign(&self, project: &ProjectRef, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        let cert = self.cert(project)?;
        let mut keypair = cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()?
            .into_keypair()?;
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

/// Writes a secret file readable by its owner only, atomically.
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
