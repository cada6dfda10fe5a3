//! Why a system under test could not do what the test asked.

use crate::faults::NetworkConfigError;
use crate::hardware::HardwareError;

use super::checks::InvariantBroken;

/// Why a [`Sim`](super::Sim) could not be built or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The network model or fault plan cannot be simulated.
    #[error("invalid network: {0}")]
    Network(#[from] NetworkConfigError),
    /// The hardware or a node failed (a node's error carries the messages that led to it).
    #[error(transparent)]
    Hardware(#[from] HardwareError),
    /// A check registered with the builder did not hold.
    #[error(transparent)]
    Invariant(Box<InvariantBroken>),
    /// A node's state does not read back as its node type's `State`.
    #[error("node {node} ({node_type}): its state does not read back as its State type: {reason}")]
    UnreadableState {
        /// The node.
        node: String,
        /// Its type.
        node_type: String,
        /// What serde said.
        reason: String,
    },
    /// The handle names no node the system has (never spawned, terminated, or on a machine
    /// that is down).
    #[error("there is no node {0}")]
    NoSuchNode(String),
    /// A machine index beyond the system's machines.
    #[error("machine {machine} is out of range: the system has {machines} machines")]
    NoSuchMachine {
        /// The index asked for.
        machine: u32,
        /// How many machines there are.
        machines: u32,
    },
    /// Two node types were registered under one name.
    #[error(transparent)]
    DuplicateNodeType(#[from] crate::node::DuplicateNodeType),
    /// What a test sent or spawned could not be encoded.
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// The system was not settled by the time given.
    #[error(
        "not settled after {waited_ms} ms: {in_flight} transmissions still in flight, \
         {delivered_lately} messages delivered in the last 10 ms{}",
        down_note(down)
    )]
    NotSettled {
        /// How long the run went on.
        waited_ms: u64,
        /// What was still in flight.
        in_flight: u64,
        /// Messages delivered in the last 10 ms (a system that is still talking is not settled,
        /// even with nothing in flight at the moment).
        delivered_lately: u64,
        /// The machines that were down (their peers keep retrying until they are back).
        down: Vec<u32>,
    },
}

impl From<InvariantBroken> for SystemError {
    fn from(broken: InvariantBroken) -> Self {
        SystemError::Invariant(Box::new(broken))
    }
}

fn down_note(down: &[u32]) -> String {
    if down.is_empty() {
        return String::new();
    }
    let names: Vec<String> = down.iter().map(|m| format!("m{m}")).collect();
    format!("; down and never back: {}", names.join(", "))
}
