//! `.copr.yaml`: the file a packager puts in a repository to tell ferrocopr what to build.
//!
//! The bot reads it at the commit of each forge event, [`parse`]s it, and asks [`jobs_for`]
//! which builds the event makes. Top-level keys are defaults; each entry of `jobs:` picks the
//! events it reacts to (`trigger`, `branches`) and may override any default. A file without
//! `jobs:` builds pushes to the default branch and every pull request, as Packit's default jobs
//! do.
//!
//! The file is an API, documented for packagers in `docs/copr-yaml.md`: unknown keys are
//! refused, and every error names `.copr.yaml:LINE:COLUMN` of the entry to fix, so the packager
//! sees where to look in the failed commit status. [`parse`] checks everything that depends on
//! the file alone; [`jobs_for`] checks the rest, which depends on the instance (its chroots) and
//! the repository (its owner, and which other owners' projects allow it).

mod chroots;
mod error;
pub mod glob;
#[cfg(test)]
mod tests;

pub use error::CoprYamlError;
pub use serde_saphyr::Spanned;

use crate::model::{Bconds, ProjectRef};
use serde::{Deserialize, Serialize};
use serde_saphyr::Location;
use std::fmt;

/// The file name, as it appears in error messages and in the repository root.
pub const FILE_NAME: &str = ".copr.yaml";

// ---- Defaults: what a key means when neither the job nor the top level sets it ----
//
// `owner` and `project` default to the repository's owner and name (see `bind_project`),
// `timeout` to the instance's build timeout, `branches` to what `Trigger::default_filter` says.

/// The SRPM method when `srpm` is not set: a tarball of the tree plus the spec.
pub const DEFAULT_SRPM: SrpmMethod = SrpmMethod::Spec;
/// Builds are offline unless asked, as in Copr: a build that reaches the network is harder to
/// reproduce.
pub const DEFAULT_ENABLE_NET: bool = false;
/// Commit statuses say enough for most projects; a comment on every PR is opt-in.
pub const DEFAULT_SUCCESS_COMMENT: bool = false;
/// A new push to a PR makes the PR's older builds useless, so they are canceled unless asked.
pub const DEFAULT_CANCEL_SUPERSEDED: bool = true;
/// The jobs of a file without `jobs:`, as Packit's defaults: pushes to the default branch and
/// pull requests to any branch, with the top-level values.
pub const DEFAULT_JOBS: [Trigger; 2] = [Trigger::Push, Trigger::PullRequest];

/// The shortest `timeout`. No build, not even an SRPM from a tarball in a fresh mock chroot,
/// ends in under a minute, so a smaller value is a mistake of unit (minutes for seconds).
pub const MIN_TIMEOUT_SECS: u64 = 60;
/// The longest `timeout`: 24 hours, Copr's own ceiling, so a file means the same on Copr and
/// here, and a hung build holds a builder for at most a day.
pub const MAX_TIMEOUT_SECS: u64 = 24 * 3600;

// ---- The file ----

