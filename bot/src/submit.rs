//! Builds requested from outside a forge (seed step 1, "using web-UI or API"): from a URL, from
//! an uploaded SRPM, from a git repository (Copr's SCM method), from a custom script, from a
//! package of a dist-git instance, and rebuilds of an existing build from our DistGit alone
//! (neither the forge nor the original SRPM is needed again).
//!
//! The API (issue 7) and the command line call these; webhooks go through [`crate::events`].
//! Each function checks what the user gave, keeps whatever must outlive the request (an
//! upload), and writes one build request; the scheduler does the rest as for any build.

use crate::texts;
use anyhow::Context as _;
use ferrocopr_schema::copr_yaml::SrpmMethod;
use ferrocopr_schema::db::BuildRequest;
use ferrocopr_schema::model::{Bconds, DistgitInstance};
use ferrocopr_schema::model::{
    OWN_DISTGIT, is_valid_dirname, is_valid_name, is_valid_owner, is_valid_package_name,
};
use ferrocopr_schema::{BuildId, BuildSource, Db, ProjectRef};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;

/// What taking submissions needs: the database, the instance's chroots and dist-git instances,
/// the upload store, and the scheduler's bell.
#[derive(Clone)]
pub struct Submissions {
    pub db: Db,
    pub chroots: Arc<[String]>,
    pub distgit_instances: Arc<BTreeMap<String, DistgitInstance>>,
    /// Uploaded SRPMs as `<token>/<file>`, served under `/uploads/` to builders.
    pub uploads_dir: PathBuf,
    pub scheduler_wake: Arc<Notify>,
}

/// Who asks for a build of what, where.
#[derive(Debug, Clone)]
pub struct Submission {
    pub project: ProjectRef,
    /// The CoprDir; `None`: the project's main directory.
    pub dirname: Option<String>,
    pub chroots: Vec<String>,
    pub submitter: String,
    pub enable_net: bool,
    /// Seconds a task may run; `None`: the instance's default.
    pub timeout: Option<u64>,
    /// `rpmbuild --with`/`--without` for the RPM builds.
    pub bconds: Bconds,
    /// Queued after everyone's normal builds (Copr's `--background`, for mass rebuilds).
    pub background: bool,
}

/// A git repository to build from, as the API's `create/scm` gives it.
#[derive(Debug, Clone)]
pub struct ScmSource<'a> {
    pub clone_url: &'a str,
    /// A branch, tag or commit; empty: the repository's default branch.
    pub committish: &'a str,
    /// Where in the repository the package lives; empty: the top.
    pub subdirectory: &'a str,
    /// The spec, relative to `subdirectory`; empty: the one `*.spec` there, found by the builder.
    pub spec: &'a str,
    pub srpm: SrpmMethod,
}

/// A script that makes the sources, as the API's `create/custom` gives it.
#[derive(Debug, Clone)]
pub struct CustomSource<'a> {
    pub script: &'a str,
    /// The chroot Copr would run the script in; recorded only (no mock chroots here).
    pub chroot: Option<&'a str>,
    /// Packages the script needs, separated by white space.
    pub builddeps: &'a str,
    /// Where the script leaves the spec and its sources; empty: its working directory.
    pub resultdir: &'a str,
}

/// The URL schemes a builder clones from. `file://` reaches only what the builder host itself
/// holds, which a custom script or a spec's `%prep` can read anyway; tests build from local
/// repositories this way, as forges' webhooks give them.
const CLONE_SCHEMES: [&str; 4] = ["https://", "http://", "git://", "file://"];

/// What a checkout is built at when the request names no committish: the clone's default branch.
const DEFAULT_COMMITTISH: &str = "HEAD";

/// A path inside a checkout or a work directory as the user wrote it: relative, without `..`,
/// without NUL. Empty is allowed (the directory itself); the builder checks again.
pub fn is_inner_path(path: &str) -> bool {
    !path.starts_with('/') && !path.contains('\0') && path.split('/').all(|part| part != "..")
}

/// `subdirectory/spec`, either part possibly empty.
fn spec_path(subdirectory: &str, spec: &str) -> String {
    match (subdirectory.trim_end_matches('/'), spec) {
        ("", spec) => spec.to_owned(),
        (dir, "") => format!("{dir}/"),
        (dir, spec) => format!("{dir}/{spec}"),
    }
}

