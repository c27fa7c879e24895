//! Builder pools run inside the scheduler with resalloc's semantics (REFERENCE §6): the
//! [`Allocator`] for sites without a resalloc server.
//!
//! Pools come from a YAML file in resalloc's `pools.yaml` shape. A resource is made by the
//! pool's `cmd_new` (which prints its address, or YAML with `host`, `name`, `ssh_port`), checked
//! by `cmd_livecheck` every `livecheck_period`, cleaned by `cmd_release` after each ticket and
//! removed by `cmd_delete`. Scripts run under `sh -c` with resalloc's `RESALLOC_*` environment.
//! A ticket gets an idle resource whose tags include all the ticket's tags; one that served the
//! same sandbox before is preferred, and a resource never passes from one sandbox to another
//! (it is deleted instead). `max_prealloc` resources are kept ready for tickets to come.
//!
//! The state lives in memory: after a restart the scheduler hands back the resources its
//! running tasks hold ([`Pools::reclaim`]); idle resources of the previous process are not known.

use crate::alloc::{AllocError, Allocator, Resource, TicketId, TicketState};
use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a pool waits before trying `cmd_new` again after it failed.
const NEW_FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// The manager's own pace when nothing rings it: reuse expiry and livechecks are due by time.
const TICK: Duration = Duration::from_secs(1);

/// A tag, plain or with a priority (resalloc accepts both; the priority is not used here).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Tag {
    Name(String),
    Prioritized {
        name: String,
        /// Accepted for resalloc compatibility; every fitting pool is equal here.
        #[serde(default)]
        priority: i64,
    },
}

impl Tag {
    fn name(&self) -> &str {
        match self {
            Tag::Name(name) | Tag::Prioritized { name, .. } => name,
        }
    }
}

/// One pool of `pools.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Resources the pool may have at once, in any state.
    #[serde(default = "default_max")]
    pub max: usize,
    /// Resources being made (`cmd_new` running) at once.
    #[serde(default = "default_max_starting")]
    pub max_starting: usize,
    /// Idle resources kept ready for tickets that have not come yet.
    #[serde(default)]
    pub max_prealloc: usize,
    pub tags: Vec<Tag>,
    /// Tags a resource has only for tickets that ask for them: such pools make resources on
    /// demand only, never in advance.
    #[serde(default)]
    pub tags_on_demand: Vec<Tag>,
    pub cmd_new: String,
    #[serde(default)]
    pub cmd_delete: Option<String>,
    #[serde(default)]
    pub cmd_livecheck: Option<String>,
    /// Seconds between livechecks of an idle or busy resource.
    #[serde(default = "default_livecheck_period")]
    pub livecheck_period: u64,
    #[serde(default)]
    pub cmd_release: Option<String>,
    /// Seconds an idle resource waits for another ticket of its sandbox before it is deleted.
    #[serde(default)]
    pub reuse_opportunity_time: u64,
    /// Tickets a resource serves at most; unlimited when absent.
    #[serde(default)]
    pub reuse_max_count: Option<u32>,
    /// Seconds a resource serves at most; unlimited when absent.
    #[serde(default)]
    pub reuse_max_time: Option<u64>,
}

fn default_max() -> usize {
    4
}
fn default_max_starting() -> usize {
    4
}
fn default_livecheck_period() -> u64 {
    600
}

impl PoolConfig {
    fn fits(&self, tags: &[String]) -> bool {
        tags.iter().all(|wanted| {
            self.tags
                .iter()
                .chain(&self.tags_on_demand)
                .any(|t| t.name() == wanted)
        })
    }
}

/// Reads a `pools.yaml`: a mapping from pool name to its settings.
pub fn load(path: &Path) -> anyhow::Result<BTreeMap<String, PoolConfig>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `cmd_new` runs.
    Starting,
    Up,
    /// `cmd_release` runs after a ticket let go.
    Releasing,
    /// `cmd_delete` runs; the resource is forgotten after.
    Deleting,
}

#[derive(Debug)]
struct Machine {
    pool: String,
    id_in_pool: usize,
    name: String,
    phase: Phase,
    /// What `cmd_new` printed.
    output: Option<String>,
    /// The sandbox it served; it never serves another.
    sandbox: Option<String>,
    ticket: Option<TicketId>,
    /// A starting resource already promised to this ticket.
    promised: Option<TicketId>,
    served: u32,
    born: Instant,
    idle_since: Instant,
    checked: Instant,
    checking: bool,
}

