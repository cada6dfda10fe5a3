//! The output list: a root that adds one leaf per user, and the leaves that hold each user's total.

use serde::{Deserialize, Serialize};

use super::SumMessage;
use crate::messages::{Message, NodeHandle};
use crate::node::{MachineController, Node, NodeError};

/// The root of the output list. On `add_kid` it spawns an [`OutputLeafNode`] for the user and
/// tells each sender (the sum node) to send to the new leaf too.
#[derive(Debug)]
pub struct OutputNode {
    senders: Vec<NodeHandle>,
    kids: Vec<NodeHandle>,
}

/// An output root's config.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    #[serde(rename = "type")]
    kind: String,
    /// The nodes that feed every leaf (the sum node).
    #[serde(default)]
    pub senders: Vec<NodeHandle>,
}

impl OutputNode {
    /// The node type name used in configs.
    pub const TYPE: &'static str = "OutputNode";

    /// A config for an output root fed by `senders`.
    pub fn config(senders: Vec<NodeHandle>) -> Result<Message, NodeError> {
        Ok(Message::encode(&OutputConfig {
            kind: Self::TYPE.to_owned(),
            senders,
        })?)
    }

    /// Builds the node from its config.
    pub fn from_config(config: OutputConfig) -> Result<Self, NodeError> {
        Ok(OutputNode {
            senders: config.senders,
            kids: Vec::new(),
        })
    }
}

impl Node for OutputNode {
    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        match SumMessage::read(message)? {
            SumMessage::AddKid { machine, user, .. } => {
                let leaf_config = Message::encode(&OutputLeafConfig {
                    kind: OutputLeafNode::TYPE.to_owned(),
                    user,
                })?;
                let leaf = ctl.spawn(machine, leaf_config)?;
                self.kids.push(leaf);
                let announcement = SumMessage::AddReceiver { node: leaf }.to_message()?;
                for sender in &self.senders {
                    ctl.send(*sender, announcement.clone());
                }
            }
            SumMessage::AddSender { node } => {
                self.senders.push(node);
                for kid in &self.kids {
                    ctl.send(node, SumMessage::AddReceiver { node: *kid }.to_message()?);
                }
            }
            SumMessage::Increment { .. } | SumMessage::AddReceiver { .. } => {
                return Err(NodeError::UnexpectedMessage {
                    node_type: Self::TYPE,
                    kind: message.kind().to_owned(),
                })
            }
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "kids": self.kids, "senders": self.senders })
    }
}

/// An output leaf's config.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputLeafConfig {
    #[serde(rename = "type")]
    kind: String,
    user: String,
}

/// One user's output: the running total of every increment it receives.
#[derive(Debug)]
pub struct OutputLeafNode {
    user: String,
    total: i64,
}

impl OutputLeafNode {
    /// The node type name used in configs.
    pub const TYPE: &'static str = "OutputLeafNode";

    /// Builds the node from its config.
    pub fn from_config(config: OutputLeafConfig) -> Result<Self, NodeError> {
        Ok(OutputLeafNode {
            user: config.user,
            total: 0,
        })
    }
}

impl Node for OutputLeafNode {
    fn receive(
        &mut self,
        _ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        match SumMessage::read(message)? {
            SumMessage::Increment { amount } => {
                self.total = super::add_to_total(self.total, amount)?;
                Ok(())
            }
            _ => Err(NodeError::UnexpectedMessage {
                node_type: Self::TYPE,
                kind: message.kind().to_owned(),
            }),
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "user": self.user, "total": self.total })
    }
}
