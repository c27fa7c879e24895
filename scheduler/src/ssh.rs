//! Builder hosts reached over SSH: seed steps 4-5 and 10-11 on a machine that the allocator
//! ([`crate::alloc`]) handed out as a [`Resource`].
//!
//! One task goes through three calls. [`SshBuilder::start`] makes a fresh work directory on the
//! host, puts the task JSON there and starts the builder program detached; the scheduler
//! stores the returned [`RemoteTask`] in the database. [`SshBuilder::follow`] copies the live
//! log while the builder runs and the results once it has ended. [`SshBuilder::clean`] removes
//! the work directory.
//!
//! The builder never depends on the SSH connection: it runs in a session of its own with its
//! output in a file on the host. A dropped connection or a restarted scheduler therefore loses
//! nothing: a new `follow` on the stored [`RemoteTask`] resumes the log where the local copy
//! stops. Host keys are always verified, against a known_hosts file or one pinned key; an
//! unknown host is refused, never learned.

use crate::alloc::Resource;
use crate::host::{BuilderOutcome, CANCELED, HostError, TIMED_OUT, rejected_results};
use ferrocopr_schema::task::{BuilderTask, LIVE_LOG, SUCCESS_FILE};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, client};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long connecting (TCP, key exchange, authentication) may take before the attempt counts
/// as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pauses before each attempt to re-attach after the connection dropped: about 3 s in all,
/// enough for a network blip or a restarting sshd, short enough that a dead host is given up
/// quickly and the task can go to another one.
const REATTACH_DELAYS: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
    Duration::from_millis(1250),
];

/// A connection that stayed up this long showed that the host is back: a later drop gets the
/// full set of re-attach attempts again.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

/// A build may print nothing for many minutes, so silence proves nothing; unanswered keepalives
/// do. A host that stops answering is noticed after about interval × max.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_MAX: usize = 3;

/// Seconds between the remote side's looks for new log data and at whether the builder still
/// runs: the live log reaches the scheduler within about this.
const REMOTE_POLL: &str = "0.2";

/// How long the steps after a cancel or timeout may take each (connecting again if needed, the
/// last look at the log): worth a round trip, not a slow answer to a cancel.
const LAST_LOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// The task JSON, in the work directory.
const TASK_FILE: &str = "task.json";
/// The builder's `--resultdir`, in the work directory: what is copied back.
const RESULTS_DIR: &str = "results";

/// How the builder host's identity is checked. There is no "accept anything" option: a host
/// key that is unknown or differs is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeys {
    /// An OpenSSH known_hosts file; a host on a port other than 22 is looked up as
    /// `[host]:port`, as `ssh` writes it.
    KnownHosts(PathBuf),
    /// The one key the host must present, as in a `.pub` file: `ssh-ed25519 AAAA… [comment]`.
    Pinned(String),
}

/// How the scheduler reaches its builder hosts over SSH.
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// The remote account the builder runs as.
    pub user: String,
    /// The client's private key, OpenSSH format, without a passphrase
    /// (`ssh-keygen -t ed25519 -N ''`).
    pub key: PathBuf,
    pub host_keys: HostKeys,
    /// The builder program on the host (`ferrocopr`), run as
    /// `<builder_command> builder --task <file> --resultdir <dir>`.
    pub builder_command: String,
}

/// A builder started on a host: what the scheduler stores so that it, or its next incarnation,
/// can follow the task again.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RemoteTask {
    pub host: String,
    pub port: u16,
    /// The builder's pid, which is also its process group and session id.
    pub pid: u32,
    /// The task's work directory on the host (absolute).
    pub dir: String,
}

/// Runs builder tasks on one host over SSH.
#[derive(Debug)]
pub struct SshBuilder {
    config: Arc<SshConfig>,
    client_config: Arc<client::Config>,
    host: String,
    port: u16,
    /// The resource's name, or its address: for logs and errors.
    name: String,
}

