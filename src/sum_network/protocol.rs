//! The messages of the sum network.

use serde::{Deserialize, Serialize};

use crate::messages::{MachineId, Message, MessageError, NodeHandle};
use crate::node::NodeError;

use super::RecordedUser;

/// Every message the sum network's nodes exchange.
///
/// Encoded with serde's internally tagged form; read with [`SumMessage::read`], which dispatches
/// on `"type"` first and then decodes plain fields (serde's generic decoding of internally tagged
/// enums buffers every message into an intermediate tree, which dominated the simulator's
/// profile).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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

#[derive(Deserialize)]
struct AmountFields {
    amount: i64,
}

#[derive(Deserialize)]
struct NodeFields {
    node: NodeHandle,
}

#[derive(Deserialize)]
struct KidFields {
    machine: MachineId,
    user: String,
    #[serde(default)]
    recording: Option<RecordedUser>,
}

impl SumMessage {
    /// Reads a sum-network message, naming its type and the problem if it is not one. The
    /// reading is shared by every receiver of the same message, except that of an `add_kid`:
    /// it has one receiver, and its recording is large, so a shared copy would only be kept
    /// alive (by the causal history) without being read again.
    pub fn read(message: &Message) -> Result<Self, MessageError> {
        if message.kind() == "add_kid" {
            return Self::parse(message);
        }
        message.decode_shared(Self::parse)
    }

    fn parse(message: &Message) -> Result<Self, MessageError> {
        Ok(match message.kind() {
            "increment" => {
                let AmountFields { amount } = message.decode()?;
                SumMessage::Increment { amount }
            }
            "add_kid" => {
                let KidFields {
                    machine,
                    user,
                    recording,
                } = message.decode()?;
                SumMessage::AddKid {
                    machine,
                    user,
                    recording,
                }
            }
            "add_sender" => SumMessage::AddSender {
                node: message.decode::<NodeFields>()?.node,
            },
            "add_receiver" => SumMessage::AddReceiver {
                node: message.decode::<NodeFields>()?.node,
            },
            other => {
                return Err(MessageError::Malformed {
                    kind: other.to_owned(),
                    reason: "not a sum-network message type".to_owned(),
                })
            }
        })
    }

    /// Encodes this message. Encoding these plain types cannot fail; the error is mapped anyway.
    pub fn to_message(&self) -> Result<Message, NodeError> {
        Ok(Message::encode(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::NodeId;

    #[test]
    fn simulated_every_sum_message_round_trips_through_the_wire_format() {
        let node = NodeHandle {
            id: NodeId {
                origin: 1,
                serial: 2,
            },
            machine: MachineId(3),
        };
        let recording = RecordedUser::new(
            "u",
            vec![(
                crate::time::Millis(5),
                SumMessage::Increment { amount: 2 }
                    .to_message()
                    .expect("encodes"),
            )],
        )
        .expect("ordered");
        for message in [
            SumMessage::Increment { amount: -4 },
            SumMessage::AddKid {
                machine: MachineId(2),
                user: "u".into(),
                recording: Some(recording),
            },
            SumMessage::AddKid {
                machine: MachineId(0),
                user: "v".into(),
                recording: None,
            },
            SumMessage::AddSender { node },
            SumMessage::AddReceiver { node },
        ] {
            let wire = message.to_message().expect("encodes").to_bytes();
            let back = Message::from_bytes(&wire).expect("parses");
            assert_eq!(SumMessage::read(&back), Ok(message));
        }
    }

    #[test]
    fn simulated_unknown_and_malformed_sum_messages_are_errors() {
        let unknown = Message::tagged("gossip", serde_json::Map::new());
        assert!(SumMessage::read(&unknown).is_err());
        let mut fields = serde_json::Map::new();
        fields.insert("amount".into(), "many".into());
        assert!(SumMessage::read(&Message::tagged("increment", fields)).is_err());
    }
}
