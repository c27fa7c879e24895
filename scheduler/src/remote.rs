//! Builders on other machines (seed steps 3-5 and 9-11): a ticket from the [`Allocator`], the
//! builder program started over SSH on the machine the ticket got, its log followed, its
//! results copied back, and the ticket closed on every path.
//!
//! Where a task runs is recorded through [`Progress::placed`] before waiting on the builder,
//! as a [`Placed`] JSON: after the scheduler is killed, the next process re-attaches to the
//! builder still running on its host instead of starting the task a second time.

use crate::alloc::{Allocator, Resource, TicketId, TicketState};
use crate::host::{Assignment, BuilderHost, BuilderOutcome, HostError, fail_safe_limit};
use crate::pools::Pools;
use crate::ssh::{RemoteTask, SshBuilder, SshConfig};
use async_trait::async_trait;
use ferrocopr_schema::task::BuilderTask;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a waiting ticket is asked about: well under the second a cancel may take.
const TICKET_POLL: Duration = Duration::from_millis(200);

/// Where a task runs, as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    pub ticket: TicketId,
    /// The in-process pool slot the ticket's resource came from, to take it back after a
    /// restart; absent with an external resalloc server, which keeps its own tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<(String, usize, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteTask>,
    /// The ticket's sandbox, for taking its machine back.
    #[serde(default)]
    pub sandbox: String,
}

/// Builder machines from an allocator, driven over SSH.
pub struct RemoteBuilders {
    allocator: Arc<dyn Allocator>,
    /// Set when the allocator is this process's own pools: they say their slots and take
    /// resources back after a restart.
    pools: Option<Arc<Pools>>,
    ssh: Arc<SshConfig>,
    /// Per-architecture slots when the allocator cannot say (an external resalloc server).
    slots: std::collections::BTreeMap<String, usize>,
    /// Tickets that [`BuilderHost::recover`] made for the machines of re-attached tasks, by
    /// the task's remote work directory.
    reclaimed: std::sync::Mutex<HashMap<String, TicketId>>,
}

impl RemoteBuilders {
    /// Machines from this process's own pools.
    pub fn with_pools(pools: Arc<Pools>, ssh: SshConfig) -> RemoteBuilders {
        RemoteBuilders {
            allocator: Arc::clone(&pools) as Arc<dyn Allocator>,
            pools: Some(pools),
            ssh: Arc::new(ssh),
            slots: Default::default(),
            reclaimed: Default::default(),
        }
    }

    /// Machines from another allocator (a resalloc server); `slots` says how many tasks of
    /// each architecture may hold tickets at once.
    pub fn with_allocator(
        allocator: Arc<dyn Allocator>,
        ssh: SshConfig,
        slots: std::collections::BTreeMap<String, usize>,
    ) -> RemoteBuilders {
        RemoteBuilders {
            allocator,
            pools: None,
            ssh: Arc::new(ssh),
            slots,
            reclaimed: Default::default(),
        }
    }

    /// Waits until the ticket has a resource; `None` when the build was canceled meanwhile.
    async fn wait_for(
        &self,
        ticket: TicketId,
        cancel: &CancellationToken,
    ) -> Result<Option<Resource>, HostError> {
        loop {
            match self.allocator.collect(ticket).await {
                Ok(TicketState::Ready(resource)) => return Ok(Some(resource)),
                Ok(TicketState::Waiting) => {}
                Ok(TicketState::Failed | TicketState::Closed) => {
                    return Err(HostError(format!("ticket {ticket} failed")));
                }
                Err(e) => return Err(HostError(format!("ticket {ticket}: {e}"))),
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(None),
                () = tokio::time::sleep(TICKET_POLL) => {}
            }
        }
    }

    /// Gives the ticket back; a machine that failed the task (`broken`) is not reused.
    async fn release(&self, ticket: TicketId, broken: bool) {
        if broken && let Some(pools) = &self.pools {
            pools.discard(ticket);
            return;
        }
        self.close(ticket).await;
    }

    async fn close(&self, ticket: TicketId) {
        if let Err(e) = self.allocator.close(ticket).await {
            tracing::warn!(ticket, error = %e, "closing the ticket failed");
        }
    }

    /// A new ticket, a machine, the builder started there and followed to its end.
    async fn run_fresh(
        &self,
        task: &BuilderTask,
        result_dir: &Path,
        cancel: &CancellationToken,
        assignment: &Assignment<'_>,
    ) -> Result<BuilderOutcome, HostError> {
        let ticket = self
            .allocator
            .take(&assignment.tags, &assignment.sandbox)
            .await
            .map_err(|e| HostError(format!("no ticket: {e}")))?;
        let record = |placed: &Placed| {
            let json = serde_json::to_string(placed).unwrap_or_default();
            async move { assignment.progress.placed(Some(&json)).await }
        };
        let mut placed = Placed {
            ticket,
            slot: None,
            remote: None,
            sandbox: assignment.sandbox.clone(),
        };
        let outcome = async {
            record(&placed)
                .await
                .map_err(|e| HostError(format!("recording the ticket: {e:#}")))?;
            tracing::info!(ticket, tags = ?assignment.tags, "waiting for a builder");
            let Some(resource) = self.wait_for(ticket, cancel).await? else {
                return Ok(BuilderOutcome::Canceled);
            };
            tracing::info!(ticket, host = %resource.host, port = resource.ssh_port, "builder assigned");
            let builder = SshBuilder::new(Arc::clone(&self.ssh), &resource);
            let remote = builder.start(task).await?;
            placed.slot = self.pools.as_ref().and_then(|p| p.slot_of(ticket));
            placed.remote = Some(remote.clone());
            record(&placed)
                .await
                .map_err(|e| HostError(format!("recording the placement: {e:#}")))?;
            self.follow(&builder, &remote, task, result_dir, cancel, assignment)
                .await
        }
        .await;
        self.release(ticket, outcome.is_err()).await;
        outcome
    }

