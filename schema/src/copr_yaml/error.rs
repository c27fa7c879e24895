//! Errors in a `.copr.yaml`, always in the `.copr.yaml:LINE:COLUMN: message` form that editors
//! and people both read, pointing at the entry to fix.

use super::FILE_NAME;
use serde_saphyr::Location;

/// A `.copr.yaml` that cannot be used, with the place to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{FILE_NAME}:{line}:{column}: {message}")]
pub struct CoprYamlError {
    /// 1-based line of the entry to fix.
    pub line: u64,
    /// 1-based column of the entry to fix.
    pub column: u64,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl CoprYamlError {
    /// An error at a value's position. A position the parser could not know (line 0) falls back
    /// to the line of the top-level `key` in `text`, else to the start of the file, so the
    /// packager always gets a place to look.
    pub(super) fn at(location: Location, text: &str, key: &str, message: String) -> Self {
        let (line, column) = if location.line() > 0 {
            (location.line(), location.column().max(1))
        } else {
            key_position(text, key)
        };
        CoprYamlError {
            line,
            column,
            message,
        }
    }

    /// An error about the file as a whole, such as a missing top-level key.
    pub(super) fn at_start(message: String) -> Self {
        CoprYamlError {
            line: 1,
            column: 1,
            message,
        }
    }
}

/// Where a top-level key stands in the text (1-based).
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

/// Turns a syntax, unknown-key or type error of the YAML library into ours.
pub(super) fn from_yaml(error: serde_saphyr::Error) -> CoprYamlError {
    let (line, column) = error
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| (l.line(), l.column().max(1)))
        .unwrap_or((1, 1));
    let mut inner = &error;
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = inner
    {
        inner = error;
    }
    let message = match inner {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => unknown_message("key", field, expected),
        serde_saphyr::Error::SerdeUnknownVariant {
            variant, expected, ..
        } => unknown_message("value", variant, expected),
        serde_saphyr::Error::SerdeMissingField { field, .. } => {
            format!("missing key `{field}`")
        }
        serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("`{key}` is set twice; keep one")
        }
        serde_saphyr::Error::Unexpected { expected, .. } => match *expected {
            "sequence start" => {
                "expected a list, such as `[a, b]` or lines starting with `- `".to_owned()
            }
            "mapping start" => "expected a mapping of keys to values, such as `key: value`".into(),
            "string scalar" => "expected a single value, not a list or a mapping".into(),
            other => format!("expected {other}"),
        },
        other => plain_message(other),
    };
    CoprYamlError {
        line,
        column,
        message,
    }
}

/// "unknown key `projetc` (did you mean `project`?); known keys: …": the hint first, because a
/// commit status shows only the first 140 characters.
fn unknown_message(what: &str, found: &str, expected: &[&str]) -> String {
    let known = expected.join(", ");
    match nearest(found, expected) {
        Some(hint) => {
            format!("unknown {what} `{found}` (did you mean `{hint}`?); known {what}s: {known}")
        }
        None => format!("unknown {what} `{found}`; known {what}s: {known}"),
    }
}

/// The message of a YAML error without the location and snippet the library adds, because we
/// print the location ourselves in the `file:line:column:` form editors understand.
fn plain_message(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 3 column 1: message" or "message at line 3, column 1"
    let message = match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, message)) => message,
        None => first,
    };
    let message = match message.rsplit_once(" at line ") {
        Some((message, place)) if place.contains(", column ") => message,
        _ => message,
    };
    match message {
        "invalid boolean" => "expected `true` or `false`".to_owned(),
        "invalid u64" => "expected a whole number, such as `3600`".to_owned(),
        other => other.to_owned(),
    }
}

/// The known name closest to a misspelt one, if it is close enough to be a likely typo.
pub(super) fn nearest<'a>(found: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(found, c), *c))
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