/// Why a connection or a remote command failed; only [`SshError::Transport`] is worth
/// re-attaching for.
#[derive(Debug, thiserror::Error)]
enum SshError {
    /// The network or the SSH session: refused, reset, timed out, closed.
    #[error("{0}")]
    Transport(String),
    #[error("host key check failed: {0}")]
    HostKey(String),
    #[error("the host refused the client key for user {user}")]
    Auth { user: String },
    #[error("client key {path}: {reason}")]
    ClientKey { path: String, reason: String },
    /// A command on the host ran and failed.
    #[error("{0}")]
    Remote(String),
    /// Writing the log or the results on this side.
    #[error("{0}")]
    Local(String),
}

impl From<russh::Error> for SshError {
    fn from(error: russh::Error) -> SshError {
        SshError::Transport(error.to_string())
    }
}

impl SshError {
    fn is_transient(&self) -> bool {
        matches!(self, SshError::Transport(_))
    }
}

/// Why a [`SshBuilder::follow`] stops before the builder ended.
#[derive(Debug, Clone, Copy)]
enum Interrupt {
    Canceled,
    TimedOut,
}

impl Interrupt {
    fn line(self) -> &'static str {
        match self {
            Interrupt::Canceled => CANCELED,
            Interrupt::TimedOut => TIMED_OUT,
        }
    }

    fn outcome(self) -> BuilderOutcome {
        match self {
            Interrupt::Canceled => BuilderOutcome::Canceled,
            Interrupt::TimedOut => BuilderOutcome::Failed,
        }
    }
}

/// Resolves when the build is canceled or the fail-safe limit is reached; cancel wins a tie.
async fn interrupted(cancel: &CancellationToken, deadline: Instant) -> Interrupt {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Interrupt::Canceled,
        () = tokio::time::sleep_until(deadline) => Interrupt::TimedOut,
    }
}

impl SshBuilder {
    pub fn new(config: Arc<SshConfig>, resource: &Resource) -> SshBuilder {
        let client_config = client::Config {
            keepalive_interval: Some(KEEPALIVE_INTERVAL),
            keepalive_max: KEEPALIVE_MAX,
            // Log lines are small writes that should not wait for Nagle.
            nodelay: true,
            ..client::Config::default()
        };
        SshBuilder {
            config,
            client_config: Arc::new(client_config),
            host: resource.host.clone(),
            port: resource.ssh_port,
            name: resource
                .name
                .clone()
                .unwrap_or_else(|| format!("{}:{}", resource.host, resource.ssh_port)),
        }
    }

    /// Connects, makes a fresh work directory `<base>/<task_id>-<random>` (`base` is
    /// `$FERROCOPR_WORKDIR` on the host, or `$HOME/ferrocopr-work`), writes the task JSON there
    /// and starts the builder detached, in its own session, with its output in
    /// `results/builder-live.log`. The builder keeps running when the connection closes.
    #[tracing::instrument(skip_all, fields(host = %self.name, task.id = %task.task_id))]
    pub async fn start(&self, task: &BuilderTask) -> Result<RemoteTask, HostError> {
        let json = serde_json::to_vec_pretty(task)
            .map_err(|e| self.host_error(SshError::Local(format!("task JSON: {e}"))))?;
        let conn = self
            .connect(&self.host, self.port)
            .await
            .map_err(|e| self.host_error(e))?;
        let script = start_script(&self.config.builder_command, &task.task_id);
        // The task goes on stdin: a command line is visible to every user of the host.
        let output = conn.run(&script, &json).await;
        conn.close().await;
        let output = output.map_err(|e| self.host_error(e))?;
        if output.status != 0 {
            return Err(self.host_error(SshError::Remote(format!(
                "starting the builder failed (exit status {}): {}",
                output.status,
                output.stderr_text()
            ))));
        }
        let started = String::from_utf8_lossy(&output.stdout);
        let (pid, dir) = started
            .lines()
            .last()
            .and_then(|line| line.split_once(' '))
            .and_then(|(pid, dir)| Some((pid.parse::<u32>().ok()?, dir.to_owned())))
            .ok_or_else(|| {
                self.host_error(SshError::Remote(format!(
                    "the start script printed {started:?}, not `<pid> <dir>`"
                )))
            })?;
        tracing::info!(pid, dir = %dir, "started the builder");
        Ok(RemoteTask {
            host: self.host.clone(),
            port: self.port,
            pid,
            dir,
        })
    }

