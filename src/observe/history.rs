//! Causal history from the structured records, the same way in every mode: each record names
//! the event that caused it, so what led to an event is found by following causes back — in the
//! simulator's records, and in the merged records of containers and instances alike.

use std::collections::{BTreeMap, BTreeSet};

use super::record::{Record, RecordKind};
use crate::manager::NodeFailure;
use crate::time::Micros;

/// The most deliveries a failure's history shows: the newest, as the simulator's causal chain
/// keeps them.
const MAX_LINES: usize = 64;

/// Every record that led to one of `targets` (and the targets), following causes back.
pub fn causal_history(by_id: &BTreeMap<u64, &Record>, targets: &[u64]) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    let mut next: Vec<u64> = targets.to_vec();
    while let Some(id) = next.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(cause) = by_id.get(&id).and_then(|record| record.cause) {
            next.push(cause);
        }
    }
    seen
}

/// The deliveries that led to `failure`, oldest first, one line each (`at ms  sender
/// --type--> receiver`, the lines of a [`crate::hardware::FailureReport`]): the chain of
/// causes back from the failure's record. Empty if `records` hold no record of it.
pub fn failure_history(records: &[Record], failure: &NodeFailure) -> Vec<String> {
    let node = failure.node.id.to_string();
    let Some(failed) = records.iter().rev().find(|record| {
        record.kind == RecordKind::Fail
            && record.machine == failure.node.machine.0
            && record.node.as_deref() == Some(node.as_str())
    }) else {
        return Vec::new();
    };
    let by_id: BTreeMap<u64, &Record> = records.iter().map(|record| (record.id, record)).collect();
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    let mut next = failed.cause;
    while let Some(id) = next {
        let Some(record) = by_id.get(&id).filter(|_| seen.insert(id)) else {
            break;
        };
        if record.kind == RecordKind::Deliver {
            lines.push(delivery_line(record));
        }
        next = record.cause;
    }
    lines.truncate(MAX_LINES);
    lines.reverse();
    lines
}

/// `at ms  sender --type--> receiver` for a delivery record.
fn delivery_line(delivery: &Record) -> String {
    let from = match (&delivery.peer, delivery.peer_machine) {
        (Some(peer), Some(machine)) => format!("{peer}@m{machine}"),
        _ => String::from("outside"),
    };
    let to = match &delivery.node {
        Some(node) => format!("{node}@m{}", delivery.machine),
        None => format!("m{}", delivery.machine),
    };
    format!(
        "{:>10.3} ms  {} --{}--> {}",
        Micros(delivery.at_us).as_millis_f64(),
        from,
        delivery.message_type.as_deref().unwrap_or("?"),
        to
    )
}
