//! Who may use the signing service, and for which projects: the `--callers` file of
//! `ferrocopr signer`, read once at start.
//!
//! ```yaml
//! callers:
//!   - name: backend                 # shown in logs, never the token
//!     # sha256 of the bearer token, hex: printf %s "$TOKEN" | sha256sum
//!     token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!     projects: ["*"]               # or "alice/*", or "alice/hello"
//! ```
//!
//! Only hashes of tokens are stored, so the file does not let its reader sign; a presented
//! token is hashed and compared with every caller's hash in constant time.

use anyhow::Context;
use ferrocopr_schema::ProjectRef;
use ferrocopr_schema::model::{is_valid_name, is_valid_owner};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallersFile {
    /// Every caller that may use the signer.
    callers: Vec<CallerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallerEntry {
    /// A name for logs.
    name: String,
    /// The SHA-256 of the caller's bearer token, in hex.
    token_sha256: String,
    /// `owner/project`, `owner/*` or `*`.
    projects: Vec<String>,
}

/// The callers the service knows.
#[derive(Debug, Clone)]
pub struct Callers {
    callers: Vec<Caller>,
}

/// One caller: its name, its token's hash and the projects it may use.
#[derive(Clone)]
pub struct Caller {
    pub name: String,
    token_sha256: [u8; 32],
    projects: Vec<ProjectPattern>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("name", &self.name)
            .field("projects", &self.projects)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ProjectPattern {
    Any,
    Owner(String),
    Project(ProjectRef),
}

impl ProjectPattern {
    fn parse(text: &str) -> anyhow::Result<ProjectPattern> {
        if text == "*" {
            return Ok(ProjectPattern::Any);
        }
        let (owner, project) = text
            .split_once('/')
            .with_context(|| format!("{text:?}: write `owner/project`, `owner/*` or `*`"))?;
        anyhow::ensure!(
            is_valid_owner(owner),
            "{text:?}: {owner:?} is not an owner name"
        );
        if project == "*" {
            return Ok(ProjectPattern::Owner(owner.to_owned()));
        }
        anyhow::ensure!(
            is_valid_name(project),
            "{text:?}: {project:?} is not a project name (or `*`)"
        );
        Ok(ProjectPattern::Project(ProjectRef {
            owner: owner.to_owned(),
            project: project.to_owned(),
        }))
    }

    fn matches(&self, project: &ProjectRef) -> bool {
        match self {
            ProjectPattern::Any => true,
            ProjectPattern::Owner(owner) => *owner == project.owner,
            ProjectPattern::Project(p) => p == project,
        }
    }
}

/// The hex SHA-256 of a token, as the callers file holds it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Callers {
    /// Reads the callers file; errors name the file and say what is wrong.
    pub fn load(path: &Path) -> anyhow::Result<Callers> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the callers file {}", path.display()))?;
        Callers::parse(&text).with_context(|| format!("in the callers file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Callers> {
        let file: CallersFile = serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut callers = Vec::with_capacity(file.callers.len());
        for entry in file.callers {
            let name = entry.name;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(entry.token_sha256.trim(), &mut hash).map_err(|_| {
                anyhow::anyhow!(
                    "caller {name:?}: token_sha256 must be 64 hex digits (printf %s \"$TOKEN\" | \
                     sha256sum)"
                )
            })?;
            let projects = entry
                .projects
                .iter()
                .map(|p| ProjectPattern::parse(p))
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| format!("caller {name:?}"))?;
            callers.push(Caller {
                name,
                token_sha256: hash,
                projects,
            });
        }
        Ok(Callers { callers })
    }

    /// The caller whose token this is. Every caller's hash is compared, in constant time, so
    /// the time taken tells nothing of which hash came close.
    pub fn authenticate(&self, token: &str) -> Option<&Caller> {
        let presented = Sha256::digest(token.as_bytes());
        let mut found = None;
        for caller in &self.callers {
            if bool::from(caller.token_sha256[..].ct_eq(&presented[..])) {
                found = Some(caller);
            }
        }
        found
    }
}

impl Caller {
    /// Whether this caller may create keys and sign for `project`.
    pub fn may_use(&self, project: &ProjectRef) -> bool {
        self.projects.iter().any(|p| p.matches(project))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(owner: &str, project: &str) -> ProjectRef {
        ProjectRef {
            owner: owner.into(),
            project: project.into(),
        }
    }

    #[test]
    fn tokens_and_patterns() -> anyhow::Result<()> {
        let text = format!(
            "callers:\n  - name: all\n    token_sha256: {}\n    projects: [\"*\"]\n  \
             - name: alice\n    token_sha256: {}\n    projects: [\"alice/*\", \"bob/hello\"]\n",
            token_sha256("one"),
            token_sha256("two")
        );
        let callers = Callers::parse(&text)?;
        let all = callers.authenticate("one").context("one")?;
        assert_eq!(all.name, "all");
        assert!(all.may_use(&project("zed", "x")));
        let alice = callers.authenticate("two").context("two")?;
        assert!(alice.may_use(&project("alice", "anything")));
        assert!(alice.may_use(&project("bob", "hello")));
        assert!(!alice.may_use(&project("bob", "other")));
        assert!(callers.authenticate("three").is_none());
        assert!(callers.authenticate("").is_none());
        Ok(())
    }

    #[test]
    fn mistakes_are_named() {
        let bad_hash = "callers:\n  - name: x\n    token_sha256: abc\n    projects: [\"*\"]\n";
        let message = Callers::parse(bad_hash)
            .err()
            .map_or_else(String::new, |e| format!("{e:#}"));
        assert!(message.contains("64 hex digits"), "{message}");
        let bad_pattern = format!(
            "callers:\n  - name: x\n    token_sha256: {}\n    projects: [\"alice\"]\n",
            token_sha256("t")
        );
        let message = Callers::parse(&bad_pattern)
            .err()
            .map_or_else(String::new, |e| format!("{e:#}"));
        assert!(message.contains("owner/project"), "{message}");
        let unknown = "callers:\n  - name: x\n    token: t\n    projects: [\"*\"]\n";
        assert!(Callers::parse(unknown).is_err());
    }
}