    /// Follows a started task until the builder exits, appending the host's live log to
    /// `result_dir/builder-live.log` as it grows (from the local file's length, so that a
    /// second `follow` after a restart neither repeats nor loses a line), then copies the
    /// results back. Succeeded iff the builder wrote `success`.
    ///
    /// When `cancel` fires, or `limit` (see [`crate::host::fail_safe_limit`]) has passed since the call, the
    /// builder's process group is killed and the log says why. A dropped connection is
    /// re-attached a few times over about 3 s; a host that stays unreachable is an error.
    #[tracing::instrument(skip_all, fields(host = %remote.host, port = remote.port, pid = remote.pid))]
    pub async fn follow(
        &self,
        remote: &RemoteTask,
        result_dir: &Path,
        cancel: &CancellationToken,
        limit: Duration,
    ) -> Result<BuilderOutcome, HostError> {
        let deadline = Instant::now() + limit;
        if group_of(remote).is_none() {
            return Err(self.host_error(SshError::Local(format!(
                "pid {} cannot be a builder's process group",
                remote.pid
            ))));
        }
        let mut log = LocalLog::open(result_dir).map_err(|e| {
            self.host_error(SshError::Local(format!(
                "{}: {e}",
                result_dir.join(LIVE_LOG).display()
            )))
        })?;
        let mut delays = REATTACH_DELAYS.iter();
        loop {
            let mut connected_at = None;
            let attempt = self
                .follow_once(
                    remote,
                    result_dir,
                    &mut log,
                    cancel,
                    deadline,
                    &mut connected_at,
                )
                .await;
            let error = match attempt {
                Ok(outcome) => return Ok(outcome),
                Err(error) if error.is_transient() => error,
                Err(error) => return Err(self.host_error(error)),
            };
            if connected_at.is_some_and(|at| at.elapsed() >= STABLE_CONNECTION) {
                delays = REATTACH_DELAYS.iter();
            }
            let Some(delay) = delays.next() else {
                tracing::warn!(%error, "the host stays unreachable; giving up on the task");
                return Err(self.host_error(SshError::Transport(format!(
                    "unreachable, could not re-attach to the builder: {error}"
                ))));
            };
            tracing::warn!(%error, ?delay, "lost the builder host; re-attaching");
            tokio::select! {
                () = tokio::time::sleep(*delay) => {}
                why = interrupted(cancel, deadline) => {
                    return Ok(self.interrupt(None, remote, &mut log, why).await);
                }
            }
        }
    }