/// The top level of `.copr.yaml`: defaults for every job, and the jobs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoprYaml {
    /// The Copr owner the builds go to; defaults to the repository's owner. Another owner (a
    /// user or an `@group`) only when its project allows this repository.
    pub owner: Option<Spanned<String>>,
    /// The Copr project the builds go to; defaults to the repository's name. Pull requests
    /// build into its CoprDir `<project>:pr:<N>`.
    pub project: Option<Spanned<String>>,
    /// The chroots to build in: chroots such as `fedora-41-x86_64` or aliases such as
    /// `fedora-all`, resolved against the instance's chroots. Required here or in every job.
    pub chroots: Option<Spanned<Vec<Spanned<String>>>>,
    /// Path of the spec file in the repository. Required here or in every job.
    pub spec: Option<Spanned<String>>,
    /// How the SRPM is made; defaults to `method: spec`.
    pub srpm: Option<Srpm>,
    /// Whether the build may reach the network; defaults to false.
    pub enable_net: Option<bool>,
    /// The build's timeout in seconds, from 60 to 86400; defaults to the instance's.
    pub timeout: Option<Spanned<u64>>,
    /// URLs of extra RPM repositories the build installs dependencies from; defaults to none.
    pub additional_repos: Option<Vec<Spanned<String>>>,
    /// Packages installed into the buildroot besides the spec's `BuildRequires`; defaults to
    /// none.
    pub additional_packages: Option<Vec<Spanned<String>>>,
    /// Conditionals the RPM builds get as `rpmbuild --with <name>`; defaults to none.
    pub with_opts: Option<Vec<Spanned<String>>>,
    /// Conditionals the RPM builds get as `rpmbuild --without <name>`; defaults to none.
    pub without_opts: Option<Vec<Spanned<String>>>,
    /// What the bot says on pull requests besides commit statuses.
    pub notifications: Option<Notifications>,
    /// Whether a new push to a pull request cancels that pull request's running and queued
    /// builds; defaults to true.
    pub cancel_superseded: Option<bool>,
    /// The events that build and how; without it, pushes to the default branch and every pull
    /// request build with the values above.
    pub jobs: Option<Spanned<Vec<Spanned<Job>>>>,
    /// Forks (`owner/name`, or globs such as `alice/*`) whose pull requests may build into this
    /// project. Only the file on the default branch counts: a pull request cannot allow itself.
    pub allowed_forks: Option<Spanned<Vec<Spanned<String>>>>,
}

impl CoprYaml {
    /// Whether pull requests from the repository `fork` (`owner/name`) may build.
    pub fn allows_fork(&self, fork: &str) -> bool {
        self.allowed_forks
            .as_ref()
            .is_some_and(|forks| forks.value.iter().any(|p| glob::matches(&p.value, fork)))
    }
}

/// One entry of `jobs:`: the events it reacts to, and its overrides of the top-level values.
/// An override replaces the top-level value as a whole (a job's `chroots` list is not added to
/// the top-level one).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The kind of event: `push`, `pull_request` or `tag`.
    pub trigger: Spanned<Trigger>,
    /// Names or globs (`*`, `?`, `[...]`) matched against the whole pushed branch, the pull
    /// request's target branch or the tag name. Without it: the default branch for `push`,
    /// any branch for `pull_request`, any tag for `tag`.
    pub branches: Option<Spanned<Vec<Spanned<String>>>>,
    /// Overrides the top-level `owner`.
    pub owner: Option<Spanned<String>>,
    /// Overrides the top-level `project`.
    pub project: Option<Spanned<String>>,
    /// Overrides the top-level `chroots`.
    pub chroots: Option<Spanned<Vec<Spanned<String>>>>,
    /// Overrides the top-level `spec`.
    pub spec: Option<Spanned<String>>,
    /// Overrides the top-level `srpm`.
    pub srpm: Option<Srpm>,
    /// Overrides the top-level `enable_net`.
    pub enable_net: Option<bool>,
    /// Overrides the top-level `timeout`.
    pub timeout: Option<Spanned<u64>>,
    /// Overrides the top-level `additional_repos`.
    pub additional_repos: Option<Vec<Spanned<String>>>,
    /// Overrides the top-level `additional_packages`.
    pub additional_packages: Option<Vec<Spanned<String>>>,
    /// Overrides the top-level `with_opts`.
    pub with_opts: Option<Vec<Spanned<String>>>,
    /// Overrides the top-level `without_opts`.
    pub without_opts: Option<Vec<Spanned<String>>>,
    /// Overrides the top-level `notifications`, key by key.
    pub notifications: Option<Notifications>,
    /// Overrides the top-level `cancel_superseded`.
    pub cancel_superseded: Option<bool>,
}

/// The `srpm` mapping: how the source RPM is made from the repository.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Srpm {
    /// `spec` (a tarball of the tree plus the spec), `make_srpm` (`.copr/Makefile`) or
    /// `custom` (a script).
    pub method: Spanned<SrpmKind>,
    /// The shell script of the `custom` method; required with it and refused with the others.
    pub script: Option<Spanned<String>>,
}

