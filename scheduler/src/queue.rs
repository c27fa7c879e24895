//! The fair queue (seed steps 2 and 8): which waiting task gets the next builder slot.
//!
//! Copr sorts tasks into priority sections and round-robins between users inside a section,
//! yet its users still wait tens of minutes behind someone's mass rebuild (copr#2883). Here the
//! owner comes first: among the tasks the limits allow, the one whose owner holds the fewest
//! builders wins, then the one whose sandbox holds the fewest, and only then the sections (SRPM
//! tasks before RPM tasks) and age. Background builds wait behind every normal one. So a build
//! submitted behind another owner's 5,000 queued builds starts at the next free slot of its
//! architecture.
//!
//! [`pick`] is a pure function over the queue's heads ([`Db::queue_heads`]) and the tasks that
//! hold builders ([`Db::active_tasks`]); the scheduler claims what it returns with a
//! compare-and-set.
//!
//! [`Db::queue_heads`]: ferrocopr_schema::Db::queue_heads
//! [`Db::active_tasks`]: ferrocopr_schema::Db::active_tasks

use ferrocopr_schema::Chroot;
use ferrocopr_schema::db::QueuedTask;
use ferrocopr_schema::task::SRPM_CHROOT;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The tag every builder ticket carries (Copr's).
pub const BUILDER_TAG: &str = "copr_builder";

/// Concurrency caps (REFERENCE §5), from the scheduler's config file. A missing cap is no cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Tasks holding builders at once, in all.
    #[serde(default)]
    pub total: Option<usize>,
    /// Per architecture (`x86_64: 10`): the builder slots of that architecture.
    #[serde(default)]
    pub arch: BTreeMap<String, usize>,
    /// Per owner, over all architectures.
    #[serde(default)]
    pub owner: Option<usize>,
    /// Per owner and architecture.
    #[serde(default)]
    pub arch_owner: Option<usize>,
    /// Per sandbox (`<owner>/<project>--<submitter>`).
    #[serde(default)]
    pub sandbox: Option<usize>,
    /// Per builder tag (`arch_aarch64: 2`, or a chroot tag).
    #[serde(default)]
    pub tag: BTreeMap<String, usize>,
    /// Owners whose tasks never start.
    #[serde(default)]
    pub blocked_owners: Vec<String>,
}

/// How tasks map to builders: their architecture and the tags of their tickets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// The architecture SRPM tasks run on.
    #[serde(default = "native_arch")]
    pub srpm_arch: String,
    /// Extra ticket tags per chroot (`fedora-41-aarch64: [big_disk]`).
    #[serde(default)]
    pub chroot_tags: BTreeMap<String, Vec<String>>,
}

impl Default for Routing {
    fn default() -> Routing {
        Routing {
            srpm_arch: native_arch(),
            chroot_tags: BTreeMap::new(),
        }
    }
}

/// This machine's architecture in RPM's words.
pub fn native_arch() -> String {
    match std::env::consts::ARCH {
        "x86" => "i686".to_owned(),
        "powerpc64" => "ppc64le".to_owned(),
        other => other.to_owned(),
    }
}

impl Routing {
    /// The architecture a task of `chroot` (`srpm-builds` for the SRPM task) runs on.
    pub fn arch_of(&self, chroot: &str) -> String {
        if chroot == SRPM_CHROOT {
            return self.srpm_arch.clone();
        }
        Chroot::parse(chroot).map_or_else(|| self.srpm_arch.clone(), |c| c.arch)
    }

    /// The tags of the ticket of a task of `chroot`: `copr_builder`, `arch_<arch>` and the
    /// chroot's own tags; a builder fits when its tags include them all.
    pub fn tags_of(&self, chroot: &str) -> Vec<String> {
        let mut tags = vec![
            BUILDER_TAG.to_owned(),
            format!("arch_{}", self.arch_of(chroot)),
        ];
        if let Some(extra) = self.chroot_tags.get(chroot) {
            tags.extend(extra.iter().cloned());
        }
        tags
    }
}

/// Round robin between owners, and between the sandboxes of one owner: the sequence number of
/// the last claim each got. It lives in the scheduler's memory; after a restart everybody starts
/// even, which is fair too.
#[derive(Debug, Default)]
pub struct Fairness {
    claims: u64,
    owner: HashMap<String, u64>,
    sandbox: HashMap<String, u64>,
}

impl Fairness {
    fn served(&mut self, task: &QueuedTask) {
        self.claims += 1;
        self.owner.insert(task.owner.clone(), self.claims);
        self.sandbox.insert(task.sandbox(), self.claims);
    }
}

/// How many builders each owner, sandbox, architecture and tag holds.
#[derive(Debug, Default)]
struct Holdings {
    total: usize,
    owner: HashMap<String, usize>,
    arch_owner: HashMap<(String, String), usize>,
    sandbox: HashMap<String, usize>,
    arch: HashMap<String, usize>,
    tag: HashMap<String, usize>,
}

