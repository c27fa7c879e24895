//! The `chroots` entries of a job: concrete chroots of the instance, or aliases that expand
//! against the instance's configured chroot list at the time of the event, so a file that says
//! `fedora-all` follows the instance as Fedora releases come and go.
//!
//! - `<os>-all`: every configured chroot of that OS, every arch (`fedora-all`, `epel-all`,
//!   `centos-stream-all`);
//! - `<os>-stable`: every chroot of that OS with a numbered release, every arch; for Fedora that
//!   is everything but rawhide (`fedora-stable`);
//! - `<os>-<release>`: every arch of one release (`fedora-rawhide`, `fedora-41`, `epel-9`);
//! - `<os>-<release>-<arch>`: that chroot, which must be configured.

use super::CoprYamlError;
use crate::model::Chroot;
use serde_saphyr::Spanned;

/// Checks the shape of an entry before the instance's list is known.
pub(super) fn check(entry: &str) -> Result<(), String> {
    let well_formed = entry.contains('-')
        && !entry.starts_with('-')
        && !entry.ends_with('-')
        && !entry.contains("--")
        && entry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "`{entry}` is neither a chroot like `fedora-41-x86_64` nor an alias like `fedora-all`"
        ))
    }
}

/// The chroots a list of entries stands for, in the order of the entries (and of the
/// instance's list within an alias), each once.
pub(super) fn resolve(
    entries: &[Spanned<String>],
    text: &str,
    available: &[String],
) -> Result<Vec<String>, CoprYamlError> {
    let mut chroots: Vec<String> = Vec::new();
    for entry in entries {
        let matched = expand(&entry.value, available);
        if matched.is_empty() {
            return Err(CoprYamlError::at(
                entry.referenced,
                text,
                "chroots",
                no_match_message(&entry.value, available),
            ));
        }
        for chroot in matched {
            if !chroots.contains(chroot) {
                chroots.push(chroot.clone());
            }
        }
    }
    Ok(chroots)
}

/// The configured chroots an entry stands for; empty when it names none of them.
fn expand<'a>(entry: &str, available: &'a [String]) -> Vec<&'a String> {
    if let Some(chroot) = available.iter().find(|c| *c == entry) {
        return vec![chroot];
    }
    let keep: Box<dyn Fn(&Chroot) -> bool + '_> = if let Some(os) = entry.strip_suffix("-all") {
        Box::new(move |c| c.os == os)
    } else if let Some(os) = entry.strip_suffix("-stable") {
        Box::new(move |c| {
            c.os == os && !c.version.is_empty() && c.version.chars().all(|d| d.is_ascii_digit())
        })
    } else {
        Box::new(move |c| c.name_release() == entry)
    };
    available
        .iter()
        .filter(|name| Chroot::parse(name).is_some_and(|c| keep(&c)))
        .collect()
}

/// Names the entry and lists what there is, the list last so that a status description cut at
/// 140 characters still says what is wrong.
fn no_match_message(entry: &str, available: &[String]) -> String {
    if available.is_empty() {
        format!("`{entry}` matches no chroot: this instance has no chroots configured")
    } else {
        format!(
            "`{entry}` matches no chroot of this instance; available: {}",
            available.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> Vec<String> {
        [
            "fedora-41-x86_64",
            "fedora-41-aarch64",
            "fedora-42-x86_64",
            "fedora-rawhide-x86_64",
            "fedora-rawhide-aarch64",
            "epel-9-x86_64",
            "epel-10-x86_64",
            "centos-stream-9-x86_64",
            "centos-stream-10-x86_64",
            "opensuse-tumbleweed-x86_64",
        ]
        .map(String::from)
        .to_vec()
    }

    fn expanded(entry: &str) -> Vec<String> {
        expand(entry, &instance()).into_iter().cloned().collect()
    }

    #[test]
    fn aliases_expand_against_the_instance() {
        assert_eq!(
            expanded("fedora-all"),
            [
                "fedora-41-x86_64",
                "fedora-41-aarch64",
                "fedora-42-x86_64",
                "fedora-rawhide-x86_64",
                "fedora-rawhide-aarch64"
            ]
        );
        assert_eq!(
            expanded("fedora-stable"),
            ["fedora-41-x86_64", "fedora-41-aarch64", "fedora-42-x86_64"]
        );
        assert_eq!(
            expanded("fedora-rawhide"),
            ["fedora-rawhide-x86_64", "fedora-rawhide-aarch64"]
        );
        assert_eq!(expanded("epel-all"), ["epel-9-x86_64", "epel-10-x86_64"]);
        assert_eq!(
            expanded("centos-stream-all"),
            ["centos-stream-9-x86_64", "centos-stream-10-x86_64"]
        );
        assert_eq!(expanded("centos-stream-9"), ["centos-stream-9-x86_64"]);
        assert_eq!(expanded("opensuse-all"), ["opensuse-tumbleweed-x86_64"]);
        assert_eq!(expanded("fedora-42-x86_64"), ["fedora-42-x86_64"]);
        assert!(expanded("fedora-99-x86_64").is_empty());
        assert!(expanded("mageia-all").is_empty());
        // `fedora-4` is not a prefix of `fedora-41`.
        assert!(expanded("fedora-4").is_empty());
    }

    #[test]
    fn entries_must_look_like_chroots() {
        assert!(check("fedora-all").is_ok());
        assert!(check("fedora-41-x86_64").is_ok());
        for bad in [
            "fedora",
            "fedora-",
            "-41",
            "fedora--41",
            "fedora 41",
            "../x-y",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
