//! A real OpenSSH server on 127.0.0.1 standing in for a builder host: the SSH builder tests
//! point ferrocopr's SSH client at it, so key exchange, host key checks, authentication and
//! the remote shell are the real ones.
//!
//! Each [`Sshd`] has its own host key, its own client key in `authorized_keys`, and its own
//! remote work directory (given to sessions as `FERROCOPR_WORKDIR`), all in the directory it
//! was started in. Sessions run as the test's own user.

use crate::process::free_port;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian and Fedora install the server; sshd must be started by an absolute path
/// because it re-executes itself for each connection.
const SSHD: &str = "/usr/sbin/sshd";

/// How long sshd may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running sshd; dropping it kills it with all its sessions.
pub struct Sshd {
    child: Child,
    port: u16,
    dir: PathBuf,
    client_key: PathBuf,
    host_public_key: String,
    known_hosts: PathBuf,
    work_dir: PathBuf,
    killed: bool,
}

impl Sshd {
    /// Starts sshd with its files in `dir` (made if missing) and waits until it accepts
    /// connections. Panics, with sshd's log, if it cannot; panics if sshd is not installed.
    pub fn start(dir: &Path) -> Sshd {
        assert!(
            Path::new(SSHD).is_file(),
            "{SSHD} is missing: the SSH builder tests need OpenSSH's server \
             (scripts/install-deps.sh installs openssh-server)"
        );
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd")
            .unwrap_or_else(|e| panic!("make /run/sshd for sshd: {e}"));
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("make {}: {e}", dir.display()));
        let dir = dir
            .canonicalize()
            .unwrap_or_else(|e| panic!("resolve {}: {e}", dir.display()));

        let host_key = dir.join("host_ed25519");
        let client_key = dir.join("client_ed25519");
        keygen(&host_key, "ferrocopr-test-host");
        keygen(&client_key, "ferrocopr-test-client");
        let host_public_key = read_public_key(&host_key);
        let authorized_keys = dir.join("authorized_keys");
        write(
            &authorized_keys,
            &format!("{}\n", read_public_key(&client_key)),
        );

        let port = free_port();
        let known_hosts = dir.join("known_hosts");
        write(
            &known_hosts,
            &format!("[127.0.0.1]:{port} {host_public_key}\n"),
        );
        let work_dir = dir.join("work");
        // Each host has a home of its own, as a machine would: sessions must not run the
        // test user's shell startup files (here they run `pyenv rehash`, whose lock a killed
        // session leaves behind, and every later login waits a minute on it).
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("make {}: {e}", home.display()));
        let config = dir.join("sshd_config");
        write(
            &config,
            &format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {host_key}\n\
                 PidFile {pid_file}\n\
                 AuthorizedKeysFile {authorized_keys}\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PermitRootLogin prohibit-password\n\
                 SetEnv FERROCOPR_WORKDIR={work_dir} HOME={home}\n",
                host_key = host_key.display(),
                pid_file = dir.join("sshd.pid").display(),
                authorized_keys = authorized_keys.display(),
                work_dir = work_dir.display(),
                home = home.display(),
            ),
        );

        let log_path = dir.join("sshd.log");
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("clone sshd's log handle");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group, so that `kill` can end sshd with everything it started.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {SSHD}: {e}"));
        let mut sshd = Sshd {
            child,
            port,
            dir,
            client_key,
            host_public_key,
            known_hosts,
            work_dir,
            killed: false,
        };
        sshd.wait_until_listening();
        sshd
    }

    fn wait_until_listening(&mut self) {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited ({status}) before listening:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {address} within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private key `authorized_keys` accepts (OpenSSH format, no passphrase).
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// sshd's Ed25519 host key as a `.pub` line: `ssh-ed25519 AAAA… comment`.
    pub fn host_public_key(&self) -> &str {
        &self.host_public_key
    }

    /// A known_hosts file with one line, for `[127.0.0.1]:<port>`.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// `FERROCOPR_WORKDIR` in this host's sessions; made by whoever first uses it.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The account sessions run as: the test's own.
    pub fn user(&self) -> String {
        let output = Command::new("id")
            .arg("-un")
            .output()
            .unwrap_or_else(|e| panic!("run id -un: {e}"));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Kills sshd and all its sessions at once, as when the host goes down. Processes that
    /// left sshd's tree (a detached builder) live on, as they would on a host whose network
    /// went away.
    pub fn kill(&mut self) {
        if self.killed {
            return;
        }
        self.killed = true;
        // Each connection's sshd makes a session of its own, so killing sshd's group is not
        // enough: its descendants are found first, while they still hang from sshd.
        let descendants = descendants_of(self.child.id());
        let group = format!("-{}", self.child.id());
        // `-s KILL --` before the negative id: without `--`, `kill` may read `-<pgid>` as a
        // signal or option.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        if !descendants.is_empty() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .args(descendants.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn keygen(path: &Path, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("run ssh-keygen (install openssh-client, see scripts/install-deps.sh): {e}")
        });
    assert!(status.success(), "ssh-keygen for {} failed", path.display());
}

fn read_public_key(private_key: &Path) -> String {
    let path = private_key.with_extension("pub");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Every process below `root`, read from `/proc`.
fn descendants_of(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, stat) in proc_stats() {
        if let Some(ppid) = stat.get(1).and_then(|f| f.parse::<u32>().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

/// Whether a process of group `pgid` still runs. Zombies do not count: where PID 1 does not
/// reap orphans (as in some containers), a killed builder stays a zombie, and `kill -0`
/// succeeds on zombies.
pub fn group_alive(pgid: u32) -> bool {
    proc_stats().into_iter().any(|(_, stat)| {
        let state = stat.first().map(String::as_str);
        let group = stat.get(2).and_then(|f| f.parse::<u32>().ok());
        group == Some(pgid) && !matches!(state, Some("Z" | "X"))
    })
}

/// `/proc/<pid>/stat` of every process, each as its fields after the command name (state,
/// ppid, pgrp, session, …).
fn proc_stats() -> Vec<(u32, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // The command name is in parentheses and may hold spaces and parentheses itself.
            let (_, rest) = stat.rsplit_once(')')?;
            Some((pid, rest.split_whitespace().map(str::to_owned).collect()))
        })
        .collect()
}
