//! The repo-publisher: the end of seed step 12, where built packages become a repository dnf
//! can use.
//!
//! It writes `repodata/` for a chroot directory of the results tree and the project's
//! `pubkey.gpg` (REFERENCE §2). Publishes of one directory never interleave their metadata
//! writes, and requests that pile up while one write runs are served by a single next write
//! rather than one each (Copr queues them behind a lock). Repodata is written natively
//! ([`repodata`]) and incrementally: the build directories are grouped into cached segments of
//! the metadata that record each build's `signed` marker, so publishing or removing a build reads
//! only that build's packages, and the other builds cost a listing of the chroot directory, a
//! stat of their markers and a copy of their cached bytes. Errors are returned in full, never
//! swallowed (copr#3163).

pub mod repodata;

use anyhow::Context;
use ferrocopr_schema::task::{SIGNED_FILE, SUCCESS_FILE};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Signs a chroot's `repomd.xml` with its project's key, so `repo_gpgcheck=1` works (Copr
/// leaves repository metadata unsigned, copr#2644). The scheduler implements it over the
/// signer; only the metadata's bytes travel.
#[async_trait::async_trait]
pub trait RepomdSigner: Send + Sync {
    /// An ASCII-armored detached OpenPGP signature over `repomd`.
    async fn sign_repomd(&self, repomd: Vec<u8>) -> anyhow::Result<Vec<u8>>;
}

/// Publishes repositories under the results tree.
#[derive(Debug, Default, Clone)]
pub struct Publisher {
    dirs: Arc<Mutex<HashMap<PathBuf, Arc<DirState>>>>,
    /// How the metadata files are compressed (gzip unless told otherwise).
    compression: repodata::Compression,
}

/// The publish requests of one chroot directory.
#[derive(Debug, Default)]
struct DirState {
    /// How many publishes were requested so far; each request's number is its position.
    requested: AtomicU64,
    /// Held while writing; holds the last request number a finished write took into account.
    written: tokio::sync::Mutex<u64>,
}

/// What [`Publisher::publish_chroot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// It wrote repodata.
    Written(repodata::Outcome),
    /// A write that started after this request was made, and so saw its builds, has finished.
    Merged,
}

impl Publisher {
    pub fn new() -> Publisher {
        Publisher::default()
    }

    /// A publisher that compresses the metadata files as `compression` says.
    pub fn with_compression(compression: repodata::Compression) -> Publisher {
        Publisher {
            compression,
            ..Publisher::default()
        }
    }

    fn state_for(&self, dir: &Path) -> Arc<DirState> {
        let mut dirs = self
            .dirs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(dirs.entry(dir.to_owned()).or_default())
    }

    /// (Re)writes `chroot_dir/repodata` from the packages of the builds that succeeded and were
    /// signed: a build directory counts only when it holds `success` and `signed`, so the
    /// packages of a failed, canceled or interrupted build never reach users.
    ///
    /// Requests made while a write runs wait for it, and the first of them to go next writes for
    /// all of them: its scan of the build directories starts after they were all made.
    pub async fn publish_chroot(&self, chroot_dir: &Path) -> anyhow::Result<Published> {
        self.publish(chroot_dir, None).await
    }

    /// [`Publisher::publish_chroot`] with `repodata/repomd.xml.asc` signed by `signer`, written
    /// just before the new `repomd.xml` is renamed into place. A signing failure fails the
    /// publish and leaves the old metadata as it was.
    pub async fn publish_chroot_signed(
        &self,
        chroot_dir: &Path,
        signer: Arc<dyn RepomdSigner>,
    ) -> anyhow::Result<Published> {
        self.publish(chroot_dir, Some(signer)).await
    }

    async fn publish(
        &self,
        chroot_dir: &Path,
        signer: Option<Arc<dyn RepomdSigner>>,
    ) -> anyhow::Result<Published> {
        let state = self.state_for(chroot_dir);
        let mine = state.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut written = state.written.lock().await;
        if *written >= mine {
            return Ok(Published::Merged);
        }
        // Every request numbered up to here is served by the scan below.
        let covers = state.requested.load(Ordering::SeqCst);
        let builds = published_builds(chroot_dir).await?;
        let dir = chroot_dir.to_owned();
        let compression = self.compression;
        let runtime = tokio::runtime::Handle::current();
        let outcome = tokio::task::spawn_blocking(move || {
            // The writer runs on a blocking thread; the signer is asked from there.
            let sign = |repomd: &[u8]| match &signer {
                Some(signer) => runtime.block_on(signer.sign_repomd(repomd.to_vec())),
                None => anyhow::bail!("no signer"),
            };
            let sign: Option<repodata::SignRepomd<'_>> = signer.is_some().then_some(&sign);
            repodata::publish_builds(&dir, builds, compression, sign)
        })
        .await
        .context("the repodata writer panicked")?
        .with_context(|| format!("writing repodata of {}", chroot_dir.display()))?;
        tracing::info!(
            dir = %chroot_dir.display(),
            packages = outcome.packages,
            reused = outcome.reused,
            read = outcome.read,
            "published repodata"
        );
        // Left as it was after a failure: the waiting requests then write for themselves.
        *written = covers;
        Ok(Published::Written(outcome))
    }

    /// Writes the project's public key where `gpgkey=` of the repo file points.
    pub async fn publish_pubkey(&self, dir: &Path, armored: &[u8]) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(dir).await?;
        let path = dir.join("pubkey.gpg");
        if tokio::fs::read(&path).await.is_ok_and(|old| old == armored) {
            return Ok(());
        }
        // A temporary file of its own: two chroots of a project may publish at once.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, armored)?;
        tmp.persist(&path)?;
        Ok(())
    }
}

/// The build directories of `chroot_dir` that may be published: those holding `success` and
/// `signed`. Only the markers are looked at; the packages of a build are listed and read only
/// when its segment is not cached yet. Plain blocking calls on a blocking thread: a chroot may
/// hold tens of thousands of builds, and one `tokio::fs` call per entry costs a thread hop each.
async fn published_builds(chroot_dir: &Path) -> anyhow::Result<Vec<repodata::Build>> {
    let dir = chroot_dir.to_owned();
    tokio::task::spawn_blocking(move || list_published_builds(&dir))
        .await
        .context("listing the builds panicked")?
        .with_context(|| format!("list the builds of {}", chroot_dir.display()))
}

fn list_published_builds(chroot_dir: &Path) -> std::io::Result<Vec<repodata::Build>> {
    let mut names = Vec::new();
    for build in std::fs::read_dir(chroot_dir)? {
        let build = build?;
        let name = build.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with('.') || name == "repodata" || !build.file_type()?.is_dir() {
            continue;
        }
        names.push(name.to_owned());
    }
    // Two stats per build, tens of thousands of builds: spread over the cores.
    let builds = repodata::parallel_map(&names, |name| -> std::io::Result<_> {
        let path = chroot_dir.join(name);
        if !path.join(SUCCESS_FILE).try_exists()? {
            return Ok(None);
        }
        let signed = match std::fs::metadata(path.join(SIGNED_FILE)) {
            Ok(signed) => signed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(repodata::Build {
            name: name.clone(),
            marker: format!(
                "{}:{}:{}.{:09}:{}",
                signed.dev(),
                signed.ino(),
                signed.mtime(),
                signed.mtime_nsec(),
                signed.len()
            ),
        }))
    });
    builds.into_iter().filter_map(Result::transpose).collect()
}
