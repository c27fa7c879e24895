//! The lookaside store: source files (tarballs and anything else that is not spec or patch),
//! kept once by content under `<root>/lookaside/sha512/<hash>` and served to builders.
//!
//! The import writes blobs here; the RPM task downloads them through [`router`] with Copr's
//! URL layout, in which owner, directory, package and file name only make the URL readable:
//! the hash alone selects the content, so a tarball shared by many projects is stored once.
//! Every read recomputes the hash, so a corrupted disk never reaches a build.
//!
//! An import unpacks its SRPM into an [`Incoming`] directory next to the blobs and renames
//! each source into place once it is synced: a blob is either whole under its name or absent,
//! whenever the process dies. What a dead import leaves is removed when DistGit is opened.

use anyhow::{Context as _, ensure};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ferrocopr_builder::paths::is_plain_file_name;
use ferrocopr_builder::sources::{copy_hashing, is_sha512_hex, sha512_of_file};
use ferrocopr_schema::model::{is_valid_dirname, is_valid_owner, is_valid_package_name};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The content-addressed blob directory.
pub(crate) struct Lookaside {
    dir: PathBuf,
}

/// The prefix of unpacking directories (and of older versions' temporary blob files).
const INCOMING_PREFIX: &str = ".incoming-";

/// A directory an import unpacks into, locked while it exists.
pub(crate) struct Incoming {
    dir: tempfile::TempDir,
    _lock: File,
}

impl Incoming {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Whether the entry at `path` (and, for a directory, everything directly in it) last changed
/// before `before`; an unpack in progress keeps changing the file it writes.
fn stale(path: &Path, before: SystemTime) -> io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.modified()? >= before {
        return Ok(false);
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            if entry?.metadata()?.modified()? >= before {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// What a verified read found.
pub(crate) enum Blob {
    Found(Vec<u8>),
    Missing,
    /// The stored bytes no longer hash to their name.
    Corrupt {
        actual: String,
    },
}

impl Lookaside {
    pub(crate) fn new(dir: PathBuf) -> Lookaside {
        Lookaside { dir }
    }

    fn blob_path(&self, sha512: &str) -> PathBuf {
        self.dir.join(sha512)
    }

    /// A new directory to unpack an SRPM into, inside the blob directory so that its files
    /// are stored by a rename, never a copy. Its name starts with a dot, which no hash does,
    /// so nothing in it can ever be served; it is removed when dropped, and by
    /// [`Lookaside::remove_stale_incoming`] if the process dies first.
    pub(crate) fn incoming(&self) -> anyhow::Result<Incoming> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(INCOMING_PREFIX)
            .tempdir_in(&self.dir)
            .with_context(|| format!("cannot create a directory in {}", self.dir.display()))?;
        // Held until the directory is dropped: a live import is never cleaned away by another
        // process, and the kernel lets go of it when this process dies.
        let lock = File::open(dir.path())
            .and_then(|f| f.lock().map(|()| f))
            .with_context(|| format!("cannot lock {}", dir.path().display()))?;
        Ok(Incoming { dir, _lock: lock })
    }

    /// Stores `file`, a file in one of this store's [`Incoming`] directories whose SHA-512 the
    /// caller computed while writing it, by renaming it into place.
    ///
    /// A blob already present and intact is left alone; a missing or corrupt one is replaced
    /// in one rename after the file is synced, so a reader never sees a partial blob and a
    /// crash never leaves one under a valid name.
    pub(crate) fn store(&self, file: &Path, sha512: &str) -> anyhow::Result<()> {
        ensure!(is_sha512_hex(sha512), "invalid SHA-512 {sha512:?}");
        let target = self.blob_path(sha512);
        if target.exists() {
            if sha512_of_file(&target)? == sha512 {
                return Ok(());
            }
            tracing::warn!(sha512, "lookaside blob is corrupt; writing it again");
        }
        File::open(file)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", file.display()))?;
        std::fs::rename(file, &target)
            .with_context(|| format!("cannot store {}", target.display()))?;
        // The rename is only durable once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", self.dir.display()))?;
        Ok(())
    }

    /// Removes what imports that died left behind: `.incoming-*` entries last changed before
    /// `before` (when this process opened the store) that no live import holds locked.
    /// Returns how many were removed.
    pub(crate) fn remove_stale_incoming(&self, before: SystemTime) -> anyhow::Result<usize> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot list {}", self.dir.display()));
            }
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", self.dir.display()))?;
            if !entry
                .file_name()
                .as_encoded_bytes()
                .starts_with(INCOMING_PREFIX.as_bytes())
            {
                continue;
            }
            let path = entry.path();
            match stale(&path, before) {
                Ok(true) => {}
                Ok(false) => continue,
                // Gone already: another process cleaned it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot inspect {}", path.display()));
                }
            }
            // Locked by an import that is still running: its owner removes it.
            let Ok(handle) = File::open(&path) else {
                continue;
            };
            if handle.try_lock().is_err() {
                continue;
            }
            let gone = if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        Ok(removed)
    }

    /// Reads a blob and checks it still hashes to `sha512` (a valid hash, checked by callers).
    ///
    /// The whole blob is read before anything is served, so only verified bytes leave.
    pub(crate) fn read_verified(&self, sha512: &str) -> io::Result<Blob> {
        let file = match File::open(self.blob_path(sha512)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Blob::Missing),
            Err(e) => return Err(e),
        };
        let mut data = Vec::new();
        let actual = copy_hashing(file, &mut data)?;
        Ok(if actual == sha512 {
            Blob::Found(data)
        } else {
            Blob::Corrupt { actual }
        })
    }
}

