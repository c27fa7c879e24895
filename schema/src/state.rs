//! Build and build-chroot states, and the only way to move between them.
//!
//! The names and API integers are Copr's (REFERENCE §1), because copr-cli and the web UI read
//! them. A state changes only through [`State::next`], a pure function that refuses illegal moves
//! and returns a [`Transition`]; the database facade accepts nothing else, and writes it as a
//! compare-and-set, so no code path can write an arbitrary state.

use std::fmt;

/// The state of a build's source part or of one build-chroot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Failed,
    Succeeded,
    Canceled,
    Running,
    Pending,
    Skipped,
    Starting,
    Importing,
    Forked,
    Waiting,
    Unknown,
}

/// Which part of a build a state belongs to: the legal moves differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The SRPM build and its import into DistGit (pseudo-chroot `srpm-builds`).
    Source,
    /// One RPM build in one chroot.
    Chroot,
}

/// What happened to a part; [`State::next`] turns it into a [`Transition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The SRPM import finished, so a chroot may now be queued.
    Queue,
    /// A builder was asked for.
    Start,
    /// The builder runs the task.
    Run,
    /// The SRPM is built and is being imported into DistGit (source part only).
    Import,
    /// The task finished well (for a chroot: signed and published).
    Succeed,
    /// The task failed for good.
    Fail,
    /// The user canceled the build.
    Cancel,
    /// The chroot is ruled out by ExclusiveArch/ExcludeArch.
    Skip,
    /// The builder was lost (or the service restarted): run the task again.
    Requeue,
}

/// A legal move from one state to another. Only [`State::next`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    from: State,
    to: State,
}

impl Transition {
    pub fn from(&self) -> State {
        self.from
    }
    pub fn to(&self) -> State {
        self.to
    }
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition: {part:?} in state {from} cannot take event {event:?}")]
pub struct InvalidTransition {
    pub part: Part,
    pub from: State,
    pub event: Event,
}

/// Every state, for exhaustive tests and for parsing.
pub const ALL_STATES: [State; 11] = [
    State::Failed,
    State::Succeeded,
    State::Canceled,
    State::Running,
    State::Pending,
    State::Skipped,
    State::Starting,
    State::Importing,
    State::Forked,
    State::Waiting,
    State::Unknown,
];

impl State {
    /// The name Copr uses in its API and UI.
    pub fn name(self) -> &'static str {
        match self {
            State::Failed => "failed",
            State::Succeeded => "succeeded",
            State::Canceled => "canceled",
            State::Running => "running",
            State::Pending => "pending",
            State::Skipped => "skipped",
            State::Starting => "starting",
            State::Importing => "importing",
            State::Forked => "forked",
            State::Waiting => "waiting",
            State::Unknown => "unknown",
        }
    }

    /// The integer Copr's API v3 uses for this state.
    pub fn api_int(self) -> i64 {
        match self {
            State::Failed => 0,
            State::Succeeded => 1,
            State::Canceled => 2,
            State::Running => 3,
            State::Pending => 4,
            State::Skipped => 5,
            State::Starting => 6,
            State::Importing => 7,
            State::Forked => 8,
            State::Waiting => 9,
            State::Unknown => 1000,
        }
    }

    pub fn from_name(name: &str) -> Option<State> {
        ALL_STATES.into_iter().find(|s| s.name() == name)
    }

