//! A machine's structured trace: the same records the simulator writes, for this machine alone,
//! timed by the host's clock (which every container of a run shares) and written as JSON lines
//! to `trace.jsonl` in the machine's log directory. The runner merges the machines' files by
//! time ([`merge`](crate::observe::merge::merge)).

use crate::observe::merge::host_now_us;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::manager::{Envelope, NodeFailure};
use crate::messages::{MachineId, NodeId};
use crate::node::TimerId;
use crate::observe::{read_complete_records, write_records, Recorder, Transmitted};

/// The name of a machine's structured trace in its log directory.
pub const TRACE_FILE: &str = "trace.jsonl";

/// Records what one machine does and writes it out as it goes.
pub(crate) struct MachineRecorder {
    machine: MachineId,
    recorder: Recorder,
    out: BufWriter<File>,
    /// Where `out` writes.
    path: PathBuf,
    /// The record of the event being handled.
    current: Option<u64>,
    /// The records of envelopes this machine sent itself, in the order they wait.
    local: VecDeque<u64>,
}

impl MachineRecorder {
    /// A recorder for `machine` writing into `log_dir`.
    pub(crate) fn create(machine: MachineId, log_dir: &Path) -> std::io::Result<Self> {
        let path = log_dir.join(TRACE_FILE);
        let out = BufWriter::new(File::create(&path)?);
        Ok(MachineRecorder {
            machine,
            recorder: Recorder::new(Vec::new()),
            out,
            path,
            current: None,
            local: VecDeque::new(),
        })
    }

    /// A recorder for `machine` that rebooted: it goes on with the trace its earlier
    /// incarnation wrote into `log_dir` (a torn last line, the kill's, is cut off), numbering
    /// its records after the last one there.
    pub(crate) fn resume(machine: MachineId, log_dir: &Path) -> std::io::Result<Self> {
        let path = log_dir.join(TRACE_FILE);
        let written = std::fs::read(&path).unwrap_or_default();
        let whole = written
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |newline| newline + 1);
        let last_id = read_complete_records(&written[..whole], &path.display().to_string())
            .map(|complete| complete.records.iter().map(|record| record.id).max())
            .ok()
            .flatten()
            .unwrap_or(0);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.set_len(whole as u64)?;
        file.seek(SeekFrom::End(0))?;
        Ok(MachineRecorder {
            machine,
            recorder: Recorder::new(Vec::new()).numbered_after(last_id),
            out: BufWriter::new(file),
            path,
            current: None,
            local: VecDeque::new(),
        })
    }

    /// `envelope` arrived from `from` (this machine itself, another, or outside the system when
    /// `None`).
    pub(crate) fn arrival(&mut self, from: Option<MachineId>, envelope: &Envelope) {
        let me = self.machine;
        let cause = if from == Some(me) {
            self.local.pop_front()
        } else {
            None
        };
        self.current =
            Some(
                self.recorder
                    .arrival(host_now_us(), from.unwrap_or(me), me, envelope, cause),
            );
    }

    /// Timer `timer` fired.
    pub(crate) fn timer(&mut self, timer: TimerId) {
        self.current = Some(self.recorder.timer(host_now_us(), self.machine, timer));
    }

    /// Node `node` of type `node_type` was started from outside.
    pub(crate) fn spawn(&mut self, node: NodeId, node_type: &str) {
        self.current = Some(
            self.recorder
                .spawn(host_now_us(), self.machine, node, node_type),
        );
    }

    /// This machine put `copies` copies of `envelope` on the way to `to`.
    pub(crate) fn transmission(&mut self, to: MachineId, envelope: &Envelope, copies: usize) {
        let what = if copies == 0 {
            Transmitted::Dropped
        } else {
            Transmitted::Sent
        };
        let first = self.recorder.transmission(
            host_now_us(),
            self.machine,
            to,
            envelope,
            what,
            self.current,
        );
        if to == self.machine {
            self.local.push_back(first);
        } else if copies > 1 {
            self.recorder.duplicate(first);
        }
    }

    /// A timer was set while handling the current event.
    pub(crate) fn timer_set(&mut self, timer: TimerId) {
        self.recorder.timer_set(timer, self.current);
    }

    /// A node failed while handling the current event.
    pub(crate) fn failure(&mut self, failure: &NodeFailure) {
        let node = failure.node.id;
        self.recorder.failure(
            host_now_us(),
            self.machine,
            node,
            &failure.message,
            self.current,
        );
    }

    /// Writes out what was recorded since the last call, and hands it to the operating system:
    /// a machine killed afterwards (SIGKILL, `docker kill`) keeps those records in its file,
    /// and one killed during the write leaves at most a torn last line, which the runner drops.
    pub(crate) fn write(&mut self) {
        let records = self.recorder.take();
        if records.is_empty() {
            return;
        }
        if let Err(error) = write_records(&mut self.out, &records).and_then(|()| self.out.flush()) {
            tracing::warn!(%error, "cannot write the structured trace");
        }
    }

    /// Whole lines of the trace from byte `offset` on, at most `max` bytes (everything recorded
    /// so far is written out first), and whether they reach its end.
    pub(crate) fn read(&mut self, offset: u64, max: usize) -> std::io::Result<(String, bool)> {
        self.flush();
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.take(max as u64 + 1).read_to_end(&mut bytes)?;
        let end = bytes.len() <= max;
        if !end {
            let whole = bytes.iter().rposition(|b| *b == b'\n').ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a trace line is too long")
            })?;
            bytes.truncate(whole + 1);
        }
        let text = String::from_utf8(bytes)
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?;
        Ok((text, end))
    }

    /// Writes out everything and flushes the file.
    pub(crate) fn flush(&mut self) {
        self.write();
        if let Err(error) = self.out.flush() {
            tracing::warn!(%error, "cannot write the structured trace");
        }
    }
}
