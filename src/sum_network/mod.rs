//! The sum network, DistZero's first application: users join, each increments a counter, and
//! every user's output converges to the total of all increments.
//!
//! Topology, as in the original: an input list (an [`InputNode`] root with one [`InputLeafNode`]
//! kid per user, which plays back that user's [`RecordedUser`] actions), a [`SumNode`] that
//! batches increments and forwards them every 30 ms, and an output list (an [`OutputNode`] root
//! with one [`OutputLeafNode`] kid per user, whose state is that user's view of the total).

mod input;
mod output;
mod protocol;
mod recorded_user;
mod sum;

pub use input::{InputLeafNode, InputNode};
pub use output::{OutputLeafNode, OutputNode};
pub use protocol::SumMessage;
pub use recorded_user::{RecordedUser, RecordedUserError};
pub use sum::{SumNode, DEFAULT_SEND_INTERVAL_MS};

use crate::node::{NodeError, NodeRegistry};

/// Adds `amount` to a running total, as a node error rather than a panic or a wrap-around if the
/// total would leave the range of an `i64`.
fn add_to_total(total: i64, amount: i64) -> Result<i64, NodeError> {
    total.checked_add(amount).ok_or_else(|| {
        NodeError::Protocol(format!(
            "adding {amount} to the total {total} overflows a 64-bit integer"
        ))
    })
}

/// Registers the sum network's node types.
pub fn register(registry: &mut NodeRegistry) {
    registry.register(InputNode::TYPE, InputNode::from_config);
    registry.register(InputLeafNode::TYPE, InputLeafNode::from_config);
    registry.register(OutputNode::TYPE, OutputNode::from_config);
    registry.register(OutputLeafNode::TYPE, OutputLeafNode::from_config);
    registry.register(SumNode::TYPE, SumNode::from_config);
}
