//! Turns what a machine's hardware does — envelopes arriving, transmissions and what the network
//! did to them, timers, spawns, failures — into [`Record`]s, each linked to the event that
//! caused it. The simulator keeps one recorder for the whole system; a machine process keeps one
//! for itself.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::record::{FaultWindow, Record, RecordKind};
use crate::manager::Envelope;
use crate::messages::{MachineId, NodeId};
use crate::node::TimerId;

/// How many characters of a message's JSON a record keeps as its summary.
pub const SUMMARY_CHARS: usize = 96;

/// Records per chunk (see `Recorder::chunks`).
const CHUNK: usize = 1 << 14;

/// What the network did with one transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transmitted {
    /// It is on its way.
    Sent,
    /// The drop rule lost it.
    Dropped,
    /// A partition cut it off.
    Partitioned,
}

/// A partition or pause and when it starts and ends, in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedWindow {
    /// When it starts.
    pub from_us: u64,
    /// When it ends.
    pub to_us: u64,
    /// What it is.
    pub window: FaultWindow,
}

/// Builds the structured trace of a machine or of a whole simulated system.
pub struct Recorder {
    /// Full chunks of records, then the one being filled: a long run's records are never
    /// copied to grow one vector, only once into the vector [`Recorder::take`] returns.
    chunks: Vec<Vec<Record>>,
    records: Vec<Record>,
    /// Ids handed out so far (records already taken keep their ids).
    last_id: u64,
    /// Per link (from, to): the next sequence number never sent before, to tell a first
    /// transmission from a retransmission. Looked up only, never iterated.
    fresh_seq: FxHashMap<(u32, u32), u64>,
    /// The event during which each pending timer was set. Looked up only, never iterated.
    timer_causes: FxHashMap<TimerId, u64>,
    /// Fault window boundaries not written yet, latest first: (time, starts, window).
    boundaries: Vec<(u64, bool, FaultWindow)>,
    /// The latest arrival and the node it reached: what a spawn or terminate sent while
    /// handling it came from (their envelopes do not name the node that asked for them).
    handling: Option<(u64, Option<Arc<str>>)>,
    /// Every node's name, made once. Looked up only, never iterated.
    node_names: FxHashMap<NodeId, Arc<str>>,
    /// Every message type's name, made once. Looked up only, never iterated.
    type_names: FxHashMap<Box<str>, Arc<str>>,
}

impl Recorder {
    /// A recorder that also writes the start and end of every window in `windows` when its time
    /// comes.
    pub fn new(windows: Vec<TimedWindow>) -> Self {
        let mut boundaries: Vec<(u64, bool, FaultWindow)> = windows
            .into_iter()
            .flat_map(|timed| {
                [
                    (timed.from_us, true, timed.window.clone()),
                    (timed.to_us, false, timed.window),
                ]
            })
            .collect();
        // Latest first, so the next one due is popped from the end; at equal times an end
        // comes before a start, and windows keep their scenario order.
        boundaries.sort_by(|a, b| {
            (b.0, b.1, b.2.fault.as_str(), b.2.index).cmp(&(
                a.0,
                a.1,
                a.2.fault.as_str(),
                a.2.index,
            ))
        });
        Recorder {
            chunks: Vec::new(),
            records: Vec::new(),
            last_id: 0,
            fresh_seq: FxHashMap::default(),
            timer_causes: FxHashMap::default(),
            boundaries,
            handling: None,
            node_names: FxHashMap::default(),
            type_names: FxHashMap::default(),
        }
    }

    /// The same recorder, numbering its records after `last_id` (a machine that rebooted goes
    /// on with the trace its earlier incarnation wrote).
    pub fn numbered_after(mut self, last_id: u64) -> Self {
        self.last_id = last_id;
        self
    }

    /// Takes the records made so far (ids keep counting on).
    pub fn take(&mut self) -> Vec<Record> {
        if self.chunks.is_empty() {
            return std::mem::take(&mut self.records);
        }
        let total = self.chunks.iter().map(Vec::len).sum::<usize>() + self.records.len();
        let mut all = Vec::with_capacity(total);
        for chunk in self.chunks.drain(..) {
            all.extend(chunk);
        }
        all.append(&mut self.records);
        all
    }

    /// Writes the window boundaries due by `at_us` and takes every record.
    pub fn finish(&mut self, at_us: u64) -> Vec<Record> {
        self.windows_until(at_us);
        self.take()
    }

    fn windows_until(&mut self, at_us: u64) {
        while self.boundaries.last().is_some_and(|(t, _, _)| *t <= at_us) {
            let Some((t, starts, window)) = self.boundaries.pop() else {
                break;
            };
            let kind = if starts {
                RecordKind::FaultStart
            } else {
                RecordKind::FaultEnd
            };
            let machine = window.groups.first().and_then(|g| g.first()).copied();
            let mut record = Record::new(0, t, kind, machine.unwrap_or(0));
            record.detail = Some(window.fault.clone());
            record.window = Some(Box::new(window));
            self.push(record);
        }
    }