/// The value of `srpm.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SrpmKind {
    /// `git archive` of the tree at the commit as the source tarball, then `rpmbuild -bs`.
    Spec,
    /// `make -f .copr/Makefile srpm outdir=<dir> spec=<spec>`.
    MakeSrpm,
    /// The job's `script`, which leaves the spec and its sources in `$COPR_RESULTDIR`.
    Custom,
}

/// The `notifications` mapping.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Whether a successful pull request build gets one comment (updated, not repeated) with
    /// the `dnf copr enable` line; defaults to false.
    pub success_comment: Option<bool>,
}

/// The kind of forge event a job reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A push to a branch (not its deletion).
    Push,
    /// A pull (merge) request opened, reopened, or pushed to.
    PullRequest,
    /// A pushed tag.
    Tag,
}

impl Trigger {
    /// The name as written in `.copr.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Push => "push",
            Trigger::PullRequest => "pull_request",
            Trigger::Tag => "tag",
        }
    }

    /// Whether a job of this trigger without `branches:` takes the event: pushes build the
    /// default branch only (a push to a topic branch usually also opens a PR, which builds),
    /// pull requests any target branch and tags any tag.
    fn default_filter(self, event: &Event) -> bool {
        match self {
            Trigger::Push => event.name == event.default_branch,
            Trigger::PullRequest | Trigger::Tag => true,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---- What the bot gets ----

/// A forge event, as far as `.copr.yaml` cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// What happened.
    pub trigger: Trigger,
    /// The branch for a push, the target branch for a pull request, the tag name for a tag;
    /// short names (`main`, `v1.0`), without `refs/heads/` or `refs/tags/`.
    pub name: &'a str,
    /// The repository's default branch, which `push` jobs without `branches:` build.
    pub default_branch: &'a str,
}

/// How the builder makes the SRPM; stored with the build as
/// `{"method":"spec"}`, `{"method":"make_srpm"}` or `{"method":"custom","script":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum SrpmMethod {
    /// `git archive` of the tree at the commit as the source tarball, then `rpmbuild -bs` with
    /// the spec.
    Spec,
    /// `make -f .copr/Makefile srpm outdir=<dir> spec=<spec>` in the checkout.
    MakeSrpm,
    /// The script runs with `/bin/sh -e` in the checkout and leaves the spec (named as the
    /// spec's file name) and its sources in the empty directory `$COPR_RESULTDIR`.
    Custom {
        /// The script's text, as written in `.copr.yaml`.
        script: String,
    },
}

/// One build an event makes, with every value resolved: defaults applied, chroot aliases
/// expanded, and the project bound to the repository's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedJob {
    /// The trigger of the job, which is the event's.
    pub trigger: Trigger,
    /// Where the builds go; pull requests go to its CoprDir [`ResolvedJob::dirname`].
    pub project: ProjectRef,
    /// Concrete chroots of the instance, each once.
    pub chroots: Vec<String>,
    /// Path of the spec in the repository.
    pub spec: String,
    /// How the builder makes the SRPM.
    pub srpm: SrpmMethod,
    /// Whether the build may reach the network.
    pub enable_net: bool,
    /// Seconds; `None` means the instance's default.
    pub timeout: Option<u64>,
    /// URLs of extra repositories for the buildroot.
    pub additional_repos: Vec<String>,
    /// Extra packages for the buildroot.
    pub additional_packages: Vec<String>,
    /// `rpmbuild --with`/`--without`.
    pub bconds: Bconds,
    /// Whether a successful pull request build gets a comment.
    pub success_comment: bool,
    /// Whether a new push to the pull request cancels its older builds.
    pub cancel_superseded: bool,
}