impl Holdings {
    fn of(active: &[QueuedTask], routing: &Routing) -> Holdings {
        let mut h = Holdings::default();
        for task in active {
            h.add(task, routing);
        }
        h
    }

    fn add(&mut self, task: &QueuedTask, routing: &Routing) {
        let arch = routing.arch_of(&task.chroot);
        self.total += 1;
        *self.owner.entry(task.owner.clone()).or_default() += 1;
        *self
            .arch_owner
            .entry((arch.clone(), task.owner.clone()))
            .or_default() += 1;
        *self.sandbox.entry(task.sandbox()).or_default() += 1;
        *self.arch.entry(arch).or_default() += 1;
        for tag in routing.tags_of(&task.chroot) {
            *self.tag.entry(tag).or_default() += 1;
        }
    }

    /// Whether one more task like `task` stays within every cap.
    fn allows(
        &self,
        task: &QueuedTask,
        limits: &Limits,
        routing: &Routing,
        slots: &dyn Fn(&str) -> Option<usize>,
    ) -> bool {
        let under = |cap: Option<usize>, held: usize| cap.is_none_or(|cap| held < cap);
        let arch = routing.arch_of(&task.chroot);
        let held = |map: &HashMap<String, usize>, key: &str| map.get(key).copied().unwrap_or(0);
        !limits.blocked_owners.contains(&task.owner)
            && under(limits.total, self.total)
            && under(limits.owner, held(&self.owner, &task.owner))
            && under(
                limits.arch_owner,
                self.arch_owner
                    .get(&(arch.clone(), task.owner.clone()))
                    .copied()
                    .unwrap_or(0),
            )
            && under(limits.sandbox, held(&self.sandbox, &task.sandbox()))
            && under(limits.arch.get(&arch).copied(), held(&self.arch, &arch))
            && under(slots(&arch), held(&self.arch, &arch))
            && routing
                .tags_of(&task.chroot)
                .iter()
                .all(|tag| under(limits.tag.get(tag).copied(), held(&self.tag, tag)))
    }
}

