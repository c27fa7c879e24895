//! `.copr.yaml`: the file a packager puts in a repository to tell ferrocopr what to build.
//!
//! The bot reads it at the commit of each forge event (seed step 1) and turns it into a build
//! request. The file is an API: unknown keys are refused, and every error names
//! `.copr.yaml:LINE:COLUMN` so the packager sees where to fix it in the failed commit status.

use crate::model::ProjectRef;
use serde::Deserialize;

/// The file name, as it appears in error messages and in the repository root.
pub const FILE_NAME: &str = ".copr.yaml";

/// The top level of `.copr.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoprYaml {
    /// The Copr owner the builds go to; defaults to the repository's owner.
    pub owner: Option<String>,
    /// The Copr project the builds go to; defaults to the repository's name.
    pub project: Option<String>,
    /// The chroots to build in, such as `fedora-41-x86_64`.
    pub chroots: Vec<String>,
    /// Path of the spec file in the repository.
    pub spec: String,
}

/// A `.copr.yaml` that cannot be used, with the place to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{FILE_NAME}:{line}:{column}: {message}")]
pub struct CoprYamlError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// Parses and checks a `.copr.yaml`.
pub fn parse(text: &str) -> Result<CoprYaml, CoprYamlError> {
    let config: CoprYaml = serde_saphyr::from_str(text).map_err(from_yaml_error)?;
    validate(&config, text)?;
    Ok(config)
}

fn from_yaml_error(error: serde_saphyr::Error) -> CoprYamlError {
    let (line, column) = error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let mut inner = &error;
    while let serde_saphyr::Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    let message = match inner {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => unknown_key_message(field, expected),
        other => plain_message(other),
    };
    CoprYamlError {
        line,
        column,
        message,
    }
}

fn unknown_key_message(field: &str, expected: &[&str]) -> String {
    let known = expected.join(", ");
    match nearest(field, expected) {
        Some(hint) => {
            format!("unknown key `{field}` (did you mean `{hint}`?); known keys: {known}")
        }
        None => format!("unknown key `{field}`; known keys: {known}"),
    }
}

/// The message of a YAML error without the location and snippet the library adds, because we
/// print the location ourselves in the `file:line:column:` form editors understand.
fn plain_message(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 3 column 1: message"
    match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, message)) => message.to_owned(),
        None => first.to_owned(),
    }
}

/// The known key closest to a misspelt one, if it is close enough to be a likely typo.
fn nearest<'a>(field: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(field, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Checks what the types alone cannot: values that must be non-empty and well-formed.
fn validate(config: &CoprYaml, text: &str) -> Result<(), CoprYamlError> {
    let at_key = |key: &str, message: String| {
        let (line, column) = key_position(text, key);
        CoprYamlError {
            line,
            column,
            message,
        }
    };
    if config.chroots.is_empty() {
        return Err(at_key(
            "chroots",
            "`chroots` must list at least one chroot".into(),
        ));
    }
    for (i, chroot) in config.chroots.iter().enumerate() {
        if config.chroots[..i].contains(chroot) {
            return Err(at_key("chroots", format!("`{chroot}` is listed twice")));
        }
        if crate::model::Chroot::parse(chroot).is_none() {
            return Err(at_key(
                "chroots",
                format!("`{chroot}` is not a chroot name like `fedora-41-x86_64`"),
            ));
        }
    }
    if config.spec.trim().is_empty()
        || config.spec.starts_with('/')
        || config.spec.split('/').any(|c| c == "..")
    {
        return Err(at_key(
            "spec",
            "`spec` must be a path inside the repository".into(),
        ));
    }
    for (key, value) in [("owner", &config.owner), ("project", &config.project)] {
        if let Some(value) = value
            && !crate::model::is_valid_name(value)
        {
            return Err(at_key(
                key,
                format!("`{value}` may hold only letters, digits, `-`, `_` and `.`"),
            ));
        }
    }
    Ok(())
}

