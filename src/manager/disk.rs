//! What a machine keeps across a crash: its [`Disk`].
//!
//! A crash is a power cut: everything in memory is gone. What survives is what was written to
//! disk synchronously, before the machine went on: every node's config (written when the node was
//! created, removed when it terminated), what each node last persisted through its controller,
//! how far the machine had delivered each peer's stream, the spawns and terminations it had sent
//! and not had acknowledged (the runtime promised those nodes), the next node serial, and how
//! many times the machine has booted. Node messages sent and not acknowledged are not on it:
//! they are lost with the machine, and a node that must not lose them says so again when it
//! recovers. The simulator takes this image when the machine crashes (its events
//! are atomic, so that is the same as writing it after every event); a machine process writes it
//! after every event that changed it.

use serde::{Deserialize, Serialize};

use super::Envelope;
use crate::messages::{MachineId, NodeConfig, NodeId};
use crate::node::Persisted;

/// One node as its machine's disk holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNode {
    /// The node's id (the same after a restart, so every handle to it stays good).
    pub id: NodeId,
    /// The config it was created from.
    pub config: NodeConfig,
    /// What it last persisted, if it ever did.
    pub persisted: Option<Persisted>,
}

/// How far a machine had delivered one peer's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The peer.
    pub peer: MachineId,
    /// The peer's incarnation whose stream this is.
    pub incarnation: u32,
    /// The next sequence number to deliver.
    pub next: u64,
}

/// Everything of a machine that survives a crash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// The incarnation that was running: 0 for the first boot, one more for each restart.
    pub(super) incarnation: u32,
    /// The next serial number a node id of this machine gets.
    pub(super) next_serial: u32,
    /// The machine's nodes, in the order they were created.
    pub(super) nodes: Vec<StoredNode>,
    /// How far each peer's stream was delivered.
    pub(super) cursors: Vec<Cursor>,
    /// Every machine this one had a link with (told of the reboot).
    pub(super) peers: Vec<MachineId>,
    /// Spawns and terminations sent and not acknowledged, sent again after the reboot.
    pub(super) outbox: Vec<(MachineId, Envelope)>,
}

impl Disk {
    /// The incarnation that was running when the image was taken.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The nodes on the disk, in creation order.
    pub fn nodes(&self) -> &[StoredNode] {
        &self.nodes
    }
}