    /// Finished states never change again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            State::Succeeded | State::Forked | State::Canceled | State::Skipped | State::Failed
        )
    }

    /// The move `event` causes from this state, or why it is not allowed.
    pub fn next(self, part: Part, event: Event) -> Result<Transition, InvalidTransition> {
        use State::*;
        let to = match (part, self, event) {
            (Part::Chroot, Waiting, Event::Queue) => Some(Pending),
            (_, Pending, Event::Start) => Some(Starting),
            (_, Starting, Event::Run) => Some(Running),
            (Part::Source, Running, Event::Import) => Some(Importing),
            (Part::Source, Importing, Event::Succeed) => Some(Succeeded),
            (Part::Chroot, Running, Event::Succeed) => Some(Succeeded),
            (_, Starting | Running, Event::Requeue) => Some(Pending),
            (Part::Chroot, Waiting | Pending, Event::Skip) => Some(Skipped),
            (_, from, Event::Fail) if !from.is_finished() => Some(Failed),
            (_, from, Event::Cancel) if !from.is_finished() => Some(Canceled),
            _ => None,
        };
        match to {
            Some(to) => Ok(Transition { from: self, to }),
            None => Err(InvalidTransition {
                part,
                from: self,
                event,
            }),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The overall state of a build, derived as Copr derives it (REFERENCE §1): canceled if
/// canceled; else the source state while it is one of starting/pending/running/importing/failed;
/// else the first present among the chroot states in the order running, starting, pending,
/// failed, succeeded, skipped, forked (waiting counts as pending).
///
/// A build whose cancel was requested counts as canceled once every part has finished: until
/// then its builders may still be running, and the states say so.
pub fn build_state(cancel_requested: bool, source: State, chroots: &[State]) -> State {
    use State::*;
    let all_finished = source.is_finished() && chroots.iter().all(|s| s.is_finished());
    if cancel_requested && all_finished {
        return Canceled;
    }
    if matches!(
        source,
        Starting | Pending | Running | Importing | Failed | Canceled
    ) {
        return source;
    }
    let present = |wanted: State| {
        chroots
            .iter()
            .any(|&s| s == wanted || (wanted == Pending && s == Waiting))
    };
    [
        Running, Starting, Pending, Failed, Succeeded, Skipped, Forked, Canceled,
    ]
    .into_iter()
    .find(|&s| present(s))
    .unwrap_or(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [Event; 9] = [
        Event::Queue,
        Event::Start,
        Event::Run,
        Event::Import,
        Event::Succeed,
        Event::Fail,
        Event::Cancel,
        Event::Skip,
        Event::Requeue,
    ];

    #[test]
    fn api_integers_and_names_match_copr() {
        let expected = [
            ("failed", 0),
            ("succeeded", 1),
            ("canceled", 2),
            ("running", 3),
            ("pending", 4),
            ("skipped", 5),
            ("starting", 6),
            ("importing", 7),
            ("forked", 8),
            ("waiting", 9),
            ("unknown", 1000),
        ];
        for (state, (name, int)) in ALL_STATES.iter().zip(expected) {
            assert_eq!(state.name(), name);
            assert_eq!(state.api_int(), int);
            assert_eq!(State::from_name(name), Some(*state));
        }
    }

    /// The whole table: every (part, state, event) either is one of the listed moves or is
    /// refused.
    #[test]
    fn transition_table_is_exactly_the_documented_one() {
        use State::*;
        let legal: &[(Part, State, Event, State)] = &[
            (Part::Source, Pending, Event::Start, Starting),
            (Part::Source, Starting, Event::Run, Running),
            (Part::Source, Running, Event::Import, Importing),
            (Part::Source, Importing, Event::Succeed, Succeeded),
            (Part::Source, Starting, Event::Requeue, Pending),
            (Part::Source, Running, Event::Requeue, Pending),
            (Part::Chroot, Waiting, Event::Queue, Pending),
            (Part::Chroot, Pending, Event::Start, Starting),
            (Part::Chroot, Starting, Event::Run, Running),
            (Part::Chroot, Running, Event::Succeed, Succeeded),
            (Part::Chroot, Starting, Event::Requeue, Pending),
            (Part::Chroot, Running, Event::Requeue, Pending),
            (Part::Chroot, Waiting, Event::Skip, Skipped),
            (Part::Chroot, Pending, Event::Skip, Skipped),
        ];
        for part in [Part::Source, Part::Chroot] {
            for from in ALL_STATES {
                for event in EVENTS {
                    let got = from.next(part, event).map(|t| t.to());
                    let listed = legal
                        .iter()
                        .find(|(p, f, e, _)| *p == part && *f == from && *e == event)
                        .map(|(_, _, _, to)| *to);
                    let expected = match (listed, event) {
                        (Some(to), _) => Some(to),
                        (None, Event::Fail) if !from.is_finished() => Some(Failed),
                        (None, Event::Cancel) if !from.is_finished() => Some(Canceled),
                        _ => None,
                    };
                    assert_eq!(got.ok(), expected, "{part:?} {from} {event:?}");
                }
            }
        }
    }

    #[test]
    fn finished_states_never_move() {
        for from in ALL_STATES.into_iter().filter(|s| s.is_finished()) {
            for event in EVENTS {
                assert!(from.next(Part::Chroot, event).is_err());
                assert!(from.next(Part::Source, event).is_err());
            }
        }
    }

    #[test]
    fn overall_state_follows_copr() {
        use State::*;
        assert_eq!(
            build_state(true, Succeeded, &[Running]),
            Running,
            "still stopping"
        );
        assert_eq!(
            build_state(true, Succeeded, &[Canceled, Succeeded]),
            Canceled
        );
        assert_eq!(build_state(false, Succeeded, &[Canceled]), Canceled);
        assert_eq!(build_state(false, Importing, &[]), Importing);
        assert_eq!(build_state(false, Failed, &[]), Failed);
        assert_eq!(
            build_state(false, Succeeded, &[Succeeded, Running]),
            Running
        );
        assert_eq!(
            build_state(false, Succeeded, &[Waiting, Succeeded]),
            Pending
        );
        assert_eq!(build_state(false, Succeeded, &[Failed, Succeeded]), Failed);
        assert_eq!(
            build_state(false, Succeeded, &[Skipped, Succeeded]),
            Succeeded
        );
        assert_eq!(build_state(false, Succeeded, &[Skipped]), Skipped);
    }
}
