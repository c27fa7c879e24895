//! Domain types shared by every part: projects, CoprDirs, chroots, builds and their ids.
//!
//! These are plain values; the database facade in [`crate::db`] loads and stores them.

use crate::copr_yaml::SrpmMethod;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A build id. Copr shows it with 8 digits in result paths (`00000042-hello`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BuildId(pub i64);

impl BuildId {
    /// The zero-padded form used in result directory names.
    pub fn padded(self) -> String {
        format!("{:08}", self.0)
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One of the name checks below, for code that checks several names in a table.
pub type NameRule = fn(&str) -> bool;

/// Names of owners and projects (and DistGit branches): what may appear in a result path, a
/// DistGit path and a repo id without escaping or quoting.
pub fn is_valid_name(name: &str) -> bool {
    is_name_with(name, &['-', '_', '.'])
}

/// Owners: a user's name, or `@` and a group's name (Copr's group projects, `@fedora-ruby`).
pub fn is_valid_owner(owner: &str) -> bool {
    is_valid_name(owner.strip_prefix('@').unwrap_or(owner))
}

/// Package names: as owner names, plus `+` (`libstdc++`, `gtk+`), which RPM allows.
pub fn is_valid_package_name(name: &str) -> bool {
    is_name_with(name, &['-', '_', '.', '+'])
}

/// CoprDir names: the project's name, or it followed by `:`-separated parts (`hello:pr:12`,
/// `hello:custom:x`).
pub fn is_valid_dirname(name: &str) -> bool {
    name.split(':').all(is_valid_name)
}

/// Not empty, at most 100 characters, no leading dot (no `.`, `..` or hidden files), and only
/// ASCII letters, digits and `extra`.
fn is_name_with(name: &str, extra: &[char]) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// An owner and a project: the unit that owns a signing key and a set of chroots.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProjectRef {
    pub owner: String,
    pub project: String,
}

impl fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.project)
    }
}

/// A chroot name, `<os>-<version>-<arch>`, such as `fedora-41-x86_64`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chroot {
    pub os: String,
    pub version: String,
    pub arch: String,
}

/// Operating systems whose repo files use `$releasever` instead of the literal version
/// (REFERENCE §3).
const RELEASEVER_OSES: [&str; 4] = ["fedora", "centos-stream", "opensuse-leap", "mageia"];

impl Chroot {
    pub fn parse(name: &str) -> Option<Chroot> {
        let (rest, arch) = name.rsplit_once('-')?;
        let (os, version) = rest.rsplit_once('-')?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        (ok(os) && ok(version) && ok(arch) && !arch.contains('-')).then(|| Chroot {
            os: os.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
        })
    }

    /// The chroot without its arch, as dnf's copr plugin asks for it: `fedora-41`.
    pub fn name_release(&self) -> String {
        format!("{}-{}", self.os, self.version)
    }

    /// The DistGit branch that holds this chroot family's sources (REFERENCE §8).
    pub fn distgit_branch(&self) -> String {
        match (self.os.as_str(), self.version.as_str()) {
            ("fedora", "rawhide") => "rawhide".to_owned(),
            ("fedora", v) => format!("f{v}"),
            ("epel", v) => format!("epel{v}"),
            (os, v) => format!("{os}-{v}"),
        }
    }

    /// The `%dist` tag mock would give builds in this chroot.
    pub fn dist_tag(&self) -> String {
        match (self.os.as_str(), self.version.as_str()) {
            ("fedora", "rawhide") => ".fc".to_owned(),
            ("fedora", v) => format!(".fc{v}"),
            ("epel", v) => format!(".el{v}"),
            ("centos-stream", v) => format!(".el{v}"),
            _ => String::new(),
        }
    }

    /// The path segment of this chroot's repository in a repo file's `baseurl`.
    pub fn baseurl_segment(&self) -> String {
        if RELEASEVER_OSES.contains(&self.os.as_str()) {
            format!("{}-$releasever-$basearch", self.os)
        } else {
            format!("{}-{}-$basearch", self.os, self.version)
        }
    }
}

