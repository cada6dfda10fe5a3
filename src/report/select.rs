//! What a sequence diagram draws: the messages, losses and marks of a trace that pass its
//! filters (a time window, machines, nodes, message types, or the causal history of some
//! events), and a count of what was left out and why.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use regex::Regex;

use crate::observe::{causal_history, FaultWindow, Record, RecordKind};

/// The types a diagram leaves out unless asked for: the link layer's acknowledgements.
pub const HIDDEN_BY_DEFAULT: &[&str] = &["ack"];

/// Which part of a trace a diagram shows.
#[derive(Debug, Clone)]
pub struct DiagramFilter {
    /// Leave out what ends before this time (milliseconds).
    pub from_ms: Option<u64>,
    /// Leave out what starts after this time (milliseconds).
    pub to_ms: Option<u64>,
    /// Only these machines (both ends of a message must be among them).
    pub machines: Option<BTreeSet<u32>>,
    /// Only these nodes, as `n0.3` (both ends of a message must be among them).
    pub nodes: Option<BTreeSet<String>>,
    /// Only message types this expression matches in full; without it, every type but
    /// [`HIDDEN_BY_DEFAULT`].
    pub types: Option<Regex>,
    /// Draw only the causal history of these records (what led to them), e.g. a failure.
    pub history_of: Option<Vec<u64>>,
    /// Draw at most this many messages (the earliest); say how many more there were.
    pub max_messages: usize,
    /// Draw at most this many lanes (those of the earliest messages); say what was left out.
    pub max_lanes: usize,
}

impl Default for DiagramFilter {
    fn default() -> Self {
        DiagramFilter {
            from_ms: None,
            to_ms: None,
            machines: None,
            nodes: None,
            types: None,
            history_of: None,
            max_messages: 1500,
            max_lanes: 48,
        }
    }
}

/// One end of a message: a node's lane, or a machine's runtime lane (no node).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct End {
    /// The machine.
    pub machine: u32,
    /// The node, if the event belongs to one.
    pub node: Option<String>,
}

/// How a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Travel {
    /// Sent once and delivered.
    Sent,
    /// Sent again by the link layer, and delivered.
    Retransmitted,
    /// A second copy the network made, delivered.
    Duplicated,
    /// Lost on the way (drop rule or partition).
    Lost,
}

/// One arrow of the diagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrow {
    /// The sender's end.
    pub from: End,
    /// The receiver's end.
    pub to: End,
    /// When it was sent, in microseconds.
    pub sent_us: u64,
    /// When it arrived (for a lost message: when it was sent).
    pub arrived_us: u64,
    /// Its type.
    pub message_type: String,
    /// Its summary.
    pub summary: String,
    /// How it travelled.
    pub travel: Travel,
    /// Why it was lost, if it was.
    pub detail: Option<String>,
}

/// A point event drawn on a lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// The lane.
    pub at: End,
    /// When, in microseconds.
    pub at_us: u64,
    /// What happened.
    pub kind: RecordKind,
    /// What to say about it.
    pub label: String,
}

/// A partition or pause over a span of time.
#[derive(Debug, Clone, PartialEq)]
pub struct Shade {
    /// What it is.
    pub window: FaultWindow,
    /// When it starts, in microseconds.
    pub from_us: u64,
    /// When it ends (or the trace does), in microseconds.
    pub to_us: u64,
}

/// What a diagram draws, and what it left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// The lanes, grouped by machine, in order; each with the node's type if known.
    pub lanes: Vec<(End, Option<String>)>,
    /// The arrows, by send time.
    pub arrows: Vec<Arrow>,
    /// Spawns and failures.
    pub marks: Vec<Mark>,
    /// Fault windows.
    pub shades: Vec<Shade>,
    /// The time span drawn, in microseconds.
    pub span_us: (u64, u64),
    /// Lines saying what the filters left out.
    pub left_out: Vec<String>,
    /// Lines saying what is shown.
    pub shown: Vec<String>,
}

