//! Gathers the structured traces of a real run's machines (virtual mode: the files they wrote;
//! cloud mode: what they answer) into records, machine by machine, for [`merge`](super::merge).
//! A machine whose trace cannot be had is left out and named; the others' records are kept. A
//! machine killed while it wrote keeps every complete record: only its torn last line is dropped.

use std::fmt;

use serde::Serialize;

use super::{read_complete_records, Record, RecordError};
use crate::messages::MachineId;

/// Why a machine's records are missing from a run's merged trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceLoss {
    /// The machine could not be asked for its trace: it was lost (its container or instance is
    /// gone) or stopped answering.
    Lost,
    /// The machine answered but did not give its trace.
    Refused,
    /// Its trace file cannot be read (missing, or an I/O error).
    Unreadable,
    /// Its trace is not one: a line other than a torn last one is not a record.
    Malformed,
}

impl fmt::Display for TraceLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceLoss::Lost => "lost",
            TraceLoss::Refused => "refused",
            TraceLoss::Unreadable => "unreadable",
            TraceLoss::Malformed => "malformed",
        })
    }
}

/// A machine whose structured trace is missing from a run's report, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadableMachine {
    /// The machine.
    pub machine: MachineId,
    /// Why its trace is missing.
    pub why: TraceLoss,
    /// What went wrong, as the error said it.
    pub detail: String,
}

/// What one machine gave: its trace's bytes, or why there are none.
pub type MachineTrace = Result<Vec<u8>, (TraceLoss, String)>;

/// The records of every machine whose trace could be read, and the machines whose could not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gathered {
    /// Machine `i`'s records in entry `i` (none for a machine in `unreadable`).
    pub per_machine: Vec<Vec<Record>>,
    /// The machines left out, in machine order.
    pub unreadable: Vec<UnreadableMachine>,
}

/// Makes `traces` (machine `i`'s in entry `i`) into records: a machine whose trace is missing or
/// malformed is left out and named; a torn last line is dropped with a warning, keeping every
/// complete record before it.
pub fn gather(traces: Vec<MachineTrace>) -> Gathered {
    let mut gathered = Gathered::default();
    for (index, trace) in traces.into_iter().enumerate() {
        let machine = MachineId(u32::try_from(index).unwrap_or(u32::MAX));
        let read = trace.and_then(|bytes| {
            read_complete_records(bytes.as_slice(), &format!("the trace of {machine}")).map_err(
                |error| match error {
                    RecordError::Json { .. } => (TraceLoss::Malformed, error.to_string()),
                    RecordError::Io { .. } => (TraceLoss::Unreadable, error.to_string()),
                },
            )
        });
        match read {
            Ok(complete) => {
                if let Some(torn) = complete.torn {
                    tracing::warn!(
                        %machine,
                        line = torn.line,
                        bytes = torn.bytes,
                        kept = complete.records.len(),
                        "a machine's trace ends in a torn line (it was killed while writing): dropped it"
                    );
                }
                gathered.per_machine.push(complete.records);
            }
            Err((why, detail)) => {
                tracing::warn!(%machine, %why, %detail, "a machine's structured trace cannot be read");
                gathered.per_machine.push(Vec::new());
                gathered.unreadable.push(UnreadableMachine {
                    machine,
                    why,
                    detail,
                });
            }
        }
    }
    gathered
}

/// One line naming the machines whose records are missing, e.g. `the trace lacks the records
/// of machine m1 (m1: lost: machine m1 was lost: …)`, or `None` if none are.
pub fn unreadable_line(unreadable: &[UnreadableMachine]) -> Option<String> {
    if unreadable.is_empty() {
        return None;
    }
    let names: Vec<String> = unreadable
        .iter()
        .map(|missing| missing.machine.to_string())
        .collect();
    let reasons: Vec<String> = unreadable
        .iter()
        .map(|missing| format!("{}: {}: {}", missing.machine, missing.why, missing.detail))
        .collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    Some(format!(
        "the trace lacks the records of machine{plural} {} ({})",
        names.join(", "),
        reasons.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{write_records, RecordKind};

    fn trace(machine: u32, count: u64) -> Vec<u8> {
        let records: Vec<Record> = (1..=count)
            .map(|id| Record::new(id, id * 100, RecordKind::Timer, machine))
            .collect();
        let mut out = Vec::new();
        write_records(&mut out, &records).expect("written");
        out
    }

    #[test]
    fn cloud_a_machine_that_cannot_answer_leaves_the_others_records_and_is_named() {
        let lost = (
            TraceLoss::Lost,
            "machine m1 was lost: instance i-1 is terminated".to_owned(),
        );
        let gathered = gather(vec![Ok(trace(0, 2)), Err(lost), Ok(trace(2, 3))]);
        let counts: Vec<usize> = gathered.per_machine.iter().map(Vec::len).collect();
        assert_eq!(counts, [2, 0, 3]);
        assert_eq!(
            gathered.unreadable,
            [UnreadableMachine {
                machine: MachineId(1),
                why: TraceLoss::Lost,
                detail: "machine m1 was lost: instance i-1 is terminated".into(),
            }]
        );
        let line = unreadable_line(&gathered.unreadable).expect("a line");
        assert!(line.contains("machine m1 ("), "{line}");
        assert!(line.contains("m1: lost: machine m1 was lost"), "{line}");
        let json = serde_json::to_value(&gathered.unreadable).expect("encodes");
        assert_eq!(json[0]["machine"], 1);
        assert_eq!(json[0]["why"], "lost");
    }

    #[test]
    fn virtual_a_torn_tail_keeps_the_machine_and_a_malformed_trace_names_it() {
        let mut torn = trace(0, 3);
        torn.extend_from_slice(br#"{"id":4,"at_us":4"#);
        let mut malformed = b"garbage\n".to_vec();
        malformed.extend(trace(1, 1));
        let gathered = gather(vec![Ok(torn), Ok(malformed)]);
        assert_eq!(gathered.per_machine[0].len(), 3);
        assert!(gathered.per_machine[1].is_empty());
        let whys: Vec<_> = gathered
            .unreadable
            .iter()
            .map(|missing| (missing.machine, missing.why))
            .collect();
        assert_eq!(whys, [(MachineId(1), TraceLoss::Malformed)]);
        assert_eq!(unreadable_line(&[]), None);
    }
}
