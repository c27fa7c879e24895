//! Fetching the sources of a task: a git clone checked out at one commit, detached.
//!
//! Both tasks start here: the SRPM task from the packager's repository, the RPM task from the
//! package's DistGit repository.

use anyhow::{Context as _, anyhow};
use git2::{Oid, Repository, build::CheckoutBuilder};
use std::path::Path;

/// Clones `url` into `dest` and checks out `committish` there; returns the commit.
pub(crate) fn clone_at(url: &str, committish: &str, dest: &Path) -> anyhow::Result<Oid> {
    println!("==> cloning {url}");
    let repo = Repository::clone(url, dest).with_context(|| format!("cannot clone {url}"))?;
    let commit = resolve(&repo, committish)
        .with_context(|| format!("cannot find {committish:?} in {url}"))?;
    println!("==> checking out {committish} ({commit})");
    let object = repo.find_object(commit, None)?;
    // Force, because the clone checked out the default branch and we replace it whole.
    repo.checkout_tree(&object, Some(CheckoutBuilder::new().force()))
        .with_context(|| format!("cannot check out {commit}"))?;
    repo.set_head_detached(commit)
        .with_context(|| format!("cannot check out {commit}"))?;
    Ok(commit)
}

/// A commit id, a tag, a local branch or a branch of the clone's origin; else a ref or commit
/// fetched by name (a commit that no branch holds, as forges have for pull requests).
fn resolve(repo: &Repository, committish: &str) -> anyhow::Result<Oid> {
    let peel = |spec: &str| -> Option<Oid> {
        let obj = repo.revparse_single(spec).ok()?;
        obj.peel_to_commit().ok().map(|c| c.id())
    };
    if let Some(id) = peel(committish).or_else(|| peel(&format!("origin/{committish}"))) {
        return Ok(id);
    }
    let mut origin = repo.find_remote("origin")?;
    origin
        .fetch(&[committish], None, None)
        .map_err(|e| anyhow!("no such branch, tag or commit ({e})"))?;
    peel("FETCH_HEAD").ok_or_else(|| anyhow!("no such branch, tag or commit"))
}
