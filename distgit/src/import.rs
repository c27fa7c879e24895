//! Importing an SRPM (seed step 7): its spec and patches go into the package's git repository,
//! every other file into the lookaside store, listed in a `sources` file next to the spec.
//!
//! The same tree is committed to each requested branch (one per chroot family, like
//! `f41` or `epel9`). A branch whose head already has that tree keeps its commit, so importing
//! the same SRPM again, say after a lost acknowledgement, is a no-op that answers the same.
//!
//! A process may be killed anywhere in an import (the scheduler is restarted, an operator's
//! `ferrocopr distgit-import` is interrupted), so the order is: unpack, store every source in the lookaside, write the git objects, and
//! only then move the branches, each in one atomic ref update. A repository is created under a
//! temporary name and renamed into place, and imports lock it (across processes) while they
//! write, so lock files git left behind when a writer died can be removed rather than block
//! every later import. (Sources are synced to disk; git objects are not, libgit2 leaves that
//! off by default, so a power loss can still lose the last import's commits.)

use anyhow::{Context as _, bail, ensure};
use ferrocopr_builder::rpm::{self, UnpackedFile};
use ferrocopr_builder::sources::{self, SOURCES_FILE, SourceEntry};
use ferrocopr_schema::model::ProjectRef;
use ferrocopr_schema::model::{
    NameRule, is_valid_dirname, is_valid_name, is_valid_owner, is_valid_package_name,
};
use git2::{ErrorCode, Oid, Reference, Repository, RepositoryInitOptions, Signature};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::lookaside::Lookaside;
use crate::{BranchCommit, Import};

const COMMITTER_NAME: &str = "ferrocopr-distgit";
const COMMITTER_EMAIL: &str = "distgit@localhost";

/// The file in each repository that imports lock (`flock`) while they write to it, across
/// processes; no `.lock` suffix, which would make it look like one of git's own.
const IMPORT_LOCK: &str = "ferrocopr-import";

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
        ("owner", &project.owner, is_valid_owner),
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
    let (repo, _lock) = open_locked(&path, branches.first().map(String::as_str))?;
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

/// Opens the package's repository, creating it first if need be, and locks it against
/// imports in other processes until the returned file is dropped.
fn open_locked(path: &Path, first_branch: Option<&str>) -> anyhow::Result<(Repository, File)> {
    if !path.exists() {
        init_atomically(path, first_branch)?;
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join(IMPORT_LOCK))
        .and_then(|f| f.lock().map(|()| f))
        .with_context(|| format!("cannot lock {}", path.display()))?;
    // Every writer holds that lock, so a lock file of git's found now was left by a writer
    // that died holding it; it would make every later commit to that branch fail.
    for dir in [path.to_path_buf(), path.join("refs").join("heads")] {
        remove_git_lock_files(&dir)?;
    }
    let repo =
        Repository::open_bare(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok((repo, lock))
}

/// Creates the bare repository under a temporary name beside `path` and renames it into
/// place, so a repository is either complete or absent, whenever the process dies.
fn init_atomically(path: &Path, first_branch: Option<&str>) -> anyhow::Result<()> {
    let parent = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    // A leading dot keeps it from ever matching a package name, hence from being served.
    let tmp = tempfile::Builder::new()
        .prefix(".init-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true);
    // A HEAD on a branch that exists lets a plain `git clone` check something out.
    if let Some(branch) = first_branch {
        opts.initial_head(branch);
    }
    Repository::init_opts(tmp.path(), &opts)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let tmp = tmp.keep();
    match std::fs::rename(&tmp, path) {
        Ok(()) => {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync {}", parent.display()))?;
            Ok(())
        }
        // Another process made it first: theirs is as good as ours.
        Err(_) if path.join("HEAD").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e).with_context(|| format!("cannot create {}", path.display()))
        }
    }
}

fn remove_git_lock_files(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_name().as_encoded_bytes().ends_with(b".lock") && entry.file_type()?.is_file()
        {
            tracing::warn!(file = %entry.path().display(), "removing a lock file a dead import left");
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
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
