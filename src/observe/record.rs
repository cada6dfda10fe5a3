//! One event of a run as the structured trace writes it: a JSON object on a line of its own.

use std::io::{BufRead, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A machine put a message on the network (the first copy of it).
    Send,
    /// A packet arrived at its machine and was handed to the runtime there.
    Deliver,
    /// The network lost a transmission (the drop rule, or a partition: see `detail`).
    Drop,
    /// The network carried a second copy of a transmission.
    Duplicate,
    /// The reliable link layer sent a packet again.
    Retransmit,
    /// A timer fired on a machine.
    Timer,
    /// A node was created.
    Spawn,
    /// A node was removed.
    Terminate,
    /// A partition or a pause began.
    FaultStart,
    /// A partition or a pause ended.
    FaultEnd,
    /// A node raised an error; the run stopped there.
    Fail,
}

impl RecordKind {
    /// Whether the record is a transmission (it names a peer machine and leads to a delivery).
    pub fn is_transmission(self) -> bool {
        matches!(
            self,
            RecordKind::Send | RecordKind::Drop | RecordKind::Duplicate | RecordKind::Retransmit
        )
    }
}

/// A partition or pause, as fault window records carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// `partition` or `pause`.
    pub fault: String,
    /// Its index in the scenario's `network.partitions` or `network.pauses`.
    pub index: usize,
    /// The machines it cuts apart (one group for a pause: the paused machine).
    pub groups: Vec<Vec<u32>>,
}

/// One event of a run. Every field the pictures need: when, what, where, with whom, which
/// message, and the event that caused it. Names that recur (nodes, message types) are shared,
/// not copied, so that a trace of millions of events stays small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The event's number in the run, from 1, in time order.
    pub id: u64,
    /// When, in microseconds since the run started.
    pub at_us: u64,
    /// What happened.
    pub kind: RecordKind,
    /// The machine it happened on (the sending machine for a transmission).
    pub machine: u32,
    /// The node it happened to: the sender of a transmission, the receiver of a delivery, the
    /// node spawned or terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Arc<str>>,
    /// The other machine: the receiver of a transmission, the sender of a delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_machine: Option<u32>,
    /// The other node: the receiver of a transmission, the sender of a delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Arc<str>>,
    /// The message's `"type"` (or the runtime's own: `spawn`, `terminate`, `ack`, ...).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub message_type: Option<Arc<str>>,
    /// A short summary of the message (its JSON, cut), the spawned node's type, or an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The link layer's sequence number of the packet, if it travelled in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The event that caused this one: the transmission a delivery received, the delivery or
    /// timer during which a message was sent or a timer set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<u64>,
    /// More about a drop (`dropped` or `partition`) or a delivery (`duplicate copy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The window a fault record opens or closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Box<FaultWindow>>,
}

impl Record {
    /// A record of `kind` on `machine` at `at_us`, with every optional field empty.
    pub fn new(id: u64, at_us: u64, kind: RecordKind, machine: u32) -> Self {
        Record {
            id,
            at_us,
            kind,
            machine,
            node: None,
            peer_machine: None,
            peer: None,
            message_type: None,
            summary: None,
            seq: None,
            cause: None,
            detail: None,
            window: None,
        }
    }
}

/// A structured trace that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error("{path}, line {line}: not a trace record: {source}")]
    Json {
        /// The file.
        path: String,
        /// Its line number, from 1.
        line: usize,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
}

/// Writes `records` as JSON lines to `out`.
pub fn write_records(out: &mut impl Write, records: &[Record]) -> std::io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes `records` as JSON lines to the file at `path`.
pub fn write_records_file(path: &std::path::Path, records: &[Record]) -> Result<(), RecordError> {
    let io = |source| RecordError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    write_records(&mut out, records).map_err(io)?;
    out.flush().map_err(io)
}

/// Reads the records of a JSON-lines file (blank lines are skipped); `path` names it in errors.
pub fn read_records(input: impl BufRead, path: &str) -> Result<Vec<Record>, RecordError> {
    read_lines(input, path, false).map(|complete| complete.records)
}

/// The records of a trace its writer may have been killed while writing: every complete record,
/// and the torn last line, if there was one, dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct CompleteRecords {
    /// Every record of a whole line, in file order.
    pub records: Vec<Record>,
    /// The torn last line that was dropped: its number (from 1) and its length in bytes.
    pub torn: Option<TornLine>,
}