/// The tasks to start now, in order: as many of `heads` as the limits and the builders' slots
/// (`slots(arch)`, `None` when the builders do not say) allow, fairest first: the owner holding
/// the fewest builders of the task's architecture, then the fewest in all, then the one served
/// longest ago, then the same between that owner's
/// sandboxes, then SRPM tasks before RPM tasks, then the oldest. `heads` holds at most one task
/// per partition, so a partition's second task waits for the next round (the scheduler asks
/// again as soon as it claimed these).
pub fn pick(
    heads: &[QueuedTask],
    active: &[QueuedTask],
    limits: &Limits,
    routing: &Routing,
    slots: &dyn Fn(&str) -> Option<usize>,
    fairness: &mut Fairness,
) -> Vec<QueuedTask> {
    let mut holdings = Holdings::of(active, routing);
    let mut waiting: Vec<&QueuedTask> = heads.iter().collect();
    let mut chosen = Vec::new();
    loop {
        let best = waiting
            .iter()
            .enumerate()
            .filter(|(_, t)| holdings.allows(t, limits, routing, slots))
            .min_by_key(|(_, t)| {
                let sandbox = t.sandbox();
                let arch_owner = (routing.arch_of(&t.chroot), t.owner.clone());
                (
                    t.background,
                    holdings.arch_owner.get(&arch_owner).copied().unwrap_or(0),
                    holdings.owner.get(&t.owner).copied().unwrap_or(0),
                    fairness.owner.get(&t.owner).copied().unwrap_or(0),
                    holdings.sandbox.get(&sandbox).copied().unwrap_or(0),
                    fairness.sandbox.get(&sandbox).copied().unwrap_or(0),
                    !t.is_srpm(),
                    t.build_id,
                    t.chroot.clone(),
                )
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        let task = waiting.swap_remove(i);
        holdings.add(task, routing);
        fairness.served(task);
        chosen.push(task.clone());
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocopr_schema::{BuildId, State};

    fn task(id: i64, owner: &str, chroot: &str) -> QueuedTask {
        QueuedTask {
            build_id: BuildId(id),
            chroot: chroot.to_owned(),
            owner: owner.to_owned(),
            project: "p".to_owned(),
            submitter: owner.to_owned(),
            background: false,
            state: State::Pending,
            since: 0,
        }
    }

    fn any(_: &str) -> Option<usize> {
        None
    }

    fn x86() -> Routing {
        Routing {
            srpm_arch: "x86_64".into(),
            chroot_tags: BTreeMap::new(),
        }
    }

    #[test]
    fn an_owner_with_nothing_running_goes_first() {
        let heads = [task(1, "a", "srpm-builds"), task(5001, "b", "srpm-builds")];
        let active = [task(0, "a", "fedora-41-x86_64")];
        let limits = Limits {
            total: Some(2),
            ..Limits::default()
        };
        let got = pick(
            &heads,
            &active,
            &limits,
            &x86(),
            &any,
            &mut Fairness::default(),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].owner, "b");
    }

    #[test]
    fn holdings_count_per_architecture_first() {
        // b holds three aarch64 builders, a holds one x86_64 builder: the free x86_64 slot
        // goes to b, who holds none of that architecture.
        let active = [
            task(1, "b", "fedora-41-aarch64"),
            task(2, "b", "fedora-41-aarch64"),
            task(3, "b", "fedora-41-aarch64"),
            task(4, "a", "fedora-41-x86_64"),
        ];
        let heads = [
            task(5, "a", "fedora-41-x86_64"),
            task(6, "b", "fedora-41-x86_64"),
        ];
        let limits = Limits {
            total: Some(5),
            ..Limits::default()
        };
        let got = pick(
            &heads,
            &active,
            &limits,
            &x86(),
            &any,
            &mut Fairness::default(),
        );
        assert_eq!(got[0].owner, "b");
    }

    #[test]
    fn owners_take_turns_when_both_hold_nothing() {
        let mut fairness = Fairness::default();
        let one = |heads: &[QueuedTask], fairness: &mut Fairness| {
            let limits = Limits {
                total: Some(1),
                ..Limits::default()
            };
            pick(heads, &[], &limits, &x86(), &any, fairness)[0]
                .build_id
                .0
        };
        assert_eq!(one(&[task(1, "a", "srpm-builds")], &mut fairness), 1);
        // a was just served: b's build goes first although a's is older.
        let heads = [task(2, "a", "srpm-builds"), task(5001, "b", "srpm-builds")];
        assert_eq!(one(&heads, &mut fairness), 5001);
        assert_eq!(one(&heads, &mut fairness), 2);
    }

    #[test]
    fn caps_hold_per_owner_arch_and_tag_and_blocked_owners_wait() {
        let heads = [
            task(1, "a", "fedora-41-x86_64"),
            task(2, "a", "fedora-41-aarch64"),
            task(3, "c", "fedora-41-aarch64"),
            task(4, "spam", "fedora-41-x86_64"),
        ];
        let active = [task(0, "a", "fedora-41-x86_64")];
        let mut limits = Limits {
            owner: Some(2),
            blocked_owners: vec!["spam".into()],
            ..Limits::default()
        };
        limits.arch.insert("aarch64".into(), 1);
        let got: Vec<i64> = pick(
            &heads,
            &active,
            &limits,
            &x86(),
            &any,
            &mut Fairness::default(),
        )
        .iter()
        .map(|t| t.build_id.0)
        .collect();
        // c holds nothing, so it takes the one aarch64 slot; a gets one more (its cap is 2).
        assert_eq!(got, vec![3, 1]);

        limits.tag.insert("arch_x86_64".into(), 1);
        let got = pick(
            &heads,
            &active,
            &limits,
            &x86(),
            &any,
            &mut Fairness::default(),
        );
        assert!(got.iter().all(|t| !t.chroot.ends_with("x86_64")));
        // The builders' own slots cap an architecture too.
        let no_aarch64 = |arch: &str| (arch == "aarch64").then_some(0);
        let got = pick(
            &heads,
            &[],
            &Limits::default(),
            &x86(),
            &no_aarch64,
            &mut Fairness::default(),
        );
        assert!(got.iter().all(|t| !t.chroot.ends_with("aarch64")));
    }

    #[test]
    fn srpm_tasks_before_rpm_tasks_and_background_last() {
        let mut bg = task(1, "b", "srpm-builds");
        bg.background = true;
        let heads = [
            bg,
            task(3, "a", "fedora-41-x86_64"),
            task(2, "a", "srpm-builds"),
        ];
        let got: Vec<i64> = pick(
            &heads,
            &[],
            &Limits::default(),
            &x86(),
            &any,
            &mut Fairness::default(),
        )
        .iter()
        .map(|t| t.build_id.0)
        .collect();
        assert_eq!(got, vec![2, 3, 1]);
    }

    #[test]
    fn tickets_carry_builder_arch_and_chroot_tags() {
        let mut routing = x86();
        routing
            .chroot_tags
            .insert("fedora-41-aarch64".into(), vec!["big_disk".into()]);
        assert_eq!(
            routing.tags_of("fedora-41-aarch64"),
            vec!["copr_builder", "arch_aarch64", "big_disk"]
        );
        assert_eq!(
            routing.tags_of("srpm-builds"),
            vec!["copr_builder", "arch_x86_64"]
        );
    }
}
