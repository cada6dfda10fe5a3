//! A plan's windows as a schedule of fault verbs.

use super::{CutId, Fault, NetworkConfig};
use crate::messages::MachineId;
use crate::time::Millis;

/// A fault verb and when it strikes.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// When.
    pub at: Millis,
    /// What.
    pub fault: Fault,
}

/// Fault verbs in the order they strike: by time, and at one time in the order the plan lists
/// them (every window's end before any window's start at the same moment, so a window that
/// ends when another starts does not overlap it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    verbs: Vec<Timed>,
}

impl Schedule {
    /// The verbs that start and end each of `plan`'s partitions (cut `i` for
    /// `partitions[i]`), pauses and crashes.
    pub fn of_plan(plan: &NetworkConfig) -> Self {
        let mut ends = Vec::new();
        let mut starts = Vec::new();
        for (index, partition) in plan.partitions.iter().enumerate() {
            let cut = CutId(u32::try_from(index).unwrap_or(u32::MAX));
            let groups = partition
                .groups
                .iter()
                .map(|group| group.iter().copied().map(MachineId).collect())
                .collect();
            starts.push(timed(partition.from_ms, Fault::Partition { cut, groups }));
            ends.push(timed(partition.to_ms, Fault::Repair { cut }));
        }
        for pause in &plan.pauses {
            let machine = MachineId(pause.machine);
            starts.push(timed(pause.from_ms, Fault::Pause { machine }));
            ends.push(timed(pause.to_ms, Fault::Resume { machine }));
        }
        for crash in &plan.crashes {
            let machine = MachineId(crash.machine);
            starts.push(timed(crash.at_ms, Fault::Crash { machine }));
            if let Some(restart_ms) = crash.restart_ms {
                ends.push(timed(restart_ms, Fault::Restart { machine }));
            }
        }
        let mut verbs: Vec<(Millis, u8, usize, Fault)> = ends
            .into_iter()
            .enumerate()
            .map(|(order, t)| (t.at, 0, order, t.fault))
            .chain(
                starts
                    .into_iter()
                    .enumerate()
                    .map(|(order, t)| (t.at, 1, order, t.fault)),
            )
            .collect();
        verbs.sort_by_key(|(at, phase, order, _)| (*at, *phase, *order));
        Schedule {
            verbs: verbs
                .into_iter()
                .map(|(at, _, _, fault)| Timed { at, fault })
                .collect(),
        }
    }

    /// A schedule of `verbs`, put in time order (verbs at one time keep their order).
    pub fn new(mut verbs: Vec<Timed>) -> Self {
        verbs.sort_by_key(|timed| timed.at);
        Schedule { verbs }
    }

    /// The verbs, in order.
    pub fn verbs(&self) -> &[Timed] {
        &self.verbs
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.verbs.is_empty()
    }
}

fn timed(at: Millis, fault: Fault) -> Timed {
    Timed { at, fault }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_windows_become_verbs_in_time_order_ends_first() {
        let plan: NetworkConfig = serde_json::from_value(serde_json::json!({
            "partitions": [{"from_ms": 100, "to_ms": 300, "groups": [[0], [1]]}],
            "pauses": [{"machine": 2, "from_ms": 300, "to_ms": 400}],
            "crashes": [{"machine": 1, "at_ms": 50, "restart_ms": 300}, {"machine": 0, "at_ms": 500}]
        }))
        .expect("a plan");
        let verbs: Vec<String> = plan
            .schedule()
            .verbs()
            .iter()
            .map(|t| format!("{} {}", t.at.0, t.fault))
            .collect();
        assert_eq!(
            verbs,
            [
                "50 crash m1",
                "100 partition 0 [m0] | [m1]",
                "300 repair 0",
                "300 restart m1",
                "300 pause m2",
                "400 resume m2",
                "500 crash m0",
            ]
        );
    }
}