impl ResolvedJob {
    /// The CoprDir the build goes to: the project's main one, or `<project>:pr:<N>` for a
    /// pull request, so a PR never overwrites what users of the project install.
    pub fn dirname(&self, pull_request: Option<u64>) -> String {
        match pull_request {
            Some(number) => format!("{}:pr:{number}", self.project.project),
            None => self.project.project.clone(),
        }
    }
}

// ---- Parsing and checking ----

/// Parses and checks a `.copr.yaml`: syntax, unknown keys, types and values. What depends on
/// the instance or the repository is checked by [`jobs_for`].
pub fn parse(text: &str) -> Result<CoprYaml, CoprYamlError> {
    let config: CoprYaml = serde_saphyr::from_str(text).map_err(error::from_yaml)?;
    check(&config, text)?;
    Ok(config)
}

/// The values one job sees, by reference: a job's own settings, or the top level's, or one
/// over the other.
#[derive(Debug, Clone, Copy, Default)]
struct Settings<'a> {
    owner: Option<&'a Spanned<String>>,
    project: Option<&'a Spanned<String>>,
    chroots: Option<&'a Spanned<Vec<Spanned<String>>>>,
    spec: Option<&'a Spanned<String>>,
    srpm: Option<&'a Srpm>,
    enable_net: Option<bool>,
    timeout: Option<&'a Spanned<u64>>,
    additional_repos: Option<&'a [Spanned<String>]>,
    additional_packages: Option<&'a [Spanned<String>]>,
    with_opts: Option<&'a [Spanned<String>]>,
    without_opts: Option<&'a [Spanned<String>]>,
    success_comment: Option<bool>,
    cancel_superseded: Option<bool>,
}

/// The settings of a `CoprYaml` or a `Job`, whose override keys are the same.
macro_rules! settings_of {
    ($layer:expr) => {
        Settings {
            owner: $layer.owner.as_ref(),
            project: $layer.project.as_ref(),
            chroots: $layer.chroots.as_ref(),
            spec: $layer.spec.as_ref(),
            srpm: $layer.srpm.as_ref(),
            enable_net: $layer.enable_net,
            timeout: $layer.timeout.as_ref(),
            additional_repos: $layer.additional_repos.as_deref(),
            additional_packages: $layer.additional_packages.as_deref(),
            with_opts: $layer.with_opts.as_deref(),
            without_opts: $layer.without_opts.as_deref(),
            success_comment: $layer
                .notifications
                .as_ref()
                .and_then(|n| n.success_comment),
            cancel_superseded: $layer.cancel_superseded,
        }
    };
}

impl<'a> Settings<'a> {
    /// These settings, falling back to `below` for what they do not set.
    fn over(self, below: Settings<'a>) -> Settings<'a> {
        Settings {
            owner: self.owner.or(below.owner),
            project: self.project.or(below.project),
            chroots: self.chroots.or(below.chroots),
            spec: self.spec.or(below.spec),
            srpm: self.srpm.or(below.srpm),
            enable_net: self.enable_net.or(below.enable_net),
            timeout: self.timeout.or(below.timeout),
            additional_repos: self.additional_repos.or(below.additional_repos),
            additional_packages: self.additional_packages.or(below.additional_packages),
            with_opts: self.with_opts.or(below.with_opts),
            without_opts: self.without_opts.or(below.without_opts),
            success_comment: self.success_comment.or(below.success_comment),
            cancel_superseded: self.cancel_superseded.or(below.cancel_superseded),
        }
    }
}

/// A job in effect: one of `jobs:`, or one of the default jobs of a file without it.
#[derive(Debug, Clone, Copy)]
struct JobView<'a> {
    trigger: Trigger,
    branches: Option<&'a [Spanned<String>]>,
    /// The job's settings over the top level's.
    settings: Settings<'a>,
    /// Where the job starts, or `UNKNOWN` for a default job.
    at: Location,
}