    fn push(&mut self, mut record: Record) -> u64 {
        if record.kind != RecordKind::FaultStart && record.kind != RecordKind::FaultEnd {
            self.windows_until(record.at_us);
        }
        self.last_id += 1;
        record.id = self.last_id;
        if self.records.len() == CHUNK {
            let full = std::mem::replace(&mut self.records, Vec::with_capacity(CHUNK));
            self.chunks.push(full);
        }
        self.records.push(record);
        self.last_id
    }

    /// `envelope` from machine `from` reached machine `to` at `at_us`; `cause` is the
    /// transmission it came from, if known. Returns the record's id.
    pub fn arrival(
        &mut self,
        at_us: u64,
        from: MachineId,
        to: MachineId,
        envelope: &Envelope,
        cause: Option<u64>,
    ) -> u64 {
        let mut record = Record::new(0, at_us, RecordKind::Deliver, to.0);
        record.peer_machine = Some(from.0);
        record.cause = cause;
        self.describe(&mut record, envelope, false);
        if let Some(Envelope::Spawn { .. }) = envelope.payload() {
            record.kind = RecordKind::Spawn;
        }
        if let Some(Envelope::Terminate { .. }) = envelope.payload() {
            record.kind = RecordKind::Terminate;
        }
        let node = record.node.clone();
        let id = self.push(record);
        self.handling = Some((id, node));
        id
    }

    /// Machine `from` sent `envelope` to machine `to` at `at_us` while handling event `cause`,
    /// and the network did `what` with it. Returns the record's id.
    pub fn transmission(
        &mut self,
        at_us: u64,
        from: MachineId,
        to: MachineId,
        envelope: &Envelope,
        what: Transmitted,
        cause: Option<u64>,
    ) -> u64 {
        let again = match envelope {
            Envelope::Sequenced { seq, .. } => {
                let fresh = self.fresh_seq.entry((from.0, to.0)).or_insert(0);
                let again = *seq < *fresh;
                *fresh = (*fresh).max(seq.saturating_add(1));
                again
            }
            _ => false,
        };
        let kind = match what {
            Transmitted::Sent if again => RecordKind::Retransmit,
            Transmitted::Sent => RecordKind::Send,
            Transmitted::Dropped | Transmitted::Partitioned => RecordKind::Drop,
        };
        let mut record = Record::new(0, at_us, kind, from.0);
        record.peer_machine = Some(to.0);
        record.cause = cause;
        self.describe(&mut record, envelope, true);
        if let (None, Some((id, node))) = (&record.node, &self.handling) {
            if cause == Some(*id) {
                record.node = node.clone();
            }
        }
        record.detail = match what {
            Transmitted::Sent => None,
            Transmitted::Dropped if again => Some("dropped retransmission".into()),
            Transmitted::Dropped => Some("dropped".into()),
            Transmitted::Partitioned if again => Some("partition, retransmission".into()),
            Transmitted::Partitioned => Some("partition".into()),
        };
        self.push(record)
    }

    /// The network carries a second copy of transmission `original` (which it just recorded).
    pub fn duplicate(&mut self, original: u64) -> u64 {
        let Some(mut record) = self
            .records
            .iter()
            .rev()
            .find(|r| r.id == original)
            .cloned()
        else {
            return 0;
        };
        record.kind = RecordKind::Duplicate;
        record.cause = Some(original);
        record.detail = Some("second copy".into());
        self.push(record)
    }

    /// Timer `timer` was set while handling event `cause`.
    pub fn timer_set(&mut self, timer: TimerId, cause: Option<u64>) {
        if let Some(cause) = cause {
            self.timer_causes.insert(timer, cause);
        }
    }

    /// Timer `timer` fired on `machine` at `at_us`. Returns the record's id.
    pub fn timer(&mut self, at_us: u64, machine: MachineId, timer: TimerId) -> u64 {
        let mut record = Record::new(0, at_us, RecordKind::Timer, machine.0);
        record.cause = self.timer_causes.remove(&timer);
        record.summary = Some(format!("timer {}", timer.0));
        self.push(record)
    }

    /// Node `node` of type `node_type` was started on `machine` from outside the system.
    pub fn spawn(&mut self, at_us: u64, machine: MachineId, node: NodeId, node_type: &str) -> u64 {
        let mut record = Record::new(0, at_us, RecordKind::Spawn, machine.0);
        record.node = Some(self.node_name(node));
        record.message_type = Some(self.type_name("spawn"));
        record.summary = Some(node_type.to_owned());
        self.push(record)
    }

