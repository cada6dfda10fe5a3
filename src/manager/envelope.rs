//! What one NodeManager sends another.

use serde::{Deserialize, Serialize};

use crate::messages::{Message, NodeConfig, NodeHandle, NodeId};

/// A unit of work carried between machines (or from a machine to itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Envelope {
    /// Deliver `message` to node `to` on the receiving machine.
    Deliver {
        /// The sending node; `None` for messages from outside the system.
        from: Option<NodeHandle>,
        /// The receiving node.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Create node `id` from `config` on the receiving machine.
    Spawn {
        /// The id the spawning machine allocated.
        id: NodeId,
        /// The node's config.
        config: NodeConfig,
    },
    /// Remove node `id` from the receiving machine.
    Terminate {
        /// The node to remove.
        id: NodeId,
    },
}
