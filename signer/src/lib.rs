//! The signer: seed steps 6 and 12, where every SRPM and RPM of a build gets signed.
//!
//! It holds one OpenPGP key per project ([`keys`]) and signs bytes it is given: an RPM header,
//! later a `repomd.xml`. Whole packages never travel to it: the caller extracts the header,
//! sends those bytes through a [`SignerClient`], and puts the returned signature into the
//! package itself ([`rpm_header`]). Private keys never leave this crate.
//!
//! The signer runs in the backend's process ([`LocalSigner`]) or as a service of its own on
//! another host ([`service`], `ferrocopr signer`), which the backend reaches through
//! [`remote::RemoteSigner`]; both are a [`SignerClient`].

pub mod callers;
pub mod keys;
pub mod remote;
pub mod rpm_header;
mod rsa_crt;
pub mod service;

pub use keys::{KeyAlgorithm, KeyPolicy};

use async_trait::async_trait;
use ferrocopr_schema::ProjectRef;
use std::path::PathBuf;
use std::sync::Arc;

/// Why signing did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("signing key of {project}: {source}")]
    Key {
        project: ProjectRef,
        #[source]
        source: anyhow::Error,
    },
    #[error("signing for {project}: {source}")]
    Sign {
        project: ProjectRef,
        #[source]
        source: anyhow::Error,
    },
}

/// The narrow seam between the backend and the signer: what a worker may ask for.
#[async_trait]
pub trait SignerClient: Send + Sync {
    /// The project's public key, ASCII-armored; made on first use.
    async fn public_key(&self, project: &ProjectRef) -> Result<Vec<u8>, SignError>;
    /// A detached OpenPGP signature (one binary v4 signature packet, SHA-256) over `data`.
    async fn sign(&self, project: &ProjectRef, data: Vec<u8>) -> Result<Vec<u8>, SignError>;
}

/// The signer in this process, keeping keys under a directory only it reads.
#[derive(Debug, Clone)]
pub struct LocalSigner {
    store: Arc<keys::KeyStore>,
}

impl LocalSigner {
    /// `domain` goes into the key's user id, as Copr's `copr.<domain>` does. The keys are
    /// encrypted at rest with the key-encryption key in `kek_file`, made on first use when
    /// missing (by default `<dir>/.kek`, see [`keys::KEK_FILE`]).
    pub fn new(
        dir: PathBuf,
        domain: String,
        kek_file: Option<PathBuf>,
    ) -> anyhow::Result<LocalSigner> {
        LocalSigner::with_policy(dir, domain, kek_file, KeyPolicy::default())
    }

    /// As [`LocalSigner::new`], with new keys made and renewed by `policy`.
    pub fn with_policy(
        dir: PathBuf,
        domain: String,
        kek_file: Option<PathBuf>,
        policy: KeyPolicy,
    ) -> anyhow::Result<LocalSigner> {
        let kek_file = kek_file.unwrap_or_else(|| dir.join(keys::KEK_FILE));
        let kek = keys::load_or_create_kek(&kek_file)?;
        Ok(LocalSigner {
            store: Arc::new(keys::KeyStore::with_policy(dir, domain, kek, policy)),
        })
    }

    /// The keys themselves, for the signing service and for tests that look at expiry.
    pub fn store(&self) -> &Arc<keys::KeyStore> {
        &self.store
    }
}

impl LocalSigner {
    /// Runs key work off the async threads: RSA operations take milliseconds to seconds.
    async fn blocking<T: Send + 'static>(
        &self,
        project: &ProjectRef,
        work: impl FnOnce(&keys::KeyStore, &ProjectRef) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let store = Arc::clone(&self.store);
        let project = project.clone();
        tokio::task::spawn_blocking(move || work(&store, &project)).await?
    }
}

#[async_trait]
impl SignerClient for LocalSigner {
    async fn public_key(&self, project: &ProjectRef) -> Result<Vec<u8>, SignError> {
        self.blocking(project, |store, p| store.public_key(p))
            .await
            .map_err(|source| SignError::Key {
                project: project.clone(),
                source,
            })
    }

    async fn sign(&self, project: &ProjectRef, data: Vec<u8>) -> Result<Vec<u8>, SignError> {
        self.blocking(project, move |store, p| store.sign(p, &data))
            .await
            .map_err(|source| SignError::Sign {
                project: project.clone(),
                source,
            })
    }
}
