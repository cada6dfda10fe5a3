//! The sum node: batches increments and forwards them to every receiver.

use serde::Deserialize;

use super::SumMessage;
use crate::messages::{Message, NodeHandle};
use crate::node::{MachineController, Node, NodeError};

/// How often a sum node forwards what it has gathered, as in the original.
pub const DEFAULT_SEND_INTERVAL_MS: u64 = 30;

/// A sum node's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumConfig {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    senders: Vec<NodeHandle>,
    #[serde(default)]
    receivers: Vec<NodeHandle>,
    #[serde(default = "default_interval")]
    interval_ms: u64,
}

fn default_interval() -> u64 {
    DEFAULT_SEND_INTERVAL_MS
}

/// Gathers increments and, every `interval_ms`, sends their sum to every receiver. A receiver
/// that joins late first gets everything forwarded so far, so it starts from the running total.
#[derive(Debug)]
pub struct SumNode {
    senders: Vec<NodeHandle>,
    receivers: Vec<NodeHandle>,
    interval_ms: u64,
    unsent: i64,
    sent_total: i64,
    tick_pending: bool,
}

impl SumNode {
    /// The node type name used in configs.
    pub const TYPE: &'static str = "SumNode";

    /// A config for a sum node with no senders or receivers yet.
    pub fn config() -> Message {
        Message::tagged(Self::TYPE, serde_json::Map::new())
    }

    /// Builds the node from its config.
    pub fn from_config(config: SumConfig) -> Result<Self, NodeError> {
        if config.interval_ms == 0 {
            return Err(NodeError::Protocol(
                "SumNode interval_ms must be positive".into(),
            ));
        }
        Ok(SumNode {
            senders: config.senders,
            receivers: config.receivers,
            interval_ms: config.interval_ms,
            unsent: 0,
            sent_total: 0,
            tick_pending: false,
        })
    }
}

impl Node for SumNode {
    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        match SumMessage::read(message)? {
            SumMessage::Increment { amount } => {
                self.unsent = super::add_to_total(self.unsent, amount)?;
                if !self.tick_pending {
                    self.tick_pending = true;
                    ctl.set_timer(self.interval_ms, 0);
                }
            }
            SumMessage::AddSender { node } => self.senders.push(node),
            SumMessage::AddReceiver { node } => {
                self.receivers.push(node);
                if self.sent_total != 0 {
                    let catch_up = SumMessage::Increment {
                        amount: self.sent_total,
                    };
                    ctl.send(node, catch_up.to_message()?);
                }
            }
            SumMessage::AddKid { .. } => {
                return Err(NodeError::UnexpectedMessage {
                    node_type: Self::TYPE,
                    kind: message.kind().to_owned(),
                })
            }
        }
        Ok(())
    }

    fn timer(&mut self, ctl: &mut dyn MachineController, _tag: u64) -> Result<(), NodeError> {
        self.tick_pending = false;
        if self.unsent == 0 {
            return Ok(());
        }
        let batch = SumMessage::Increment {
            amount: self.unsent,
        }
        .to_message()?;
        for receiver in &self.receivers {
            ctl.send(*receiver, batch.clone());
        }
        self.sent_total = super::add_to_total(self.sent_total, self.unsent)?;
        self.unsent = 0;
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "senders": self.senders.len(),
            "receivers": self.receivers.len(),
            "sent_total": self.sent_total,
            "unsent": self.unsent,
        })
    }
}
