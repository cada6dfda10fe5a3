//! The input list: a root that adds one leaf per user, and the leaves that play users back.

use serde::{Deserialize, Serialize};

use super::{RecordedUser, SumMessage};
use crate::messages::{Message, NodeHandle};
use crate::node::{MachineController, Node, NodeError};

/// The root of the input list. On `add_kid` it spawns an [`InputLeafNode`] for the user on the
/// requested machine, hands it the root's receivers, and tells each receiver about its new sender.
#[derive(Debug)]
pub struct InputNode {
    receivers: Vec<NodeHandle>,
    kids: Vec<NodeHandle>,
}

/// An input root's config.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    #[serde(rename = "type")]
    kind: String,
    /// Where every leaf sends its user's actions (the sum node).
    #[serde(default)]
    pub receivers: Vec<NodeHandle>,
}

impl InputNode {
    /// The node type name used in configs.
    pub const TYPE: &'static str = "InputNode";

    /// A config for an input root whose leaves send to `receivers`.
    pub fn config(receivers: Vec<NodeHandle>) -> Result<Message, NodeError> {
        Ok(Message::encode(&InputConfig {
            kind: Self::TYPE.to_owned(),
            receivers,
        })?)
    }

    /// Builds the node from its config.
    pub fn from_config(config: InputConfig) -> Result<Self, NodeError> {
        Ok(InputNode {
            receivers: config.receivers,
            kids: Vec::new(),
        })
    }
}

impl Node for InputNode {
    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        match SumMessage::read(message)? {
            SumMessage::AddKid {
                machine,
                user,
                recording,
            } => {
                let leaf_config = Message::encode(&LeafConfig {
                    kind: InputLeafNode::TYPE.to_owned(),
                    user,
                    receivers: self.receivers.clone(),
                    recording,
                })?;
                let leaf = ctl.spawn(machine, leaf_config)?;
                self.kids.push(leaf);
                let announcement = SumMessage::AddSender { node: leaf }.to_message()?;
                for receiver in &self.receivers {
                    ctl.send(*receiver, announcement.clone());
                }
            }
            SumMessage::AddReceiver { node } => {
                self.receivers.push(node);
                let update = SumMessage::AddReceiver { node }.to_message()?;
                for kid in &self.kids {
                    ctl.send(*kid, update.clone());
                }
            }
            SumMessage::Increment { .. } | SumMessage::AddSender { .. } => {
                return Err(NodeError::UnexpectedMessage {
                    node_type: Self::TYPE,
                    kind: message.kind().to_owned(),
                })
            }
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "kids": self.kids, "receivers": self.receivers })
    }
}

/// An input leaf's config.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafConfig {
    #[serde(rename = "type")]
    kind: String,
    user: String,
    #[serde(default)]
    receivers: Vec<NodeHandle>,
    #[serde(default)]
    recording: Option<RecordedUser>,
}

/// One user's input: plays back the user's recorded actions at their times (relative to when the
/// leaf starts) and forwards each, and any increment sent to it directly, to every receiver.
#[derive(Debug)]
pub struct InputLeafNode {
    user: String,
    receivers: Vec<NodeHandle>,
    recording: Option<RecordedUser>,
    sent_total: i64,
    actions_played: usize,
}

impl InputLeafNode {
    /// The node type name used in configs.
    pub const TYPE: &'static str = "InputLeafNode";

    /// Builds the node from its config.
    pub fn from_config(config: LeafConfig) -> Result<Self, NodeError> {
        Ok(InputLeafNode {
            user: config.user,
            receivers: config.receivers,
            recording: config.recording,
            sent_total: 0,
            actions_played: 0,
        })
    }

    fn forward(
        &mut self,
        ctl: &mut dyn MachineController,
        message: &Message,
    ) -> Result<(), NodeError> {
        if let SumMessage::Increment { amount } = SumMessage::read(message)? {
            self.sent_total = super::add_to_total(self.sent_total, amount)?;
        }
        for receiver in &self.receivers {
            ctl.send(*receiver, message.clone());
        }
        Ok(())
    }
}

impl Node for InputLeafNode {
    /// Sets a timer for the first action only; each action's timer sets the next one, so a
    /// leaf has at most one timer pending however long its recording is.
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        if let Some((at_ms, _)) = self.recording.as_ref().and_then(|r| r.actions().first()) {
            ctl.set_timer(at_ms.0, 0);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        match SumMessage::read(message)? {
            SumMessage::Increment { .. } => self.forward(ctl, message),
            SumMessage::AddReceiver { node } => {
                self.receivers.push(node);
                Ok(())
            }
            SumMessage::AddKid { .. } | SumMessage::AddSender { .. } => {
                Err(NodeError::UnexpectedMessage {
                    node_type: Self::TYPE,
                    kind: message.kind().to_owned(),
                })
            }
        }
    }

    fn timer(&mut self, ctl: &mut dyn MachineController, tag: u64) -> Result<(), NodeError> {
        let index = tag as usize;
        let actions = self
            .recording
            .as_ref()
            .map(RecordedUser::actions)
            .unwrap_or_default();
        let (at_ms, action) = actions
            .get(index)
            .map(|(at_ms, message)| (*at_ms, message.clone()))
            .ok_or_else(|| NodeError::Protocol(format!("no recorded action {tag}")))?;
        if let Some((next_ms, _)) = actions.get(index + 1) {
            ctl.set_timer(next_ms.saturating_sub(at_ms).0, tag + 1);
        }
        self.actions_played += 1;
        self.forward(ctl, &action)
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "user": self.user,
            "sent_total": self.sent_total,
            "actions_played": self.actions_played,
        })
    }
}