/// A last line cut short (no newline, and not a record as it stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornLine {
    /// Its number, from 1.
    pub line: usize,
    /// How many bytes of it were written.
    pub bytes: usize,
}

/// Reads the records of a JSON-lines trace whose writer may have died mid-write (a machine
/// killed while it recorded): as [`read_records`], except that a last line without its newline
/// that is not a record is dropped and said in [`CompleteRecords::torn`]. A bad line anywhere
/// else is an error, as is a last line with its newline that is not a record.
pub fn read_complete_records(
    input: impl BufRead,
    path: &str,
) -> Result<CompleteRecords, RecordError> {
    read_lines(input, path, true)
}

/// Reads a JSON-lines trace, every blank line skipped; with `torn_allowed`, a last line without
/// its newline that is not a record ends the trace instead of failing it.
fn read_lines(
    mut input: impl BufRead,
    path: &str,
    torn_allowed: bool,
) -> Result<CompleteRecords, RecordError> {
    let mut records = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|source| RecordError::Io {
                path: path.to_owned(),
                source,
            })?;
        if read == 0 {
            return Ok(CompleteRecords {
                records,
                torn: None,
            });
        }
        number += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice(text) {
            Ok(record) => records.push(record),
            Err(_) if torn_allowed && line.last() != Some(&b'\n') => {
                let torn = TornLine {
                    line: number,
                    bytes: line.len(),
                };
                return Ok(CompleteRecords {
                    records,
                    torn: Some(torn),
                });
            }
            Err(source) => {
                return Err(RecordError::Json {
                    path: path.to_owned(),
                    line: number,
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_a_torn_last_line_is_dropped_and_every_complete_record_kept() {
        let records: Vec<Record> = (1..=3)
            .map(|id| Record::new(id, id * 10, RecordKind::Send, 1))
            .collect();
        let mut out = Vec::new();
        write_records(&mut out, &records).expect("written");
        let whole = out.clone();
        let mut torn = whole.clone();
        let mut last = Vec::new();
        write_records(&mut last, &[Record::new(4, 40, RecordKind::Deliver, 1)]).expect("written");
        torn.extend_from_slice(&last[..last.len() / 2]);

        let read = read_complete_records(torn.as_slice(), "trace").expect("complete records");
        assert_eq!(read.records, records);
        let cut = read.torn.expect("the torn line is said");
        assert_eq!((cut.line, cut.bytes), (4, last.len() / 2));
        assert!(
            read_records(torn.as_slice(), "trace").is_err(),
            "the strict reader refuses the file"
        );

        let read = read_complete_records(whole.as_slice(), "trace").expect("whole file");
        assert_eq!((read.records, read.torn), (records.clone(), None));
        // A whole record that lacks only its newline is kept.
        let unterminated = &whole[..whole.len() - 1];
        let read = read_complete_records(unterminated, "trace").expect("read");
        assert_eq!((read.records, read.torn), (records, None));
    }

    #[test]
    fn virtual_a_bad_line_before_the_last_is_still_an_error() {
        let mut text = b"{not a record}\n".to_vec();
        write_records(&mut text, &[Record::new(1, 10, RecordKind::Send, 0)]).expect("written");
        let error = read_complete_records(text.as_slice(), "trace").expect_err("corrupt");
        assert!(error.to_string().contains("line 1"), "{error}");
        let error = read_complete_records(&b"{not a record}\n"[..], "trace").expect_err("bad");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn simulated_records_survive_a_round_trip_through_json_lines() {
        let mut send = Record::new(1, 20, RecordKind::Send, 0);
        send.node = Some("n0.1".into());
        send.peer_machine = Some(1);
        send.message_type = Some("increment".into());
        let mut deliver = Record::new(2, 20_500, RecordKind::Deliver, 1);
        deliver.cause = Some(1);
        let mut out = Vec::new();
        write_records(&mut out, &[send.clone(), deliver.clone()]).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains(r#""kind":"send""#), "{text}");
        assert!(text.contains(r#""type":"increment""#), "{text}");
        let back = read_records(text.as_bytes(), "trace").expect("read");
        assert_eq!(back, vec![send, deliver]);
    }

    #[test]
    fn simulated_a_line_that_is_not_a_record_is_named_by_its_number() {
        let text = "{\"id\":1,\"at_us\":0,\"kind\":\"timer\",\"machine\":0}\n\nnot json\n";
        let error = read_records(text.as_bytes(), "t.jsonl").expect_err("line 3 is bad");
        assert!(error.to_string().starts_with("t.jsonl, line 3:"), "{error}");
    }
}