/// Selects what `filter` lets through of `records`.
pub fn select(records: &[Record], filter: &DiagramFilter) -> Selection {
    let by_id: BTreeMap<u64, &Record> = records.iter().map(|r| (r.id, r)).collect();
    let history = filter
        .history_of
        .as_ref()
        .map(|targets| causal_history(&by_id, targets));
    let window = (
        filter.from_ms.map_or(0, |ms| ms.saturating_mul(1000)),
        filter.to_ms.map_or(u64::MAX, |ms| ms.saturating_mul(1000)),
    );
    let mut left = LeftOut::default();
    let mut arrows = Vec::new();
    let mut marks = Vec::new();
    for record in records {
        if let Some(history) = &history {
            if !history.contains(&record.id) {
                continue;
            }
        }
        let candidate = match record.kind {
            RecordKind::Deliver | RecordKind::Spawn | RecordKind::Terminate => {
                arrow_of_arrival(&by_id, record)
            }
            RecordKind::Drop => Some(Item::Arrow(lost(record))),
            RecordKind::Fail => Some(Item::Mark(Mark {
                at: end(record.machine, &record.node),
                at_us: record.at_us,
                kind: RecordKind::Fail,
                label: format!(
                    "{} failed: {}",
                    record.node.as_deref().unwrap_or("a node"),
                    record.summary.as_deref().unwrap_or("")
                ),
            })),
            _ => None,
        };
        let spawned_here = record.kind == RecordKind::Spawn
            && record
                .peer_machine
                .is_none_or(|peer| peer == record.machine);
        let candidate = match candidate {
            None if spawned_here => Some(Item::Mark(Mark {
                at: end(record.machine, &record.node),
                at_us: record.at_us,
                kind: RecordKind::Spawn,
                label: format!("start {}", record.summary.as_deref().unwrap_or("")),
            })),
            other => other,
        };
        let Some(item) = candidate else {
            continue;
        };
        match item {
            Item::Arrow(arrow) => {
                if let Some(reason) = left.judge_arrow(&arrow, filter, window) {
                    left.count(reason);
                } else {
                    arrows.push(arrow);
                }
            }
            Item::Mark(mark) => {
                let inside = mark.at_us >= window.0 && mark.at_us <= window.1;
                if inside && lane_allowed(&mark.at, filter) {
                    marks.push(mark);
                }
            }
        }
    }
    arrows.sort_by_key(|arrow| (arrow.sent_us, arrow.arrived_us));
    if arrows.len() > filter.max_messages {
        let cut_at = arrows[filter.max_messages].sent_us;
        let more = arrows.len() - filter.max_messages;
        arrows.truncate(filter.max_messages);
        left.lines.push(format!(
            "{more} more messages sent from {} on (at most {} are drawn; narrow the time window)",
            crate::report::svg::millis(cut_at),
            filter.max_messages
        ));
        marks.retain(|mark| mark.at_us < cut_at);
    }
    keep_lanes(&mut arrows, &mut marks, filter.max_lanes, &mut left.lines);
    let span_us = span(&arrows, &marks, records, window);
    let shades = shades(records, span_us);
    let lanes = lanes(records, &arrows, &marks);
    let mut shown = vec![format!(
        "{} messages, {} to {}",
        arrows.len(),
        crate::report::svg::millis(span_us.0),
        crate::report::svg::millis(span_us.1)
    )];
    if let Some(targets) = &filter.history_of {
        shown.push(format!(
            "the causal history of {} event{}: only what led to {}",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" },
            if targets.len() == 1 { "it" } else { "them" }
        ));
    }
    Selection {
        lanes,
        arrows,
        marks,
        shades,
        span_us,
        left_out: left.finish(),
        shown,
    }
}

enum Item {
    Arrow(Arrow),
    Mark(Mark),
}

fn end(machine: u32, node: &Option<Arc<str>>) -> End {
    End {
        machine,
        node: node.as_deref().map(str::to_owned),
    }
}

/// The arrow of an arrival whose cause is a transmission.
fn arrow_of_arrival(by_id: &BTreeMap<u64, &Record>, arrival: &Record) -> Option<Item> {
    let sent = by_id.get(&arrival.cause?)?;
    let travel = match sent.kind {
        RecordKind::Send => Travel::Sent,
        RecordKind::Retransmit => Travel::Retransmitted,
        RecordKind::Duplicate => Travel::Duplicated,
        _ => return None,
    };
    Some(Item::Arrow(Arrow {
        from: end(sent.machine, &sent.node),
        to: end(arrival.machine, &arrival.node),
        sent_us: sent.at_us,
        arrived_us: arrival.at_us,
        message_type: arrival
            .message_type
            .as_deref()
            .unwrap_or_default()
            .to_owned(),
        summary: arrival.summary.clone().unwrap_or_default(),
        travel,
        detail: None,
    }))
}

