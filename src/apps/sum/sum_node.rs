//! The sum node: batches increments and forwards them to every receiver.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::chunked::Chunked;
use super::input::InputLeafNode;
use super::output::OutputLeafNode;
use super::SumMessage;
use crate::messages::NodeHandle;
use crate::node::{Ctl, Handle, NodeError, TypedNode};

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
    /// Whether it persists what it knows, so that it survives a crash of its machine (on by
    /// default; off only to show what persisting is for).
    #[serde(default = "persist_by_default")]
    pub persist: bool,
}

impl Default for SumConfig {
    fn default() -> Self {
        SumConfig {
            senders: Vec::new(),
            receivers: Vec::new(),
            interval_ms: DEFAULT_SEND_INTERVAL_MS,
            persist: true,
        }
    }
}

fn default_interval() -> u64 {
    DEFAULT_SEND_INTERVAL_MS
}

/// The default of every sum-network node's `persist`.
pub(super) fn persist_by_default() -> bool {
    true
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

/// What a sum node writes to its machine's disk: everything it knows but its timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
///
/// Its lists share their entries with the node's own, chunk by chunk (see [`Chunked`]), so
/// persisting after every increment copies one chunk, not the whole table.
pub struct SumDurable {
    /// Its input leaves.
    pub senders: Chunked<Handle<InputLeafNode>>,
    /// Its output leaves.
    pub receivers: Chunked<Handle<OutputLeafNode>>,
    /// The latest running total each sender reported (`None`: from outside the system).
    pub totals: Chunked<(Option<NodeHandle>, i64)>,
    /// Everything forwarded so far.
    pub sent_total: i64,
}

/// The sum node's one timer: send what was added since the last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flush;

/// Gathers increments and, every `interval_ms`, sends the new total to every receiver. A
/// receiver that joins late first gets the running total, so it starts from there.
///
/// Every sender reports its running total, and the node keeps the latest of each, so a report
/// that arrives twice (its sender crashed and said it again) adds nothing. It persists what it
/// knows before anything it learnt is acknowledged, and after a crash it tells every receiver
/// the total again (what it had sent and not had acknowledged was lost with its machine).
#[derive(Debug)]
pub struct SumNode {
    senders: Chunked<Handle<InputLeafNode>>,
    receivers: Chunked<Handle<OutputLeafNode>>,
    interval_ms: u64,
    persist: bool,
    /// The latest running total of each sender, in the order they first reported.
    totals: Chunked<(Option<NodeHandle>, i64)>,
    /// Where each sender is in `totals`; looked up, never iterated.
    position: FxHashMap<Option<NodeHandle>, usize>,
    /// The nodes in `senders`, and in `receivers`; looked up, never iterated.
    members: [FxHashSet<NodeHandle>; 2],
    /// Everything the senders reported, added up.
    total: i64,
    sent_total: i64,
    tick_pending: bool,
}

impl SumNode {
    /// Writes what the node knows to its machine's disk, if it persists.
    fn save(&self, ctl: &mut Ctl<'_, Self>) {
        if self.persist {
            ctl.persist(SumDurable {
                senders: self.senders.clone(),
                receivers: self.receivers.clone(),
                totals: self.totals.clone(),
                sent_total: self.sent_total,
            });
        }
    }

    /// Arms the flush timer if something is unsent and none is armed.
    fn arm(&mut self, ctl: &mut Ctl<'_, Self>) {
        if self.total != self.sent_total && !self.tick_pending {
            self.tick_pending = true;
            ctl.set_timer(self.interval_ms, Flush);
        }
    }
}

impl TypedNode for SumNode {
    const TYPE: &'static str = "SumNode";
    type Config = SumConfig;
    type Message = SumMessage;
    type State = SumState;
    type Timer = Flush;
    type Durable = SumDurable;

    fn new(config: SumConfig) -> Result<Self, NodeError> {
        if config.interval_ms == 0 {
            return Err(NodeError::Protocol(
                "SumNode interval_ms must be positive".into(),
            ));
        }
        Ok(SumNode {
            members: [
                config.senders.iter().map(|node| node.untyped()).collect(),
                config.receivers.iter().map(|node| node.untyped()).collect(),
            ],
            senders: config.senders.into(),
            receivers: config.receivers.into(),
            interval_ms: config.interval_ms,
            persist: config.persist,
            totals: Chunked::default(),
            position: FxHashMap::default(),
            total: 0,
            sent_total: 0,
            tick_pending: false,
        })
    }

    fn recover(&mut self, ctl: &mut Ctl<'_, Self>, durable: SumDurable) -> Result<(), NodeError> {
        self.senders = durable.senders;
        self.receivers = durable.receivers;
        self.members = [
            self.senders.iter().map(|node| node.untyped()).collect(),
            self.receivers.iter().map(|node| node.untyped()).collect(),
        ];
        self.total = durable
            .totals
            .iter()
            .try_fold(0, |sum, (_, total)| super::add_to_total(sum, *total))?;
        self.position = durable
            .totals
            .iter()
            .enumerate()
            .map(|(index, (sender, _))| (*sender, index))
            .collect();
        self.totals = durable.totals;
        self.sent_total = durable.sent_total;
        // Also when the total is 0: a receiver may hold an older total that the batch which
        // brought it back to 0 never reached.
        let again = SumMessage::Increment {
            amount: 0,
            total: self.sent_total,
        };
        ctl.broadcast(self.receivers.iter(), &again)?;
        self.arm(ctl);
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: Option<NodeHandle>,
        message: SumMessage,
    ) -> Result<(), NodeError> {
        match message {
            SumMessage::Increment { total, .. } => {
                let known = self.position.get(&from).copied();
                let before = match known.and_then(|index| self.totals.get_mut(index)) {
                    Some((_, latest)) => std::mem::replace(latest, total),
                    None => {
                        self.position.insert(from, self.totals.len());
                        self.totals.push((from, total));
                        0
                    }
                };
                let change = total
                    .checked_sub(before)
                    .ok_or_else(|| NodeError::Protocol("the total overflows 64 bits".into()))?;
                self.total = super::add_to_total(self.total, change)?;
                self.arm(ctl);
            }
            SumMessage::AddSender { node } => {
                if self.members[0].insert(node.untyped()) {
                    self.senders.push(node);
                }
            }
            SumMessage::AddReceiver { node } => {
                if self.members[1].insert(node.untyped()) {
                    self.receivers.push(node);
                    if self.sent_total != 0 {
                        let catch_up = SumMessage::Increment {
                            amount: self.sent_total,
                            total: self.sent_total,
                        };
                        ctl.send(node, &catch_up)?;
                    }
                }
            }
            SumMessage::AddInputKid { .. } | SumMessage::AddOutputKid { .. } => {
                return Err(super::unexpected(Self::TYPE, &message))
            }
        }
        self.save(ctl);
        Ok(())
    }

    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, _: Flush) -> Result<(), NodeError> {
        self.tick_pending = false;
        if self.total == self.sent_total {
            return Ok(());
        }
        let batch = SumMessage::Increment {
            amount: self.total - self.sent_total,
            total: self.total,
        };
        self.sent_total = self.total;
        self.save(ctl);
        ctl.broadcast(self.receivers.iter(), &batch)
    }

    fn state(&self) -> SumState {
        SumState {
            senders: self.senders.len(),
            receivers: self.receivers.len(),
            sent_total: self.sent_total,
            unsent: self.total - self.sent_total,
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
        let (a, b) = (Some(leaf(7).untyped()), Some(leaf(8).untyped()));
        sum.receive(
            a,
            SumMessage::Increment {
                amount: 3,
                total: 3,
            },
        )
        .expect("increment");
        sum.receive(
            b,
            SumMessage::Increment {
                amount: 4,
                total: 4,
            },
        )
        .expect("increment");
        sum.receive(
            a,
            SumMessage::Increment {
                amount: 3,
                total: 3,
            },
        )
        .expect("the same report again");
        assert!(sum.sent().is_empty(), "batched");
        assert_eq!(sum.pending_timers(), vec![DEFAULT_SEND_INTERVAL_MS]);
        sum.advance(DEFAULT_SEND_INTERVAL_MS).expect("tick");
        let sent = sum.take_sent();
        assert_eq!(sent.len(), 2);
        for (sent, serial) in sent.iter().zip([1, 2]) {
            assert_eq!(sent.to, leaf(serial).untyped());
            assert_eq!(
                sent.decode::<OutputLeafNode>(),
                Ok(SumMessage::Increment {
                    amount: 7,
                    total: 7
                })
            );
        }
        assert_eq!(sum.state().sent_total, 7);
        assert_eq!(sum.state().unsent, 0);
    }

    #[test]
    fn simulated_a_late_receiver_first_gets_the_running_total() {
        let mut sum = Harness::<SumNode>::new(SumConfig::default()).expect("builds");
        sum.receive(
            None,
            SumMessage::Increment {
                amount: 5,
                total: 5,
            },
        )
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
            Ok(SumMessage::Increment {
                amount: 5,
                total: 5
            })
        );
    }

    #[test]
    fn simulated_a_sum_node_recovers_what_it_persisted_and_tells_its_receivers_again() {
        let mut sum = Harness::<SumNode>::new(SumConfig::default()).expect("builds");
        let sender = Some(leaf(3).untyped());
        sum.receive(None, SumMessage::AddReceiver { node: leaf(1) })
            .expect("receiver");
        sum.receive(
            sender,
            SumMessage::Increment {
                amount: 5,
                total: 5,
            },
        )
        .expect("increment");
        sum.advance(DEFAULT_SEND_INTERVAL_MS).expect("tick");
        sum.receive(
            sender,
            SumMessage::Increment {
                amount: 2,
                total: 7,
            },
        )
        .expect("increment");
        sum.take_sent();
        sum.crash_and_restart().expect("recovers");
        assert_eq!(sum.state().sent_total, 5);
        assert_eq!(sum.state().unsent, 2, "what was reported is on disk");
        let again = sum.take_sent();
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].decode::<OutputLeafNode>(),
            Ok(SumMessage::Increment {
                amount: 0,
                total: 5
            })
        );
        sum.advance(DEFAULT_SEND_INTERVAL_MS).expect("tick");
        assert_eq!(sum.state().sent_total, 7);

        let mut forgetful = Harness::<SumNode>::new(SumConfig {
            persist: false,
            ..SumConfig::default()
        })
        .expect("builds");
        forgetful
            .receive(
                sender,
                SumMessage::Increment {
                    amount: 5,
                    total: 5,
                },
            )
            .expect("increment");
        forgetful.crash_and_restart().expect("starts afresh");
        assert_eq!(forgetful.state().unsent, 0, "nothing was persisted");
    }

    #[test]
    fn simulated_a_sum_node_back_at_a_total_of_zero_tells_its_receivers_so_after_a_crash() {
        let mut sum = Harness::<SumNode>::new(SumConfig::default()).expect("builds");
        let sender = Some(leaf(3).untyped());
        sum.receive(None, SumMessage::AddReceiver { node: leaf(1) })
            .expect("receiver");
        for (amount, total) in [(7, 7), (-7, 0)] {
            sum.receive(sender, SumMessage::Increment { amount, total })
                .expect("increment");
            sum.advance(DEFAULT_SEND_INTERVAL_MS).expect("tick");
        }
        sum.take_sent();
        sum.crash_and_restart().expect("recovers");
        let again = sum.take_sent();
        assert_eq!(again.len(), 1, "the receiver may still hold 7");
        assert_eq!(
            again[0].decode::<OutputLeafNode>(),
            Ok(SumMessage::Increment {
                amount: 0,
                total: 0
            })
        );
    }

    #[test]
    fn simulated_overflowing_totals_and_wrong_messages_are_node_errors() {
        let mut sum = Harness::<SumNode>::new(SumConfig::default()).expect("builds");
        let (a, b) = (Some(leaf(1).untyped()), Some(leaf(2).untyped()));
        sum.receive(
            a,
            SumMessage::Increment {
                amount: i64::MAX,
                total: i64::MAX,
            },
        )
        .expect("increment");
        assert!(sum
            .receive(
                b,
                SumMessage::Increment {
                    amount: 1,
                    total: 1
                }
            )
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
