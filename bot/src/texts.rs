//! Every text a user sees from the bot, in one place: commit statuses, comment replies and repo
//! files.
//!
//! Snapshot-tested below, so a change of wording is a visible change of the test.

use crate::forge::{CommitState, CommitStatus};
use ferrocopr_schema::{Chroot, ProjectRef};

/// The one aggregate status context: a single name that can be made a required check, instead
/// of one per chroot (a Packit complaint, REFERENCE §10).
pub const STATUS_CONTEXT: &str = "copr/rpm-build";

/// The context of one chroot's status, beside the aggregate.
pub fn chroot_context(chroot: &str) -> String {
    format!("{STATUS_CONTEXT}:{chroot}")
}

/// GitHub cuts status descriptions at 140 characters.
const DESCRIPTION_LIMIT: usize = 140;

pub const ACCEPTED: &str = "The task was accepted.";
pub const SRPM_RUNNING: &str = "SRPM build is in progress...";
pub const IMPORTING: &str = "SRPM is being imported into DistGit...";
pub const RPM_RUNNING: &str = "RPM build is in progress...";
pub const SUCCEEDED: &str = "RPMs were built successfully.";
pub const FAILED: &str = "RPMs failed to be built.";
pub const SKIPPED: &str =
    "Skipped: the spec's ExclusiveArch or ExcludeArch rules the architecture out.";
pub const CANCELED: &str = "The build was canceled.";

/// Why a pull request from a fork builds nothing.
pub fn fork_not_allowed(fork: &str, repo: &str) -> String {
    format!(
        "Not built: {fork} is a fork; `allowed_forks` in {repo}'s .copr.yaml on its default branch \
         does not list it."
    )
}

pub fn srpm_failed(reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("SRPM build failed: {reason}"),
        None => "SRPM build failed.".to_owned(),
    }
}