impl fmt::Display for Chroot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.os, self.version, self.arch)
    }
}

/// Where the sources of a build come from: the SRPM task's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum BuildSource {
    /// A git repository at a commit, with the spec at a path in it.
    Scm {
        clone_url: String,
        committish: String,
        spec: String,
        /// How the SRPM is made from the checkout; builds recorded before this existed used
        /// the spec method.
        #[serde(default = "spec_method")]
        srpm: SrpmMethod,
    },
    /// A `.src.rpm` or a `.spec` at a URL (Copr's `url` method). A spec's sources that are
    /// URLs themselves are downloaded next to it.
    Url { url: String },
    /// An SRPM handed in by a user: `<token>/<file name>` under the frontend's upload store,
    /// which the scheduler turns into a URL its builders can reach.
    Upload { path: String },
    /// A package of a dist-git instance named in the configuration (Fedora or CentOS style),
    /// or of this instance's own DistGit (`instance` [`OWN_DISTGIT`]: a rebuild).
    Distgit {
        instance: String,
        /// `<owner>/<dirname>` for this instance's own DistGit; `None` elsewhere.
        #[serde(default)]
        namespace: Option<String>,
        package: String,
        /// A branch, tag or commit of the package's repository.
        committish: String,
    },
    /// A script that makes the sources from nothing (Copr's `custom` method, API
    /// `create/custom`): it runs with `/bin/sh -e` in an empty directory on the builder and
    /// leaves one `.spec` and its sources in `resultdir`, from which the SRPM is built.
    Custom {
        script: String,
        /// The chroot Copr would run the script in. Builders here have no mock chroot for it,
        /// so it is only recorded and shown in the log.
        #[serde(default)]
        chroot: Option<String>,
        /// Packages the script needs. Without mock nothing installs them: the log names them
        /// and says so.
        #[serde(default)]
        builddeps: Vec<String>,
        /// Where the script leaves the spec and sources, relative to its working directory;
        /// empty: the working directory itself.
        #[serde(default)]
        resultdir: String,
    },
}

/// A dist-git instance of the outside world that builds may take packages from, as the
/// configuration names it (Copr's `copr-distgit-client` settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistgitInstance {
    /// The package's repository, with `{name}` for the package name.
    pub clone_url: String,
    /// One source in the lookaside cache, with `{name}`, `{filename}`, `{hashtype}`, `{hash}`.
    pub lookaside_url: String,
    /// What is built when a request names no branch, tag or commit.
    pub default_committish: String,
}

impl DistgitInstance {
    /// Where the SRPM task finds `package`.
    pub fn locate(&self, package: &str) -> DistgitLocation {
        DistgitLocation {
            clone_url: self.clone_url.replace("{name}", package),
            lookaside_url: self.lookaside_url.replace("{name}", package),
        }
    }
}

/// The instances every ferrocopr knows, as Copr does: Fedora's and CentOS Stream's.
pub fn default_distgit_instances() -> std::collections::BTreeMap<String, DistgitInstance> {
    let instance = |clone: &str, lookaside: &str, committish: &str| DistgitInstance {
        clone_url: clone.to_owned(),
        lookaside_url: lookaside.to_owned(),
        default_committish: committish.to_owned(),
    };
    [
        (
            "fedora",
            instance(
                "https://src.fedoraproject.org/rpms/{name}.git",
                "https://src.fedoraproject.org/repo/pkgs/rpms/{name}/{filename}/{hashtype}/{hash}/{filename}",
                "rawhide",
            ),
        ),
        (
            "centos-stream",
            instance(
                "https://gitlab.com/redhat/centos-stream/rpms/{name}.git",
                "https://sources.stream.centos.org/sources/rpms/{name}/{filename}/{hashtype}/{hash}/{filename}",
                "c10s",
            ),
        ),
    ]
    .into_iter()
    .map(|(name, i)| (name.to_owned(), i))
    .collect()
}