fn lost(drop: &Record) -> Arrow {
    Arrow {
        from: end(drop.machine, &drop.node),
        to: end(drop.peer_machine.unwrap_or(drop.machine), &drop.peer),
        sent_us: drop.at_us,
        arrived_us: drop.at_us,
        message_type: drop.message_type.as_deref().unwrap_or_default().to_owned(),
        summary: drop.summary.clone().unwrap_or_default(),
        travel: Travel::Lost,
        detail: drop.detail.clone(),
    }
}

fn lane_allowed(at: &End, filter: &DiagramFilter) -> bool {
    let machine_ok = filter
        .machines
        .as_ref()
        .is_none_or(|machines| machines.contains(&at.machine));
    let node_ok = filter
        .nodes
        .as_ref()
        .is_none_or(|nodes| at.node.as_ref().is_some_and(|node| nodes.contains(node)));
    machine_ok && node_ok
}

#[derive(Default)]
struct LeftOut {
    by_reason: BTreeMap<String, usize>,
    lines: Vec<String>,
}

impl LeftOut {
    fn judge_arrow(
        &self,
        arrow: &Arrow,
        filter: &DiagramFilter,
        window: (u64, u64),
    ) -> Option<String> {
        if arrow.arrived_us < window.0 || arrow.sent_us > window.1 {
            return Some("outside the time window".into());
        }
        let type_ok = match &filter.types {
            Some(types) => types.is_match(&arrow.message_type),
            None => !HIDDEN_BY_DEFAULT.contains(&arrow.message_type.as_str()),
        };
        if !type_ok {
            return Some(format!("of type {}", arrow.message_type));
        }
        if !(lane_allowed(&arrow.from, filter) && lane_allowed(&arrow.to, filter)) {
            return Some("with an end outside the machines or nodes chosen".into());
        }
        None
    }

    fn count(&mut self, reason: String) {
        *self.by_reason.entry(reason).or_default() += 1;
    }

    fn finish(self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .by_reason
            .into_iter()
            .map(|(reason, count)| format!("{count} messages {reason}"))
            .collect();
        lines.extend(self.lines);
        lines
    }
}

/// Keeps the lanes of the earliest messages and marks, at most `max_lanes` of them, and leaves
/// out what touches any other, saying so in `left_out`.
fn keep_lanes(
    arrows: &mut Vec<Arrow>,
    marks: &mut Vec<Mark>,
    max_lanes: usize,
    left_out: &mut Vec<String>,
) {
    let mut order: Vec<(u64, &End)> = arrows
        .iter()
        .flat_map(|arrow| [(arrow.sent_us, &arrow.from), (arrow.sent_us, &arrow.to)])
        .chain(marks.iter().map(|mark| (mark.at_us, &mark.at)))
        .collect();
    order.sort_by_key(|(at_us, _)| *at_us);
    let mut kept: BTreeSet<End> = BTreeSet::new();
    let mut more = BTreeSet::new();
    for (_, at) in order {
        if kept.len() < max_lanes || kept.contains(at) {
            kept.insert(at.clone());
        } else {
            more.insert(at.clone());
        }
    }
    if more.is_empty() {
        return;
    }
    let before = arrows.len();
    arrows.retain(|arrow| kept.contains(&arrow.from) && kept.contains(&arrow.to));
    marks.retain(|mark| kept.contains(&mark.at));
    left_out.push(format!(
        "{} more lanes and the {} messages that touch them (at most {max_lanes} lanes are drawn; choose machines or nodes)",
        more.len(),
        before - arrows.len()
    ));
}

/// The time span to draw: the window if it was given, else what the arrows and marks cover
/// (the whole trace if there are none).
fn span(arrows: &[Arrow], marks: &[Mark], records: &[Record], window: (u64, u64)) -> (u64, u64) {
    let times = arrows
        .iter()
        .flat_map(|arrow| [arrow.sent_us, arrow.arrived_us])
        .chain(marks.iter().map(|mark| mark.at_us));
    let (mut from, mut to) = times.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if from > to {
        from = records.first().map_or(0, |r| r.at_us);
        to = records.last().map_or(0, |r| r.at_us);
    }
    if window.0 > 0 {
        from = window.0;
    }
    if window.1 < u64::MAX {
        to = window.1;
    }
    (from, to.max(from + 1000))
}

