//! Downloads from the outside world and from the lookaside cache: the `url` and `distgit`
//! SRPM methods and the RPM task's sources all fetch files through here.
//!
//! A download goes to a new file (never over an existing one, never through a link) and is
//! hashed on the way, so callers can check it against what a `sources` file promises; a failed
//! download leaves no file behind.

use anyhow::{Context as _, bail};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::paths::is_plain_file_name;
use crate::sources;

/// A server that does not even accept the connection in this time is down; a slow download
/// itself is bounded by the task's timeout, which the scheduler enforces.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Downloads `url` (`http://`, `https://` or `file://`) into the new file `dest`; returns its
/// SHA-512.
pub(crate) fn to_file(url: &str, dest: &Path) -> anyhow::Result<String> {
    println!("==> downloading {url}");
    let reader = open(url)?;
    let file =
        File::create_new(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let hashed = sources::copy_hashing(reader, &file)
        .and_then(|h| file.sync_all().map(|()| h))
        .with_context(|| format!("cannot download {url}"));
    if hashed.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    hashed
}

fn open(url: &str) -> anyhow::Result<Box<dyn Read>> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Box::new(
            File::open(path).with_context(|| format!("cannot open {url}"))?,
        ));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("cannot download {url}: only http://, https:// and file:// URLs are supported");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
        .into();
    let response = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot download {url}"))?;
    Ok(Box::new(response.into_body().into_reader()))
}

/// The file name a URL names: its last path segment, without query or fragment, unless the
/// fragment is `#/<name>` (the Fedora spec convention for naming a download).
pub(crate) fn file_name_of(url: &str) -> anyhow::Result<&str> {
    let (rest, fragment) = url.split_once('#').unwrap_or((url, ""));
    let name = match fragment.strip_prefix('/') {
        Some(named) => named.rsplit('/').next().unwrap_or(named),
        None => {
            let path = rest.split_once('?').map_or(rest, |(p, _)| p);
            path.rsplit('/').next().unwrap_or(path)
        }
    };
    if !is_plain_file_name(name) || name.contains(['%', '\\']) {
        bail!("{url} does not end in a file name");
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() -> anyhow::Result<()> {
        assert_eq!(
            file_name_of("https://x.org/a/hello-1.0.src.rpm")?,
            "hello-1.0.src.rpm"
        );
        assert_eq!(
            file_name_of("https://x.org/hello.spec?raw=true")?,
            "hello.spec"
        );
        assert_eq!(
            file_name_of("https://github.com/o/r/archive/v1.0.tar.gz#/r-1.0.tar.gz")?,
            "r-1.0.tar.gz"
        );
        assert!(file_name_of("https://x.org/").is_err());
        assert!(file_name_of("https://x.org/..").is_err());
        assert!(file_name_of("https://x.org/a%2F..%2Fb.spec").is_err());
        Ok(())
    }

    #[test]
    fn a_failed_download_leaves_nothing() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let dest = dir.path().join("x");
        assert!(to_file("file:///nonexistent/x", &dest).is_err());
        assert!(to_file("ftp://x.org/x", &dest).is_err());
        assert!(!dest.exists());
        std::fs::write(dir.path().join("src"), "abc")?;
        let url = format!("file://{}", dir.path().join("src").display());
        assert_eq!(to_file(&url, &dest)?, sources::sha512_of_file(&dest)?);
        // Never over an existing file.
        assert!(to_file(&url, &dest).is_err());
        Ok(())
    }
}