    /// Removes the task's work directory from the host, best effort: a failure is logged.
    #[tracing::instrument(skip_all, fields(host = %remote.host, dir = %remote.dir))]
    pub async fn clean(&self, remote: &RemoteTask) {
        if !is_work_dir(&remote.dir) {
            tracing::warn!("not removing a work directory that does not look like one");
            return;
        }
        let conn = match self.connect(&remote.host, remote.port).await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "could not remove the work directory");
                return;
            }
        };
        let command = format!("rm -rf -- {}", quote(&remote.dir));
        match conn.run(&command, &[]).await {
            Ok(output) if output.status == 0 => tracing::debug!("removed the work directory"),
            Ok(output) => tracing::warn!(
                status = output.status,
                stderr = %output.stderr_text(),
                "could not remove the work directory"
            ),
            Err(error) => tracing::warn!(%error, "could not remove the work directory"),
        }
        conn.close().await;
    }

    /// One connection's worth of [`SshBuilder::follow`]: a transient error means "re-attach".
    async fn follow_once(
        &self,
        remote: &RemoteTask,
        result_dir: &Path,
        log: &mut LocalLog,
        cancel: &CancellationToken,
        deadline: Instant,
        connected_at: &mut Option<Instant>,
    ) -> Result<BuilderOutcome, SshError> {
        let conn = tokio::select! {
            conn = self.connect(&remote.host, remote.port) => conn?,
            why = interrupted(cancel, deadline) => {
                return Ok(self.interrupt(None, remote, log, why).await);
            }
        };
        *connected_at = Some(Instant::now());

        // The live log, until the builder is gone.
        let offset = log.len()?;
        let mut channel = conn.open(&follow_script(remote, offset)).await?;
        let mut status = None;
        let mut stderr = Vec::new();
        loop {
            tokio::select! {
                message = channel.wait() => match message {
                    Some(ChannelMsg::Data { data }) => log.append(&data)?,
                    Some(ChannelMsg::ExtendedData { data, .. }) => stderr.extend_from_slice(&data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                    Some(_) => {}
                    None => break,
                },
                why = interrupted(cancel, deadline) => {
                    return Ok(self.interrupt(Some(&conn), remote, log, why).await);
                }
            }
        }
        match status {
            Some(0) => {}
            Some(code) => {
                return Err(SshError::Remote(format!(
                    "following the builder's log failed (exit status {code}): {}",
                    text(&stderr)
                )));
            }
            None => return Err(SshError::Transport("the connection was lost".to_owned())),
        }
        tracing::debug!("the builder has ended; copying its results");

        // The builder has ended: nothing is left to kill, only the rest of the log and the
        // results to fetch.
        let fetch = async {
            self.catch_up(&conn, remote, log).await?;
            copy_results(&conn, remote, result_dir).await
        };
        let results = tokio::select! {
            results = fetch => results?,
            why = interrupted(cancel, deadline) => {
                log.append_line(why.line());
                return Ok(why.outcome());
            }
        };
        conn.close().await;
        if !results.skipped.is_empty() {
            // Not copied, and the whole result refused: a build that writes links or devices
            // into its results is not published in part.
            log.append_line(&rejected_results(&results.skipped));
            let _ = tokio::fs::remove_file(result_dir.join(SUCCESS_FILE)).await;
            tracing::warn!(skipped = ?results.skipped, "results rejected");
            return Ok(BuilderOutcome::Failed);
        }
        let outcome = if results.success {
            BuilderOutcome::Succeeded
        } else {
            BuilderOutcome::Failed
        };
        tracing::info!(?outcome, "the builder has ended");
        Ok(outcome)
    }

    /// Kills the builder's process group on the host and says why in the log.
    async fn interrupt(
        &self,
        conn: Option<&Connection>,
        remote: &RemoteTask,
        log: &mut LocalLog,
        why: Interrupt,
    ) -> BuilderOutcome {
        tracing::info!(?why, "stopping the builder");
        let fresh;
        let conn = match conn {
            Some(conn) => Some(conn),
            // The connection dropped: one quick try, as a cancel must not wait for a dead host.
            None => {
                fresh = tokio::time::timeout(
                    LAST_LOOK_TIMEOUT,
                    self.connect(&remote.host, remote.port),
                )
                .await;
                fresh.as_ref().ok().and_then(|conn| conn.as_ref().ok())
            }
        };
        match (conn, group_of(remote)) {
            (Some(conn), Some(group)) => {
                // `-s KILL --` before the negative id: without `--`, some `kill`s read
                // `-<pgid>` as a signal name or option and the signal goes elsewhere.
                let command = format!("kill -s KILL -- {group}");
                match conn.run(&command, &[]).await {
                    Ok(output) if output.status == 0 => {}
                    Ok(output) => tracing::info!(
                        status = output.status,
                        stderr = %output.stderr_text(),
                        "kill found no builder (already gone?)"
                    ),
                    Err(error) => tracing::warn!(%error, "could not kill the builder"),
                }
                if tokio::time::timeout(LAST_LOOK_TIMEOUT, self.catch_up(conn, remote, log))
                    .await
                    .is_err()
                {
                    tracing::debug!("gave up on the last lines of the log");
                }
            }
            _ => tracing::warn!("could not reach the host: the builder may run on"),
        }
        log.append_line(why.line());
        why.outcome()
    }

    /// Appends whatever the host's log has beyond the local copy.
    async fn catch_up(
        &self,
        conn: &Connection,
        remote: &RemoteTask,
        log: &mut LocalLog,
    ) -> Result<(), SshError> {
        let command = format!(
            "tail -c +{} -- {}",
            log.len()? + 1,
            quote(&remote_log(remote))
        );
        let output = conn.run(&command, &[]).await?;
        if output.status != 0 {
            return Err(SshError::Remote(format!(
                "reading the builder's log failed: {}",
                output.stderr_text()
            )));
        }
        log.append(&output.stdout)
    }

    async fn connect(&self, host: &str, port: u16) -> Result<Connection, SshError> {
        let key = russh::keys::load_secret_key(&self.config.key, None).map_err(|e| {
            SshError::ClientKey {
                path: self.config.key.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        let checker = HostKeyCheck {
            host: host.to_owned(),
            port,
            keys: self.config.host_keys.clone(),
        };
        let attempt = async {
            let mut handle =
                client::connect(Arc::clone(&self.client_config), (host, port), checker).await?;
            let auth = handle
                .authenticate_publickey(
                    self.config.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), None),
                )
                .await?;
            if !auth.success() {
                return Err(SshError::Auth {
                    user: self.config.user.clone(),
                });
            }
            Ok(Connection { handle })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, attempt)
            .await
            .map_err(|_| {
                SshError::Transport(format!(
                    "no SSH session with {host}:{port} within {CONNECT_TIMEOUT:?}"
                ))
            })?
    }

    fn host_error(&self, error: SshError) -> HostError {
        HostError(format!("{}: {error}", self.name))
    }
}

/// Checks the host key during the key exchange.
struct HostKeyCheck {
    host: String,
    port: u16,
    keys: HostKeys,
}

impl client::Handler for HostKeyCheck {
    type Error = SshError;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, SshError> {
        verify_host_key(&self.keys, &self.host, self.port, &presented.public_key())?;
        Ok(true)
    }
}

/// `Ok` if `presented` is the key `keys` expect for `host:port`; the error says which key was
/// expected and which one came, so that an operator can tell a reinstall from an attack.
fn verify_host_key(
    keys: &HostKeys,
    host: &str,
    port: u16,
    presented: &PublicKey,
) -> Result<(), SshError> {
    let fingerprint = presented.fingerprint(HashAlg::Sha256);
    match keys {
        HostKeys::Pinned(line) => {
            let pinned = PublicKey::from_openssh(line.trim()).map_err(|e| {
                SshError::HostKey(format!(
                    "the pinned key is not an OpenSSH public key line: {e}"
                ))
            })?;
            // The comment is not part of the key.
            if pinned.key_data() == presented.key_data() {
                Ok(())
            } else {
                Err(SshError::HostKey(format!(
                    "{host}:{port} presented {fingerprint}, but the pinned key is {}",
                    pinned.fingerprint(HashAlg::Sha256)
                )))
            }
        }
        HostKeys::KnownHosts(path) => {
            if !path.is_file() {
                return Err(SshError::HostKey(format!(
                    "the known_hosts file {} does not exist",
                    path.display()
                )));
            }
            match russh::keys::check_known_hosts_path(host, port, presented, path) {
                Ok(true) => Ok(()),
                Ok(false) => Err(SshError::HostKey(format!(
                    "{host}:{port} presented {fingerprint}, which {} does not list for it",
                    path.display()
                ))),
                Err(russh::keys::Error::KeyChanged { line }) => Err(SshError::HostKey(format!(
                    "{host}:{port} presented {fingerprint}, which differs from line {line} of {}",
                    path.display()
                ))),
                Err(e) => Err(SshError::HostKey(format!("{}: {e}", path.display()))),
            }
        }
    }
}

/// An authenticated SSH session with a builder host.
struct Connection {
    handle: client::Handle<HostKeyCheck>,
}

/// What a remote command left.
struct Output {
    status: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Output {
    fn stderr_text(&self) -> String {
        text(&self.stderr)
    }
}

impl Connection {
    /// Starts `command` (run by the remote user's shell) on a new channel.
    async fn open(&self, command: &str) -> Result<russh::Channel<client::Msg>, SshError> {
        let channel = self.handle.channel_open_session().await?;
        channel.exec(true, command).await?;
        Ok(channel)
    }

    /// Runs `command` with `stdin` to its end.
    async fn run(&self, command: &str, stdin: &[u8]) -> Result<Output, SshError> {
        let mut channel = self.open(command).await?;
        if !stdin.is_empty() {
            channel.data(stdin).await?;
        }
        channel.eof().await?;
        let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, .. } => stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                _ => {}
            }
        }
        let status = status.ok_or_else(|| {
            SshError::Transport("the connection was lost during a command".to_owned())
        })?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    async fn close(self) {
        // Best effort: the host may already be gone, and dropping the handle ends the session.
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// `s` as one word for a POSIX shell: in single quotes, each `'` written as `'\''`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The remote stderr for an error message: lossy, trimmed, bounded.
fn text(bytes: &[u8]) -> String {
    const MAX_CHARS: usize = 2000;
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The argument `kill` needs for the builder's process group, `-<pid>`. None for pids that
/// cannot be a builder's: `-0` is the caller's own group and `-1` every process the user may
/// signal, so a corrupt stored pid must never reach `kill`.
fn group_of(remote: &RemoteTask) -> Option<String> {
    (remote.pid > 1).then(|| format!("-{}", remote.pid))
}

fn remote_log(remote: &RemoteTask) -> String {
    format!("{}/{RESULTS_DIR}/{LIVE_LOG}", remote.dir)
}

/// A work directory `clean` may remove: absolute, plain, and not `/` or a top-level directory.
fn is_work_dir(dir: &str) -> bool {
    let path = Path::new(dir);
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && path.components().count() >= 3
}

/// The task id as a file name prefix: it comes from chroot names, which are not ours to trust.
fn file_name_prefix(task_id: &str) -> String {
    let prefix: String = task_id
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if prefix.is_empty() || prefix.starts_with('.') || prefix.starts_with('-') {
        format!("task{prefix}")
    } else {
        prefix
    }
}

/// The host's build lock, in the work directory's base: one build per host at a time.
const HOST_LOCK: &str = "builder.lock";

/// The script that makes the work directory, stores the task JSON from stdin and starts the
/// builder; it prints `<pid> <dir>`.
///
/// `setsid` gives the builder a session and process group of its own, which is what lets it
/// outlive the connection and lets `kill -- -<pid>` end everything it started. The shell that
/// sshd runs has no job control, so the background job is not a group leader and `setsid`
/// makes its session in place instead of forking: `$!` is the builder's pid and process group.
fn start_script(builder_command: &str, task_id: &str) -> String {
    let program = quote(builder_command);
    let prefix = quote(&file_name_prefix(task_id));
    format!(
        r#"set -e
base="${{FERROCOPR_WORKDIR:-$HOME/ferrocopr-work}}"
case $base in /*) ;; *) base="$HOME/$base" ;; esac
command -v {program} >/dev/null || {{ echo 'the builder program is not installed:' {program} >&2; exit 127; }}
mkdir -p "$base"
dir=$(mktemp -d "$base"/{prefix}-XXXXXXXXXX)
mkdir "$dir/{RESULTS_DIR}"
cat >"$dir/{TASK_FILE}"
cd "$dir"
setsid {program} builder --task "$dir/{TASK_FILE}" --resultdir "$dir/{RESULTS_DIR}" --lock "$base/{HOST_LOCK}" </dev/null >"$dir/{RESULTS_DIR}/{LIVE_LOG}" 2>&1 &
echo "$! $dir"
"#
    )
}

/// The script that streams the host's log from byte `offset` until the builder is gone.
///
/// "Gone" is read from `/proc/<pid>/stat`, not `kill -0`: an ended builder stays a zombie
/// where init does not reap orphans, and `kill -0` succeeds on zombies. The process group is
/// checked too, so that a pid reused by an unrelated process does not count as the builder.
fn follow_script(remote: &RemoteTask, offset: u64) -> String {
    let log = quote(&remote_log(remote));
    let pid = remote.pid;
    let start = offset + 1;
    format!(
        r#"log={log}
[ -f "$log" ] || {{ echo "there is no builder log at $log" >&2; exit 3; }}
tail -c +{start} -f -s {REMOTE_POLL} -- "$log" &
tailer=$!
while stat=$(cat /proc/{pid}/stat 2>/dev/null); do
    set -- ${{stat##*)}}
    case $1 in Z|X) break ;; esac
    [ "$3" = {pid} ] || break
    sleep {REMOTE_POLL}
done
kill $tailer 2>/dev/null
exit 0
"#
    )
}

/// The local `builder-live.log`, written with blocking writes on purpose: a future dropped
/// mid-way cannot leave a write half done behind, so the file's length is always exactly the
/// bytes received, and the next `follow` resumes from there.
struct LocalLog {
    file: std::fs::File,
}

impl LocalLog {
    fn open(result_dir: &Path) -> std::io::Result<LocalLog> {
        std::fs::create_dir_all(result_dir)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(result_dir.join(LIVE_LOG))?;
        Ok(LocalLog { file })
    }

    fn len(&self) -> Result<u64, SshError> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| SshError::Local(format!("the local log: {e}")))
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), SshError> {
        self.file
            .write_all(bytes)
            .map_err(|e| SshError::Local(format!("writing the local log: {e}")))
    }

    /// Adds a line of the backend's own, on a line of its own even when the builder was
    /// killed in the middle of one. Best effort, like [`crate::host::append_line`].
    fn append_line(&mut self, line: &str) {
        let mut last = [0u8];
        let mid_line = match self.len() {
            Ok(len) if len > 0 => {
                self.file.read_exact_at(&mut last, len - 1).is_ok() && last[0] != b'\n'
            }
            _ => false,
        };
        let text = if mid_line {
            format!("\n{line}\n")
        } else {
            format!("{line}\n")
        };
        if let Err(error) = self.file.write_all(text.as_bytes()) {
            tracing::warn!(%error, "could not write to the local log");
        }
    }
}

/// What came back from the host's results directory.
#[derive(Debug, Default)]
struct Results {
    /// The builder wrote `success`.
    success: bool,
    /// Entries that were not copied, and why.
    skipped: Vec<String>,
}

/// Copies the host's results directory into `result_dir` as a tar stream, unpacked as it
/// arrives. The live log is not in it: `follow` has it already, with the backend's lines.
async fn copy_results(
    conn: &Connection,
    remote: &RemoteTask,
    result_dir: &Path,
) -> Result<Results, SshError> {
    let command = format!(
        "cd {} && tar -c -f - --exclude=./{LIVE_LOG} .",
        quote(&format!("{}/{RESULTS_DIR}", remote.dir))
    );
    let mut channel = conn.open(&command).await?;
    // A few chunks in flight: enough to keep both sides busy, and the SSH window holds back
    // the host when the disk is slower than the network.
    let (chunks, received) = mpsc::channel::<Vec<u8>>(8);
    let into = result_dir.to_owned();
    let unpacker = tokio::task::spawn_blocking(move || unpack(ChunkReader::new(received), &into));
    let mut chunks = Some(chunks);
    let (mut stderr, mut status) = (Vec::new(), None);
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Data { data } => {
                if let Some(sender) = &chunks
                    && sender.send(data.to_vec()).await.is_err()
                {
                    // The unpacker stopped: at the archive's end (the rest is padding) or on
                    // an error it reports below. Keep reading for the exit status.
                    chunks = None;
                }
            }
            ChannelMsg::ExtendedData { data, .. } => stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            _ => {}
        }
    }
    drop(chunks);
    let unpacked = unpacker
        .await
        .map_err(|e| SshError::Local(format!("the results unpacker failed: {e}")))?;
    let Some(status) = status else {
        return Err(SshError::Transport(
            "the connection was lost while copying the results".to_owned(),
        ));
    };
    // GNU tar's 1 means "some files changed while being read": the builder has ended, so this
    // is at worst a leftover process writing, and what was read is kept.
    if status > 1 {
        return Err(SshError::Remote(format!(
            "packing the results failed (exit status {status}): {}",
            text(&stderr)
        )));
    }
    unpacked.map_err(|e| SshError::Local(format!("unpacking the results: {e}")))
}

/// The tar stream as a blocking reader, fed chunk by chunk from the SSH channel.
struct ChunkReader {
    chunks: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    read: usize,
}

impl ChunkReader {
    fn new(chunks: mpsc::Receiver<Vec<u8>>) -> ChunkReader {
        ChunkReader {
            chunks,
            chunk: Vec::new(),
            read: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.read == self.chunk.len() {
            match self.chunks.blocking_recv() {
                Some(next) => {
                    self.chunk = next;
                    self.read = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.read);
        buf[..n].copy_from_slice(&self.chunk[self.read..self.read + n]);
        self.read += n;
        Ok(n)
    }
}

/// Unpacks a results archive into `into`, taking only regular files and directories with
/// relative paths that stay inside it. Links, devices and the like are skipped: the host is
/// trusted to build, not to write anywhere on the scheduler's machine.
fn unpack(stream: impl Read, into: &Path) -> std::io::Result<Results> {
    let mut archive = tar::Archive::new(stream);
    let mut results = Results::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        let kind = entry.header().entry_type();
        let Some(relative) = relative_inside(&name) else {
            results.skipped.push(format!(
                "{}: the path leaves the results directory",
                name.display()
            ));
            continue;
        };
        if kind.is_dir() {
            std::fs::create_dir_all(into.join(&relative))?;
        } else if kind.is_file() && !relative.as_os_str().is_empty() {
            if relative == Path::new(LIVE_LOG) {
                continue;
            }
            results.success |= relative == Path::new(SUCCESS_FILE);
            let target = into.join(&relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut file = std::fs::File::create(&target)?;
            std::io::copy(&mut entry, &mut file)?;
        } else {
            results.skipped.push(format!(
                "{}: not a regular file or directory ({kind:?})",
                name.display()
            ));
        }
    }
    Ok(results)
}

/// `path` without its `./` parts, if it is relative and has no `..`.
fn relative_inside(path: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => relative.push(part),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_survives_single_quotes() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn only_paths_inside_the_results_are_taken() {
        assert_eq!(
            relative_inside(Path::new("./rpms/a.rpm")),
            Some(PathBuf::from("rpms/a.rpm"))
        );
        assert_eq!(relative_inside(Path::new("./")), Some(PathBuf::new()));
        assert_eq!(relative_inside(Path::new("../etc/passwd")), None);
        assert_eq!(relative_inside(Path::new("a/../../b")), None);
        assert_eq!(relative_inside(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn no_kill_for_pids_that_mean_everyone() {
        let task = |pid| RemoteTask {
            host: "h".to_owned(),
            port: 22,
            pid,
            dir: "/w/x".to_owned(),
        };
        assert_eq!(group_of(&task(0)), None);
        assert_eq!(group_of(&task(1)), None);
        assert_eq!(group_of(&task(4242)).as_deref(), Some("-4242"));
    }

    #[test]
    fn clean_removes_only_work_dirs() {
        assert!(is_work_dir("/root/ferrocopr-work/1-fedora-abc"));
        assert!(!is_work_dir("/"));
        assert!(!is_work_dir("/root"));
        assert!(!is_work_dir("relative/dir/x"));
        assert!(!is_work_dir("/root/ferrocopr-work/../.."));
    }

    #[test]
    fn task_ids_become_plain_prefixes() {
        assert_eq!(
            file_name_prefix("12-fedora-41-x86_64"),
            "12-fedora-41-x86_64"
        );
        assert_eq!(file_name_prefix("a/b c'"), "a_b_c_");
        assert_eq!(file_name_prefix("-x"), "task-x");
    }
}
