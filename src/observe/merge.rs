//! Merges the records each machine of a virtual run wrote into one trace, ordered by time.
//!
//! A machine numbers its own records and links each to its causes on that machine; an envelope
//! from another machine arrives with no known cause. Connections between machines are first-in
//! first-out (one TCP stream per ordered pair), so the k-th envelope machine A put on the wire
//! to machine B is the k-th that B received from A: that pairs each arrival with its
//! transmission.

use std::collections::{BTreeMap, VecDeque};

use super::record::{Record, RecordKind};
use super::recorder::TimedWindow;

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

/// `records` (one merged trace, ids from 1 in time order) with the start and end of every window
/// in `windows` that is due by `end_us` written in among them, each at its time and before the
/// other records of that time, as the simulator's recorder writes them. Records are renumbered
/// from 1 and every cause is rewritten to the new numbers. A remote run's machines do not know
/// the runner's fault plan: the runner applies it, then writes its windows into the trace here.
pub fn with_windows(records: Vec<Record>, windows: Vec<TimedWindow>, end_us: u64) -> Vec<Record> {
    let mut boundaries: Vec<Record> = windows
        .into_iter()
        .flat_map(|timed| {
            [
                (timed.from_us, RecordKind::FaultStart, timed.window.clone()),
                (timed.to_us, RecordKind::FaultEnd, timed.window),
            ]
        })
        .filter(|(at_us, _, _)| *at_us <= end_us)
        .map(|(at_us, kind, window)| {
            let machine = window.groups.first().and_then(|g| g.first()).copied();
            let mut record = Record::new(0, at_us, kind, machine.unwrap_or(0));
            record.detail = Some(window.fault.clone());
            record.window = Some(Box::new(window));
            record
        })
        .collect();
    if boundaries.is_empty() {
        return records;
    }
    // At equal times an end comes before a start, and windows keep their scenario order.
    boundaries.sort_by(|a, b| {
        let key = |r: &Record| {
            let window = r.window.as_deref();
            (
                r.at_us,
                r.kind == RecordKind::FaultStart,
                window.map(|w| w.fault.clone()),
                window.map(|w| w.index),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut all = Vec::with_capacity(records.len() + boundaries.len());
    let mut renumbered = BTreeMap::new();
    let mut boundaries = boundaries.into_iter().peekable();
    for record in records {
        while let Some(boundary) = boundaries.next_if(|b| b.at_us <= record.at_us) {
            all.push(boundary);
        }
        renumbered.insert(record.id, all.len() as u64 + 1);
        all.push(record);
    }
    all.extend(boundaries);
    for (index, record) in all.iter_mut().enumerate() {
        record.id = index as u64 + 1;
        record.cause = record
            .cause
            .and_then(|cause| renumbered.get(&cause).copied());
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

    #[test]
    fn simulated_windows_are_written_in_among_the_records_by_time_with_causes_kept() {
        use crate::observe::FaultWindow;
        let first = record(1, 100, RecordKind::Send, 0, Some(1));
        let mut second = record(2, 300, RecordKind::Deliver, 1, Some(0));
        second.cause = Some(1);
        let window = |fault: &str, from_us, to_us| TimedWindow {
            from_us,
            to_us,
            window: FaultWindow {
                fault: fault.into(),
                index: 0,
                groups: vec![vec![1]],
            },
        };
        let all = with_windows(
            vec![first, second],
            vec![window("pause", 200, 300), window("crash", 250, 9_000)],
            1_000,
        );
        let kinds: Vec<(u64, u64, RecordKind)> =
            all.iter().map(|r| (r.id, r.at_us, r.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (1, 100, RecordKind::Send),
                (2, 200, RecordKind::FaultStart),
                (3, 250, RecordKind::FaultStart),
                (4, 300, RecordKind::FaultEnd),
                (5, 300, RecordKind::Deliver),
            ]
        );
        assert_eq!(all[4].cause, Some(1), "the delivery still names its send");
        assert_eq!(all[1].detail.as_deref(), Some("pause"));
        assert_eq!(all[2].machine, 1);
    }
}
