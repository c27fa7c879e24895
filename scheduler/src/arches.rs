//! Which chroots a package may be built in (seed step 7, at import): the SRPM's `ExclusiveArch`
//! and `ExcludeArch` rule architectures out, and the chroots of those architectures are marked
//! `skipped` instead of being built, as Copr does (REFERENCE §1).

use anyhow::Context;
use std::path::Path;
use tokio::process::Command;

/// The SRPM's architecture rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchRules {
    /// When not empty, only these architectures build the package.
    pub exclusive: Vec<String>,
    /// These architectures never build it.
    pub exclude: Vec<String>,
}

impl ArchRules {
    /// Whether a chroot of `arch` builds the package.
    pub fn allows(&self, arch: &str) -> bool {
        (self.exclusive.is_empty() || self.exclusive.iter().any(|a| a == arch))
            && !self.exclude.iter().any(|a| a == arch)
    }

    /// Reads the rules from a source package's header with `rpm -qp`.
    pub async fn of_srpm(srpm: &Path) -> anyhow::Result<ArchRules> {
        let output = Command::new("rpm")
            .args(["-qp", "--nosignature", "--nodigest", "--qf"])
            .arg("[%{EXCLUSIVEARCH} ]\\n[%{EXCLUDEARCH} ]\\n")
            .arg(srpm)
            .output()
            .await
            .context("running rpm -qp")?;
        anyhow::ensure!(
            output.status.success(),
            "rpm -qp {} failed: {}",
            srpm.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(ArchRules::parse(&String::from_utf8_lossy(&output.stdout)))
    }

    /// Two lines, the exclusive and the excluded architectures, separated by spaces.
    fn parse(text: &str) -> ArchRules {
        let mut lines = text.lines();
        let mut list = || {
            lines
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .filter(|a| *a != "(none)")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let exclusive = list();
        let exclude = list();
        ArchRules { exclusive, exclude }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_and_excluded_architectures() {
        let only_aarch64 = ArchRules::parse("aarch64 \n\n");
        assert!(only_aarch64.allows("aarch64"));
        assert!(!only_aarch64.allows("x86_64"));
        let not_s390x = ArchRules::parse("\ns390x ppc64le \n");
        assert!(not_s390x.allows("x86_64"));
        assert!(!not_s390x.allows("ppc64le"));
        let none = ArchRules::parse("(none)\n(none)\n");
        assert_eq!(none, ArchRules::default());
        assert!(none.allows("x86_64"));
    }
}