#[derive(Debug)]
struct TicketEntry {
    tags: Vec<String>,
    sandbox: String,
    state: TicketState,
    machine: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    machines: BTreeMap<u64, Machine>,
    tickets: BTreeMap<TicketId, TicketEntry>,
    next_machine: u64,
    next_ticket: TicketId,
    backoff: BTreeMap<String, Instant>,
    /// Scripts decided outside [`Pools::plan`] (a ticket closed), run by the manager.
    queued: Vec<Job>,
    /// Pool slots (`RESALLOC_ID_IN_POOL`) whose last resource broke under a task: new
    /// resources go to other slots first, so a retry lands on another machine.
    broken: std::collections::BTreeSet<(String, usize)>,
}

/// Pools of builder machines managed in this process.
pub struct Pools {
    pools: BTreeMap<String, PoolConfig>,
    inner: Mutex<Inner>,
    wake: Notify,
    /// Rung by [`Pools::open`]: nothing is made or handed out before, so the machines of
    /// re-attached tasks are taken back before new tasks could be given their slots.
    opened: Notify,
}

/// A script to run, decided under the lock and run outside it.
#[derive(Debug)]
enum Job {
    New(u64),
    Release(u64),
    Delete(u64),
    Livecheck(u64),
}

impl Pools {
    /// Manages `pools` until `shutdown`, from the moment [`Pools::open`] is called; on
    /// shutdown idle resources are deleted (busy ones stay for their tasks to be re-attached).
    pub fn start(pools: BTreeMap<String, PoolConfig>, shutdown: CancellationToken) -> Arc<Pools> {
        let this = Arc::new(Pools {
            pools,
            inner: Mutex::default(),
            wake: Notify::new(),
            opened: Notify::new(),
        });
        tokio::spawn({
            let this = Arc::clone(&this);
            async move { this.manage(shutdown).await }
        });
        this
    }

    /// Starts making and handing out resources; call it once the resources of re-attached
    /// tasks were taken back ([`Pools::reclaim`]).
    pub fn open(&self) {
        self.opened.notify_one();
    }

    /// How many resources the pools able to serve `tags` may have in all: the builder slots
    /// of those tags.
    pub fn capacity(&self, tags: &[String]) -> usize {
        self.pools
            .values()
            .filter(|p| p.fits(tags))
            .map(|p| p.max)
            .sum()
    }

    /// Takes back a resource that a ticket of the previous process held (a task re-attached
    /// after a restart): it counts against its pool again and is released by `close` as usual.
    pub fn reclaim(&self, pool: &str, id_in_pool: usize, output: &str, sandbox: &str) -> TicketId {
        let mut inner = self.lock();
        let resource = Resource::parse(output).ok();
        let id = inner.new_machine(pool, id_in_pool, Phase::Up);
        let ticket = inner.next_ticket + 1;
        inner.next_ticket = ticket;
        let machine = inner.machines.get_mut(&id).expect("just made");
        machine.output = Some(output.to_owned());
        machine.sandbox = Some(sandbox.to_owned());
        machine.ticket = Some(ticket);
        machine.served = 1;
        inner.tickets.insert(
            ticket,
            TicketEntry {
                tags: Vec::new(),
                sandbox: sandbox.to_owned(),
                state: resource.map_or(TicketState::Failed, TicketState::Ready),
                machine: Some(id),
            },
        );
        ticket
    }

    /// Closes a ticket whose machine failed the task (SSH lost, builder gone): the resource is
    /// deleted, not released for reuse, and its slot is the last choice for new resources.
    pub fn discard(&self, ticket: TicketId) {
        {
            let mut inner = self.lock();
            let Some(t) = inner.tickets.remove(&ticket) else {
                return;
            };
            let Some(id) = t.machine else {
                inner.unpromise(ticket);
                return;
            };
            let Some(m) = inner.machines.get_mut(&id) else {
                return;
            };
            m.ticket = None;
            let slot = (m.pool.clone(), m.id_in_pool);
            if m.phase == Phase::Up {
                m.phase = Phase::Deleting;
                inner.queued.push(Job::Delete(id));
            }
            tracing::warn!(pool = %slot.0, slot = slot.1, "builder resource discarded");
            inner.broken.insert(slot);
        }
        self.wake.notify_one();
    }

