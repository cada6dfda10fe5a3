//! The event trace of a simulated run: always its hash, optionally its full text.

use std::fmt::Write;

use xxhash_rust::xxh3::Xxh3;

use crate::manager::Envelope;
use crate::messages::{MachineId, NodeId};
use crate::node::TimerId;
use crate::time::Micros;

/// Stands for "no node" in a hashed trace record.
const NO_NODE: NodeId = NodeId {
    origin: u32::MAX,
    serial: u32::MAX,
};

/// Every event of a run — times, machines, nodes, sequence numbers and each message's full JSON
/// (as the message's own XXH3 digest of it, see [`Message::digest`](crate::messages::Message::digest))
/// — folded into an XXH3 hash (a fixed, portable algorithm) and, when asked for, written out one
/// line per event. Two runs with the same seed and binary have the same hash
/// and byte-identical text.
pub struct Trace {
    hasher: Xxh3,
    text: Option<String>,
}

impl Trace {
    /// An empty trace; `keep_text` keeps the lines too.
    pub fn new(keep_text: bool) -> Self {
        Trace {
            hasher: Xxh3::new(),
            text: keep_text.then(String::new),
        }
    }

    /// The hash of every event so far, as 16 hex digits.
    pub fn hash(&self) -> String {
        format!("{:016x}", self.hasher.digest())
    }

    /// The trace text, if it was kept.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    pub(super) fn arrive(
        &mut self,
        at_us: Micros,
        from: MachineId,
        to: MachineId,
        envelope: &Envelope,
    ) {
        let (code, node, seq) = match envelope {
            Envelope::Deliver { to: id, .. } => (1u8, *id, 0),
            Envelope::Spawn { id, .. } => (2, *id, 0),
            Envelope::Terminate { id } => (3, *id, 0),
            Envelope::AskSpawns { .. } => (8, NO_NODE, 0),
            Envelope::SpawnsSent { below, .. } => (9, NO_NODE, u64::from(*below)),
            Envelope::Sequenced { payload, seq, .. } => match payload.payload() {
                Some(
                    Envelope::Deliver { to: id, .. }
                    | Envelope::Spawn { id, .. }
                    | Envelope::Terminate { id },
                ) => (6, *id, *seq),
                _ => (6, NO_NODE, *seq),
            },
            Envelope::Ack { upto, .. } => (7, NO_NODE, *upto),
            Envelope::Rebooted { incarnation, .. } => (10, NO_NODE, u64::from(*incarnation)),
        };
        let kind = envelope.kind();
        let payload = envelope.payload();
        self.fold(at_us, code, from.0, to.0, node);
        self.hasher.update(&seq.to_le_bytes());
        // Incarnations are folded in only once a machine has rebooted, so that the trace of a run
        // without crashes is what it always was.
        let incarnations = match envelope {
            Envelope::Sequenced { incarnation, .. } => [*incarnation, 0],
            Envelope::Ack {
                incarnation,
                session,
                ..
            } => [*incarnation, *session],
            _ => [0, 0],
        };
        if incarnations != [0, 0] {
            self.hasher.update(&incarnations[0].to_le_bytes());
            self.hasher.update(&incarnations[1].to_le_bytes());
        }
        self.hasher.update(kind.as_bytes());
        // A message's text is folded in as its digest, computed once per message however many
        // receivers a broadcast has.
        match payload {
            Some(Envelope::Deliver { message, .. }) => {
                self.hasher.update(&message.digest().to_le_bytes())
            }
            Some(Envelope::Spawn { config, .. }) => {
                self.hasher.update(&config.digest().to_le_bytes())
            }
            _ => {}
        }
        if let Some(text) = &mut self.text {
            let at_us = at_us.0;
            let _ = match payload {
                Some(Envelope::Deliver {
                    from: sender,
                    message,
                    ..
                }) => {
                    let sender =
                        sender.map_or_else(|| String::from("outside"), |h| h.id.to_string());
                    writeln!(
                        text,
                        "{at_us} {from}->{to} #{seq} deliver {sender} --{kind}--> {node} {}",
                        message.as_json()
                    )
                }
                Some(Envelope::Spawn { .. }) => {
                    writeln!(text, "{at_us} {from}->{to} #{seq} spawn {node} {kind}")
                }
                Some(Envelope::Terminate { .. }) => {
                    writeln!(text, "{at_us} {from}->{to} #{seq} terminate {node}")
                }
                Some(Envelope::SpawnsSent { below, .. }) => {
                    writeln!(
                        text,
                        "{at_us} {from}->{to} #{seq} spawns sent below {below}"
                    )
                }
                Some(_) => writeln!(text, "{at_us} {from}->{to} #{seq} {kind}"),
                None if code == 10 => {
                    writeln!(text, "{at_us} {from}->{to} rebooted as incarnation {seq}")
                }
                None => writeln!(text, "{at_us} {from}->{to} ack below {seq}"),
            };
        }
    }

    pub(super) fn wake(&mut self, at_us: Micros, machine: MachineId, timer: TimerId) {
        self.fold(
            at_us,
            4,
            machine.0,
            machine.0,
            NodeId {
                origin: 0,
                serial: 0,
            },
        );
        self.hasher.update(&timer.0.to_le_bytes());
        if let Some(text) = &mut self.text {
            let at_us = at_us.0;
            let _ = writeln!(text, "{at_us} {machine} timer {}", timer.0);
        }
    }

    pub(super) fn spawn(&mut self, at_us: Micros, machine: MachineId, node: NodeId, kind: &str) {
        self.fold(at_us, 5, machine.0, machine.0, node);
        self.hasher.update(kind.as_bytes());
        if let Some(text) = &mut self.text {
            let at_us = at_us.0;
            let _ = writeln!(text, "{at_us} {machine} start {node} {kind}");
        }
    }

    /// A fault verb applied at `at_us`.
    pub(super) fn fault(&mut self, at_us: Micros, fault: &crate::faults::Fault) {
        let shown = fault.to_string();
        self.fold(
            at_us,
            6,
            0,
            0,
            NodeId {
                origin: 0,
                serial: 0,
            },
        );
        self.hasher.update(shown.as_bytes());
        if let Some(text) = &mut self.text {
            let at_us = at_us.0;
            let _ = writeln!(text, "{at_us} fault {shown}");
        }
    }

    fn fold(&mut self, at_us: Micros, code: u8, from: u32, to: u32, node: NodeId) {
        let mut bytes = [0u8; 25];
        bytes[..8].copy_from_slice(&at_us.0.to_le_bytes());
        bytes[8] = code;
        bytes[9..13].copy_from_slice(&from.to_le_bytes());
        bytes[13..17].copy_from_slice(&to.to_le_bytes());
        bytes[17..21].copy_from_slice(&node.origin.to_le_bytes());
        bytes[21..25].copy_from_slice(&node.serial.to_le_bytes());
        self.hasher.update(&bytes);
    }
}