/// rpmbuild's `--with`/`--without` conditionals of a build (`.copr.yaml`'s `with_opts` and
/// `without_opts`, as Packit and Copr's chroot settings name them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bconds {
    #[serde(default)]
    pub with: Vec<String>,
    #[serde(default)]
    pub without: Vec<String>,
}

/// A conditional's name as `%bcond` takes it: letters, digits and `_`.
pub fn is_valid_bcond(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The instance name under which a build's DistGit source is this ferrocopr's own DistGit.
pub const OWN_DISTGIT: &str = "ferrocopr";

/// Where the SRPM task finds a dist-git package: resolved by the scheduler from the instance's
/// configuration, so the builder needs no configuration of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistgitLocation {
    /// The repository git clones.
    pub clone_url: String,
    /// The lookaside URL of one source, with `{name}`, `{filename}`, `{hashtype}` and `{hash}`
    /// to fill in (Fedora: `https://src.fedoraproject.org/repo/pkgs/rpms/{name}/{filename}/{hashtype}/{hash}/{filename}`).
    pub lookaside_url: String,
}

fn spec_method() -> SrpmMethod {
    SrpmMethod::Spec
}

/// The chroots an instance offers unless its configuration says otherwise: what `.copr.yaml`
/// aliases such as `fedora-all` expand to.
pub const DEFAULT_CHROOTS: &[&str] = &[
    "fedora-41-x86_64",
    "fedora-41-aarch64",
    "fedora-42-x86_64",
    "fedora-42-aarch64",
    "fedora-rawhide-x86_64",
    "fedora-rawhide-aarch64",
    "epel-9-x86_64",
    "epel-9-aarch64",
    "epel-10-x86_64",
    "epel-10-aarch64",
    "centos-stream-9-x86_64",
    "centos-stream-10-x86_64",
];

/// Where a build came from on a forge, so its result can be reported back as a commit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeOrigin {
    /// `github` or `gitlab`.
    pub forge: String,
    /// `owner/repo` on the forge.
    pub repo: String,
    pub commit_sha: String,
    /// The pull request (merge request on GitLab: its iid) the build is for, if any.
    #[serde(default)]
    pub pull_request: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroot_names() {
        let c = Chroot::parse("fedora-41-x86_64").expect("valid");
        assert_eq!(c.name_release(), "fedora-41");
        assert_eq!(c.distgit_branch(), "f41");
        assert_eq!(c.baseurl_segment(), "fedora-$releasever-$basearch");
        let c = Chroot::parse("centos-stream-9-aarch64").expect("valid");
        assert_eq!((c.os.as_str(), c.version.as_str()), ("centos-stream", "9"));
        let c = Chroot::parse("epel-9-x86_64").expect("valid");
        assert_eq!(c.baseurl_segment(), "epel-9-$basearch");
        assert_eq!(c.distgit_branch(), "epel9");
        assert!(Chroot::parse("fedora").is_none());
        assert!(Chroot::parse("fedora-41").is_none());
    }

    #[test]
    fn names() {
        assert!(is_valid_name("hello-world_1.0"));
        assert!(is_valid_owner("@ruby") && is_valid_owner("alice"));
        assert!(!is_valid_owner("@") && !is_valid_owner("@@x") && !is_valid_owner("@../x"));
        assert!(!is_valid_name("../x"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(".git"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("%{buildroot}"));
        assert!(!is_valid_name("hello:pr:12"));
        assert!(is_valid_dirname("hello:pr:12"));
        assert!(!is_valid_dirname("hello:"));
        assert!(!is_valid_dirname("hello:.."));
        assert!(is_valid_package_name("libstdc++"));
        assert!(!is_valid_name("libstdc++"));
        assert_eq!(BuildId(42).padded(), "00000042");
    }
}
