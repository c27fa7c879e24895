//! The repo-publisher: the end of seed step 12, where built packages become a repository dnf
//! can use.
//!
//! It writes `repodata/` for a chroot directory of the results tree and the project's
//! `pubkey.gpg` (REFERENCE §2). Publishes of one directory are serialized, so two builds ending
//! together never interleave their metadata writes. For now repodata comes from `createrepo_c`;
//! its errors are returned in full, never swallowed (copr#3163).

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::process::Command;

/// Publishes repositories under the results tree.
#[derive(Debug, Default, Clone)]
pub struct Publisher {
    locks: Arc<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Publisher {
    pub fn new() -> Publisher {
        Publisher::default()
    }

    fn lock_for(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(locks.entry(dir.to_owned()).or_default())
    }

    /// (Re)writes `chroot_dir/repodata` from every package below `chroot_dir`.
    pub async fn publish_chroot(&self, chroot_dir: &Path) -> anyhow::Result<()> {
        let lock = self.lock_for(chroot_dir);
        let _guard = lock.lock().await;
        let update = chroot_dir.join("repodata/repomd.xml").exists();
        let mut cmd = Command::new("createrepo_c");
        cmd.arg("--no-database").arg("--quiet");
        if update {
            cmd.arg("--update");
        }
        let output = cmd
            .arg(chroot_dir)
            .output()
            .await
            .context("running createrepo_c (is the createrepo-c package installed?)")?;
        if !output.status.success() {
            bail!(
                "createrepo_c {} failed ({}): {}",
                chroot_dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        tracing::info!(dir = %chroot_dir.display(), "published repodata");
        Ok(())
    }

    /// Writes the project's public key where `gpgkey=` of the repo file points.
    pub async fn publish_pubkey(&self, dir: &Path, armored: &[u8]) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(dir).await?;
        let path = dir.join("pubkey.gpg");
        if tokio::fs::read(&path).await.is_ok_and(|old| old == armored) {
            return Ok(());
        }
        let tmp = dir.join(".pubkey.gpg.tmp");
        tokio::fs::write(&tmp, armored).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }
}