impl CoprYaml {
    fn settings(&self) -> Settings<'_> {
        settings_of!(self)
    }

    /// The jobs in effect, in file order.
    fn jobs_in_effect(&self) -> Vec<JobView<'_>> {
        let top = self.settings();
        match &self.jobs {
            None => DEFAULT_JOBS
                .iter()
                .map(|&trigger| JobView {
                    trigger,
                    branches: None,
                    settings: top,
                    at: Location::UNKNOWN,
                })
                .collect(),
            Some(jobs) => jobs
                .value
                .iter()
                .map(|job| JobView {
                    trigger: job.value.trigger.value,
                    branches: job.value.branches.as_ref().map(|b| b.value.as_slice()),
                    settings: job.value.settings().over(top),
                    at: job.referenced,
                })
                .collect(),
        }
    }
}

impl Job {
    fn settings(&self) -> Settings<'_> {
        settings_of!(self)
    }
}

/// Checks what the types alone cannot: every value on its own, then that each job in effect
/// has a spec and chroots from somewhere.
fn check(config: &CoprYaml, text: &str) -> Result<(), CoprYamlError> {
    check_settings(config.settings(), text)?;
    if let Some(forks) = &config.allowed_forks {
        for pattern in &forks.value {
            glob::check(&pattern.value)
                .map_err(|m| CoprYamlError::at(pattern.referenced, text, "allowed_forks", m))?;
        }
    }
    if let Some(jobs) = &config.jobs {
        if jobs.value.is_empty() {
            return Err(CoprYamlError::at(
                jobs.referenced,
                text,
                "jobs",
                "`jobs` lists no job, so nothing would build: remove `jobs:` to build pushes to \
                 the default branch and pull requests, or list at least one job"
                    .into(),
            ));
        }
        for job in &jobs.value {
            check_settings(job.value.settings(), text)?;
            if let Some(branches) = &job.value.branches {
                check_branches(branches, text)?;
            }
        }
    }
    for job in config.jobs_in_effect() {
        required(&job, text)?;
    }
    Ok(())
}

fn check_settings(s: Settings, text: &str) -> Result<(), CoprYamlError> {
    let at = |value: &Spanned<String>, key: &str, message: String| {
        CoprYamlError::at(value.referenced, text, key, message)
    };
    /// A key, its value, the rule it follows, and what the rule allows besides a plain name.
    type NameKey<'a> = (
        &'a str,
        Option<&'a Spanned<String>>,
        fn(&str) -> bool,
        &'a str,
    );
    let rules: [NameKey<'_>; 2] = [
        (
            "owner",
            s.owner,
            crate::model::is_valid_owner,
            "(a group: `@` first), ",
        ),
        ("project", s.project, crate::model::is_valid_name, ""),
    ];
    for (key, value, valid, group) in rules {
        if let Some(value) = value
            && !valid(&value.value)
        {
            return Err(at(
                value,
                key,
                format!(
                    "`{}` may hold only letters, digits, `-`, `_` and `.` {group}and not start \
                     with `.`",
                    value.value
                ),
            ));
        }
    }
    if let Some(chroots) = s.chroots {
        if chroots.value.is_empty() {
            return Err(CoprYamlError::at(
                chroots.referenced,
                text,
                "chroots",
                "`chroots` lists no chroot: list at least one, such as `fedora-all`".into(),
            ));
        }
        for (i, entry) in chroots.value.iter().enumerate() {
            chroots::check(&entry.value).map_err(|m| at(entry, "chroots", m))?;
            if chroots.value[..i].iter().any(|e| e.value == entry.value) {
                return Err(at(
                    entry,
                    "chroots",
                    format!("`{}` is listed twice", entry.value),
                ));
            }
        }
    }
    if let Some(spec) = s.spec
        && !is_repository_path(&spec.value)
    {
        return Err(at(
            spec,
            "spec",
            format!(
                "`{}` is not a path inside the repository: write it relative to the repository's \
                 root, such as `hello.spec` or `rpm/hello.spec`",
                spec.value
            ),
        ));
    }
    if let Some(srpm) = s.srpm {
        check_srpm(srpm, text)?;
    }
    if let Some(timeout) = s.timeout
        && !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&timeout.value)
    {
        return Err(CoprYamlError::at(
            timeout.referenced,
            text,
            "timeout",
            format!(
                "`timeout` is {} seconds; it must be from {MIN_TIMEOUT_SECS} to \
                 {MAX_TIMEOUT_SECS} (24 hours)",
                timeout.value
            ),
        ));
    }
    for repo in s.additional_repos.unwrap_or_default() {
        if !is_repo_url(&repo.value) {
            return Err(at(
                repo,
                "additional_repos",
                format!(
                    "`{}` is not a repository URL: write the `http://` or `https://` URL of a \
                     directory holding `repodata/`",
                    repo.value
                ),
            ));
        }
    }
    for (key, names) in [("with_opts", s.with_opts), ("without_opts", s.without_opts)] {
        for name in names.unwrap_or_default() {
            if !crate::model::is_valid_bcond(&name.value) {
                return Err(at(
                    name,
                    key,
                    format!(
                        "`{}` is not a conditional's name: write the name `%bcond` gives, such \
                         as `tests` for `--with tests`",
                        name.value
                    ),
                ));
            }
        }
    }
    for package in s.additional_packages.unwrap_or_default() {
        if !is_package_spec(&package.value) {
            return Err(at(
                package,
                "additional_packages",
                format!(
                    "`{}` is not a package name: write a name such as `gcc-c++` or a provide \
                     such as `pkgconfig(glib-2.0)`",
                    package.value
                ),
            ));
        }
    }
    Ok(())
}

