//! ferrocopr as its own process: the real `ferrocopr serve` binary, configured through its
//! environment variables the way an operator runs it, for tests that kill it (SIGKILL, no
//! shutdown) and start it again on the same data directory.

use crate::fake_forge::{FakeForge, TOKEN};
use crate::{http, webhook};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `ferrocopr serve`; killed when dropped.
pub struct ServeProcess {
    child: Child,
    url: String,
}

impl ServeProcess {
    /// Starts `ferrocopr serve` on `127.0.0.1:port` with `data_dir`, talking to `forge` as
    /// GitHub, and waits until it answers.
    pub async fn start(data_dir: &Path, port: u16, forge: &FakeForge) -> ServeProcess {
        ServeProcess::start_with_env(data_dir, port, forge, &[]).await
    }

    /// [`ServeProcess::start`] with more environment variables (options), which win over the
    /// defaults.
    pub async fn start_with_env(
        data_dir: &Path,
        port: u16,
        forge: &FakeForge,
        env: &[(&str, String)],
    ) -> ServeProcess {
        let binary = tokio::task::spawn_blocking(crate::builder_bin::ferrocopr_binary)
            .await
            .expect("build the ferrocopr binary");
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .expect("open the process log");
        let child = Command::new(binary)
            .arg("serve")
            .env("FERROCOPR_DATA_DIR", data_dir)
            .env("FERROCOPR_LISTEN", format!("127.0.0.1:{port}"))
            .env("FERROCOPR_PUBLIC_URL", &url)
            .env("FERROCOPR_GITHUB_WEBHOOK_SECRET", webhook::SECRET)
            .env("FERROCOPR_GITHUB_TOKEN", TOKEN)
            .env("FERROCOPR_GITHUB_API_URL", forge.url())
            .env("FERROCOPR_DOMAIN", "example.org")
            .env("FERROCOPR_CHROOTS", "fedora-41-x86_64")
            .env("RUST_LOG", "info,sqlx=warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start ferrocopr serve");
        let process = ServeProcess { child, url };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = ureq_get(&format!("{}/", process.url)).await
                && response == 200
            {
                return process;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ferrocopr serve did not answer on {}; its log is {}",
                process.url,
                data_dir.with_extension("log").display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends a signed GitHub delivery.
    pub async fn github_webhook(&self, event: &str, delivery: &str, body: &[u8]) -> u16 {
        let headers = vec![
            ("X-GitHub-Event".to_owned(), event.to_owned()),
            ("X-GitHub-Delivery".to_owned(), delivery.to_owned()),
            (
                "X-Hub-Signature-256".to_owned(),
                webhook::signature(webhook::SECRET, body),
            ),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        http::post(
            &format!("{}/webhooks/github", self.url),
            headers,
            body.to_vec(),
        )
        .await
        .status
    }

    /// SIGKILL: no shutdown, no flushing, as when the machine loses power.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL ferrocopr serve");
        self.child.wait().expect("reap ferrocopr serve");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ureq_get(url: &str) -> Result<u16, ()> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .call()
            .map(|r| r.status().as_u16())
            .map_err(|_| ())
    })
    .await
    .map_err(|_| ())?
}

/// A free port on 127.0.0.1 (bound and released; the process binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// The SQLite database a `ferrocopr serve` keeps in `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    let file: PathBuf = data_dir.join("ferrocopr.db");
    format!("sqlite://{}", file.display())
}
