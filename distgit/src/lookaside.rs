//! The lookaside store: source files (tarballs and anything else that is not spec or patch),
//! kept once by content under `<root>/lookaside/sha512/<hash>` and served to builders.
//!
//! The import writes blobs here; the RPM task downloads them through [`router`] with Copr's
//! URL layout, in which owner, directory, package and file name only make the URL readable:
//! the hash alone selects the content, so a tarball shared by many projects is stored once.
//! Every read recomputes the hash, so a corrupted disk never reaches a build.

use anyhow::{Context as _, bail};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ferrocopr_builder::paths::is_plain_file_name;
use ferrocopr_builder::sources::{copy_hashing, is_sha512_hex, sha512_of_file};
use ferrocopr_schema::model::{is_valid_dirname, is_valid_name, is_valid_package_name};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The content-addressed blob directory.
pub(crate) struct Lookaside {
    dir: PathBuf,
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

    /// Stores the file at `source` and returns its SHA-512.
    ///
    /// A blob already present and intact is left alone; a missing or corrupt one is written
    /// to a temporary file in the same directory, synced and renamed into place, so a reader
    /// never sees a partial blob and a crash never leaves one under a valid name.
    pub(crate) fn store(&self, source: &Path) -> anyhow::Result<String> {
        let sha512 = sha512_of_file(source)?;
        let target = self.blob_path(&sha512);
        if target.exists() {
            if sha512_of_file(&target)? == sha512 {
                return Ok(sha512);
            }
            tracing::warn!(sha512, "lookaside blob is corrupt; writing it again");
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        // The temporary name starts with a dot, which no hash does, so it can never be served.
        let mut tmp = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(&self.dir)
            .context("cannot create a temporary lookaside file")?;
        let input =
            File::open(source).with_context(|| format!("cannot open {}", source.display()))?;
        let written =
            copy_hashing(input, tmp.as_file_mut()).context("cannot write a lookaside blob")?;
        if written != sha512 {
            bail!("{} changed while it was being imported", source.display());
        }
        tmp.as_file()
            .sync_all()
            .context("cannot sync a lookaside blob")?;
        tmp.persist(&target)
            .with_context(|| format!("cannot store {}", target.display()))?;
        // The rename is only durable once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", self.dir.display()))?;
        Ok(sha512)
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
    let well_formed = is_valid_name(&owner)
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

    #[test]
    fn stores_once_and_verifies() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let store = Lookaside::new(tmp.path().join("sha512"));
        let src = tmp.path().join("a.tar.gz");
        std::fs::write(&src, b"tarball")?;
        let h = store.store(&src)?;
        assert!(is_sha512_hex(&h));
        assert!(matches!(store.read_verified(&h)?, Blob::Found(d) if d == b"tarball"));
        // Same content again: same blob, nothing else left in the directory.
        assert_eq!(store.store(&src)?, h);
        assert_eq!(std::fs::read_dir(tmp.path().join("sha512"))?.count(), 1);

        std::fs::write(store.blob_path(&h), b"bit rot")?;
        assert!(matches!(store.read_verified(&h)?, Blob::Corrupt { .. }));
        // Storing it again repairs it.
        store.store(&src)?;
        assert!(matches!(store.read_verified(&h)?, Blob::Found(_)));
        assert!(matches!(
            store.read_verified(&"0".repeat(128))?,
            Blob::Missing
        ));
        Ok(())
    }
}
