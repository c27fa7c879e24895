//! The builder task: what the scheduler hands to the builder program (seed steps 4-5 and 10-11).
//!
//! It is serialized to JSON and given to `ferrocopr builder` on the builder host, like Copr's
//! task JSON (REFERENCE §9). The builder writes its results next to it: the packages,
//! `results.json`, `success` on success, and `builder-live.log`.

use crate::model::{Bconds, BuildSource, DistgitLocation};
use serde::{Deserialize, Serialize};

/// One task for one builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderTask {
    /// `<build_id>` for the SRPM task, `<build_id>-<chroot>` for an RPM task.
    pub task_id: String,
    pub build_id: i64,
    /// The chroot, or `srpm-builds` for the SRPM task.
    pub chroot: String,
    pub project_owner: String,
    pub project_name: String,
    pub project_dirname: String,
    /// Seconds before the builder gives up.
    pub timeout: u64,
    pub enable_net: bool,
    pub kind: TaskKind,
}

/// What the task builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskKind {
    /// Make the SRPM from the build's sources.
    Srpm {
        /// Never [`BuildSource::Upload`]: the scheduler hands those over as a URL.
        source: BuildSource,
        /// For a [`BuildSource::Distgit`] source: where the package is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        distgit: Option<DistgitLocation>,
    },
    /// Build RPMs from a package imported into DistGit.
    Rpm {
        /// A URL git can clone: the package's DistGit repository.
        git_repo: String,
        git_hash: String,
        /// Base URL of the lookaside store; files are at
        /// `<lookaside_url>/<owner>/<dir>/<pkg>/<file>/sha512/<hash>/<file>`.
        lookaside_url: String,
        package_name: String,
        /// `%dist` for this chroot (mock would define it from the chroot config).
        dist: String,
        /// `rpmbuild --with`/`--without`.
        #[serde(default)]
        bconds: Bconds,
    },
}

/// `results.json` for an RPM task (REFERENCE §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Results {
    pub packages: Vec<PackageNevra>,
}

/// Name, epoch, version, release and arch of one built package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageNevra {
    pub name: String,
    pub epoch: Option<i64>,
    pub version: String,
    pub release: String,
    pub arch: String,
}

/// The file the builder writes on success only.
pub const SUCCESS_FILE: &str = "success";
/// Written by the backend, never the builder, once a build's packages are signed and the build
/// is still wanted: the publisher puts only such builds into repodata.
pub const SIGNED_FILE: &str = "signed";
/// The log the builder writes while it runs and the scheduler follows.
pub const LIVE_LOG: &str = "builder-live.log";
/// The package list the builder writes.
pub const RESULTS_FILE: &str = "results.json";
/// The pseudo-chroot of the SRPM build.
pub const SRPM_CHROOT: &str = "srpm-builds";
