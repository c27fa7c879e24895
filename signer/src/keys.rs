//! Key generation and storage: one key per project, kept on the signer's disk.
//!
//! Keys are built by hand rather than with sequoia's `CertBuilder`, because rpm 4.18 refuses to
//! import a certificate whose self-signature carries a subpacket it does not know marked
//! critical ("key 1 import failed"), and `CertBuilder` marks primary-user-id, embedded-signature
//! and key-expiration-time critical. Here only the signature creation time is critical, and the
//! key has no subkeys: the primary key certifies and signs.
//!
//! Private-key operations run in OpenSSL, through sequoia's OpenSSL backend (`crypto-openssl`)
//! and, for RSA signatures, [`crate::rsa_crt`] (the same OpenSSL RSA, given the key's CRT
//! parameters once): OpenSSL's RSA is constant-time with blinding, its Ed25519 constant-time by
//! construction; the pure-Rust `rsa` crate is not (RUSTSEC-2023-0071, the Marvin attack).
//!
//! # Expiry and renewal
//!
//! A key expires [`KeyPolicy::validity`] after it is made or renewed (5 years, as Copr's). When
//! less than [`KeyPolicy::renew_before`] remains, the next use renews it: a new user-id
//! self-signature with a later key expiration time over the same key material, so key id and
//! fingerprint stay, and a client that imported the old certificate keeps verifying packages
//! signed after the renewal (rpm verifies a signature against the key material; it does not
//! need the new self-signature). The scheduler writes `pubkey.gpg` on every publish, so the
//! renewed certificate replaces the old one there at the next build.
//!
//! What the old certificate does once its *own* expiry passes depends on the client's rpm. rpm
//! built with its internal OpenPGP parser (EL 8 and 9, Debian's rpm 4.18, where our tests run)
//! ignores key expiry. rpm built with the Sequoia backend (Fedora 38 and later, EL 10) refuses
//! signatures by a key whose imported certificate has expired, however old the package, and
//! dnf does not import a key again while one with the same id is installed; rpm versions before
//! the ones that update keys on `rpmkeys --import` need the old `gpg-pubkey` removed by hand
//! (copr#2894: after Copr extended its keys, such clients failed until they did that).
//! Our answer is to renew early: with the defaults a key is renewed a whole year before it
//! expires, and the scheduler rewrites `pubkey.gpg` at the project's next publish, so a client
//! that refreshes its key (re-import after `rpm -e gpg-pubkey-…`, or a fresh
//! `dnf copr enable`) at any time in that year never holds an expired certificate. A client that
//! never refreshes still fails after the old expiry; nothing the signer does can change a
//! certificate already in a client's database. Renewal happens on the key's next use: a
//! project's next build, or the scheduler's hourly key refresh (`ferrocopr_scheduler::keys`),
//! which asks for the public key of every CoprDir that published one and rewrites its
//! `pubkey.gpg` when it changed, so idle projects' keys are renewed too. The acceptance test (`tests/tests/key_renewal.rs`) runs
//! before the old expiry, as clients do within the window.

use crate::rsa_crt::RsaCrt;
use anyhow::{Context, anyhow};
use ferrocopr_schema::ProjectRef;
use openpgp::crypto::{KeyPair, Password, Signer};
use openpgp::packet::key::{Key4, PrimaryRole, SecretParts};
use openpgp::packet::signature::SignatureBuilder;
use openpgp::packet::signature::subpacket::{Subpacket, SubpacketValue};
use openpgp::packet::{Key, Signature, UserID};
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::types::{Curve, Features, HashAlgorithm, KeyFlags, SignatureType};
use openpgp::{Cert, Packet};
use sequoia_openpgp as openpgp;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// RSA-4096: what older EL clients still verify, and a margin over Copr's RSA-2048.
const RSA_BITS: usize = 4096;

/// Copr's key lifetime: 5 years.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// A year before expiry: long enough that clients refreshing `pubkey.gpg` now and then see the
/// renewed certificate well before the old one expires (see the module's doc).
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The public-key algorithm of newly made keys; a key on disk keeps the algorithm it was made
/// with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA-4096: verified by every rpm, EL 7 included.
    #[default]
    Rsa4096,
    /// Ed25519 (OpenPGP v4 EdDSA, algorithm 22, as rpm 4.16 and later verify it): small and fast
    /// keys and signatures, but older EL clients cannot verify them.
    Ed25519,
}

