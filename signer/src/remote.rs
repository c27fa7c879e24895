//! The backend's side of the signing service: a [`SignerClient`] that asks
//! `ferrocopr signer` (see [`crate::service`]) over HTTP, sending only RPM headers and
//! `repomd.xml`, with the backend's bearer token.

use crate::{SignError, SignerClient};
use anyhow::Context;
use async_trait::async_trait;
use ferrocopr_schema::ProjectRef;
use std::time::Duration;

/// How long one request may take: an RSA-4096 key is made on a project's first request, which
/// takes seconds on a busy host; a signature takes milliseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A signing service at a URL, used with one bearer token.
#[derive(Clone)]
pub struct RemoteSigner {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for RemoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSigner")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RemoteSigner {
    /// The service at `url` (e.g. `http://signer.internal:5050`), used with `token`.
    pub fn new(url: &str, token: String) -> anyhow::Result<RemoteSigner> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("signer URL {url:?}"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https"),
            "signer URL {url:?}: use http:// or https://"
        );
        anyhow::ensure!(!token.is_empty(), "the signer token is empty");
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("making the signer's HTTP client")?;
        Ok(RemoteSigner {
            base: url.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("POST {url}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            anyhow::bail!("POST {url}: {status}: {}", text.trim());
        }
        Ok(bytes.to_vec())
    }
}

fn key_path(project: &ProjectRef) -> String {
    format!("/keys/{}/{}", project.owner, project.project)
}

#[async_trait]
impl SignerClient for RemoteSigner {
    async fn public_key(&self, project: &ProjectRef) -> Result<Vec<u8>, SignError> {
        // Create is idempotent: the key is made on first use, as the local signer does.
        self.post(&key_path(project), Vec::new())
            .await
            .map_err(|source| SignError::Key {
                project: project.clone(),
                source,
            })
    }

    async fn sign(&self, project: &ProjectRef, data: Vec<u8>) -> Result<Vec<u8>, SignError> {
        self.post(&format!("{}/sign", key_path(project)), data)
            .await
            .map_err(|source| SignError::Sign {
                project: project.clone(),
                source,
            })
    }
}
