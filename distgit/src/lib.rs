//! DistGit: the source cache between the SRPM build and the RPM builds (seed step 7,
//! REFERENCE §8).
//!
//! After the SRPM task succeeds, the scheduler imports its `.src.rpm` here with
//! [`DistGit::import_srpm`], then explodes the build into one RPM task per chroot, each naming
//! the package's repository ([`DistGit::http_repo_url`]), the commit of its chroot family's
//! branch, and the lookaside cache. [`DistGit::router`] serves both over HTTP: builders clone
//! the repository ([`smart_http`]) and download the sources, checking their SHA-512
//! (`ferrocopr_builder`'s RPM task).
//!
//! On disk, under the root:
//! - `repos/<owner>/<dirname>/<package>.git`: one bare repository per package, one branch per
//!   chroot family, holding the spec, the patches and the `sources` file ([`import`]);
//! - `lookaside/sha512/<hash>`: every other file of every SRPM, stored once by content
//!   ([`lookaside`]);
//! - `lookaside/sha512/.incoming-*`: imports in progress, each unpacking its SRPM there; what a
//!   killed import leaves is removed by the next [`DistGit::new`].
//!
//! An import stores its sources before it moves any branch, and each blob, each new
//! repository and each ref appears in one rename, so whenever a process dies every branch
//! names a complete commit whose sources are all in the lookaside, and importing again
//! finishes the job.

mod import;
mod lookaside;
mod smart_http;

use axum::Router;
use ferrocopr_schema::model::ProjectRef;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use lookaside::Lookaside;

/// The DistGit store rooted at one directory.
pub struct DistGit {
    root: PathBuf,
    /// Two imports into the same repository would race on its branch heads; imports are rare
    /// and short next to builds, so one at a time is simplest. (Across processes, each
    /// repository is also locked while an import writes to it.)
    import_lock: Mutex<()>,
}

/// What an import made: the package's NEVR and, per branch, the commit builders check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub package: String,
    pub epoch: Option<i64>,
    pub version: String,
    pub release: String,
    pub commits: Vec<BranchCommit>,
}

/// The commit a branch points to after an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchCommit {
    pub branch: String,
    /// Hex commit id.
    pub commit: String,
}

impl DistGit {
    /// Opens (lazily creates) the store at `root`, removing what imports killed before now
    /// left behind; a failure there is logged, not fatal, since it only costs disk space.
    pub fn new(root: PathBuf) -> DistGit {
        let opened = SystemTime::now();
        // URLs handed to builders must not depend on the scheduler's working directory.
        let root = std::path::absolute(&root).unwrap_or(root);
        let distgit = DistGit {
            root,
            import_lock: Mutex::new(()),
        };
        match distgit.lookaside().remove_stale_incoming(opened) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed what interrupted imports left"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot clean the lookaside"),
        }
        distgit
    }

    /// Blocking (call it in spawn_blocking). Imports the SRPM into
    /// `<root>/repos/<owner>/<dirname>/<package>.git` (bare, git2), committing the same tree to
    /// each of `branches` (e.g. ["f41"]).
    ///
    /// Idempotent: importing the same SRPM again changes nothing and returns the same commits.
    pub fn import_srpm(
        &self,
        project: &ProjectRef,
        dirname: &str,
        srpm: &Path,
        branches: &[String],
    ) -> anyhow::Result<Import> {
        // A panic in another import leaves nothing half-done that the lock protects: git refs
        // and lookaside blobs are each updated atomically.
        let _guard = self
            .import_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        import::import(
            &self.repos_dir(),
            &self.lookaside(),
            project,
            dirname,
            srpm,
            branches,
        )
    }

    /// The URL builders clone the package's repository from:
    /// `<base>/git/<owner>/<dir>/<pkg>.git`, where `base` is where [`DistGit::router`] is
    /// served (e.g. `http://host:8080/distgit`).
    pub fn http_repo_url(base: &str, owner: &str, dirname: &str, package: &str) -> String {
        let base = base.trim_end_matches('/');
        format!("{base}/git/{owner}/{dirname}/{package}.git")
    }

    /// axum Router serving, relative to where the caller nests it:
    /// - `GET /lookaside/pkgs/{owner}/{dir}/{pkg}/{file}/sha512/{hash}/{filename}`;
    /// - `/git/{owner}/{dir}/{pkg}.git/…`, git's smart HTTP protocol, fetch and clone only.
    pub fn router(&self) -> Router {
        lookaside::router(Arc::new(self.lookaside())).merge(smart_http::router(self.repos_dir()))
    }

    fn repos_dir(&self) -> PathBuf {
        self.root.join("repos")
    }

    fn lookaside(&self) -> Lookaside {
        Lookaside::new(self.root.join("lookaside").join("sha512"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_urls() {
        assert_eq!(
            DistGit::http_repo_url(
                "http://127.0.0.1:8080/distgit/",
                "alice",
                "hello:pr:3",
                "gtk+"
            ),
            "http://127.0.0.1:8080/distgit/git/alice/hello:pr:3/gtk+.git"
        );
    }

    #[test]
    fn relative_roots_become_absolute() {
        let dg = DistGit::new(PathBuf::from("distgit"));
        assert!(dg.root.is_absolute());
    }
}