/// Why a submission was not taken.
#[derive(Debug)]
pub enum SubmitError {
    /// What the user gave is wrong; the text says what, for the user.
    Invalid(String),
    /// Ours: the details go to the log.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for SubmitError {
    fn from(e: anyhow::Error) -> SubmitError {
        SubmitError::Internal(e)
    }
}

impl From<ferrocopr_schema::db::DbError> for SubmitError {
    fn from(e: ferrocopr_schema::db::DbError) -> SubmitError {
        SubmitError::Internal(e.into())
    }
}

type Submitted = Result<BuildId, SubmitError>;

fn invalid(text: String) -> SubmitError {
    SubmitError::Invalid(text)
}

impl Submissions {
    /// A build of the `.src.rpm` or `.spec` at `url` (Copr's `build` with a URL).
    pub async fn from_url(&self, submission: Submission, url: &str) -> Submitted {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let remote = url.starts_with("http://") || url.starts_with("https://");
        if !remote || !(path.ends_with(".src.rpm") || path.ends_with(".spec")) {
            return Err(invalid(texts::bad_source_url(url)));
        }
        let source = BuildSource::Url {
            url: url.to_owned(),
        };
        self.request(submission, source).await
    }

    /// A build of an SRPM the user uploaded. The file is kept under the upload store, named by
    /// its content, before the build is requested, so a build never points at a missing file.
    pub async fn from_upload(
        &self,
        submission: Submission,
        filename: &str,
        srpm: &[u8],
    ) -> Submitted {
        let plain = !filename.is_empty()
            && filename.len() <= 255
            && !filename.starts_with('.')
            && !filename.contains(['/', '\\', '\0', '%', '?', '#']);
        if !plain || !filename.ends_with(".src.rpm") {
            return Err(invalid(texts::bad_upload_name(filename)));
        }
        let token = hex::encode(&Sha256::digest(srpm)[..16]);
        let dir = self.uploads_dir.join(&token);
        let target = dir.join(filename);
        if !tokio::fs::try_exists(&target).await.unwrap_or(false) {
            tokio::fs::create_dir_all(&dir)
                .await
                .with_context(|| format!("creating {}", dir.display()))?;
            // Written aside and renamed, so a builder never downloads half an upload.
            let partial = dir.join(format!(".{filename}.partial"));
            tokio::fs::write(&partial, srpm)
                .await
                .with_context(|| format!("writing {}", partial.display()))?;
            tokio::fs::rename(&partial, &target)
                .await
                .with_context(|| format!("storing {}", target.display()))?;
        }
        let source = BuildSource::Upload {
            path: format!("{token}/{filename}"),
        };
        self.request(submission, source).await
    }

