//! The structured trace: every event of a run as a [`Record`] (time, kind, machine, node, peer,
//! message type and summary, and the event that caused it), written as JSON lines. The
//! simulator records the whole system; in virtual mode each machine records itself and the
//! runner merges the machines' records by time ([`merge`]).
//!
//! Nothing is recorded unless a run asks for it: the hardware holds an `Option<Recorder>`.

pub mod gather;
mod history;
pub mod merge;
mod record;
mod recorder;

pub use history::{causal_history, failure_history};
pub use record::{
    read_complete_records, read_records, write_records, write_records_file, CompleteRecords,
    FaultWindow, Record, RecordError, RecordKind, TornLine,
};
pub use recorder::{Recorder, TimedWindow, Transmitted, SUMMARY_CHARS};