    /// The pool and index a ticket's resource has, for recording where a task runs.
    pub fn slot_of(&self, ticket: TicketId) -> Option<(String, usize, String)> {
        let inner = self.lock();
        let machine = inner.machines.get(&inner.tickets.get(&ticket)?.machine?)?;
        Some((
            machine.pool.clone(),
            machine.id_in_pool,
            machine.output.clone()?,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn manage(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::select! {
            () = self.opened.notified() => {}
            () = shutdown.cancelled() => return,
        }
        loop {
            let jobs = self.plan();
            for job in jobs {
                let this = Arc::clone(&self);
                tokio::spawn(async move { this.run_job(job).await });
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(TICK) => {}
                () = shutdown.cancelled() => break,
            }
        }
        let ids: Vec<u64> = self
            .lock()
            .machines
            .iter()
            .filter(|(_, m)| m.ticket.is_none() && m.phase == Phase::Up)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(m) = self.lock().machines.get_mut(&id) {
                m.phase = Phase::Deleting;
            }
            self.run_job(Job::Delete(id)).await;
        }
    }

    /// Decides what to do now: assign idle resources to waiting tickets, make new ones, let
    /// expired ones go, and check the living.
    fn plan(&self) -> Vec<Job> {
        let mut inner = self.lock();
        let now = Instant::now();
        let mut jobs = std::mem::take(&mut inner.queued);
        let waiting: Vec<TicketId> = inner
            .tickets
            .iter()
            .filter(|(_, t)| t.state == TicketState::Waiting)
            .map(|(id, _)| *id)
            .collect();
        for ticket in waiting {
            if inner.assign(ticket, &self.pools) {
                continue;
            }
            let (tags, sandbox) = {
                let t = &inner.tickets[&ticket];
                (t.tags.clone(), t.sandbox.clone())
            };
            // A resource on its way for this ticket already?
            let coming = inner
                .machines
                .iter()
                .any(|(_, m)| m.phase == Phase::Starting && m.promised == Some(ticket));
            if coming {
                continue;
            }
            let unpromised = inner.machines.iter_mut().find(|(_, m)| {
                m.phase == Phase::Starting
                    && m.promised.is_none()
                    && self.pools[&m.pool].fits(&tags)
            });
            if let Some((_, m)) = unpromised {
                m.promised = Some(ticket);
                continue;
            }
            for (name, pool) in &self.pools {
                if !pool.fits(&tags) || inner.backed_off(name, now) {
                    continue;
                }
                if inner.count(name, |_| true) >= pool.max {
                    // Room may be made by deleting an idle resource bound to another sandbox.
                    let stranger = inner.machines.iter().find(|(_, m)| {
                        m.pool == *name
                            && m.phase == Phase::Up
                            && m.ticket.is_none()
                            && m.sandbox.as_deref().is_some_and(|s| s != sandbox)
                    });
                    if let Some((&id, _)) = stranger {
                        inner.machines.get_mut(&id).expect("found").phase = Phase::Deleting;
                        jobs.push(Job::Delete(id));
                    }
                    continue;
                }
                if inner.count(name, |m| m.phase == Phase::Starting) >= pool.max_starting {
                    continue;
                }
                let index = inner.free_index(name, pool.max);
                let id = inner.new_machine(name, index, Phase::Starting);
                inner.machines.get_mut(&id).expect("just made").promised = Some(ticket);
                jobs.push(Job::New(id));
                break;
            }
        }
        for (name, pool) in &self.pools {
            if !pool.tags_on_demand.is_empty() || inner.backed_off(name, now) {
                continue;
            }
            while inner.count(name, |m| {
                m.sandbox.is_none()
                    && m.ticket.is_none()
                    && m.promised.is_none()
                    && matches!(m.phase, Phase::Starting | Phase::Up)
            }) < pool.max_prealloc
                && inner.count(name, |_| true) < pool.max
                && inner.count(name, |m| m.phase == Phase::Starting) < pool.max_starting
            {
                let index = inner.free_index(name, pool.max);
                let id = inner.new_machine(name, index, Phase::Starting);
                jobs.push(Job::New(id));
            }
        }
        for (&id, m) in inner.machines.iter_mut() {
            let pool = &self.pools[&m.pool];
            if m.phase != Phase::Up {
                continue;
            }
            let idle_bound = m.ticket.is_none() && m.sandbox.is_some();
            let reuse_over = idle_bound
                && now.duration_since(m.idle_since)
                    >= Duration::from_secs(pool.reuse_opportunity_time);
            if reuse_over {
                m.phase = Phase::Deleting;
                jobs.push(Job::Delete(id));
            } else if pool.cmd_livecheck.is_some()
                && !m.checking
                && now.duration_since(m.checked) >= Duration::from_secs(pool.livecheck_period)
            {
                m.checking = true;
                jobs.push(Job::Livecheck(id));
            }
        }
        jobs
    }

    async fn run_job(&self, job: Job) {
        match job {
            Job::New(id) => {
                let outcome = self.script(id, |p| Some(&p.cmd_new)).await;
                let mut inner = self.lock();
                let Some(m) = inner.machines.get_mut(&id) else {
                    return;
                };
                match outcome.map(|out| (Resource::parse(&out).is_ok(), out)) {
                    Some((true, out)) => {
                        tracing::info!(resource = %m.name, "builder resource is up");
                        m.output = Some(out);
                        m.phase = Phase::Up;
                        m.checked = Instant::now();
                        m.idle_since = Instant::now();
                    }
                    _ => {
                        tracing::warn!(resource = %m.name, "cmd_new failed; the pool backs off");
                        let pool = m.pool.clone();
                        inner.machines.remove(&id);
                        inner
                            .backoff
                            .insert(pool, Instant::now() + NEW_FAILURE_BACKOFF);
                    }
                }
            }
            Job::Release(id) => {
                let ok = self.script(id, |p| p.cmd_release.as_ref()).await.is_some();
                let mut inner = self.lock();
                if let Some(m) = inner.machines.get_mut(&id) {
                    if ok {
                        m.phase = Phase::Up;
                        m.idle_since = Instant::now();
                    } else {
                        m.phase = Phase::Deleting;
                        inner.queued.push(Job::Delete(id));
                    }
                }
            }
            Job::Delete(id) => {
                if self.has_script(id, |p| p.cmd_delete.as_ref()) {
                    let _ = self.script(id, |p| p.cmd_delete.as_ref()).await;
                }
                let mut inner = self.lock();
                if let Some(m) = inner.machines.remove(&id) {
                    tracing::info!(resource = %m.name, "builder resource deleted");
                }
            }
            Job::Livecheck(id) => {
                let alive = self
                    .script(id, |p| p.cmd_livecheck.as_ref())
                    .await
                    .is_some();
                let mut inner = self.lock();
                let Some(m) = inner.machines.get_mut(&id) else {
                    return;
                };
                m.checking = false;
                m.checked = Instant::now();
                if alive || m.phase != Phase::Up {
                    return;
                }
                tracing::warn!(resource = %m.name, "livecheck failed: the resource is gone");
                m.phase = Phase::Deleting;
                if let Some(ticket) = m.ticket.take()
                    && let Some(t) = inner.tickets.get_mut(&ticket)
                {
                    t.state = TicketState::Failed;
                }
                inner.queued.push(Job::Delete(id));
            }
        }
        self.wake.notify_one();
    }

    fn has_script(&self, id: u64, cmd: impl Fn(&PoolConfig) -> Option<&String>) -> bool {
        let inner = self.lock();
        inner
            .machines
            .get(&id)
            .is_some_and(|m| cmd(&self.pools[&m.pool]).is_some())
    }

    /// Runs one of the resource's pool scripts; its stdout when it exits 0 (an absent script
    /// counts as success with no output).
    async fn script(
        &self,
        id: u64,
        cmd: impl Fn(&PoolConfig) -> Option<&String>,
    ) -> Option<String> {
        let (command, env) = {
            let inner = self.lock();
            let m = inner.machines.get(&id)?;
            let Some(command) = cmd(&self.pools[&m.pool]).cloned() else {
                return Some(String::new());
            };
            let data = base64::engine::general_purpose::STANDARD
                .encode(m.output.as_deref().unwrap_or_default());
            let env = [
                ("RESALLOC_ID", id.to_string()),
                ("RESALLOC_NAME", m.name.clone()),
                ("RESALLOC_POOL_ID", m.pool.clone()),
                ("RESALLOC_ID_IN_POOL", m.id_in_pool.to_string()),
                ("RESALLOC_RESOURCE_DATA", data),
            ];
            (command, env)
        };
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .output()
            .await;
        match output {
            Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into()),
            Ok(out) => {
                tracing::warn!(%command, status = %out.status, "pool script failed");
                None
            }
            Err(e) => {
                tracing::warn!(%command, error = %e, "pool script could not start");
                None
            }
        }
    }
}

impl Inner {
    /// A resource being made for `ticket` serves the next ticket instead.
    fn unpromise(&mut self, ticket: TicketId) {
        for m in self.machines.values_mut() {
            if m.promised == Some(ticket) {
                m.promised = None;
            }
        }
    }