/// Cuts a description to what the forge keeps, on a character boundary.
pub fn cut_description(text: &str) -> String {
    if text.chars().count() <= DESCRIPTION_LIMIT {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(DESCRIPTION_LIMIT - 3).collect();
    cut.push_str("...");
    cut
}

/// A status for the aggregate context.
pub fn status(state: CommitState, description: &str, target_url: Option<String>) -> CommitStatus {
    CommitStatus {
        state,
        context: STATUS_CONTEXT.to_owned(),
        description: cut_description(description),
        target_url,
    }
}

/// What `dnf copr enable` saves as a `.repo` file (REFERENCE §3). The first line names the file
/// on the client, so it must be exactly `[copr:<host>:<owner>:<dir>]` with LF line ends.
pub fn dnf_repo_file(
    host: &str,
    public_url: &str,
    owner: &str,
    dirname: &str,
    chroot: &Chroot,
) -> String {
    let repo_owner = owner
        .strip_prefix('@')
        .map_or_else(|| owner.to_owned(), |g| format!("group_{g}"));
    let results = format!("{public_url}/results/{owner}/{dirname}");
    format!(
        "[copr:{host}:{repo_owner}:{dirname}]\n\
         name=Copr repo for {dirname} owned by {owner}\n\
         baseurl={results}/{segment}/\n\
         type=rpm-md\n\
         skip_if_unavailable=True\n\
         gpgcheck=1\n\
         gpgkey={results}/pubkey.gpg\n\
         repo_gpgcheck=1\n\
         enabled=1\n\
         enabled_metadata=1\n",
        segment = chroot.baseurl_segment(),
    )
}

/// Hidden in every comment the bot writes, so it never takes its own comments for commands.
pub const BOT_MARKER: &str = "<!-- ferrocopr -->";

/// The reply to someone who may not run commands on a pull request.
pub fn not_allowed(user: &str) -> String {
    format!(
        "@{user}, only the pull request's author and people with write access to this \
         repository may run `/copr` commands here.\n{BOT_MARKER}"
    )
}

/// The reply to a command that cannot be run: what is wrong, then how to write it.
pub fn command_error(error: &str, help: &str) -> String {
    format!("{error}\n\n{help}\n{BOT_MARKER}")
}

/// The reply to `/copr help`.
pub fn help(help: &str) -> String {
    format!("{help}\n{BOT_MARKER}")
}

/// The reply to `/copr cancel`.
pub fn canceled(builds: u64) -> String {
    match builds {
        0 => format!("No build of this pull request was running or queued.\n{BOT_MARKER}"),
        1 => format!("Canceling 1 build of this pull request.\n{BOT_MARKER}"),
        n => format!("Canceling {n} builds of this pull request.\n{BOT_MARKER}"),
    }
}

/// The reply to `/copr rebuild-failed` when nothing failed.
pub fn nothing_failed() -> String {
    format!(
        "No chroot failed in the latest build of this pull request: nothing to rebuild.\n{BOT_MARKER}"
    )
}

/// The reply to `/copr build` when it built nothing, with why.
pub fn nothing_built(why: &str) -> String {
    format!("Nothing was built: {why}.\n{BOT_MARKER}")
}

/// The one comment a pull request gets when a build of it succeeds (opt-in through
/// `notifications.success_comment`), replaced by each later success.
pub fn success_comment(
    public_url: &str,
    owner: &str,
    dirname: &str,
    build_id: i64,
    packages: &[String],
) -> String {
    let mut text = format!(
        "Build {build_id} succeeded. Try it with:\n\n\
         ```\n\
         dnf copr --hub {public_url} enable {owner}/{dirname}\n\
         ```\n"
    );
    if !packages.is_empty() {
        text.push_str("\nBuilt packages:\n");
        for package in packages {
            text.push_str(&format!("- `{package}`\n"));
        }
    }
    text.push_str(&format!(
        "\n[Build {build_id}]({public_url}/coprs/{owner}/{dirname}/build/{build_id}/)\n{BOT_MARKER}"
    ));
    text
}

pub const PROJECT_NOT_FOUND: &str = "Project does not exist.";
pub const CHROOT_NOT_FOUND: &str = "Chroot not enabled in this project.";
pub const BAD_SIGNATURE: &str = "webhook signature does not verify";
pub const MISSING_HEADER: &str = "missing webhook header";
pub const BUILD_NOT_FOUND: &str = "No such build.";
pub const NOT_UTF8: &str = "body is not UTF-8";
pub const TOO_LARGE: &str = "webhook payload too large";
pub const INTERNAL_ERROR: &str = "internal error";

// Builds requested through the API or the command line (`submit`).

pub fn bad_source_url(url: &str) -> String {
    format!("{url:?} is not an http:// or https:// URL of a .src.rpm or a .spec.")
}

pub fn bad_upload_name(name: &str) -> String {
    format!("{name:?} is not the plain file name of a .src.rpm.")
}

pub fn unknown_distgit(name: &str, known: &[&str]) -> String {
    format!(
        "There is no dist-git instance {name:?}; this instance knows {}.",
        known.join(", ")
    )
}

pub fn bad_package_name(name: &str) -> String {
    format!("{name:?} is not a package name.")
}

pub fn bad_committish(committish: &str) -> String {
    format!("{committish:?} is not a branch, tag or commit.")
}

pub fn bad_clone_url(url: &str) -> String {
    format!(
        "{url:?} is not a git URL this instance clones: use https://, http://, git:// or file://."
    )
}

pub fn bad_inner_path(field: &str, path: &str) -> String {
    format!("{field} {path:?} must be a relative path inside the directory, without \"..\".")
}

pub const EMPTY_SCRIPT: &str =
    "The custom script is empty: give the script that makes the spec and its sources.";

pub fn not_imported(build: i64) -> String {
    format!("Build {build} has nothing in DistGit to rebuild from: its SRPM was never imported.")
}

pub fn bad_project_name(project: &str) -> String {
    format!("{project:?} is not a valid owner/project.")
}

pub fn bad_dirname(dirname: &str) -> String {
    format!("{dirname:?} is not a directory of this project.")
}

pub const NO_CHROOTS: &str = "Name at least one chroot.";

pub fn unknown_chroot(chroot: &str) -> String {
    format!("{chroot} is not a chroot of this instance.")
}

// Users and API credentials (`ferrocopr user create`, the API's door).

pub fn bad_user_name(name: &str) -> String {
    format!("{name:?} is not a user name: use letters, digits, '_', '-' and '.'.")
}

pub fn user_exists(name: &str) -> String {
    format!("There is already a user called {name:?}.")
}

pub const AUTH_MISSING: &str =
    "Login required: send your API login and token (HTTP Basic), as copr-cli does.";
pub const AUTH_MALFORMED: &str = "The Authorization header is not HTTP Basic login:token.";
pub const AUTH_WRONG: &str = "The API login or token is wrong.";
pub const AUTH_EXPIRED: &str = "The API token has expired: ask for a new one.";

// The API v3 (`/api_3/`): the `error` of its JSON answers.

pub const API_NOT_FOUND: &str = "There is no such API v3 endpoint.";
pub const API_METHOD_NOT_ALLOWED: &str = "This API v3 endpoint does not take this HTTP method.";
pub const API_TOO_LARGE: &str = "The request body is too large.";

pub fn bad_api_body(error: &dyn std::fmt::Display) -> String {
    format!("The request body is not the JSON this endpoint takes: {error}")
}

pub fn api_project_not_found(project: &ProjectRef) -> String {
    format!("Project {project} does not exist.")
}

pub fn api_project_exists(project: &ProjectRef) -> String {
    format!("Project {project} already exists.")
}

pub fn api_forbidden(user: &str, project: &ProjectRef) -> String {
    format!("User {user} is not allowed to do this in project {project}.")
}

pub fn api_owner_forbidden(user: &str, owner: &str) -> String {
    format!("User {user} may not make projects for {owner}.")
}

pub fn api_build_not_found(id: i64) -> String {
    format!("Build {id} does not exist.")
}

pub fn api_build_chroot_not_found(id: i64, chroot: &str) -> String {
    format!("Build {id} has no chroot {chroot}.")
}

pub fn api_package_not_found(package: &str, project: &ProjectRef) -> String {
    format!("Project {project} has no package {package}.")
}

pub fn api_chroot_not_in_project(chroot: &str, project: &ProjectRef) -> String {
    format!("{chroot} is not a chroot of project {project}.")
}

pub fn api_cannot_cancel(id: i64) -> String {
    format!("Build {id} cannot be canceled: it has finished or is being canceled already.")
}

pub fn api_missing_field(field: &str) -> String {
    format!("The request lacks {field:?}.")
}

pub fn api_source_type_unsupported(source_type: &str, supported: &[&str]) -> String {
    format!(
        "Source type {source_type:?} is not supported here; use one of: {}.",
        supported.join(", ")
    )
}

pub fn api_package_exists(package: &str, project: &ProjectRef) -> String {
    format!("Project {project} already has a package {package}; edit it instead.")
}

pub fn api_distgit_namespace_unsupported(namespace: &str) -> String {
    format!("Dist-git namespaces are not supported (got {namespace:?}); leave it empty.")
}

pub fn api_project_being_deleted(project: &ProjectRef) -> String {
    format!(
        "Project {project} is being deleted; its name is free again once its builds are \
         canceled and its results removed. Try again in a minute."
    )
}

pub fn api_bad_forge_project(entry: &str) -> String {
    format!(
        "{entry:?} is not a forge repository: write it as host/owner/name, like \
         github.com/alice/hello."
    )
}

pub const API_BAD_PAGE: &str = "limit must be 1 to 1000 and offset not negative.";
pub const API_NO_UPLOAD: &str =
    "The upload lacks its SRPM: send a multipart/form-data body with a \"pkgs\" file part.";

pub fn api_unsupported_scm_type(scm_type: &str) -> String {
    format!("scm_type {scm_type:?} is not supported: this instance builds from git only (\"git\").")
}

pub fn api_unsupported_srpm_method(method: &str) -> String {
    format!(
        "source_build_method {method:?} is not supported: use \"rpkg\" (the spec, with a tarball of \
         the tree as Source0 when it is not committed) or \"make_srpm\" (.copr/Makefile)."
    )
}

pub fn api_no_chroot_matches(pattern: &str, project: &ProjectRef) -> String {
    format!("No chroot of project {project} matches {pattern:?}.")
}

pub fn api_unknown_state(name: &str) -> String {
    let names: Vec<&str> = ferrocopr_schema::state::ALL_STATES
        .iter()
        .map(|s| s.name())
        .collect();
    format!(
        "{name:?} is not a build state; use one of {}.",
        names.join(", ")
    )
}

pub fn api_bad_order(field: &str, value: &str, allowed: &[&str]) -> String {
    format!(
        "{field} {value:?} is not taken here; use {}.",
        allowed.join(" or ")
    )
}

pub fn api_can_build(user: &str, project: &ProjectRef) -> String {
    format!("{user} may build in {project}.")
}

/// copr-cli's `~/.config/copr` for a new token (what Copr's /api page shows). An http URL needs
/// `encrypted = False`, or copr-cli refuses to send the token.
pub fn copr_cli_config(
    copr_url: &str,
    username: &str,
    login: &str,
    token: &str,
    expires_on: i64,
) -> String {
    let mut text = format!(
        "[copr-cli]\nlogin = {login}\nusername = {username}\ntoken = {token}\ncopr_url = {copr_url}\n"
    );
    if copr_url.starts_with("http://") {
        text.push_str("encrypted = False\n");
    }
    text.push_str(&format!("# expiration date: {}\n", iso_date(expires_on)));
    text
}

/// `YYYY-MM-DD` (UTC) of a time in seconds since the epoch.
pub fn iso_date(seconds: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = seconds.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

// The web UI (`pages`). The templates hold the pages' wording; these are the texts that
// handlers compute.

pub const PAGE_NOT_FOUND: &str = "There is no page at this address.";
pub const LOG_NOT_FOUND: &str = "This build has no such part, so no such log.";
pub const OWNER_NOT_FOUND: &str = "There is no user or group of this name here.";
pub const BAD_PAGE_NUMBER: &str = "A page number is a whole number from 1 on, as in ?page=2.";
pub const NO_SUCH_PAGE: &str = "This list has no page that far; its first page is ?page=1.";

/// The public URL of Fedora's Copr: the only hub `dnf copr enable` knows without `--hub`.
pub const FEDORA_COPR_URL: &str = "https://copr.fedorainfracloud.org";

/// The line that enables a CoprDir's repository (REFERENCE §3): any other instance than
/// Fedora's must be named with `--hub`, before the subcommand, which dnf4 and dnf5 both accept.
pub fn dnf_copr_enable(public_url: &str, owner: &str, dirname: &str) -> String {
    if public_url == FEDORA_COPR_URL {
        format!("dnf copr enable {owner}/{dirname}")
    } else {
        format!("dnf copr --hub {public_url} enable {owner}/{dirname}")
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a time in seconds since the epoch.
pub fn utc_time(seconds: i64) -> String {
    let day = seconds.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        iso_date(seconds),
        day / 3_600,
        day % 3_600 / 60,
        day % 60
    )
}

/// A duration for people: `42 s`, `3 min 5 s`, `2 h 7 min`.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3_600, seconds % 3_600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_file_snapshot() {
        let chroot = Chroot::parse("fedora-41-x86_64").expect("chroot");
        let text = dnf_repo_file(
            "127.0.0.1",
            "http://127.0.0.1:8080",
            "alice",
            "hello",
            &chroot,
        );
        assert_eq!(
            text,
            "[copr:127.0.0.1:alice:hello]\n\
             name=Copr repo for hello owned by alice\n\
             baseurl=http://127.0.0.1:8080/results/alice/hello/fedora-$releasever-$basearch/\n\
             type=rpm-md\n\
             skip_if_unavailable=True\n\
             gpgcheck=1\n\
             gpgkey=http://127.0.0.1:8080/results/alice/hello/pubkey.gpg\n\
             repo_gpgcheck=1\n\
             enabled=1\n\
             enabled_metadata=1\n"
        );
    }

    #[test]
    fn group_owner_in_repo_id() {
        let chroot = Chroot::parse("epel-9-x86_64").expect("chroot");
        let text = dnf_repo_file(
            "copr.example.org",
            "https://copr.example.org",
            "@tools",
            "x:pr:3",
            &chroot,
        );
        assert!(
            text.starts_with("[copr:copr.example.org:group_tools:x:pr:3]\n"),
            "{text}"
        );
        assert!(
            text.contains("/results/@tools/x:pr:3/epel-9-$basearch/\n"),
            "{text}"
        );
    }

    #[test]
    fn reply_texts() {
        assert_eq!(
            not_allowed("mallory"),
            "@mallory, only the pull request's author and people with write access to this \
             repository may run `/copr` commands here.\n<!-- ferrocopr -->"
        );
        assert_eq!(
            canceled(0),
            "No build of this pull request was running or queued.\n<!-- ferrocopr -->"
        );
        assert_eq!(
            canceled(2),
            "Canceling 2 builds of this pull request.\n<!-- ferrocopr -->"
        );
        assert!(nothing_failed().ends_with(BOT_MARKER));
        assert_eq!(
            nothing_built("no job builds fedora-9-x86_64"),
            "Nothing was built: no job builds fedora-9-x86_64.\n<!-- ferrocopr -->"
        );
        assert!(
            command_error("Unknown command `/copr x`.", "HELP")
                .starts_with("Unknown command `/copr x`.\n\nHELP\n")
        );
    }

    #[test]
    fn submission_texts() {
        assert_eq!(
            bad_source_url("ftp://x.org/a.zip"),
            "\"ftp://x.org/a.zip\" is not an http:// or https:// URL of a .src.rpm or a .spec."
        );
        assert_eq!(
            bad_upload_name("../x.src.rpm"),
            "\"../x.src.rpm\" is not the plain file name of a .src.rpm."
        );
        assert_eq!(
            unknown_distgit("suse", &["centos-stream", "fedora"]),
            "There is no dist-git instance \"suse\"; this instance knows centos-stream, fedora."
        );
        assert_eq!(bad_package_name("a b"), "\"a b\" is not a package name.");
        assert_eq!(
            bad_committish("-x"),
            "\"-x\" is not a branch, tag or commit."
        );
        assert_eq!(
            not_imported(7),
            "Build 7 has nothing in DistGit to rebuild from: its SRPM was never imported."
        );
        assert_eq!(
            bad_project_name("a/b c"),
            "\"a/b c\" is not a valid owner/project."
        );
        assert_eq!(
            bad_dirname("x:"),
            "\"x:\" is not a directory of this project."
        );
        assert_eq!(NO_CHROOTS, "Name at least one chroot.");
        assert_eq!(
            bad_clone_url("ssh://x"),
            "\"ssh://x\" is not a git URL this instance clones: use https://, http://, git:// or file://."
        );
        assert_eq!(
            bad_inner_path("spec", "../x.spec"),
            "spec \"../x.spec\" must be a relative path inside the directory, without \"..\"."
        );
        assert_eq!(
            unknown_chroot("fedora-9-x86_64"),
            "fedora-9-x86_64 is not a chroot of this instance."
        );
    }

    #[test]
    fn package_and_deletion_texts() {
        let project = ProjectRef {
            owner: "alice".into(),
            project: "hello".into(),
        };
        assert_eq!(
            api_source_type_unsupported("pypi", &["scm", "distgit", "custom"]),
            "Source type \"pypi\" is not supported here; use one of: scm, distgit, custom."
        );
        assert_eq!(
            api_package_exists("hello", &project),
            "Project alice/hello already has a package hello; edit it instead."
        );
        assert_eq!(
            api_distgit_namespace_unsupported("forks/bob"),
            "Dist-git namespaces are not supported (got \"forks/bob\"); leave it empty."
        );
        assert_eq!(
            api_project_being_deleted(&project),
            "Project alice/hello is being deleted; its name is free again once its builds are \
             canceled and its results removed. Try again in a minute."
        );
        assert_eq!(
            api_bad_forge_project("alice/hello"),
            "\"alice/hello\" is not a forge repository: write it as host/owner/name, like \
             github.com/alice/hello."
        );
    }

    #[test]
    fn api_build_texts() {
        assert_eq!(
            api_unsupported_scm_type("svn"),
            "scm_type \"svn\" is not supported: this instance builds from git only (\"git\")."
        );
        assert!(
            api_unsupported_srpm_method("tito")
                .starts_with("source_build_method \"tito\" is not supported: use \"rpkg\"")
        );
        let project = ProjectRef {
            owner: "alice".into(),
            project: "hello".into(),
        };
        assert_eq!(
            api_no_chroot_matches("epel-*", &project),
            "No chroot of project alice/hello matches \"epel-*\"."
        );
        assert_eq!(
            api_unknown_state("done"),
            "\"done\" is not a build state; use one of failed, succeeded, canceled, running, \
             pending, skipped, starting, importing, forked, waiting, unknown."
        );
        assert_eq!(
            api_bad_order("order_type", "up", &["ASC", "DESC"]),
            "order_type \"up\" is not taken here; use ASC or DESC."
        );
    }

    #[test]
    fn web_texts() {
        assert_eq!(
            dnf_copr_enable("http://127.0.0.1:8080", "alice", "hello:pr:3"),
            "dnf copr --hub http://127.0.0.1:8080 enable alice/hello:pr:3"
        );
        assert_eq!(
            dnf_copr_enable(FEDORA_COPR_URL, "@tools", "x"),
            "dnf copr enable @tools/x"
        );
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_795_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(185), "3 min 5 s");
        assert_eq!(duration(7_620), "2 h 7 min");
        assert_eq!(PAGE_NOT_FOUND, "There is no page at this address.");
        assert_eq!(
            OWNER_NOT_FOUND,
            "There is no user or group of this name here."
        );
        assert_eq!(
            BAD_PAGE_NUMBER,
            "A page number is a whole number from 1 on, as in ?page=2."
        );
        assert_eq!(
            NO_SUCH_PAGE,
            "This list has no page that far; its first page is ?page=1."
        );
    }

    #[test]
    fn success_comment_snapshot() {
        assert_eq!(
            success_comment(
                "http://127.0.0.1:8080",
                "alice",
                "hello:pr:7",
                42,
                &["hello-1.0-1.fc41.x86_64.rpm".to_owned()]
            ),
            "Build 42 succeeded. Try it with:\n\n\
             ```\n\
             dnf copr --hub http://127.0.0.1:8080 enable alice/hello:pr:7\n\
             ```\n\
             \nBuilt packages:\n\
             - `hello-1.0-1.fc41.x86_64.rpm`\n\
             \n[Build 42](http://127.0.0.1:8080/coprs/alice/hello:pr:7/build/42/)\n\
             <!-- ferrocopr -->"
        );
    }

    #[test]
    fn status_texts() {
        assert_eq!(STATUS_CONTEXT, "copr/rpm-build");
        assert_eq!(
            chroot_context("fedora-41-x86_64"),
            "copr/rpm-build:fedora-41-x86_64"
        );
        assert_eq!(
            srpm_failed(Some("SRPM build error")),
            "SRPM build failed: SRPM build error"
        );
        let long = "x".repeat(200);
        assert_eq!(cut_description(&long).chars().count(), 140);
        assert!(cut_description(&long).ends_with("..."));
    }

    #[test]
    fn copr_cli_config_snapshot() {
        let text = copr_cli_config(
            "http://127.0.0.1:8080",
            "alice",
            "loginloginlogin",
            "tokentokentoken",
            1_795_000_000,
        );
        assert_eq!(
            text,
            "[copr-cli]\nlogin = loginloginlogin\nusername = alice\ntoken = tokentokentoken\n\
             copr_url = http://127.0.0.1:8080\nencrypted = False\n# expiration date: 2026-11-18\n"
        );
        assert!(!copr_cli_config("https://copr.example", "a", "l", "t", 0).contains("encrypted"));
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(951_782_400), "2000-02-29");
    }
}
