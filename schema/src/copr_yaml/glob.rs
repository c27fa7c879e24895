//! Branch and tag filters of a job: an exact name or a glob, always matched against the whole
//! name. Packit's users were bitten by filters that matched by prefix (`main` building
//! `main-old`); here a pattern without `*` is an exact name, and `release-*` is needed to mean
//! "anything starting with `release-`".
//!
//! `*` is any run of characters (`/` included, so `feature/*` takes `feature/a/b`), `?` one
//! character, `[abc]`, `[a-z]` one of a set and `[!a-z]` or `[^a-z]` one outside it. Git
//! forbids `*`, `?`, `[` and `\` in branch and tag names, so no escape is needed.
//!
//! The API v3's chroot patterns (`chroots: ["fedora-*-x86_64"]`) match with the same rules.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    AnyChar,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Char(expected) => *expected == c,
            Token::AnyChar => true,
            Token::AnyRun => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
            }
        }
    }
}

/// Checks that a pattern can be used, saying what is wrong otherwise.
pub(super) fn check(pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err("a branch or tag pattern cannot be empty".into());
    }
    if pattern.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{pattern}` holds a space, which no branch or tag name can"
        ));
    }
    if let Some(rest) = pattern
        .strip_prefix("refs/heads/")
        .or_else(|| pattern.strip_prefix("refs/tags/"))
    {
        return Err(format!(
            "write `{rest}` rather than `{pattern}`: patterns match short branch and tag names"
        ));
    }
    compile(pattern).map(|_| ())
}

/// Whether `name` as a whole matches `pattern`. A pattern that [`check`] refuses matches nothing.
pub fn matches(pattern: &str, name: &str) -> bool {
    let Ok(tokens) = compile(pattern) else {
        return false;
    };
    let name: Vec<char> = name.chars().collect();
    // The classic wildcard walk: on a mismatch, let the last `*` swallow one more character
    // and retry from there. Linear in practice, never exponential.
    let (mut t, mut n) = (0, 0);
    let mut last_run: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                last_run = Some((t, n));
                t += 1;
            }
            Some(token) if token.matches(name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match last_run {
                Some((run_t, run_n)) => {
                    last_run = Some((run_t, run_n + 1));
                    t = run_t + 1;
                    n = run_n + 1;
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|token| *token == Token::AnyRun)
}

fn compile(pattern: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyChar,
            '[' => {
                let negated = chars.next_if(|c| *c == '!' || *c == '^').is_some();
                let mut ranges = Vec::new();
                let mut closed = false;
                // A `]` right after `[` (or `[!`) is a member, not the end.
                let mut first = true;
                while let Some(c) = chars.next() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    let high = match chars.peek() {
                        Some('-') => {
                            let mut ahead = chars.clone();
                            ahead.next();
                            match ahead.next() {
                                Some(high) if high != ']' => {
                                    chars.next();
                                    chars.next();
                                    high
                                }
                                _ => c,
                            }
                        }
                        _ => c,
                    };
                    if high < c {
                        return Err(format!(
                            "`{pattern}`: the range `{c}-{high}` is backwards; write `{high}-{c}`"
                        ));
                    }
                    ranges.push((c, high));
                }
                if !closed {
                    return Err(format!(
                        "`{pattern}`: a `[` is never closed; close the set with `]`"
                    ));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Char(c),
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_match_whole_names_only() {
        assert!(matches("main", "main"));
        assert!(!matches("main", "main-old"));
        assert!(!matches("main", "old-main"));
        assert!(!matches("main", "mai"));
    }

    #[test]
    fn stars_questions_and_sets() {
        assert!(matches("release-*", "release-1.0"));
        assert!(matches("release-*", "release-"));
        assert!(!matches("release-*", "prerelease-1.0"));
        assert!(matches("feature/*", "feature/a/b"));
        assert!(matches("*-stable", "6.1-stable"));
        assert!(matches("v?.*", "v2.13"));
        assert!(!matches("v?.*", "v10.1"));
        assert!(matches("f[0-9][0-9]", "f41"));
        assert!(!matches("f[0-9][0-9]", "fxx"));
        assert!(matches("v[!0]*", "v1.0"));
        assert!(!matches("v[^0]*", "v0.9"));
        assert!(matches("[]x]", "]"));
        assert!(matches("a*b*c", "a-x-b-y-b-c"));
        assert!(!matches("a*b*c", "a-x-b-y-b-d"));
        assert!(matches("*", ""));
    }

    #[test]
    fn bad_patterns_are_explained() {
        assert!(
            check("release-[0-9")
                .expect_err("unclosed")
                .contains("never closed")
        );
        assert!(check("[z-a]").expect_err("backwards").contains("backwards"));
        assert!(check("").is_err());
        assert!(check("my branch").is_err());
        assert!(
            check("refs/heads/main")
                .expect_err("ref")
                .contains("write `main`")
        );
        assert!(!matches("release-[0-9", "release-[0-9"));
    }
}