    fn count(&self, pool: &str, f: impl Fn(&Machine) -> bool) -> usize {
        self.machines
            .values()
            .filter(|m| m.pool == pool && f(m))
            .count()
    }

    fn backed_off(&self, pool: &str, now: Instant) -> bool {
        self.backoff.get(pool).is_some_and(|until| *until > now)
    }

    /// The lowest index not used by a resource of the pool (`RESALLOC_ID_IN_POOL`), so scripts
    /// can map resources onto a fixed set of machines.
    fn free_index(&self, pool: &str, max: usize) -> usize {
        let free: Vec<usize> = (0..max.max(1))
            .filter(|i| {
                !self
                    .machines
                    .values()
                    .any(|m| m.pool == pool && m.id_in_pool == *i)
            })
            .collect();
        free.iter()
            .copied()
            .find(|i| !self.broken.contains(&(pool.to_owned(), *i)))
            .or(free.first().copied())
            .unwrap_or(max)
    }

    fn new_machine(&mut self, pool: &str, id_in_pool: usize, phase: Phase) -> u64 {
        self.next_machine += 1;
        let id = self.next_machine;
        let now = Instant::now();
        self.machines.insert(
            id,
            Machine {
                pool: pool.to_owned(),
                id_in_pool,
                name: format!("{pool}_{id:08}"),
                phase,
                output: None,
                sandbox: None,
                ticket: None,
                promised: None,
                served: 0,
                born: now,
                idle_since: now,
                checked: now,
                checking: false,
            },
        );
        id
    }

