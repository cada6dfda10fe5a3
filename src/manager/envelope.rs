//! What one NodeManager sends another.

use std::borrow::Cow;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::messages::{MachineId, Message, NodeConfig, NodeHandle, NodeId};

/// A unit of work carried between machines (or from a machine to itself).
///
/// `Deliver`, `Spawn` and `Terminate` are payloads; between two machines they normally travel
/// inside `Sequenced` packets of the reliable link layer, which `Ack` acknowledges.
///
/// Serialized as a JSON object with a `"type"` key. Deserialization is written by hand: serde's
/// derived reading of internally tagged enums buffers every field into an intermediate form, from
/// which a [`Message`] (kept as raw JSON text) cannot be read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Machine `from` holds messages for nodes this machine named and may have spawned there, and
    /// asks which spawns are on their way. Answered with `SpawnsSent` on the same link as the
    /// spawns, so the answer arrives after every spawn sent before it.
    AskSpawns {
        /// The asking machine.
        from: MachineId,
    },
    /// Machine `from` has sent the receiving machine every spawn of a node it named with a serial
    /// number below `below`.
    SpawnsSent {
        /// The answering machine (the origin of the node ids in question).
        from: MachineId,
        /// Serial numbers below this one have all been allocated, and their spawns sent.
        below: u32,
    },
    /// A link-layer packet: `payload` is the `seq`th envelope machine `from` sent this machine.
    Sequenced {
        /// The sending machine.
        from: MachineId,
        /// The sending machine's incarnation: each boot numbers its stream from 0 again.
        #[serde(default)]
        incarnation: u32,
        /// Its position in the sending machine's stream to this one, from 0.
        seq: u64,
        /// When the sending machine sent this copy, on its own clock (echoed by the
        /// acknowledgement, so the sender measures the round trip of this very copy).
        sent_us: u64,
        /// The envelope carried.
        payload: Box<Envelope>,
    },
    /// A link-layer acknowledgement: machine `from` has every packet below `upto` that this
    /// machine sent it, and those listed in `also`.
    Ack {
        /// The acknowledging machine.
        from: MachineId,
        /// The acknowledging machine's incarnation.
        #[serde(default)]
        incarnation: u32,
        /// The incarnation of the receiving machine whose stream this acknowledges.
        #[serde(default)]
        session: u32,
        /// Every packet below this sequence number arrived.
        upto: u64,
        /// Later packets that arrived ahead of a gap.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<u64>,
        /// The `sent_us` of the latest-sent copy received since the previous acknowledgement.
        echo_us: u64,
        /// That copy's sequence number.
        echo_seq: u64,
    },
    /// Machine `from` booted again after a crash, as incarnation `incarnation`: whatever it had
    /// received beyond a gap is gone, so its peers send every unacknowledged packet again.
    Rebooted {
        /// The machine.
        from: MachineId,
        /// Its new incarnation.
        incarnation: u32,
    },
}

impl Envelope {
    /// What the envelope carries, for fault rules and traces: the node message's `"type"`, or
    /// `spawn`, `terminate`, `ack`.
    pub fn kind(&self) -> &str {
        match self {
            Envelope::Deliver { message, .. } => message.kind(),
            Envelope::Spawn { .. } => "spawn",
            Envelope::Terminate { .. } => "terminate",
            Envelope::AskSpawns { .. } => "ask_spawns",
            Envelope::SpawnsSent { .. } => "spawns_sent",
            Envelope::Sequenced { payload, .. } => payload.kind(),
            Envelope::Ack { .. } => "ack",
            Envelope::Rebooted { .. } => "rebooted",
        }
    }

    /// Whether this is a payload (as opposed to a link-layer packet).
    pub fn is_payload(&self) -> bool {
        matches!(
            self,
            Envelope::Deliver { .. }
                | Envelope::Spawn { .. }
                | Envelope::Terminate { .. }
                | Envelope::AskSpawns { .. }
                | Envelope::SpawnsSent { .. }
        )
    }

    /// The payload inside any link-layer wrapping (`None` for acknowledgements).
    pub fn payload(&self) -> Option<&Envelope> {
        match self {
            Envelope::Sequenced { payload, .. } => payload.payload(),
            Envelope::Ack { .. } | Envelope::Rebooted { .. } => None,
            payload => Some(payload),
        }
    }
}

#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct DeliverFields {
    from: Option<NodeHandle>,
    to: NodeId,
    message: Message,
}

#[derive(Deserialize)]
struct SpawnFields {
    id: NodeId,
    config: NodeConfig,
}

#[derive(Deserialize)]
struct TerminateFields {
    id: NodeId,
}

