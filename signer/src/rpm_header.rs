//! Signing an RPM the way obs-signd does: only the header travels to the signer.
//!
//! The caller (the backend worker, seed step 12) reads the package's main header, asks the
//! signer for a detached signature over those bytes, and writes the package anew with the
//! signature in its signature header, into a new file renamed into place, so a reader never
//! sees a half-signed package.
//!
//! The tag is the one `rpmsign --addsign` of rpm 4.18 writes: RSAHEADER (268) for an RSA key,
//! DSAHEADER (267) for any other, EdDSA included (checked against rpmsign itself by
//! `signer/tests/rpm_accepts_signatures.rs`). rpm verifies either tag with either algorithm, but
//! tools that query `%{RSAHEADER}` or `%{DSAHEADER}` expect rpmsign's choice.

use crate::SignerClient;
use anyhow::Context;
use ferrocopr_schema::ProjectRef;
use rpm::{Header, HeaderEntry, IndexData, IndexSignatureTag, Package};
use sequoia_openpgp::Packet;
use sequoia_openpgp::parse::Parse;
use sequoia_openpgp::types::PublicKeyAlgorithm;
use std::path::Path;

/// Signature header tags that a new signature replaces.
const HEADER_SIGNATURES: u32 = 62;
const DSA_HEADER: u32 = 267;
const RSA_HEADER: u32 = 268;
const OPENPGP: u32 = 278;
/// Header+payload signatures (v3): invalid once the header is re-signed, and not written by
/// rpm 4.16 and later.
const PGP: u32 = 1002;
const GPG: u32 = 1005;

/// Signs the package at `path` with the project's key.
pub async fn sign_rpm(
    signer: &dyn SignerClient,
    project: &ProjectRef,
    path: &Path,
) -> anyhow::Result<()> {
    let owned = path.to_owned();
    let (package, header) = tokio::task::spawn_blocking(move || {
        let package =
            Package::open(&owned).with_context(|| format!("reading {}", owned.display()))?;
        let header = package.header_bytes()?;
        anyhow::Ok((package, header))
    })
    .await??;
    let signature = signer.sign(project, header).await?;
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || write_signed(package, signature, &owned)).await?
}

/// Where rpmsign puts a header signature by this signature's key algorithm.
fn signature_tag(signature: &[u8]) -> anyhow::Result<u32> {
    match Packet::from_bytes(signature).context("the signer's answer")? {
        Packet::Signature(sig) => Ok(match sig.pk_algo() {
            #[expect(deprecated, reason = "RSA sign-only keys are RSA keys to rpm too")]
            PublicKeyAlgorithm::RSAEncryptSign | PublicKeyAlgorithm::RSASign => RSA_HEADER,
            _ => DSA_HEADER,
        }),
        other => anyhow::bail!(
            "the signer answered a {} packet, not a signature",
            other.tag()
        ),
    }
}

fn write_signed(mut package: Package, signature: Vec<u8>, path: &Path) -> anyhow::Result<()> {
    let replaced = [HEADER_SIGNATURES, DSA_HEADER, RSA_HEADER, OPENPGP, PGP, GPG];
    let mut entries: Vec<HeaderEntry> = package
        .metadata
        .signature
        .get_all_entries()?
        .into_iter()
        .filter(|(tag, _)| !replaced.contains(tag))
        .map(|(tag, data)| HeaderEntry::new(tag, data))
        .collect();
    entries.push(HeaderEntry::new(
        signature_tag(&signature)?,
        IndexData::Bin(signature),
    ));
    package.metadata.signature =
        Header::from_entries(entries, IndexSignatureTag::HEADER_SIGNATURES);
    let tmp = path.with_extension("rpm.signing");
    package.write_file(&tmp)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
