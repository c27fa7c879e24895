//! Key refresh: keeps every published `pubkey.gpg` equal to the project's current certificate
//! (seed step 12's public half), so a key the signer renewed (same key, later expiry) reaches
//! clients even when the project builds nothing for a while.
//!
//! Asking the signer for a public key is what renews a key that is due, so the hourly pass
//! ([`crate::prune::run`]'s loop) renews idle projects' keys too. Only CoprDirs that already have
//! a `pubkey.gpg` are looked at: the pass never makes a key for a project that has none.

use ferrocopr_repo_publisher::Publisher;
use ferrocopr_schema::Db;
use ferrocopr_signer::SignerClient;
use std::path::Path;

/// Rewrites the `pubkey.gpg` of every live CoprDir under `results_dir` whose project's
/// certificate changed; returns how many files it rewrote.
pub async fn refresh_pubkeys(
    db: &Db,
    signer: &dyn SignerClient,
    publisher: &Publisher,
    results_dir: &Path,
) -> anyhow::Result<usize> {
    let mut rewritten = 0;
    for (project, dirname) in db.live_dirs().await? {
        if !crate::retention::is_plain(&project.owner) || !crate::retention::is_plain(&dirname) {
            continue;
        }
        let dir = results_dir.join(&project.owner).join(&dirname);
        let path = dir.join("pubkey.gpg");
        let Ok(published) = tokio::fs::read(&path).await else {
            continue;
        };
        let current = signer.public_key(&project).await?;
        if current != published {
            publisher.publish_pubkey(&dir, &current).await?;
            tracing::info!(%project, dirname, "republished a renewed public key");
            rewritten += 1;
        }
    }
    Ok(rewritten)
}
