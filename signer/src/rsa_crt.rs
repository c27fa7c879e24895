//! RSA signatures with the Chinese remainder theorem, in OpenSSL: the signer's hot path for
//! RSA keys (every RPM header and `repomd.xml` of a project with an RSA key).
//!
//! sequoia's OpenSSL backend hands OpenSSL only `n`, `e` and `d` for each signature, so OpenSSL
//! computes `m^d mod n` over the full 4096-bit modulus: about four times the work of the CRT
//! form that gpg and `openssl speed` use. Here the key is handed to OpenSSL once, when it is
//! unlocked, with its primes and CRT parameters, and every signature reuses it. The private
//! operation is still OpenSSL's: constant-time exponentiation with blinding. The signature is
//! the same PKCS#1 v1.5 signature over the same DigestInfo as sequoia's (RSA signatures are
//! deterministic), and [`RsaCrt::new`] checks that on a test digest before it is used.
//!
//! The CRT exponents (`d mod (p-1)`, `d mod (q-1)`) are computed once per key and process with
//! `num-bigint`, which is not constant-time; that is one operation per unlock, not one per
//! signature an attacker could time.

use num_bigint::BigUint;
use openpgp::crypto::mpi;
use openpgp::crypto::{KeyPair, Signer};
use openpgp::packet::Key;
use openpgp::packet::key::{
    PrimaryRole, PublicParts, SecretKeyMaterial, SecretParts, UnspecifiedRole,
};
use openpgp::types::HashAlgorithm;
use ossl::pkey::{EvpPkey, EvpPkeyType, PkeyData, RsaData};
use ossl::signature::{OsslSignature, SigAlg, SigOp};
use ossl::{OsslContext, OsslSecret};
use sequoia_openpgp as openpgp;
use std::sync::{Arc, OnceLock};

fn context() -> anyhow::Result<&'static OsslContext> {
    static CONTEXT: OnceLock<Result<OsslContext, String>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| OsslContext::new_lib_ctx_checked().map_err(|e| format!("{e:?}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("an OpenSSL library context: {e}"))
}

/// An RSA key prepared for OpenSSL with its CRT parameters; cheap to clone.
#[derive(Clone)]
pub(crate) struct RsaCrt {
    public: Key<PublicParts, UnspecifiedRole>,
    pkey: Arc<EvpPkey>,
}

impl RsaCrt {
    /// The key prepared for CRT signing, or `None` when it is not an RSA key.
    pub(crate) fn new(key: &Key<SecretParts, PrimaryRole>) -> anyhow::Result<Option<RsaCrt>> {
        let mpi::PublicKey::RSA { e, n } = key.mpis() else {
            return Ok(None);
        };
        let SecretKeyMaterial::Unencrypted(secret) = key.secret() else {
            anyhow::bail!("the key is still encrypted");
        };
        let data = secret.map(|material| match material {
            mpi::SecretKeyMaterial::RSA { d, p, q, u } => {
                let one = BigUint::from(1u32);
                let big = |m: &mpi::ProtectedMPI| BigUint::from_bytes_be(m.value());
                let d_big = big(d);
                // OpenSSL's coefficient is factor2⁻¹ mod factor1, OpenPGP's u is p⁻¹ mod q:
                // with factor1 = q and factor2 = p they are the same number.
                let exponent1 = &d_big % (big(q) - &one);
                let exponent2 = &d_big % (big(p) - &one);
                Some(RsaData {
                    n: n.value().to_vec(),
                    d: Some(OsslSecret::from_slice(d.value())),
                    p: Some(OsslSecret::from_slice(q.value())),
                    q: Some(OsslSecret::from_slice(p.value())),
                    a: Some(OsslSecret::from_vec(exponent1.to_bytes_be())),
                    b: Some(OsslSecret::from_vec(exponent2.to_bytes_be())),
                    c: Some(OsslSecret::from_slice(u.value())),
                })
            }
            _ => None,
        });
        let Some(data) = data else {
            return Ok(None);
        };
        let pkey = EvpPkey::import(
            context()?,
            EvpPkeyType::Rsa(n.bits(), e.value().to_vec()),
            PkeyData::Rsa(data),
        )
        .map_err(|e| anyhow::anyhow!("preparing the RSA key for OpenSSL: {e:?}"))?;
        let prepared = RsaCrt {
            public: key.parts_as_public().role_as_unspecified().clone(),
            pkey: Arc::new(pkey),
        };
        // The same signature as sequoia's own, or not used at all.
        let digest = [0x5au8; 32];
        let mut reference: KeyPair = key.clone().into_keypair()?;
        let expected = reference.sign(HashAlgorithm::SHA256, &digest)?;
        let got = prepared.clone().sign(HashAlgorithm::SHA256, &digest)?;
        anyhow::ensure!(
            got == expected,
            "the CRT signature differs from sequoia's; not using it"
        );
        Ok(Some(prepared))
    }
}

impl Signer for RsaCrt {
    fn public(&self) -> &Key<PublicParts, UnspecifiedRole> {
        &self.public
    }

    fn sign(&mut self, hash_algo: HashAlgorithm, digest: &[u8]) -> openpgp::Result<mpi::Signature> {
        // PKCS#1 v1.5: the DigestInfo (the hash's DER prefix, then the digest), as sequoia signs.
        let mut info = Vec::with_capacity(32 + digest.len());
        info.extend(hash_algo.oid()?);
        info.extend(digest);
        let failed = |e: ossl::Error| anyhow::anyhow!("OpenSSL RSA signature: {e:?}");
        let mut signer = OsslSignature::new(context()?, SigOp::Sign, SigAlg::Rsa, &self.pkey, None)
            .map_err(failed)?;
        let size = signer.sign(&info, None).map_err(failed)?;
        let mut signature = vec![0; size];
        let written = signer.sign(&info, Some(&mut signature)).map_err(failed)?;
        signature.truncate(written);
        Ok(mpi::Signature::RSA {
            s: signature.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use openpgp::Packet;
    use openpgp::parse::Parse;

    #[test]
    fn crt_signatures_verify_and_equal_sequoias() -> anyhow::Result<()> {
        let cert = crate::keys::generate("crt <crt@example.org>")?;
        let key = cert.primary_key().key().clone().parts_into_secret()?;
        // `new` itself compares a signature with sequoia's and refuses a difference.
        let mut crt = RsaCrt::new(&key)?.context("an RSA key is prepared")?;
        let data = b"an RPM header";
        let signature = crate::keys::sign_detached(&mut crt, data)?;
        let Packet::Signature(signature) = Packet::from_bytes(&signature)? else {
            anyhow::bail!("not a signature packet");
        };
        signature.verify_message(cert.primary_key().key(), data)?;

        let ed = crate::keys::generate_with(
            "ed <ed@example.org>",
            &crate::KeyPolicy {
                algorithm: crate::KeyAlgorithm::Ed25519,
                ..crate::KeyPolicy::default()
            },
        )?;
        let ed = ed.primary_key().key().clone().parts_into_secret()?;
        assert!(RsaCrt::new(&ed)?.is_none());
        Ok(())
    }
}