#[derive(Deserialize)]
struct AskSpawnsFields {
    from: MachineId,
}

#[derive(Deserialize)]
struct SpawnsSentFields {
    from: MachineId,
    below: u32,
}

#[derive(Deserialize)]
struct SequencedFields {
    from: MachineId,
    #[serde(default)]
    incarnation: u32,
    seq: u64,
    sent_us: u64,
    payload: Box<Envelope>,
}

#[derive(Deserialize)]
struct RebootedFields {
    from: MachineId,
    incarnation: u32,
}

#[derive(Deserialize)]
struct AckFields {
    from: MachineId,
    #[serde(default)]
    incarnation: u32,
    #[serde(default)]
    session: u32,
    upto: u64,
    #[serde(default)]
    also: Vec<u64>,
    echo_us: u64,
    echo_seq: u64,
}

impl Envelope {
    /// Parses an envelope from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let Kind { kind } = serde_json::from_str(text)?;
        Ok(match &*kind {
            "deliver" => {
                let DeliverFields { from, to, message } = serde_json::from_str(text)?;
                Envelope::Deliver { from, to, message }
            }
            "spawn" => {
                let SpawnFields { id, config } = serde_json::from_str(text)?;
                Envelope::Spawn { id, config }
            }
            "terminate" => Envelope::Terminate {
                id: serde_json::from_str::<TerminateFields>(text)?.id,
            },
            "ask_spawns" => Envelope::AskSpawns {
                from: serde_json::from_str::<AskSpawnsFields>(text)?.from,
            },
            "spawns_sent" => {
                let SpawnsSentFields { from, below } = serde_json::from_str(text)?;
                Envelope::SpawnsSent { from, below }
            }
            "sequenced" => {
                let SequencedFields {
                    from,
                    incarnation,
                    seq,
                    sent_us,
                    payload,
                } = serde_json::from_str(text)?;
                Envelope::Sequenced {
                    from,
                    incarnation,
                    seq,
                    sent_us,
                    payload,
                }
            }
            "ack" => {
                let AckFields {
                    from,
                    incarnation,
                    session,
                    upto,
                    also,
                    echo_us,
                    echo_seq,
                } = serde_json::from_str(text)?;
                Envelope::Ack {
                    from,
                    incarnation,
                    session,
                    upto,
                    also,
                    echo_us,
                    echo_seq,
                }
            }
            "rebooted" => {
                let RebootedFields { from, incarnation } = serde_json::from_str(text)?;
                Envelope::Rebooted { from, incarnation }
            }
            other => {
                return Err(serde_json::Error::custom(format!(
                    "unknown envelope type `{other}`"
                )))
            }
        })
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Envelope::from_json(raw.get()).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_every_envelope_round_trips_through_its_wire_form() {
        let node = NodeHandle {
            id: NodeId {
                origin: 0,
                serial: 1,
            },
            machine: MachineId(2),
        };
        let message = Message::tagged("increment", serde_json::Map::new());
        let deliver = Envelope::Deliver {
            from: Some(node),
            to: node.id,
            message: message.clone(),
        };
        for envelope in [
            deliver.clone(),
            Envelope::Deliver {
                from: None,
                to: node.id,
                message,
            },
            Envelope::Spawn {
                id: node.id,
                config: Message::tagged("SumNode", serde_json::Map::new()),
            },
            Envelope::Terminate { id: node.id },
            Envelope::AskSpawns { from: MachineId(3) },
            Envelope::SpawnsSent {
                from: MachineId(0),
                below: 12,
            },
            Envelope::Sequenced {
                from: MachineId(1),
                incarnation: 2,
                seq: 7,
                sent_us: 1_500,
                payload: Box::new(deliver),
            },
            Envelope::Ack {
                from: MachineId(1),
                incarnation: 1,
                session: 3,
                upto: 4,
                also: vec![6, 9],
                echo_us: 1_500,
                echo_seq: 7,
            },
            Envelope::Rebooted {
                from: MachineId(4),
                incarnation: 5,
            },
        ] {
            let text = serde_json::to_string(&envelope).expect("serializes");
            let back: Envelope = serde_json::from_str(&text).expect("parses");
            assert_eq!(back, envelope, "{text}");
        }
    }

    #[test]
    fn simulated_malformed_envelopes_are_errors() {
        for text in [
            r#"{"type":"gossip"}"#,
            r#"{"type":"deliver"}"#,
            r#"{"type":"ack","from":0}"#,
            "[]",
            "{",
        ] {
            assert!(serde_json::from_str::<Envelope>(text).is_err(), "{text}");
        }
    }
}