    /// Gives the ticket an idle resource that fits, preferring one its sandbox used before.
    fn assign(&mut self, ticket: TicketId, pools: &BTreeMap<String, PoolConfig>) -> bool {
        let (tags, sandbox) = {
            let t = &self.tickets[&ticket];
            (t.tags.clone(), t.sandbox.clone())
        };
        let best = self
            .machines
            .iter()
            .filter(|(_, m)| {
                m.phase == Phase::Up
                    && m.ticket.is_none()
                    && m.sandbox.as_deref().is_none_or(|s| s == sandbox)
                    && pools[&m.pool].fits(&tags)
            })
            .max_by_key(|(id, m)| {
                (
                    if m.sandbox.is_some() { 500 } else { 0 },
                    std::cmp::Reverse(**id),
                )
            })
            .map(|(id, _)| *id);
        let Some(id) = best else { return false };
        let m = self.machines.get_mut(&id).expect("found");
        m.ticket = Some(ticket);
        m.sandbox = Some(sandbox);
        m.promised = None;
        m.served += 1;
        let resource = m.output.as_deref().and_then(|o| Resource::parse(o).ok());
        let t = self.tickets.get_mut(&ticket).expect("exists");
        t.machine = Some(id);
        t.state = resource.map_or(TicketState::Failed, TicketState::Ready);
        true
    }
}

#[async_trait]
impl Allocator for Pools {
    async fn take(&self, tags: &[String], sandbox: &str) -> Result<TicketId, AllocError> {
        if !self.pools.values().any(|p| p.fits(tags)) {
            return Err(AllocError::NoPool(tags.to_vec()));
        }
        let ticket = {
            let mut inner = self.lock();
            inner.next_ticket += 1;
            let id = inner.next_ticket;
            inner.tickets.insert(
                id,
                TicketEntry {
                    tags: tags.to_vec(),
                    sandbox: sandbox.to_owned(),
                    state: TicketState::Waiting,
                    machine: None,
                },
            );
            id
        };
        self.wake.notify_one();
        Ok(ticket)
    }

    async fn collect(&self, ticket: TicketId) -> Result<TicketState, AllocError> {
        self.lock()
            .tickets
            .get(&ticket)
            .map(|t| t.state.clone())
            .ok_or(AllocError::UnknownTicket(ticket))
    }

    async fn close(&self, ticket: TicketId) -> Result<(), AllocError> {
        {
            let mut inner = self.lock();
            let Some(t) = inner.tickets.remove(&ticket) else {
                return Ok(());
            };
            let Some(id) = t.machine else {
                inner.unpromise(ticket);
                return Ok(());
            };
            let Some(m) = inner.machines.get_mut(&id) else {
                return Ok(());
            };
            if m.ticket != Some(ticket) {
                return Ok(());
            }
            m.ticket = None;
            m.idle_since = Instant::now();
            let slot = (m.pool.clone(), m.id_in_pool);
            let pool = &self.pools[&m.pool];
            let worn = pool.reuse_max_count.is_some_and(|n| m.served >= n)
                || pool
                    .reuse_max_time
                    .is_some_and(|s| m.born.elapsed() >= Duration::from_secs(s))
                || pool.reuse_opportunity_time == 0;
            if m.phase == Phase::Up {
                let job = if worn {
                    m.phase = Phase::Deleting;
                    Job::Delete(id)
                } else {
                    m.phase = Phase::Releasing;
                    Job::Release(id)
                };
                inner.queued.push(job);
            }
            // It served a whole task: its slot works.
            inner.broken.remove(&slot);
        }
        self.wake.notify_one();
        Ok(())
    }
}