fn check_srpm(srpm: &Srpm, text: &str) -> Result<(), CoprYamlError> {
    match (srpm.method.value, &srpm.script) {
        (SrpmKind::Custom, None) => Err(CoprYamlError::at(
            srpm.method.referenced,
            text,
            "srpm",
            "`method: custom` needs `script:`, the shell script that writes the spec and its \
             sources into `$COPR_RESULTDIR`"
                .into(),
        )),
        (SrpmKind::Custom, Some(script)) if script.value.trim().is_empty() => {
            Err(CoprYamlError::at(
                script.referenced,
                text,
                "srpm",
                "`script` is empty: write the shell script that writes the spec and its sources \
                 into `$COPR_RESULTDIR`"
                    .into(),
            ))
        }
        (SrpmKind::Spec | SrpmKind::MakeSrpm, Some(script)) => Err(CoprYamlError::at(
            script.referenced,
            text,
            "srpm",
            format!(
                "`script` is only for `method: custom`, not `{}`: remove `script:` or set \
                 `method: custom`",
                srpm.method.value.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

fn check_branches(
    branches: &Spanned<Vec<Spanned<String>>>,
    text: &str,
) -> Result<(), CoprYamlError> {
    if branches.value.is_empty() {
        return Err(CoprYamlError::at(
            branches.referenced,
            text,
            "jobs",
            "`branches` lists nothing, so the job would never run: list names or globs such as \
             `release-*`, or remove `branches:` for the trigger's default"
                .into(),
        ));
    }
    for pattern in &branches.value {
        glob::check(&pattern.value)
            .map_err(|m| CoprYamlError::at(pattern.referenced, text, "jobs", m))?;
    }
    Ok(())
}

/// The spec and chroots of a job in effect, which it must get from itself or the top level.
fn required<'a>(
    job: &JobView<'a>,
    text: &str,
) -> Result<(&'a Spanned<String>, &'a [Spanned<String>]), CoprYamlError> {
    let missing = |key: &str, example: &str| {
        if job.at == Location::UNKNOWN {
            CoprYamlError::at_start(format!("missing key `{key}`: set it, such as `{example}`"))
        } else {
            CoprYamlError::at(
                job.at,
                text,
                "jobs",
                format!(
                    "this `{}` job has no `{key}`: set it in the job or at the top level, such \
                     as `{example}`",
                    job.trigger
                ),
            )
        }
    };
    let spec = job
        .settings
        .spec
        .ok_or_else(|| missing("spec", "spec: hello.spec"))?;
    let chroots = job
        .settings
        .chroots
        .ok_or_else(|| missing("chroots", "chroots: [fedora-all]"))?;
    Ok((spec, &chroots.value))
}

/// A relative path that stays inside the repository.
fn is_repository_path(path: &str) -> bool {
    !path.trim().is_empty()
        && !path.starts_with('/')
        && !path.split('/').any(|part| part == "..")
        && !path.chars().any(char::is_control)
}

fn is_repo_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// A package name or a provide, as dnf takes it: `gcc-c++`, `pkgconfig(glib-2.0)`,
/// `perl(Test::More)`, `/usr/bin/python3`. Nothing that could read as an option or a second
/// word.
fn is_package_spec(spec: &str) -> bool {
    !spec.is_empty()
        && spec.len() <= 200
        && !spec.starts_with('-')
        && spec.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '(' | ')' | '/' | ':')
        })
}

impl SrpmKind {
    /// The name as written in `.copr.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            SrpmKind::Spec => "spec",
            SrpmKind::MakeSrpm => "make_srpm",
            SrpmKind::Custom => "custom",
        }
    }
}