    /// A build of a git repository at a committish (Copr's SCM method, `copr-cli buildscm`).
    pub async fn from_scm(&self, submission: Submission, scm: ScmSource<'_>) -> Submitted {
        let url = scm.clone_url.trim();
        let schemed = CLONE_SCHEMES
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .is_some_and(|rest| !rest.is_empty());
        if !schemed || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(invalid(texts::bad_clone_url(url)));
        }
        let committish = match scm.committish.trim() {
            "" => DEFAULT_COMMITTISH,
            c if c.starts_with('-') || c.contains(|c: char| c.is_whitespace() || c == '\0') => {
                return Err(invalid(texts::bad_committish(c)));
            }
            c => c,
        };
        for (field, path) in [("subdirectory", scm.subdirectory), ("spec", scm.spec)] {
            if !is_inner_path(path) {
                return Err(invalid(texts::bad_inner_path(field, path)));
            }
        }
        let source = BuildSource::Scm {
            clone_url: url.to_owned(),
            committish: committish.to_owned(),
            spec: spec_path(scm.subdirectory, scm.spec),
            srpm: scm.srpm,
        };
        self.request(submission, source).await
    }

    /// A build of what a script makes from nothing (Copr's custom method,
    /// `copr-cli buildcustom`).
    pub async fn from_custom(&self, submission: Submission, custom: CustomSource<'_>) -> Submitted {
        if custom.script.trim().is_empty() {
            return Err(invalid(texts::EMPTY_SCRIPT.to_owned()));
        }
        if !is_inner_path(custom.resultdir) {
            return Err(invalid(texts::bad_inner_path(
                "resultdir",
                custom.resultdir,
            )));
        }
        let source = BuildSource::Custom {
            script: custom.script.to_owned(),
            chroot: custom
                .chroot
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            builddeps: custom
                .builddeps
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            resultdir: custom.resultdir.trim_end_matches('/').to_owned(),
        };
        self.request(submission, source).await
    }

    /// A build of `package` from the dist-git instance `instance` at `committish` (the instance's
    /// default branch when `None`), like `copr-cli build-distgit`.
    pub async fn from_distgit(
        &self,
        submission: Submission,
        instance: &str,
        package: &str,
        committish: Option<&str>,
    ) -> Submitted {
        let Some(known) = self.distgit_instances.get(instance) else {
            let names: Vec<&str> = self.distgit_instances.keys().map(String::as_str).collect();
            return Err(invalid(texts::unknown_distgit(instance, &names)));
        };
        if !is_valid_package_name(package) {
            return Err(invalid(texts::bad_package_name(package)));
        }
        let committish = committish.unwrap_or(&known.default_committish);
        if committish.is_empty() || committish.starts_with('-') || committish.contains(['\0', ' '])
        {
            return Err(invalid(texts::bad_committish(committish)));
        }
        let source = BuildSource::Distgit {
            instance: instance.to_owned(),
            namespace: None,
            package: package.to_owned(),
            committish: committish.to_owned(),
        };
        self.request(submission, source).await
    }

    /// A new build of what `build` built, from our DistGit alone: the commit its chroots were
    /// built from and the sources in the lookaside cache. Same project, directory and chroots.
    pub async fn rebuild(&self, build: BuildId, submitter: &str) -> Submitted {
        let Some(old) = self.db.build(build).await? else {
            return Err(invalid(texts::BUILD_NOT_FOUND.to_owned()));
        };
        let chroots = self.db.build_chroots(build).await?;
        let commit = chroots.iter().find_map(|c| c.git_hash.clone());
        let (Some(package), Some(commit)) = (old.pkg_name.clone(), commit) else {
            return Err(invalid(texts::not_imported(build.0)));
        };
        let submission = Submission {
            dirname: Some(old.dirname.clone()),
            chroots: chroots.into_iter().map(|c| c.chroot).collect(),
            submitter: submitter.to_owned(),
            enable_net: old.enable_net,
            timeout: old.timeout,
            bconds: old.bconds.clone(),
            background: old.background,
            project: old.project.clone(),
        };
        let source = BuildSource::Distgit {
            instance: OWN_DISTGIT.to_owned(),
            namespace: Some(format!("{}/{}", old.project.owner, old.dirname)),
            package,
            committish: commit,
        };
        self.request(submission, source).await
    }

    async fn request(&self, submission: Submission, source: BuildSource) -> Submitted {
        let Submission {
            project,
            dirname,
            chroots,
            submitter,
            enable_net,
            timeout,
            bconds,
            background,
        } = submission;
        if !is_valid_owner(&project.owner) || !is_valid_name(&project.project) {
            return Err(invalid(texts::bad_project_name(&project.to_string())));
        }
        let dirname = dirname.unwrap_or_else(|| project.project.clone());
        let in_project = dirname == project.project
            || dirname
                .strip_prefix(&project.project)
                .is_some_and(|rest| rest.starts_with(':'));
        if !is_valid_dirname(&dirname) || !in_project {
            return Err(invalid(texts::bad_dirname(&dirname)));
        }
        if chroots.is_empty() {
            return Err(invalid(texts::NO_CHROOTS.to_owned()));
        }
        if let Some(unknown) = chroots.iter().find(|c| !self.chroots.contains(c)) {
            return Err(invalid(texts::unknown_chroot(unknown)));
        }
        let request = BuildRequest {
            project,
            dirname,
            chroots,
            submitter,
            source,
            trigger_key: None,
            origin: None,
            cancel_superseded: false,
            success_comment: false,
            background,
            enable_net,
            timeout,
            bconds,
        };
        let id = self
            .db
            .request_build(&request)
            .await?
            .context("a request without a trigger key always makes a build")?;
        self.scheduler_wake.notify_one();
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_paths_join_the_subdirectory() {
        assert_eq!(spec_path("", "hello.spec"), "hello.spec");
        assert_eq!(spec_path("pkg/", "hello.spec"), "pkg/hello.spec");
        assert_eq!(spec_path("pkg", ""), "pkg/");
        assert_eq!(spec_path("", ""), "");
        assert!(is_inner_path("a/b.spec") && is_inner_path(""));
        assert!(!is_inner_path("/etc/x.spec") && !is_inner_path("a/../../b"));
    }
}