impl KeyAlgorithm {
    /// The names options take.
    pub const NAMES: [&str; 2] = ["rsa4096", "ed25519"];

    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa4096 => "rsa4096",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rsa4096" | "rsa" => Ok(KeyAlgorithm::Rsa4096),
            "ed25519" | "eddsa" => Ok(KeyAlgorithm::Ed25519),
            _ => Err(format!(
                "unknown key algorithm {s:?}; use one of: {}",
                KeyAlgorithm::NAMES.join(", ")
            )),
        }
    }
}

/// How keys are made and kept alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The algorithm of keys made from now on.
    pub algorithm: KeyAlgorithm,
    /// How long a key is valid after it is made or renewed.
    pub validity: Duration,
    /// A key with less than this left is renewed on its next use.
    pub renew_before: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            algorithm: KeyAlgorithm::default(),
            validity: DEFAULT_VALIDITY,
            renew_before: DEFAULT_RENEW_BEFORE,
        }
    }
}

/// Keys on disk, one armored TSK per project whose secret key material is encrypted with the
/// key-encryption key; the decrypted keys are cached in this process only.
pub struct KeyStore {
    dir: PathBuf,
    domain: String,
    kek: Password,
    policy: KeyPolicy,
    cache: Mutex<HashMap<ProjectRef, Arc<Unlocked>>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .field("domain", &self.domain)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A project's key as the signer uses it: the certificate (no secrets), the decrypted key ready
/// to sign (so a signature costs only the private-key operation), and when it expires.
struct Unlocked {
    cert: Cert,
    secret: Key<SecretParts, PrimaryRole>,
    keypair: SigningKey,
    expires: Option<SystemTime>,
}

/// What signs: RSA keys through [`RsaCrt`] (four times faster than sequoia's own RSA path),
/// other keys through sequoia's key pair.
#[derive(Clone)]
enum SigningKey {
    RsaCrt(RsaCrt),
    Sequoia(KeyPair),
}

impl SigningKey {
    fn new(secret: &Key<SecretParts, PrimaryRole>) -> anyhow::Result<SigningKey> {
        match RsaCrt::new(secret) {
            Ok(Some(rsa)) => return Ok(SigningKey::RsaCrt(rsa)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "RSA key not prepared for CRT; signing the slow way");
            }
        }
        Ok(SigningKey::Sequoia(secret.clone().into_keypair()?))
    }

    fn signer(&mut self) -> &mut dyn Signer {
        match self {
            SigningKey::RsaCrt(rsa) => rsa,
            SigningKey::Sequoia(keypair) => keypair,
        }
    }
}

impl Unlocked {
    fn new(tsk: &Cert, secret: Key<SecretParts, PrimaryRole>) -> anyhow::Result<Unlocked> {
        Ok(Unlocked {
            cert: tsk.clone().strip_secret_key_material(),
            keypair: SigningKey::new(&secret)?,
            secret,
            expires: expiry(tsk),
        })
    }
}

/// What the signer tells about a project's key; no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The uppercase hex fingerprint.
    pub fingerprint: String,
    pub algorithm: KeyAlgorithm,
    /// `None` for keys made before keys had an expiry.
    pub expires: Option<SystemTime>,
}

/// When the certificate's primary key expires, by its newest user-id self-signature.
pub fn expiry(cert: &Cert) -> Option<SystemTime> {
    let creation = cert.primary_key().key().creation_time();
    newest_binding(cert)?
        .key_validity_period()
        .map(|period| creation + period)
}

