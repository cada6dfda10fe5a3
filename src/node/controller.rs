//! The one interface between a node and the world.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{NodeError, Persisted};
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};

/// Names a timer a node has set, so that it can cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerId(pub u64);

/// Everything a node may do to the world. The NodeManager is its single implementation, in every
/// mode; only the hardware under the manager differs.
pub trait MachineController {
    /// The handle of the node being driven.
    fn me(&self) -> NodeHandle;

    /// The machine this node runs on.
    fn machine(&self) -> MachineId;

    /// Milliseconds since the system started (virtual in the simulator, real elsewhere).
    fn now_ms(&self) -> u64;

    /// Sends `message` to the node `to`. Delivery is asynchronous.
    fn send(&mut self, to: NodeHandle, message: Message);

    /// Creates a node from `config` on `machine` and returns its handle at once; the node starts
    /// when the spawn reaches that machine. Fails if `config` names an unknown node type or does
    /// not fit it.
    fn spawn(&mut self, machine: MachineId, config: NodeConfig) -> Result<NodeHandle, NodeError>;

    /// Calls this node's [`Node::timer`](super::Node::timer) with `tag` after `after_ms`.
    fn set_timer(&mut self, after_ms: u64, tag: u64) -> TimerId;

    /// Cancels one of this node's timers. Cancelling a timer that already fired, or one that is
    /// not this node's (another node's, or the runtime's own), does nothing.
    fn cancel_timer(&mut self, timer: TimerId);

    /// This node's own random stream, reproducible from the system's seed, the node's id and
    /// its machine's incarnation: what other nodes draw does not change it.
    fn random(&mut self) -> &mut dyn RngCore;

    /// Terminates the node `node` (which may be the calling node itself).
    fn terminate(&mut self, node: NodeHandle);

    /// Writes `state` to this machine's disk as what this node persisted, replacing what it
    /// persisted before. It is written before anything the node does next leaves the machine
    /// (in the simulator, within the same event), and survives a crash; everything else the
    /// node holds does not. Untyped nodes persist JSON: `Persisted::new(value)`.
    fn persist(&mut self, state: Persisted);
}