    /// Node `node` on `machine` failed with `error` while handling event `cause`.
    pub fn failure(
        &mut self,
        at_us: u64,
        machine: MachineId,
        node: NodeId,
        error: &str,
        cause: Option<u64>,
    ) -> u64 {
        let mut record = Record::new(0, at_us, RecordKind::Fail, machine.0);
        record.node = Some(self.node_name(node));
        record.summary = Some(cut(error));
        record.cause = cause;
        self.push(record)
    }

    fn node_name(&mut self, node: NodeId) -> Arc<str> {
        Arc::clone(
            self.node_names
                .entry(node)
                .or_insert_with(|| Arc::from(node.to_string())),
        )
    }

    fn type_name(&mut self, kind: &str) -> Arc<str> {
        if let Some(name) = self.type_names.get(kind) {
            return Arc::clone(name);
        }
        let name: Arc<str> = Arc::from(kind);
        self.type_names.insert(kind.into(), Arc::clone(&name));
        name
    }

    /// Fills in a record's nodes, message type, summary and sequence number from `envelope`;
    /// `sending` says whether the record's own node is the sender (a transmission) or the
    /// receiver.
    fn describe(&mut self, record: &mut Record, envelope: &Envelope, sending: bool) {
        if let Envelope::Sequenced { seq, .. } = envelope {
            record.seq = Some(*seq);
        }
        record.message_type = Some(self.type_name(envelope.kind()));
        let (sender, receiver) = match envelope.payload() {
            Some(Envelope::Deliver { from, to, message }) => {
                record.summary = Some(cut(message.as_json()));
                (from.map(|handle| handle.id), Some(*to))
            }
            Some(Envelope::Spawn { id, config }) => {
                record.summary = Some(config.kind().to_owned());
                (None, Some(*id))
            }
            Some(Envelope::Terminate { id }) => (None, Some(*id)),
            Some(Envelope::SpawnsSent { below, .. }) => {
                record.summary = Some(format!("spawns sent below {below}"));
                (None, None)
            }
            Some(_) => (None, None),
            None => {
                if let Envelope::Ack { upto, .. } = envelope {
                    record.summary = Some(format!("acknowledges below {upto}"));
                }
                (None, None)
            }
        };
        let (mine, theirs) = if sending {
            (sender, receiver)
        } else {
            (receiver, sender)
        };
        record.node = mine.map(|id| self.node_name(id));
        record.peer = theirs.map(|id| self.node_name(id));
    }
}

/// `text` cut to [`SUMMARY_CHARS`] characters, with `…` if it was longer.
fn cut(text: &str) -> String {
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;

    fn deliver(seq: u64) -> Envelope {
        Envelope::Sequenced {
            from: MachineId(0),
            incarnation: 0,
            seq,
            sent_us: 0,
            payload: Box::new(Envelope::Deliver {
                from: None,
                to: NodeId {
                    origin: 1,
                    serial: 2,
                },
                message: Message::tagged("ping", serde_json::Map::new()),
            }),
        }
    }

    #[test]
    fn simulated_a_packet_sent_again_is_a_retransmission() {
        let mut recorder = Recorder::new(Vec::new());
        let (m0, m1) = (MachineId(0), MachineId(1));
        recorder.transmission(10, m0, m1, &deliver(0), Transmitted::Dropped, None);
        recorder.transmission(20, m0, m1, &deliver(1), Transmitted::Sent, None);
        recorder.transmission(30, m0, m1, &deliver(0), Transmitted::Sent, None);
        let kinds: Vec<_> = recorder.take().iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [RecordKind::Drop, RecordKind::Send, RecordKind::Retransmit]
        );
    }

    #[test]
    fn simulated_fault_windows_are_written_in_time_order_between_events() {
        let window = |index| FaultWindow {
            fault: "pause".into(),
            index,
            groups: vec![vec![1]],
        };
        let mut recorder = Recorder::new(vec![
            TimedWindow {
                from_us: 50,
                to_us: 300,
                window: window(0),
            },
            TimedWindow {
                from_us: 100,
                to_us: 150,
                window: window(1),
            },
        ]);
        recorder.timer(120, MachineId(0), TimerId(1));
        let records = recorder.finish(1000);
        let shown: Vec<_> = records.iter().map(|r| (r.id, r.at_us, r.kind)).collect();
        assert_eq!(
            shown,
            [
                (1, 50, RecordKind::FaultStart),
                (2, 100, RecordKind::FaultStart),
                (3, 120, RecordKind::Timer),
                (4, 150, RecordKind::FaultEnd),
                (5, 300, RecordKind::FaultEnd),
            ]
        );
    }

    #[test]
    fn simulated_a_fired_timer_names_the_event_that_set_it() {
        let mut recorder = Recorder::new(Vec::new());
        let first = recorder.timer(0, MachineId(0), TimerId(7));
        recorder.timer_set(TimerId(8), Some(first));
        let second = recorder.timer(30, MachineId(0), TimerId(8));
        let records = recorder.take();
        assert_eq!(records[1].id, second);
        assert_eq!(records[1].cause, Some(first));
    }
}