fn newest_binding(cert: &Cert) -> Option<&Signature> {
    cert.userids()
        .flat_map(|uid| uid.self_signatures())
        .max_by_key(|sig| sig.signature_creation_time())
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
    /// Keys under `dir`, encrypted at rest with `kek`, made and renewed by the default
    /// [`KeyPolicy`].
    pub fn new(dir: PathBuf, domain: String, kek: Password) -> KeyStore {
        KeyStore::with_policy(dir, domain, kek, KeyPolicy::default())
    }

    pub fn with_policy(dir: PathBuf, domain: String, kek: Password, policy: KeyPolicy) -> KeyStore {
        KeyStore {
            dir,
            domain,
            kek,
            policy,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, project: &ProjectRef) -> PathBuf {
        self.dir
            .join(&project.owner)
            .join(format!("{}.tsk.asc", project.project))
    }

    /// Whether the project has a key already (in memory or on disk).
    pub fn has_key(&self, project: &ProjectRef) -> anyhow::Result<bool> {
        let cached = self
            .cache
            .lock()
            .map_err(|_| anyhow!("key cache poisoned"))?
            .contains_key(project);
        Ok(cached || self.path(project).exists())
    }

    /// The project's certificate and decrypted key, generated and saved on first use, renewed
    /// when it is close to its expiry.
    fn unlocked(&self, project: &ProjectRef) -> anyhow::Result<Arc<Unlocked>> {
        self.unlocked_at(project, SystemTime::now(), false)
    }

    fn unlocked_at(
        &self,
        project: &ProjectRef,
        now: SystemTime,
        force_renewal: bool,
    ) -> anyhow::Result<Arc<Unlocked>> {
        // The lock is held through generation and renewal so two callers never make two keys.
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| anyhow!("key cache poisoned"))?;
        let unlocked = match cache.get(project) {
            Some(unlocked) => Arc::clone(unlocked),
            None => Arc::new(self.load_or_generate(project)?),
        };
        // Keys made before keys had an expiry never expire; adding one would only hurt.
        let due = unlocked
            .expires
            .is_some_and(|at| at <= now + self.policy.renew_before);
        let unlocked = if due || force_renewal {
            Arc::new(self.renew(project, &unlocked, now)?)
        } else {
            unlocked
        };
        cache.insert(project.clone(), Arc::clone(&unlocked));
        Ok(unlocked)
    }

    fn load_or_generate(&self, project: &ProjectRef) -> anyhow::Result<Unlocked> {
        let path = self.path(project);
        if !path.exists() {
            let tsk = generate_with(&user_id(project, &self.domain), &self.policy)?;
            let key = tsk.primary_key().key().clone().parts_into_secret()?;
            self.save(&path, &tsk, &key)?;
            tracing::info!(
                %project,
                fingerprint = %tsk.fingerprint(),
                algorithm = %self.policy.algorithm,
                "generated signing key"
            );
            return Unlocked::new(&tsk, key);
        }
        let tsk = Cert::from_file(&path).with_context(|| format!("reading {}", path.display()))?;
        let key = tsk.primary_key().key().clone().parts_into_secret()?;
        if key.has_unencrypted_secret() {
            // Written before keys were encrypted at rest: encrypt it now.
            self.save(&path, &tsk, &key)?;
            return Unlocked::new(&tsk, key);
        }
        let key = key.decrypt_secret(&self.kek).map_err(|_| {
            anyhow!(
                "cannot decrypt the signing key {}: the key-encryption key is not the one it \
                 was encrypted with",
                path.display()
            )
        })?;
        Unlocked::new(&tsk, key)
    }

    /// A new self-signature valid for [`KeyPolicy::validity`] from `now`, over the same key
    /// material and user id; saved before it is used.
    fn renew(
        &self,
        project: &ProjectRef,
        old: &Unlocked,
        now: SystemTime,
    ) -> anyhow::Result<Unlocked> {
        let uid = old
            .cert
            .userids()
            .next()
            .context("the key has no user id")?
            .userid()
            .clone();
        let mut keypair = old.keypair.clone();
        let public = old.cert.primary_key().key().clone();
        let binding =
            binding_signature(keypair.signer(), &public, &uid, now, self.policy.validity)?;
        // Only the new self-signature is kept: rpm's own OpenPGP parser takes a certificate's
        // first self-signature, and one per user id leaves no doubt which one counts.
        let cert = Cert::try_from(vec![Packet::from(public), uid.into(), binding.into()])?;
        let unlocked = Unlocked {
            expires: expiry(&cert),
            cert,
            secret: old.secret.clone(),
            keypair: old.keypair.clone(),
        };
        anyhow::ensure!(
            unlocked.cert.userids().count() == 1,
            "the renewed self-signature did not verify"
        );
        anyhow::ensure!(
            unlocked.expires > old.expires,
            "renewing would not move the key's expiry later"
        );
        self.save(&self.path(project), &unlocked.cert, &unlocked.secret)?;
        tracing::info!(
            %project,
            fingerprint = %unlocked.cert.fingerprint(),
            expires = ?unlocked.expires,
            "renewed signing key"
        );
        Ok(unlocked)
    }

    /// Renews the project's key now, whatever its expiry (the manual trigger); returns the
    /// key as renewed.
    pub fn renew_now(&self, project: &ProjectRef) -> anyhow::Result<KeyInfo> {
        self.unlocked_at(project, SystemTime::now(), true)?;
        self.info(project)
    }

    /// The project's key's fingerprint, algorithm and expiry; the key is made when missing.
    pub fn info(&self, project: &ProjectRef) -> anyhow::Result<KeyInfo> {
        let unlocked = self.unlocked(project)?;
        let key = unlocked.cert.primary_key().key();
        let algorithm = match key.pk_algo() {
            openpgp::types::PublicKeyAlgorithm::EdDSA => KeyAlgorithm::Ed25519,
            _ => KeyAlgorithm::Rsa4096,
        };
        Ok(KeyInfo {
            fingerprint: unlocked.cert.fingerprint().to_hex(),
            algorithm,
            expires: unlocked.expires,
        })
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
        let mut keypair = self.unlocked(project)?.keypair.clone();
        sign_detached(keypair.signer(), data)
    }
}

