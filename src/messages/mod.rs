//! Messages and handles: the serde types that travel between nodes and machines.
//!
//! Everything here is JSON on the wire. Every message is a JSON object with a `"type"` key; a
//! handle names a node (and the machine it lives on) or a machine, and can itself travel inside
//! messages.

mod handle;
mod message;

pub use handle::{MachineId, NodeHandle, NodeId, ParseNodeIdError};
pub use message::{Message, MessageError, NodeConfig};
