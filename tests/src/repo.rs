//! Local git repositories that stand in for a user's GitHub repository: the fake GitHub serves
//! their files, and ferrocopr's builders clone them through a `file://` URL.

use std::path::{Path, PathBuf};

/// The branch every test repository starts on.
pub const BRANCH: &str = "main";

/// A git repository with a work tree, made by a test.
pub struct TestRepo {
    repo: git2::Repository,
    path: PathBuf,
}

impl TestRepo {
    /// Initialises a repository at `dir` (created if missing) on branch [`BRANCH`].
    pub fn new(dir: impl AsRef<Path>) -> TestRepo {
        let path = dir.as_ref().to_path_buf();
        let mut options = git2::RepositoryInitOptions::new();
        options.initial_head(BRANCH).mkpath(true);
        let repo = git2::Repository::init_opts(&path, &options)
            .unwrap_or_else(|e| panic!("git init {}: {e}", path.display()));
        TestRepo { repo, path }
    }

    /// Writes `contents` to `relative` in the work tree, creating directories as needed.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) {
        let file = self.path.join(relative);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&file, contents).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    }

    /// Commits the whole work tree on the current branch; returns the commit's sha.
    pub fn commit(&self, message: &str) -> String {
        let mut index = self.repo.index().expect("open the git index");
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .expect("git add everything");
        index.write().expect("write the git index");
        let tree_id = index.write_tree().expect("write the tree");
        let tree = self.repo.find_tree(tree_id).expect("find the written tree");
        let signature =
            git2::Signature::now("Alice", "alice@example.org").expect("make a commit signature");
        let parent = self
            .repo
            .head()
            .ok()
            .and_then(|head| head.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self
            .repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .expect("git commit");
        id.to_string()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The URL a builder clones, as a push webhook's `repository.clone_url` carries it.
    pub fn clone_url(&self) -> String {
        format!("file://{}", self.path.display())
    }
}