// ---- Resolving jobs for an event ----

/// The jobs a forge event runs, with every value resolved (defaults applied, chroot aliases
/// expanded against `available_chroots`, owner/project bound to the repository as
/// [`project_for_repo`] does), in file order. Empty when no job matches.
///
/// `text` is the file's text, for positions the parsed values do not carry.
pub fn jobs_for(
    config: &CoprYaml,
    text: &str,
    event: &Event,
    repo: &Repository<'_>,
    available_chroots: &[String],
) -> Result<Vec<ResolvedJob>, CoprYamlError> {
    config
        .jobs_in_effect()
        .iter()
        .filter(|job| job.takes(event))
        .map(|job| job.resolve(text, repo, available_chroots))
        .collect()
}

/// Every job in effect resolved as [`jobs_for`] would, whatever event it waits for: to check a
/// changed `.copr.yaml` on the pull request that changes it, so a mistake in a `tag` job shows
/// before the tag is pushed.
pub fn resolve_all(
    config: &CoprYaml,
    text: &str,
    repo: &Repository<'_>,
    available_chroots: &[String],
) -> Result<Vec<ResolvedJob>, CoprYamlError> {
    config
        .jobs_in_effect()
        .iter()
        .map(|job| job.resolve(text, repo, available_chroots))
        .collect()
}

impl JobView<'_> {
    /// Whether the job runs for the event: same trigger, and a branch filter that takes the
    /// event's whole name (never a prefix of it).
    fn takes(&self, event: &Event) -> bool {
        self.trigger == event.trigger
            && match self.branches {
                Some(patterns) => patterns.iter().any(|p| glob::matches(&p.value, event.name)),
                None => self.trigger.default_filter(event),
            }
    }

    fn resolve(
        &self,
        text: &str,
        repo: &Repository<'_>,
        available_chroots: &[String],
    ) -> Result<ResolvedJob, CoprYamlError> {
        let s = &self.settings;
        let (spec, chroot_entries) = required(self, text)?;
        let strings = |list: Option<&[Spanned<String>]>| -> Vec<String> {
            list.unwrap_or_default()
                .iter()
                .map(|s| s.value.clone())
                .collect()
        };
        Ok(ResolvedJob {
            trigger: self.trigger,
            project: bind_project(s.owner, s.project, text, repo)?,
            chroots: chroots::resolve(chroot_entries, text, available_chroots)?,
            spec: spec.value.clone(),
            srpm: s.srpm.map_or(DEFAULT_SRPM, |srpm| match srpm.method.value {
                SrpmKind::Spec => SrpmMethod::Spec,
                SrpmKind::MakeSrpm => SrpmMethod::MakeSrpm,
                SrpmKind::Custom => SrpmMethod::Custom {
                    script: srpm
                        .script
                        .as_ref()
                        .map(|s| s.value.clone())
                        .unwrap_or_default(),
                },
            }),
            enable_net: s.enable_net.unwrap_or(DEFAULT_ENABLE_NET),
            timeout: s.timeout.map(|t| t.value),
            additional_repos: strings(s.additional_repos),
            additional_packages: strings(s.additional_packages),
            bconds: Bconds {
                with: strings(s.with_opts),
                without: strings(s.without_opts),
            },
            success_comment: s.success_comment.unwrap_or(DEFAULT_SUCCESS_COMMENT),
            cancel_superseded: s.cancel_superseded.unwrap_or(DEFAULT_CANCEL_SUPERSEDED),
        })
    }
}