/// Copr's user id form (REFERENCE §7): `<owner>_<project> <<owner>#<project>@copr.<domain>>`.
pub fn user_id(project: &ProjectRef, domain: &str) -> String {
    format!(
        "{}_{} <{}#{}@copr.{}>",
        project.owner, project.project, project.owner, project.project, domain
    )
}

/// Makes an RSA-4096 key valid for [`DEFAULT_VALIDITY`] whose self-signature rpm 4.18 accepts.
pub fn generate(uid: &str) -> anyhow::Result<Cert> {
    generate_with(uid, &KeyPolicy::default())
}

/// Makes a key of `policy`'s algorithm, valid for its validity, whose self-signature rpm 4.18
/// accepts.
pub fn generate_with(uid: &str, policy: &KeyPolicy) -> anyhow::Result<Cert> {
    let now = SystemTime::now();
    let mut key4: Key4<SecretParts, PrimaryRole> = match policy.algorithm {
        KeyAlgorithm::Rsa4096 => Key4::generate_rsa(RSA_BITS)?,
        // Legacy EdDSA (algorithm 22), not RFC 9580's Ed25519 (27): rpm 4.18 knows only the
        // former.
        KeyAlgorithm::Ed25519 => Key4::generate_ecc(true, Curve::Ed25519)?,
    };
    key4.set_creation_time(now)?;
    let key: Key<SecretParts, PrimaryRole> = key4.into();
    let mut signer = key.clone().into_keypair()?;
    let uid = UserID::from(uid);
    let public = key.parts_as_public().clone();
    let binding = binding_signature(&mut signer, &public, &uid, now, policy.validity)?;
    let cert = Cert::try_from(vec![Packet::from(key), uid.into(), binding.into()])?;
    anyhow::ensure!(cert.userids().count() == 1, "self-signature did not verify");
    Ok(cert)
}

/// The user-id self-signature, made at `now`, with the key expiring `validity` after `now`.
/// Every subpacket but the creation time is non-critical (see the module's doc).
fn binding_signature(
    signer: &mut dyn Signer,
    key: &Key<openpgp::packet::key::PublicParts, PrimaryRole>,
    uid: &UserID,
    now: SystemTime,
    validity: Duration,
) -> anyhow::Result<Signature> {
    // Key expiration is counted from the key's creation, not from the signature's.
    let lifetime = (now + validity)
        .duration_since(key.creation_time())
        .context("the key was made in the future")?;
    let lifetime = openpgp::types::Duration::try_from(lifetime)?;
    let binding = SignatureBuilder::new(SignatureType::PositiveCertification)
        .set_hash_algo(HashAlgorithm::SHA256)
        .set_signature_creation_time(now)?
        .modify_hashed_area(|mut area| {
            let flags = KeyFlags::empty().set_certification().set_signing();
            area.add(Subpacket::new(SubpacketValue::KeyFlags(flags), false)?)?;
            area.add(Subpacket::new(
                SubpacketValue::KeyExpirationTime(lifetime),
                false,
            )?)?;
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
        .sign_userid_binding(signer, key, uid)?;
    Ok(binding)
}

/// One binary v4 signature packet with SHA-256 over `data`: what rpm stores in a header
/// signature tag, and what a detached `.asc` holds unarmored.
pub fn sign_detached(keypair: &mut dyn Signer, data: &[u8]) -> anyhow::Result<Vec<u8>> {
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