    /// The builder runs: the task is marked running, its log followed to the end.
    async fn follow(
        &self,
        builder: &SshBuilder,
        remote: &RemoteTask,
        task: &BuilderTask,
        result_dir: &Path,
        cancel: &CancellationToken,
        assignment: &Assignment<'_>,
    ) -> Result<BuilderOutcome, HostError> {
        assignment
            .progress
            .running()
            .await
            .map_err(|e| HostError(format!("recording the start: {e:#}")))?;
        let outcome = builder
            .follow(remote, result_dir, cancel, fail_safe_limit(task))
            .await?;
        // The work directory goes in the background: the outcome (a cancel above all) must
        // not wait for another SSH round trip.
        let ssh = Arc::clone(&self.ssh);
        let remote = remote.clone();
        tokio::spawn(async move {
            SshBuilder::new(ssh, &resource_of(&remote))
                .clean(&remote)
                .await;
        });
        Ok(outcome)
    }

    /// After a restart: follow the builder a previous process started.
    async fn reattach(
        &self,
        placed: Placed,
        remote: RemoteTask,
        task: &BuilderTask,
        result_dir: &Path,
        cancel: &CancellationToken,
        assignment: &Assignment<'_>,
    ) -> Result<BuilderOutcome, HostError> {
        // With this process's pools, the ticket is the one `recover` made when it took the
        // machine back; the old process's ticket number means nothing to them.
        let ticket = match &self.pools {
            Some(_) => self.lock_reclaimed().remove(&remote.dir),
            None => Some(placed.ticket),
        };
        tracing::info!(host = %remote.host, pid = remote.pid, "re-attached to a running builder");
        let builder = SshBuilder::new(Arc::clone(&self.ssh), &resource_of(&remote));
        let outcome = self
            .follow(&builder, &remote, task, result_dir, cancel, assignment)
            .await;
        if let Some(ticket) = ticket {
            self.release(ticket, outcome.is_err()).await;
        }
        outcome
    }

    fn lock_reclaimed(&self) -> std::sync::MutexGuard<'_, HashMap<String, TicketId>> {
        self.reclaimed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How to reach the host a remote task runs on.
fn resource_of(remote: &RemoteTask) -> Resource {
    Resource {
        host: remote.host.clone(),
        name: None,
        ssh_port: remote.port,
    }
}

#[async_trait]
impl BuilderHost for RemoteBuilders {
    async fn run(
        &self,
        task: &BuilderTask,
        result_dir: &Path,
        cancel: &CancellationToken,
        assignment: &Assignment<'_>,
    ) -> Result<BuilderOutcome, HostError> {
        tokio::fs::create_dir_all(result_dir)
            .await
            .map_err(|e| HostError(format!("result dir: {e}")))?;
        let previous = assignment
            .placed
            .as_deref()
            .and_then(|p| serde_json::from_str::<Placed>(p).ok());
        match previous {
            Some(mut placed) if placed.remote.is_some() => {
                let remote = placed.remote.take().expect("checked");
                self.reattach(placed, remote, task, result_dir, cancel, assignment)
                    .await
            }
            Some(stale) => {
                // Killed while waiting for a machine: that ticket is of no use any more.
                if self.pools.is_none() {
                    self.close(stale.ticket).await;
                }
                self.run_fresh(task, result_dir, cancel, assignment).await
            }
            None => self.run_fresh(task, result_dir, cancel, assignment).await,
        }
    }

    async fn recover(&self, placements: &[String]) {
        let Some(pools) = &self.pools else { return };
        for placed in placements
            .iter()
            .filter_map(|p| serde_json::from_str::<Placed>(p).ok())
        {
            if let (Some(remote), Some((pool, index, output))) = (placed.remote, placed.slot) {
                let ticket = pools.reclaim(&pool, index, &output, &placed.sandbox);
                self.lock_reclaimed().insert(remote.dir, ticket);
            }
        }
        pools.open();
    }

    fn slots(&self, arch: &str) -> Option<usize> {
        match &self.pools {
            Some(pools) => Some(
                pools.capacity(&[crate::queue::BUILDER_TAG.to_owned(), format!("arch_{arch}")]),
            ),
            None => self.slots.get(arch).copied(),
        }
    }
}
