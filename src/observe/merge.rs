//! Merges the records each machine of a virtual run wrote into one trace, ordered by time.
//!
//! A machine numbers its own records and links each to its causes on that machine; an envelope
//! from another machine arrives with no known cause. Connections between machines are first-in
//! first-out (one TCP stream per ordered pair), so the k-th envelope machine A put on the wire
//! to machine B is the k-th that B received from A: that pairs each arrival with its
//! transmission.

use std::collections::{BTreeMap, VecDeque};

use super::record::{Record, RecordKind};

/// Microseconds since the Unix epoch on this host's clock: the time base of the records a machine
/// process writes and of the runner's start, which [`merge`] aligns. (Real runs only: the
/// simulator's records are in virtual time.)
pub fn host_now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// One trace from the records of every machine (`per_machine[i]` is what machine `i` wrote,
/// with times in microseconds of a clock all machines share); `start_us` on that clock becomes
/// time zero. Records are renumbered from 1 in time order and every cause is rewritten to the
/// new numbers.
pub fn merge(per_machine: Vec<Vec<Record>>, start_us: u64) -> Vec<Record> {
    let mut all: Vec<Record> = per_machine.into_iter().flatten().collect();
    all.sort_by_key(|record| (record.at_us, record.machine, record.id));
    let mut renumbered = BTreeMap::new();
    for (index, record) in all.iter().enumerate() {
        renumbered.insert((record.machine, record.id), index as u64 + 1);
    }
    // The transmissions that reached the wire, per (from, to), in the order they were sent.
    let mut on_wire: BTreeMap<(u32, u32), VecDeque<u64>> = BTreeMap::new();
    let mut by_machine: Vec<&Record> = all.iter().collect();
    by_machine.sort_by_key(|record| (record.machine, record.id));
    for record in by_machine {
        let Some(peer) = record.peer_machine else {
            continue;
        };
        let sent = matches!(
            record.kind,
            RecordKind::Send | RecordKind::Retransmit | RecordKind::Duplicate
        );
        if sent && peer != record.machine {
            if let Some(id) = renumbered.get(&(record.machine, record.id)) {
                on_wire
                    .entry((record.machine, peer))
                    .or_default()
                    .push_back(*id);
            }
        }
    }
    for (index, record) in all.iter_mut().enumerate() {
        let local_cause = record.cause;
        record.cause =
            local_cause.and_then(|cause| renumbered.get(&(record.machine, cause)).copied());
        let arrived_from_peer = record.peer_machine.filter(|peer| *peer != record.machine);
        let arrival = matches!(
            record.kind,
            RecordKind::Deliver | RecordKind::Spawn | RecordKind::Terminate
        );
        if let (true, None, Some(peer)) = (arrival, local_cause, arrived_from_peer) {
            record.cause = on_wire
                .get_mut(&(peer, record.machine))
                .and_then(VecDeque::pop_front);
        }
        record.id = index as u64 + 1;
        record.at_us = record.at_us.saturating_sub(start_us);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, at_us: u64, kind: RecordKind, machine: u32, peer: Option<u32>) -> Record {
        let mut record = Record::new(id, at_us, kind, machine);
        record.peer_machine = peer;
        record
    }

    #[test]
    fn virtual_arrivals_are_paired_with_their_transmissions_in_order() {
        let mut timer = record(1, 1_000, RecordKind::Timer, 0, None);
        timer.cause = None;
        let mut first = record(2, 1_010, RecordKind::Send, 0, Some(1));
        first.cause = Some(1);
        let mut second = record(3, 1_020, RecordKind::Send, 0, Some(1));
        second.cause = Some(1);
        let m0 = vec![timer, first, second];
        let m1 = vec![
            record(1, 1_015, RecordKind::Deliver, 1, Some(0)),
            record(2, 1_030, RecordKind::Deliver, 1, Some(0)),
        ];
        let merged = merge(vec![m0, m1], 1_000);
        let shown: Vec<_> = merged
            .iter()
            .map(|r| (r.id, r.at_us, r.kind, r.machine, r.cause))
            .collect();
        assert_eq!(
            shown,
            [
                (1, 0, RecordKind::Timer, 0, None),
                (2, 10, RecordKind::Send, 0, Some(1)),
                (3, 15, RecordKind::Deliver, 1, Some(2)),
                (4, 20, RecordKind::Send, 0, Some(1)),
                (5, 30, RecordKind::Deliver, 1, Some(4)),
            ]
        );
    }

    #[test]
    fn virtual_a_dropped_transmission_never_pairs_with_an_arrival() {
        let m0 = vec![
            record(1, 10, RecordKind::Drop, 0, Some(1)),
            record(2, 20, RecordKind::Send, 0, Some(1)),
        ];
        let m1 = vec![record(1, 25, RecordKind::Deliver, 1, Some(0))];
        let merged = merge(vec![m0, m1], 0);
        assert_eq!(merged[2].cause, Some(2));
    }
}
