//! Importing an SRPM (seed step 7): its spec and patches go into the package's git repository,
//! every other file into the lookaside store, listed in a `sources` file next to the spec.
//!
//! The same tree is committed to each requested branch (one per chroot family, like
//! `f41` or `epel9`). A branch whose head already has that tree keeps its commit, so importing
//! the same SRPM again, say after a lost acknowledgement, is a no-op that answers the same.

use anyhow::{Context as _, bail, ensure};
use ferrocopr_builder::rpm::{self, UnpackedFile};
use ferrocopr_builder::sources::{self, SOURCES_FILE, SourceEntry};
use ferrocopr_schema::model::ProjectRef;
use ferrocopr_schema::model::{NameRule, is_valid_dirname, is_valid_name, is_valid_package_name};
use git2::{ErrorCode, Oid, Reference, Repository, RepositoryInitOptions, Signature};
use std::path::{Path, PathBuf};

use crate::lookaside::Lookaside;
use crate::{BranchCommit, Import};

const COMMITTER_NAME: &str = "ferrocopr-distgit";
const COMMITTER_EMAIL: &str = "distgit@localhost";

/// Git's mode for a plain, non-executable file.
const FILE_MODE: i32 = 0o100_644;

/// Where the bare repository of a package lives under `repos`.
pub(crate) fn repo_path(repos: &Path, owner: &str, dirname: &str, package: &str) -> PathBuf {
    repos
        .join(owner)
        .join(dirname)
        .join(format!("{package}.git"))
}

/// The files of an unpacked SRPM, sorted by where they go.
#[derive(Debug, Default)]
struct Unpacked {
    spec: Option<String>,
    /// Spec and patches: what packagers review in git.
    in_git: Vec<String>,
    /// Everything else, usually tarballs, with their hashes.
    in_lookaside: Vec<SourceEntry>,
}

pub(crate) fn import(
    repos: &Path,
    lookaside: &Lookaside,
    project: &ProjectRef,
    dirname: &str,
    srpm: &Path,
    branches: &[String],
) -> anyhow::Result<Import> {
    // These become directories; anything else could escape `repos`.
    let checks: [(&str, &str, NameRule); 3] = [
        ("owner", &project.owner, is_valid_name),
        ("project", &project.project, is_valid_name),
        ("directory", dirname, is_valid_dirname),
    ];
    for (what, value, valid) in checks {
        ensure!(valid(value), "invalid {what} name {value:?}");
    }
    ensure!(
        dirname == project.project || dirname.starts_with(&format!("{}:", project.project)),
        "directory {dirname:?} does not belong to project {project}"
    );
    ensure!(!branches.is_empty(), "no branch to import into");
    for branch in branches {
        ensure!(
            is_valid_name(branch) && Reference::is_valid_name(&format!("refs/heads/{branch}")),
            "invalid branch name {branch:?}"
        );
    }

    let info = rpm::query(srpm)?;
    ensure!(info.is_source, "{} is not a source RPM", srpm.display());
    let nevra = info.nevra;
    ensure!(
        is_valid_package_name(&nevra.name),
        "invalid package name {:?} in {}",
        nevra.name,
        srpm.display()
    );
    let span = tracing::info_span!(
        "import",
        project = %project,
        dirname,
        package = %nevra.name,
    );
    let _entered = span.enter();

    // Unpacked next to the blobs, so that storing a source is a rename.
    let work = lookaside.incoming()?;
    let unpacked = classify(rpm::unpack_srpm(srpm, work.path())?)?;
    // Every blob is in place before any ref can name it.
    for entry in &unpacked.in_lookaside {
        lookaside.store(&work.path().join(&entry.filename), &entry.sha512)?;
    }
    let entries = unpacked.in_lookaside;

    let path = repo_path(repos, &project.owner, dirname, &nevra.name);
    let repo = open_or_init(&path, branches.first().map(String::as_str))?;
    let tree = write_tree(&repo, work.path(), &unpacked.in_git, &entries)?;

    let message = format!("Import {}-{}-{}", nevra.name, nevra.version, nevra.release);
    let mut commits = Vec::new();
    for branch in branches {
        let commit = commit_to_branch(&repo, branch, tree, &message)?;
        commits.push(BranchCommit {
            branch: branch.clone(),
            commit: commit.to_string(),
        });
    }
    tracing::info!(?commits, sources = entries.len(), "imported");
    Ok(Import {
        package: nevra.name,
        epoch: nevra.epoch,
        version: nevra.version,
        release: nevra.release,
        commits,
    })
}

