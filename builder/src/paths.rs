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
