//! The messages of the sum network.

use std::borrow::Cow;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::input::InputLeafNode;
use super::output::OutputLeafNode;
use super::RecordedUser;
use crate::messages::MachineId;
use crate::node::Handle;

/// Every message the sum network's nodes exchange.
///
/// Encoded with serde's internally tagged form. Decoded by hand: dispatch on `"type"` first,
/// then read plain fields (serde's derived decoding of internally tagged enums buffers every
/// message into an intermediate tree, which dominated the simulator's profile).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SumMessage {
    /// `amount` was added: the sender's running total is now `total`. From an input leaf to a
    /// sum node, `total` is everything the leaf's user added; from a sum node to an output leaf,
    /// everything the sum node forwarded. The receiver keeps the latest `total` of each sender,
    /// so a message that arrives again after a crash changes nothing.
    Increment {
        /// How much was added (may be negative).
        amount: i64,
        /// The sender's running total, this amount included.
        total: i64,
    },
    /// To the input list's root: create an input leaf for a user on `machine`, playing back
    /// `recording`.
    AddInputKid {
        /// Where the leaf runs.
        machine: MachineId,
        /// What the user does.
        recording: RecordedUser,
    },
    /// To the output list's root: create an output leaf for user `user` on `machine`.
    AddOutputKid {
        /// Where the leaf runs.
        machine: MachineId,
        /// The user's name.
        user: String,
    },
    /// This input leaf now sends to the receiver of this message.
    AddSender {
        /// The new sender.
        node: Handle<InputLeafNode>,
    },
    /// The receiver of this message should now also send to this output leaf.
    AddReceiver {
        /// The new receiver.
        node: Handle<OutputLeafNode>,
    },
}

/// What a user does: the actions of a recording and of a scenario's users. Written
/// `{"type": "increment", "amount": 2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", from = "ActionFields")]
pub enum UserAction {
    /// Add `amount` to the total.
    Increment {
        /// How much (may be negative).
        amount: i64,
    },
}

/// How a [`UserAction`] is read: as plain fields (a recording holds thousands of actions, and
/// serde's reading of internally tagged enums buffers each into an intermediate tree first).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionFields {
    #[serde(rename = "type")]
    _kind: ActionKind,
    amount: i64,
}

/// The action types a user has.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionKind {
    Increment,
}

impl From<ActionFields> for UserAction {
    fn from(fields: ActionFields) -> Self {
        UserAction::Increment {
            amount: fields.amount,
        }
    }
}

#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct AmountFields {
    amount: i64,
    total: i64,
}

#[derive(Deserialize)]
struct InputKidFields {
    machine: MachineId,
    recording: RecordedUser,
}

#[derive(Deserialize)]
struct OutputKidFields {
    machine: MachineId,
    user: String,
}

#[derive(Deserialize)]
struct SenderFields {
    node: Handle<InputLeafNode>,
}

#[derive(Deserialize)]
struct ReceiverFields {
    node: Handle<OutputLeafNode>,
}

impl SumMessage {
    fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let Kind { kind } = serde_json::from_str(text)?;
        Ok(match &*kind {
            "increment" => {
                let AmountFields { amount, total } = serde_json::from_str(text)?;
                SumMessage::Increment { amount, total }
            }
            "add_input_kid" => {
                let InputKidFields { machine, recording } = serde_json::from_str(text)?;
                SumMessage::AddInputKid { machine, recording }
            }
            "add_output_kid" => {
                let OutputKidFields { machine, user } = serde_json::from_str(text)?;
                SumMessage::AddOutputKid { machine, user }
            }
            "add_sender" => SumMessage::AddSender {
                node: serde_json::from_str::<SenderFields>(text)?.node,
            },
            "add_receiver" => SumMessage::AddReceiver {
                node: serde_json::from_str::<ReceiverFields>(text)?.node,
            },
            other => {
                return Err(serde_json::Error::custom(format!(
                    "`{other}` is not a sum-network message"
                )))
            }
        })
    }
}

impl<'de> Deserialize<'de> for SumMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(deserializer)?;
        SumMessage::from_json(raw.get()).map_err(D::Error::custom)
    }
}

impl UserAction {
    /// How much the action adds to the total.
    pub fn amount(self) -> i64 {
        match self {
            UserAction::Increment { amount } => amount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Message, NodeHandle, NodeId};
    use crate::time::Millis;

    #[test]
    fn simulated_every_sum_message_round_trips_through_the_wire_format() {
        let node = NodeHandle {
            id: NodeId {
                origin: 1,
                serial: 2,
            },
            machine: MachineId(3),
        };
        let recording =
            RecordedUser::new("u", vec![(Millis(5), UserAction::Increment { amount: 2 })])
                .expect("ordered");
        for message in [
            SumMessage::Increment {
                amount: -4,
                total: 9,
            },
            SumMessage::AddInputKid {
                machine: MachineId(2),
                recording,
            },
            SumMessage::AddOutputKid {
                machine: MachineId(0),
                user: "v".into(),
            },
            SumMessage::AddSender {
                node: Handle::assume(node),
            },
            SumMessage::AddReceiver {
                node: Handle::assume(node),
            },
        ] {
            let wire = Message::encode(&message).expect("encodes").to_bytes();
            let back = Message::from_bytes(&wire).expect("parses");
            assert_eq!(back.decode::<SumMessage>(), Ok(message));
        }
    }

    #[test]
    fn simulated_unknown_and_malformed_sum_messages_are_errors() {
        let unknown = Message::tagged("gossip", serde_json::Map::new());
        assert!(unknown.decode::<SumMessage>().is_err());
        let mut fields = serde_json::Map::new();
        fields.insert("amount".into(), "many".into());
        assert!(Message::tagged("increment", fields)
            .decode::<SumMessage>()
            .is_err());
    }
}
