//! The messages of the sum network.

use serde::{Deserialize, Serialize};

use crate::messages::{MachineId, Message, NodeHandle};
use crate::node::NodeError;

use super::RecordedUser;

/// Every message the sum network's nodes exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SumMessage {
    /// Add `amount` to the total.
    Increment {
        /// How much (may be negative).
        amount: i64,
    },
    /// To a list root: create a kid (a leaf) for a user on `machine`.
    AddKid {
        /// Where the leaf runs.
        machine: MachineId,
        /// The user's name.
        user: String,
        /// For an input leaf: the actions it plays back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recording: Option<RecordedUser>,
    },
    /// `node` now sends to the receiver of this message.
    AddSender {
        /// The new sender.
        node: NodeHandle,
    },
    /// The receiver of this message should now also send to `node`.
    AddReceiver {
        /// The new receiver.
        node: NodeHandle,
    },
}

impl SumMessage {
    /// Encodes this message. Encoding these plain types cannot fail; the error is mapped anyway.
    pub fn to_message(&self) -> Result<Message, NodeError> {
        Ok(Message::encode(self)?)
    }
}