/// The fault windows of `records` that overlap `span_us`.
fn shades(records: &[Record], span_us: (u64, u64)) -> Vec<Shade> {
    let mut open: BTreeMap<(String, usize), (u64, FaultWindow)> = BTreeMap::new();
    let mut shades = Vec::new();
    for record in records {
        let Some(window) = &record.window else {
            continue;
        };
        let key = (window.fault.clone(), window.index);
        match record.kind {
            RecordKind::FaultStart => {
                open.insert(key, (record.at_us, FaultWindow::clone(window)));
            }
            RecordKind::FaultEnd => {
                if let Some((from_us, window)) = open.remove(&key) {
                    shades.push(Shade {
                        window,
                        from_us,
                        to_us: record.at_us,
                    });
                }
            }
            _ => {}
        }
    }
    let end_us = records.last().map_or(span_us.1, |r| r.at_us.max(span_us.1));
    shades.extend(open.into_values().map(|(from_us, window)| Shade {
        window,
        from_us,
        to_us: end_us,
    }));
    shades.retain(|shade| shade.to_us >= span_us.0 && shade.from_us <= span_us.1);
    shades.sort_by_key(|shade| {
        (
            shade.from_us,
            shade.window.fault.clone(),
            shade.window.index,
        )
    });
    shades
}

/// The lanes: every end of what is drawn, grouped by machine, the machine's runtime lane
/// first, then its nodes in the order they started.
fn lanes(records: &[Record], arrows: &[Arrow], marks: &[Mark]) -> Vec<(End, Option<String>)> {
    let mut started: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for record in records {
        if record.kind == RecordKind::Spawn {
            if let Some(node) = &record.node {
                started
                    .entry(node.to_string())
                    .or_insert((record.id, record.summary.clone().unwrap_or_default()));
            }
        }
    }
    let ends: BTreeSet<End> = arrows
        .iter()
        .flat_map(|arrow| [arrow.from.clone(), arrow.to.clone()])
        .chain(marks.iter().map(|mark| mark.at.clone()))
        .collect();
    let mut lanes: Vec<(End, Option<String>)> = ends
        .into_iter()
        .map(|at| {
            let node_type = at
                .node
                .as_ref()
                .and_then(|node| started.get(node))
                .map(|(_, node_type)| node_type.clone());
            (at, node_type)
        })
        .collect();
    lanes.sort_by_key(|(at, _)| {
        let order = at
            .node
            .as_ref()
            .map(|node| started.get(node).map_or(u64::MAX, |(id, _)| *id));
        (at.machine, order.is_some(), order)
    });
    lanes
}

/// The events a failing run's diagram explains by default: the failures of nodes if any;
/// otherwise every message lost for good (lost, and its packet never delivered by another copy)
/// and every message still on its way when the run ended.
pub fn failure_targets(records: &[Record]) -> Vec<u64> {
    let failures: Vec<u64> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Fail)
        .map(|r| r.id)
        .collect();
    if !failures.is_empty() {
        return failures;
    }
    let mut arrived_packets = BTreeSet::new();
    let mut arrived_copies = BTreeSet::new();
    for record in records {
        let arrival = matches!(
            record.kind,
            RecordKind::Deliver | RecordKind::Spawn | RecordKind::Terminate
        );
        if arrival {
            if let (Some(peer), Some(seq)) = (record.peer_machine, record.seq) {
                arrived_packets.insert((peer, record.machine, seq));
            }
            if let Some(cause) = record.cause {
                arrived_copies.insert(cause);
            }
        }
    }
    let delivered_later = |record: &Record| match (record.peer_machine, record.seq) {
        (Some(peer), Some(seq)) => arrived_packets.contains(&(record.machine, peer, seq)),
        _ => false,
    };
    records
        .iter()
        .filter(|r| r.message_type.as_deref() != Some("ack"))
        .filter(|r| match r.kind {
            RecordKind::Drop => !delivered_later(r),
            RecordKind::Send => !arrived_copies.contains(&r.id) && !delivered_later(r),
            _ => false,
        })
        .map(|r| r.id)
        .collect()
}