/// The lookaside routes, relative to where the caller nests them.
pub(crate) fn router(store: Arc<Lookaside>) -> Router {
    Router::new()
        .route(
            "/lookaside/pkgs/{owner}/{dir}/{pkg}/{file}/sha512/{hash}/{filename}",
            get(get_blob),
        )
        .with_state(store)
}

type BlobPath = (String, String, String, String, String, String);

async fn get_blob(
    State(store): State<Arc<Lookaside>>,
    UrlPath((owner, dir, pkg, file, hash, filename)): UrlPath<BlobPath>,
) -> Response {
    if !is_sha512_hex(&hash) {
        return (
            StatusCode::BAD_REQUEST,
            "the hash must be 128 lowercase hex digits\n",
        )
            .into_response();
    }
    let well_formed = is_valid_owner(&owner)
        && is_valid_dirname(&dir)
        && is_valid_package_name(&pkg)
        && is_plain_file_name(&file)
        && file == filename;
    if !well_formed {
        return (StatusCode::BAD_REQUEST, "malformed lookaside path\n").into_response();
    }
    let read = {
        let hash = hash.clone();
        tokio::task::spawn_blocking(move || store.read_verified(&hash)).await
    };
    match read {
        Ok(Ok(Blob::Found(data))) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response()
        }
        Ok(Ok(Blob::Missing)) => (StatusCode::NOT_FOUND, "no such source\n").into_response(),
        Ok(Ok(Blob::Corrupt { actual })) => {
            tracing::error!(sha512 = %hash, %actual, %owner, %dir, %pkg, %file, "lookaside blob is corrupt");
            internal_error()
        }
        Ok(Err(e)) => {
            tracing::error!(sha512 = %hash, error = %e, "cannot read lookaside blob");
            internal_error()
        }
        Err(e) => {
            tracing::error!(sha512 = %hash, error = %e, "lookaside read task failed");
            internal_error()
        }
    }
}

fn internal_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming_file(incoming: &Incoming, data: &[u8]) -> (PathBuf, String) {
        let path = incoming.path().join("a.tar.gz");
        std::fs::write(&path, data).expect("write");
        let hash = copy_hashing(data, io::sink()).expect("hash");
        (path, hash)
    }

    #[test]
    fn stores_once_and_verifies() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let store = Lookaside::new(tmp.path().join("sha512"));
        let incoming = store.incoming()?;
        let (src, h) = incoming_file(&incoming, b"tarball");
        store.store(&src, &h)?;
        assert!(is_sha512_hex(&h));
        assert!(matches!(store.read_verified(&h)?, Blob::Found(d) if d == b"tarball"));
        // Same content again: same blob, the new copy stays where it was.
        let (src, h2) = incoming_file(&incoming, b"tarball");
        store.store(&src, &h2)?;
        assert_eq!(h2, h);
        assert!(src.exists());
        drop(incoming);
        assert_eq!(std::fs::read_dir(tmp.path().join("sha512"))?.count(), 1);

        std::fs::write(store.blob_path(&h), b"bit rot")?;
        assert!(matches!(store.read_verified(&h)?, Blob::Corrupt { .. }));
        // Storing it again repairs it.
        let incoming = store.incoming()?;
        let (src, _) = incoming_file(&incoming, b"tarball");
        store.store(&src, &h)?;
        assert!(matches!(store.read_verified(&h)?, Blob::Found(_)));
        assert!(matches!(
            store.read_verified(&"0".repeat(128))?,
            Blob::Missing
        ));
        assert!(store.store(&src, "../../etc/passwd").is_err());
        Ok(())
    }

    #[test]
    fn removes_only_stale_unlocked_incoming() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("sha512");
        let store = Lookaside::new(dir.clone());
        // Nothing to do before the store exists.
        assert_eq!(store.remove_stale_incoming(SystemTime::now())?, 0);

        let live = store.incoming()?;
        std::fs::write(live.path().join("x.tar.gz"), b"half")?;
        // What a killed import leaves: a directory nobody holds, an old-style temporary file.
        let dead = dir.join(".incoming-dead");
        std::fs::create_dir(&dead)?;
        std::fs::write(dead.join("x.tar.gz"), b"half")?;
        std::fs::write(dir.join(".incoming-file"), b"half")?;
        let blob = dir.join("0".repeat(128));
        std::fs::write(&blob, b"not ours to judge")?;
        let opened = SystemTime::now() + std::time::Duration::from_secs(1);

        // Younger than the opening: kept, whoever holds it.
        assert_eq!(store.remove_stale_incoming(SystemTime::UNIX_EPOCH)?, 0);
        assert_eq!(store.remove_stale_incoming(opened)?, 2);
        assert!(!dead.exists());
        assert!(!dir.join(".incoming-file").exists());
        assert!(live.path().join("x.tar.gz").exists());
        assert!(blob.exists());
        drop(live);
        assert_eq!(std::fs::read_dir(&dir)?.count(), 1);
        Ok(())
    }
}
