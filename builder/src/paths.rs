//! Checks on names and paths that come from outside (a task, a `sources` file, an SRPM)
//! before they are joined to a directory: the builder and DistGit must never write or read
//! outside the directories they were given.

use std::path::{Component, Path, PathBuf};

/// A file name that stays in its directory: not empty, no `/`, not `.` or `..`, no NUL.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && name.len() <= 255
}

/// A relative path that cannot leave the directory it is joined to by its own components.
///
/// Symbolic links can still point outside; callers that follow them check the resolved path
/// with [`resolve_inside`].
pub fn safe_relative_path(path: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err("the path is empty".to_owned());
    }
    if path.contains('\0') {
        return Err(format!("{path:?} contains a NUL byte"));
    }
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("{path:?} contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{path:?} is absolute; give it relative to the repository"
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("{path:?} names no file"));
    }
    Ok(out)
}

/// `base/rel` with symbolic links resolved, if it exists and is inside `base`.
pub fn resolve_inside(base: &Path, rel: &Path) -> Result<PathBuf, String> {
    let base = base
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", base.display()))?;
    let full = base
        .join(rel)
        .canonicalize()
        .map_err(|e| format!("{}: {e}", rel.display()))?;
    if !full.starts_with(&base) {
        return Err(format!("{} points outside the repository", rel.display()));
    }
    Ok(full)
}

/// Whatever under `dir` is neither a regular file nor a directory (symbolic links above all),
/// as paths relative to `dir` with what they are. Nothing is followed.
///
/// Builders run packagers' code, so a result directory may hold a link to a file of the host
/// (`/etc/shadow`, a signing key): such a result is rejected, never published or copied.
pub fn irregular_entries(dir: &Path) -> std::io::Result<Vec<String>> {
    Ok(irregular_paths(dir)?
        .into_iter()
        .map(|(_, what)| what)
        .collect())
}

/// The irregular entries under `dir`: relative path, and the path with what it is.
fn irregular_paths(dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                let what = format!("{} (a symbolic link to {target})", path.display());
                found.push((path, what));
            } else if !kind.is_file() {
                let what = format!("{} (not a regular file)", path.display());
                found.push((path, what));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Removes what [`irregular_entries`] finds (a link itself, never its target) and says what
/// it was.
pub fn remove_irregular(dir: &Path) -> std::io::Result<Vec<String>> {
    let found = irregular_paths(dir)?;
    for (path, _) in &found {
        std::fs::remove_file(dir.join(path))?;
    }
    Ok(found.into_iter().map(|(_, what)| what).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_file_names() {
        assert!(is_plain_file_name("hello-1.0.tar.gz"));
        assert!(is_plain_file_name(".hidden"));
        assert!(!is_plain_file_name(""));
        assert!(!is_plain_file_name("."));
        assert!(!is_plain_file_name(".."));
        assert!(!is_plain_file_name("../x"));
        assert!(!is_plain_file_name("a/b"));
        assert!(!is_plain_file_name("/etc/passwd"));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            safe_relative_path("hello.spec"),
            Ok(PathBuf::from("hello.spec"))
        );
        assert_eq!(
            safe_relative_path("./rpm/hello.spec"),
            Ok(PathBuf::from("rpm/hello.spec"))
        );
        assert!(safe_relative_path("").is_err());
        assert!(safe_relative_path(".").is_err());
        assert!(safe_relative_path("/etc/hello.spec").is_err());
        assert!(safe_relative_path("../hello.spec").is_err());
        assert!(safe_relative_path("rpm/../../hello.spec").is_err());
    }

    #[test]
    fn finds_links_anywhere_in_a_result() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("a.rpm"), "")?;
        std::fs::create_dir(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("sub/b.rpm"), "")?;
        assert!(irregular_entries(dir.path())?.is_empty());
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("sub/c.rpm"))?;
        assert_eq!(
            irregular_entries(dir.path())?,
            ["sub/c.rpm (a symbolic link to /etc/passwd)"]
        );
        assert_eq!(remove_irregular(dir.path())?.len(), 1);
        assert!(irregular_entries(dir.path())?.is_empty());
        assert!(dir.path().join("sub/b.rpm").is_file());
        assert!(Path::new("/etc/passwd").is_file());
        Ok(())
    }

    #[test]
    fn symlinks_out_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let outside = tempfile::tempdir()?;
        let base = tempfile::tempdir()?;
        std::fs::write(outside.path().join("x.spec"), "")?;
        std::fs::write(base.path().join("in.spec"), "")?;
        std::os::unix::fs::symlink(outside.path().join("x.spec"), base.path().join("out.spec"))?;
        assert!(resolve_inside(base.path(), Path::new("in.spec")).is_ok());
        assert!(resolve_inside(base.path(), Path::new("out.spec")).is_err());
        assert!(resolve_inside(base.path(), Path::new("missing.spec")).is_err());
        Ok(())
    }
}
