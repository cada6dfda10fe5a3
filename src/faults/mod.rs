//! Faults, mode-neutral: the plan a scenario declares ([`NetworkConfig`]), the rules that strike
//! a share of the transmissions ([`FaultRule`], injected by [`SenderFaults`] in every mode), and
//! the fault verbs ([`Fault`]) a test calls at any moment of a run — partition and repair, hold
//! and release, pause and resume, crash and restart, a rule switched on or off.
//!
//! A scenario's windows are not a second implementation: [`NetworkConfig::schedule`] turns them
//! into a [`Schedule`] of the same verbs, which the hardware applies at their times exactly as
//! it applies a verb a test calls.

mod links;
mod plan;
mod rules;
mod schedule;

pub use links::LinkFaults;
pub(crate) use plan::Latency;
pub use plan::{
    Crash, LatencyDistribution, LatencySpec, NetworkConfig, NetworkConfigError, Partition, Pause,
};
pub use rules::{CompiledRule, FaultRule, FaultRuleError, SenderFaults};
pub use schedule::{Schedule, Timed};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::messages::MachineId;

/// Names one partition, so that it can be repaired while others stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CutId(pub u32);

/// Which rule [`Fault::Rule`] switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Transmissions lost.
    Drop,
    /// Transmissions delivered twice.
    Duplicate,
    /// Transmissions held back so that later ones overtake them.
    Reorder,
}

/// One fault verb: something done to the system at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case")]
pub enum Fault {
    /// Machines in different groups cannot reach each other until [`Fault::Repair`] of the same
    /// cut; what they send each other meanwhile is lost. Machines in no group are not affected.
    Partition {
        /// Which partition this is.
        cut: CutId,
        /// Groups of machines.
        groups: Vec<Vec<MachineId>>,
    },
    /// Ends the partition `cut`.
    Repair {
        /// The partition.
        cut: CutId,
    },
    /// Everything sent between `a` and `b` (both ways) is held, not lost, until
    /// [`Fault::Release`]; then it arrives in the order it was sent.
    Hold {
        /// One end of the link.
        a: MachineId,
        /// The other end.
        b: MachineId,
    },
    /// Ends the hold between `a` and `b`.
    Release {
        /// One end of the link.
        a: MachineId,
        /// The other end.
        b: MachineId,
    },
    /// The machine processes nothing, as a stalled process would; what arrives waits for it.
    /// Pauses nest: a machine paused twice goes on after two resumes.
    Pause {
        /// The machine.
        machine: MachineId,
    },
    /// Ends one pause of the machine.
    Resume {
        /// The machine.
        machine: MachineId,
    },
    /// The machine loses power: its nodes, timers and link-layer buffers are gone; what its
    /// nodes persisted stays on its disk.
    Crash {
        /// The machine.
        machine: MachineId,
    },
    /// The machine boots again at the same address, with a new incarnation, and its nodes
    /// recover from what they persisted.
    Restart {
        /// The machine.
        machine: MachineId,
    },
    /// Replaces a drop, duplicate or reorder rule (`None` switches it off).
    Rule {
        /// Which rule.
        kind: RuleKind,
        /// The new rule, if any.
        rule: Option<FaultRule>,
    },
}

/// The kinds of fault a mode may or may not be able to apply (a report's `not_applied` lists
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The latency model (a distribution of delays between machines).
    Latency,
    /// Drops.
    Drop,
    /// Duplicates.
    Duplicate,
    /// Reordering.
    Reorder,
    /// Partitions.
    Partition,
    /// Holds.
    Hold,
    /// Pauses.
    Pause,
    /// Crashes and restarts.
    Crash,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Latency => "the latency model",
            FaultKind::Drop => "drops",
            FaultKind::Duplicate => "duplicates",
            FaultKind::Reorder => "reordering",
            FaultKind::Partition => "partitions",
            FaultKind::Hold => "holds",
            FaultKind::Pause => "pauses",
            FaultKind::Crash => "crashes and restarts",
        })
    }
}

impl Fault {
    /// The kind of fault this verb starts or ends.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Partition { .. } | Fault::Repair { .. } => FaultKind::Partition,
            Fault::Hold { .. } | Fault::Release { .. } => FaultKind::Hold,
            Fault::Pause { .. } | Fault::Resume { .. } => FaultKind::Pause,
            Fault::Crash { .. } | Fault::Restart { .. } => FaultKind::Crash,
            Fault::Rule { kind, .. } => match kind {
                RuleKind::Drop => FaultKind::Drop,
                RuleKind::Duplicate => FaultKind::Duplicate,
                RuleKind::Reorder => FaultKind::Reorder,
            },
        }
    }

    /// Every machine this verb names.
    pub fn machines(&self) -> Vec<MachineId> {
        match self {
            Fault::Partition { groups, .. } => groups.iter().flatten().copied().collect(),
            Fault::Hold { a, b } | Fault::Release { a, b } => vec![*a, *b],
            Fault::Pause { machine }
            | Fault::Resume { machine }
            | Fault::Crash { machine }
            | Fault::Restart { machine } => vec![*machine],
            Fault::Repair { .. } | Fault::Rule { .. } => Vec::new(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { cut, groups } => {
                let groups: Vec<String> = groups
                    .iter()
                    .map(|group| {
                        let names: Vec<String> = group.iter().map(ToString::to_string).collect();
                        format!("[{}]", names.join(", "))
                    })
                    .collect();
                write!(f, "partition {} {}", cut.0, groups.join(" | "))
            }
            Fault::Repair { cut } => write!(f, "repair {}", cut.0),
            Fault::Hold { a, b } => write!(f, "hold {a} <-> {b}"),
            Fault::Release { a, b } => write!(f, "release {a} <-> {b}"),
            Fault::Pause { machine } => write!(f, "pause {machine}"),
            Fault::Resume { machine } => write!(f, "resume {machine}"),
            Fault::Crash { machine } => write!(f, "crash {machine}"),
            Fault::Restart { machine } => write!(f, "restart {machine}"),
            Fault::Rule { kind, rule } => match rule {
                Some(rule) => write!(f, "{kind:?} rule {}", rule.rate),
                None => write!(f, "{kind:?} rule off"),
            },
        }
    }
}