/// Sorts the unpacked files (regular files with plain names, as the unpacking guarantees);
/// refuses what a flat SRPM should not contain.
fn classify(files: Vec<UnpackedFile>) -> anyhow::Result<Unpacked> {
    let mut out = Unpacked::default();
    for UnpackedFile { name, sha512, .. } in files {
        ensure!(
            name != SOURCES_FILE,
            "the SRPM contains a file named {SOURCES_FILE:?}, which DistGit writes itself"
        );
        if name.ends_with(".spec") {
            if let Some(first) = &out.spec {
                bail!("the SRPM contains two specs, {first} and {name}");
            }
            out.spec = Some(name.clone());
            out.in_git.push(name);
        } else if name.ends_with(".patch") || name.ends_with(".diff") {
            out.in_git.push(name);
        } else {
            out.in_lookaside.push(SourceEntry {
                filename: name,
                sha512,
            });
        }
    }
    ensure!(out.spec.is_some(), "the SRPM contains no spec");
    out.in_git.sort();
    out.in_lookaside.sort_by(|a, b| a.filename.cmp(&b.filename));
    Ok(out)
}

fn open_or_init(path: &Path, first_branch: Option<&str>) -> anyhow::Result<Repository> {
    match Repository::open_bare(path) {
        Ok(repo) => return Ok(repo),
        Err(e) if e.code() == ErrorCode::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).mkpath(true);
    // A HEAD on a branch that exists lets a plain `git clone` check something out.
    if let Some(branch) = first_branch {
        opts.initial_head(branch);
    }
    Repository::init_opts(path, &opts).with_context(|| format!("cannot create {}", path.display()))
}

/// The flat tree of the import: spec, patches and `sources`.
fn write_tree(
    repo: &Repository,
    dir: &Path,
    in_git: &[String],
    entries: &[SourceEntry],
) -> anyhow::Result<Oid> {
    let mut builder = repo.treebuilder(None)?;
    for name in in_git {
        let data = std::fs::read(dir.join(name)).with_context(|| format!("cannot read {name}"))?;
        builder.insert(name, repo.blob(&data)?, FILE_MODE)?;
    }
    let sources = sources::render(entries);
    builder.insert(SOURCES_FILE, repo.blob(sources.as_bytes())?, FILE_MODE)?;
    Ok(builder.write()?)
}

/// Points `branch` at a commit with `tree`: its head if that already has the tree, else a new
/// commit on top of the head.
fn commit_to_branch(
    repo: &Repository,
    branch: &str,
    tree: Oid,
    message: &str,
) -> anyhow::Result<Oid> {
    let refname = format!("refs/heads/{branch}");
    let head = match repo.find_reference(&refname) {
        Ok(r) => Some(r.peel_to_commit()?),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read branch {branch}")),
    };
    if let Some(head) = &head
        && head.tree_id() == tree
    {
        return Ok(head.id());
    }
    let sig = Signature::now(COMMITTER_NAME, COMMITTER_EMAIL)?;
    let tree = repo.find_tree(tree)?;
    let parents: Vec<&git2::Commit<'_>> = head.iter().collect();
    // libgit2 moves the ref only if it still points at the first parent: a compare-and-set.
    let commit = repo
        .commit(Some(&refname), &sig, &sig, message, &tree, &parents)
        .with_context(|| format!("cannot commit to branch {branch}"))?;
    Ok(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<UnpackedFile> {
        names
            .iter()
            .map(|name| UnpackedFile {
                name: (*name).to_owned(),
                size: 0,
                sha512: name.repeat(128).chars().take(128).collect(),
            })
            .collect()
    }

    #[test]
    fn classifies_unpacked_files() -> anyhow::Result<()> {
        let u = classify(files(&[
            "hello.spec",
            "fix.patch",
            "b.diff",
            "logo.png",
            "hello-1.0.tar.gz",
        ]))?;
        assert_eq!(u.spec.as_deref(), Some("hello.spec"));
        assert_eq!(u.in_git, ["b.diff", "fix.patch", "hello.spec"]);
        let names: Vec<&str> = u.in_lookaside.iter().map(|e| e.filename.as_str()).collect();
        assert_eq!(names, ["hello-1.0.tar.gz", "logo.png"]);
        assert_eq!(u.in_lookaside[1].sha512, "logo.png".repeat(16));
        Ok(())
    }

    #[test]
    fn refuses_odd_srpms() {
        let err = |names: &[&str]| {
            classify(files(names))
                .map(|u| format!("{u:?}"))
                .expect_err("must be refused")
                .to_string()
        };
        assert_eq!(err(&["a.tar.gz"]), "the SRPM contains no spec");
        assert_eq!(
            err(&["a.spec", "b.spec"]),
            "the SRPM contains two specs, a.spec and b.spec"
        );
        assert!(err(&["a.spec", SOURCES_FILE]).contains("which DistGit writes itself"));
    }
}
