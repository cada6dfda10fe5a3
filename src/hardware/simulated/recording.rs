//! What the simulator tells the structured trace: its fault windows, and what the network did
//! with each transmission (as the network reports it, without knowing it is being recorded).

use super::network::{Loss, Transit};
use crate::faults::NetworkConfig;
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
    let crashes = network
        .crashes
        .iter()
        .enumerate()
        .map(|(index, c)| TimedWindow {
            from_us: c.at_ms.to_micros_saturating().0,
            to_us: c
                .restart_ms
                .unwrap_or(crate::time::HORIZON)
                .to_micros_saturating()
                .0,
            window: FaultWindow {
                fault: "crash".into(),
                index,
                groups: vec![vec![c.machine]],
            },
        });
    partitions.chain(pauses).chain(crashes).collect()
}

/// One transmission the simulator carried.
pub(super) struct Transmission<'a> {
    pub(super) at_us: Micros,
    pub(super) from: MachineId,
    pub(super) to: MachineId,
    pub(super) envelope: &'a Envelope,
    pub(super) cause: Option<u64>,
}

/// Records `sent`, which the network carried as `transit`; returns the records of the first and
/// second copy (0 for a copy that does not exist).
pub(super) fn transmission(
    recorder: &mut Recorder,
    sent: Transmission<'_>,
    transit: &Transit,
) -> [u64; 2] {
    let what = match transit.lost {
        Some(Loss::Partition) => Transmitted::Partitioned,
        Some(Loss::Drop) => Transmitted::Dropped,
        None => Transmitted::Sent,
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
    let second = if transit.arrivals[1].is_some() {
        recorder.duplicate(first)
    } else {
        0
    };
    [first, second]
}