/// The repository a `.copr.yaml` belongs to, as far as choosing its projects goes.
#[derive(Debug, Clone, Copy)]
pub struct Repository<'a> {
    /// The repository's owner on the forge: the Copr owner of its projects unless the file names
    /// another.
    pub owner: &'a str,
    /// The repository's name: the project unless the file names one.
    pub name: &'a str,
    /// `<forge host>/<full name>` (`github.com/alice/hello`): how a project names the
    /// repositories it lets build in it (Copr's `packit_forge_projects_allowed`).
    pub forge_project: &'a str,
    /// The projects of other owners that allow this repository to build in them.
    pub allowed: &'a [ProjectRef],
}

/// The project a repository's builds go to by the top-level `owner:` and `project:`, else the
/// repository's own owner and name. A file may name another owner's project only when that
/// project allows the repository ([`Repository::allowed`]), so nobody can publish into someone
/// else's repository by naming it in their file.
pub fn project_for_repo(
    config: &CoprYaml,
    text: &str,
    repo: &Repository<'_>,
) -> Result<ProjectRef, CoprYamlError> {
    bind_project(config.owner.as_ref(), config.project.as_ref(), text, repo)
}

fn bind_project(
    owner: Option<&Spanned<String>>,
    project: Option<&Spanned<String>>,
    text: &str,
    repo: &Repository<'_>,
) -> Result<ProjectRef, CoprYamlError> {
    let owner_at = owner.map_or(Location::UNKNOWN, |o| o.referenced);
    let owner = owner.map_or(repo.owner, |o| o.value.as_str());
    let own = owner.eq_ignore_ascii_case(repo.owner);
    let valid_owner = if own {
        crate::model::is_valid_name(owner)
    } else {
        crate::model::is_valid_owner(owner)
    };
    if !valid_owner {
        return Err(CoprYamlError::at(
            owner_at,
            text,
            "owner",
            format!("the owner name `{owner}` cannot be a Copr owner"),
        ));
    }
    let project_at = project.map_or(Location::UNKNOWN, |p| p.referenced);
    let project = project.map_or(repo.name, |p| p.value.as_str());
    if !crate::model::is_valid_name(project) {
        return Err(CoprYamlError::at(
            project_at,
            text,
            "project",
            format!("`{project}` cannot be a project name: set `project:` to one"),
        ));
    }
    if own {
        return Ok(ProjectRef {
            // The forge's spelling: `owner: Alice` in alice's repository is the same owner,
            // and must not become a second project, results tree and key.
            owner: repo.owner.to_owned(),
            project: project.to_owned(),
        });
    }
    let wanted = ProjectRef {
        owner: owner.to_owned(),
        project: project.to_owned(),
    };
    if repo.allowed.contains(&wanted) {
        return Ok(wanted);
    }
    Err(CoprYamlError::at(
        owner_at,
        text,
        "owner",
        format!(
            "the project `{wanted}` does not allow builds from `{forge}`, so builds of this \
             repository may go only to `{own}`; an admin of `{wanted}` allows them with \
             `copr-cli modify {wanted} --packit-forge-project-allowed {forge}`",
            forge = repo.forge_project,
            own = repo.owner,
        ),
    ))
}