/// The project a repository's builds go to: `owner:` and `project:` from the file, else the
/// repository's own owner and name. A repository may build only into its own owner's projects,
/// so nobody can publish into someone else's repository by naming it in their file.
pub fn project_for_repo(
    config: &CoprYaml,
    text: &str,
    repo_owner: &str,
    repo_name: &str,
) -> Result<ProjectRef, CoprYamlError> {
    let owner = config.owner.as_deref().unwrap_or(repo_owner);
    let project = config.project.as_deref().unwrap_or(repo_name);
    let (line, column) = key_position(text, "owner");
    let error = |message: String| CoprYamlError {
        line,
        column,
        message,
    };
    if !owner.eq_ignore_ascii_case(repo_owner) {
        return Err(error(format!(
            "owner `{owner}` is not this repository's owner; builds of it may go only to `{repo_owner}`"
        )));
    }
    if !crate::model::is_valid_name(owner) {
        return Err(error(format!(
            "the owner name `{owner}` cannot be a Copr owner"
        )));
    }
    if !crate::model::is_valid_name(project) {
        let (line, column) = key_position(text, "project");
        return Err(CoprYamlError {
            line,
            column,
            message: format!("`{project}` cannot be a project name: set `project:` to one"),
        });
    }
    Ok(ProjectRef {
        owner: owner.to_owned(),
        project: project.to_owned(),
    })
}

/// Where a top-level key stands in the text (1-based), for errors found after parsing.
fn key_position(text: &str, key: &str) -> (u64, u64) {
    text.lines()
        .enumerate()
        .find(|(_, line)| {
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|(i, _)| (i as u64 + 1, 1))
        .unwrap_or((1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_parses() {
        let c =
            parse("owner: alice\nproject: hello\nchroots: [fedora-41-x86_64]\nspec: hello.spec\n")
                .expect("valid");
        assert_eq!(c.owner.as_deref(), Some("alice"));
        assert_eq!(c.chroots, ["fedora-41-x86_64"]);
    }

    #[test]
    fn unknown_key_names_line_column_and_hint() {
        let e = parse("chroots: [fedora-41-x86_64]\nspec: hello.spec\nprojetc: x\n")
            .expect_err("must be refused");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(".copr.yaml:3:1: unknown key `projetc`"),
            "{text}"
        );
        assert!(text.contains("did you mean `project`"), "{text}");
    }

    #[test]
    fn type_error_names_line_and_column() {
        let e = parse("chroots: fedora\nspec: hello.spec\n").expect_err("must be refused");
        assert_eq!(e.line, 1, "{e}");
        assert!(e.to_string().starts_with(".copr.yaml:1:"), "{e}");
    }

    #[test]
    fn bad_chroot_is_refused() {
        let e = parse("chroots: [fedora]\nspec: a.spec\n").expect_err("must be refused");
        assert_eq!(
            e.to_string(),
            ".copr.yaml:1:1: `fedora` is not a chroot name like `fedora-41-x86_64`"
        );
    }

    #[test]
    fn duplicate_chroot_and_absolute_spec_are_refused() {
        let e = parse("chroots: [fedora-41-x86_64, fedora-41-x86_64]\nspec: a.spec\n")
            .expect_err("must be refused");
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e =
            parse("chroots: [fedora-41-x86_64]\nspec: /etc/passwd\n").expect_err("must be refused");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn project_is_bound_to_the_repository_owner() {
        let text = "chroots: [fedora-41-x86_64]\nspec: a.spec\nowner: bob\n";
        let config = parse(text).expect("valid");
        let e = project_for_repo(&config, text, "mallory", "x").expect_err("must be refused");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.message.contains("may go only to `mallory`"), "{e}");
        let own = project_for_repo(&config, text, "Bob", "tool").expect("own owner");
        assert_eq!((own.owner.as_str(), own.project.as_str()), ("bob", "tool"));
        let text = "chroots: [fedora-41-x86_64]\nspec: a.spec\n";
        let config = parse(text).expect("valid");
        let e = project_for_repo(&config, text, "alice", "..").expect_err("must be refused");
        assert!(e.message.contains("set `project:`"), "{e}");
    }

    #[test]
    fn missing_spec_is_reported() {
        let e = parse("chroots: [fedora-41-x86_64]\n").expect_err("must be refused");
        assert!(e.to_string().contains("spec"), "{e}");
    }
}
