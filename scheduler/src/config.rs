//! The scheduler's config file (`--scheduler-config`, YAML): concurrency limits, how tasks map
//! to builder tags, and where builders come from. Without a file, or without its `builders`
//! section, tasks run on the local builder pool, the embedded default.
//!
//! ```yaml
//! limits: {total: 20, owner: 4, sandbox: 2, arch: {aarch64: 2}, blocked_owners: [spam]}
//! routing: {srpm_arch: x86_64, chroot_tags: {fedora-41-aarch64: [big_disk]}}
//! builders:
//!   pools: /etc/ferrocopr/pools.yaml     # resalloc-style pools in this process, or
//!   # resalloc_url: http://resalloc.example.org:49100
//!   # slots: {x86_64: 10, aarch64: 4}   # with resalloc_url: tasks per architecture
//!   ssh:
//!     user: root
//!     key: /etc/ferrocopr/id_ed25519
//!     known_hosts: /etc/ferrocopr/known_hosts   # or host_key: "ssh-ed25519 AAAA…"
//!     builder_command: ferrocopr
//! distgit_instances:                     # besides `fedora` and `centos-stream`
//!   mydistgit:
//!     clone_url: https://git.example.org/rpms/{name}.git
//!     lookaside_url: https://git.example.org/repo/pkgs/{name}/{filename}/{hashtype}/{hash}/{filename}
//!     default_committish: main
//! ```

use crate::host::BuilderHost;
use crate::pools::Pools;
use crate::queue::{Limits, Routing};
use crate::remote::RemoteBuilders;
use crate::resalloc::ResallocClient;
use crate::ssh::{HostKeys, SshConfig};
use anyhow::Context;
use ferrocopr_schema::model::DistgitInstance;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub routing: Routing,
    #[serde(default)]
    pub builders: Option<BuildersConfig>,
    /// Dist-git instances builds may take packages from, besides Fedora's and CentOS Stream's.
    #[serde(default)]
    pub distgit_instances: BTreeMap<String, DistgitInstance>,
}

/// Remote builders: an allocator and how to reach its machines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildersConfig {
    /// A resalloc `pools.yaml` run by this process.
    #[serde(default)]
    pub pools: Option<PathBuf>,
    /// An existing resalloc server instead.
    #[serde(default)]
    pub resalloc_url: Option<String>,
    /// With `resalloc_url`: how many tasks of each architecture hold tickets at once.
    #[serde(default)]
    pub slots: BTreeMap<String, usize>,
    pub ssh: SshSettings,
}

/// How the scheduler logs in to builder machines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    #[serde(default = "default_user")]
    pub user: String,
    /// An Ed25519 private key in OpenSSH format.
    pub key: PathBuf,
    /// Host keys are checked against this known_hosts file…
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// …or against this one pinned key.
    #[serde(default)]
    pub host_key: Option<String>,
    /// The builder program on the machines.
    #[serde(default = "default_builder_command")]
    pub builder_command: String,
}

fn default_user() -> String {
    "root".to_owned()
}

fn default_builder_command() -> String {
    "ferrocopr".to_owned()
}

impl SchedulerConfig {
    /// Reads the file; relative paths in it are taken from the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<SchedulerConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: SchedulerConfig = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(b) = &mut config.builders {
            let absolute = |p: &mut PathBuf| {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            };
            if let Some(p) = &mut b.pools {
                absolute(p);
            }
            absolute(&mut b.ssh.key);
            if let Some(p) = &mut b.ssh.known_hosts {
                absolute(p);
            }
        }
        Ok(config)
    }
}

impl BuildersConfig {
    /// The remote builders this section describes; pools run until `shutdown`.
    pub fn builders(&self, shutdown: CancellationToken) -> anyhow::Result<Arc<dyn BuilderHost>> {
        let host_keys = match (&self.ssh.known_hosts, &self.ssh.host_key) {
            (Some(file), None) => HostKeys::KnownHosts(file.clone()),
            (None, Some(key)) => HostKeys::Pinned(key.clone()),
            _ => anyhow::bail!("builders.ssh needs exactly one of known_hosts and host_key"),
        };
        let ssh = SshConfig {
            user: self.ssh.user.clone(),
            key: self.ssh.key.clone(),
            host_keys,
            builder_command: self.ssh.builder_command.clone(),
        };
        Ok(match (&self.pools, &self.resalloc_url) {
            (Some(file), None) => {
                let pools = Pools::start(crate::pools::load(file)?, shutdown);
                Arc::new(RemoteBuilders::with_pools(pools, ssh))
            }
            (None, Some(url)) => {
                let client = ResallocClient::new(url).map_err(|e| anyhow::anyhow!("{e}"))?;
                Arc::new(RemoteBuilders::with_allocator(
                    Arc::new(client),
                    ssh,
                    self.slots.clone(),
                ))
            }
            _ => anyhow::bail!("builders needs exactly one of pools and resalloc_url"),
        })
    }
}
