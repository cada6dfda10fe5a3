//! The sum node: batches increments and forwards them to every receiver.

use serde::{Deserialize, Serialize};

use super::input::InputLeafNode;
use super::output::OutputLeafNode;
use super::SumMessage;
use crate::messages::NodeHandle;
use crate::node::{Ctl, Handle, NodeError, TypedNode, Volatile};

/// How often a sum node forwards what it has gathered, as in the original.
pub const DEFAULT_SEND_INTERVAL_MS: u64 = 30;

/// A sum node's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumConfig {
    /// Input leaves already sending to it.
    #[serde(default)]
    pub senders: Vec<Handle<InputLeafNode>>,
    /// Output leaves it already sends to.
    #[serde(default)]
    pub receivers: Vec<Handle<OutputLeafNode>>,
    /// How often it forwards, in milliseconds (positive).
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
}

impl Default for SumConfig {
    fn default() -> Self {
        SumConfig {
            senders: Vec::new(),
            receivers: Vec::new(),
            interval_ms: DEFAULT_SEND_INTERVAL_MS,
        }
    }
}

fn default_interval() -> u64 {
    DEFAULT_SEND_INTERVAL_MS
}

/// A sum node's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SumState {
    /// How many input leaves send to it.
    pub senders: usize,
    /// How many output leaves it sends to.
    pub receivers: usize,
    /// Everything forwarded so far.
    pub sent_total: i64,
    /// Gathered and not yet forwarded.
    pub unsent: i64,
}

/// Gathers increments and, every `interval_ms`, sends their sum to every receiver. A receiver
/// that joins late first gets everything forwarded so far, so it starts from the running total.
#[derive(Debug)]
pub struct SumNode {
    senders: Vec<Handle<InputLeafNode>>,
    receivers: Vec<Handle<OutputLeafNode>>,
    interval_ms: u64,
    unsent: i64,
    sent_total: i64,
    tick_pending: bool,
}

/// The sum node's one timer: send what was added since the last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flush;

impl TypedNode for SumNode {
    const TYPE: &'static str = "SumNode";
    type Config = SumConfig;
    type Message = SumMessage;
    type State = SumState;
    type Timer = Flush;
    type Durable = Volatile;

    fn new(config: SumConfig) -> Result<Self, NodeError> {
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

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: SumMessage,
    ) -> Result<(), NodeError> {
        match message {
            SumMessage::Increment { amount } => {
                self.unsent = super::add_to_total(self.unsent, amount)?;
                if !self.tick_pending {
                    self.tick_pending = true;
                    ctl.set_timer(self.interval_ms, Flush);
                }
            }
            SumMessage::AddSender { node } => self.senders.push(node),
            SumMessage::AddReceiver { node } => {
                self.receivers.push(node);
                if self.sent_total != 0 {
                    let catch_up = SumMessage::Increment {
                        amount: self.sent_total,
                    };
                    ctl.send(node, &catch_up)?;
                }
            }
            SumMessage::AddInputKid { .. } | SumMessage::AddOutputKid { .. } => {
                return Err(super::unexpected(Self::TYPE, &message))
            }
        }
        Ok(())
    }

    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, _: Flush) -> Result<(), NodeError> {
        self.tick_pending = false;
        if self.unsent == 0 {
            return Ok(());
        }
        let batch = SumMessage::Increment {
            amount: self.unsent,
        };
        ctl.broadcast(&self.receivers, &batch)?;
        self.sent_total = super::add_to_total(self.sent_total, self.unsent)?;
        self.unsent = 0;
        Ok(())
    }

    fn state(&self) -> SumState {
        SumState {
            senders: self.senders.len(),
            receivers: self.receivers.len(),
            sent_total: self.sent_total,
            unsent: self.unsent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Harness;

    fn leaf(serial: u32) -> Handle<OutputLeafNode> {
        Handle::assume(Harness::<SumNode>::handle(1, serial))
    }

    #[test]
    fn simulated_increments_are_batched_and_forwarded_to_every_receiver() {
        let mut sum = Harness::<SumNode>::new(SumConfig::default()).expect("builds");
        for serial in [1, 2] {
            let node = leaf(serial);
            sum.receive(None, SumMessage::AddReceiver { node })
                .expect("receiver");
        }
        sum.receive(None, SumMessage::Increment { amount: 3 })
            .expect("increment");
        sum.receive(None, SumMessage::Increment { amount: 4 })
            .expect("increment");
        assert!(sum.sent().is_empty(), "batched");
        assert_eq!(sum.pending_timers(), vec![DEFAULT_SEND_INTERVAL_MS]);
        sum.advance(DEFAULT_SEND_INTERVAL_MS).expect("tick");
        let sent = sum.take_sent();
        assert_eq!(sent.len(), 2);
        for (sent, serial) in sent.iter().zip([1, 2]) {
            assert_eq!(sent.to, leaf(serial).untyped());
            assert_eq!(
                sent.decode::<OutputLeafNode>(),
                Ok(SumMessage::Increment { amount: 7 })
            );
        }
        assert_eq!(sum.state().sent_total, 7);
        assert_eq!(sum.state().unsent, 0);
    }

    #[test]
    fn simulated_a_late_receiver_first_gets_the_running_total() {
        let mut sum = Harness::<SumNode>::new(SumConfig::default()).expect("builds");
        sum.receive(None, SumMessage::Increment { amount: 5 })
            .expect("increment");
        sum.advance(DEFAULT_SEND_INTERVAL_MS).expect("tick");
        let late = leaf(9);
        sum.receive(None, SumMessage::AddReceiver { node: late })
            .expect("receiver");
        let sent = sum.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, late.untyped());
        assert_eq!(
            sent[0].decode::<OutputLeafNode>(),
            Ok(SumMessage::Increment { amount: 5 })
        );
    }

    #[test]
    fn simulated_overflowing_totals_and_wrong_messages_are_node_errors() {
        let mut sum = Harness::<SumNode>::new(SumConfig::default()).expect("builds");
        sum.receive(None, SumMessage::Increment { amount: i64::MAX })
            .expect("increment");
        assert!(sum
            .receive(None, SumMessage::Increment { amount: 1 })
            .is_err());
        let kid = SumMessage::AddOutputKid {
            machine: crate::messages::MachineId(1),
            user: "u".into(),
        };
        assert!(sum.receive(None, kid).is_err());
        assert!(Harness::<SumNode>::new(SumConfig {
            interval_ms: 0,
            ..SumConfig::default()
        })
        .is_err());
    }
}
