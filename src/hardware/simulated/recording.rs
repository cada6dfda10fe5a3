//! What the simulator tells the structured trace: its fault windows, and what the network did
//! with each transmission (read from the network's counters, so the network itself does not
//! know it is being recorded).

use super::network::NetworkConfig;
use crate::counters::Counters;
use crate::manager::Envelope;
use crate::messages::MachineId;
use crate::observe::{FaultWindow, Recorder, TimedWindow, Transmitted};
use crate::time::Micros;

/// Every partition and pause of `network`, as the structured trace writes them.
pub fn fault_windows(network: &NetworkConfig) -> Vec<TimedWindow> {
    let partitions = network
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| TimedWindow {
            from_us: p.from_ms.to_micros_saturating().0,
            to_us: p.to_ms.to_micros_saturating().0,
            window: FaultWindow {
                fault: "partition".into(),
                index,
                groups: p.groups.clone(),
            },
        });
    let pauses = network
        .pauses
        .iter()
        .enumerate()
        .map(|(index, p)| TimedWindow {
            from_us: p.from_ms.to_micros_saturating().0,
            to_us: p.to_ms.to_micros_saturating().0,
            window: FaultWindow {
                fault: "pause".into(),
                index,
                groups: vec![vec![p.machine]],
            },
        });
    partitions.chain(pauses).collect()
}

/// One transmission the simulator carried.
pub(super) struct Transmission<'a> {
    pub(super) at_us: Micros,
    pub(super) from: MachineId,
    pub(super) to: MachineId,
    pub(super) envelope: &'a Envelope,
    pub(super) cause: Option<u64>,
}

/// Records `sent` given the network's counters before and after it; returns the records of
/// the first and second copy (0 for a copy that does not exist).
pub(super) fn transmission(
    recorder: &mut Recorder,
    sent: Transmission<'_>,
    before: &Counters,
    after: &Counters,
) -> [u64; 2] {
    let what = if after.partitioned > before.partitioned {
        Transmitted::Partitioned
    } else if after.dropped > before.dropped {
        Transmitted::Dropped
    } else {
        Transmitted::Sent
    };
    let first = recorder.transmission(
        sent.at_us.0,
        sent.from,
        sent.to,
        sent.envelope,
        what,
        sent.cause,
    );
    if what != Transmitted::Sent {
        return [0, 0];
    }
    let second = if after.duplicated > before.duplicated {
        recorder.duplicate(first)
    } else {
        0
    };
    [first, second]
}
