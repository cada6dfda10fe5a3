//! The broadcast node: keeps every value it has seen, once, and gossips new ones to its
//! neighbours.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::messages::NodeHandle;
use crate::node::{Ctl, Handle, NodeError, TypedNode};

/// How often a node sends its neighbours what it learnt since, by default.
pub const DEFAULT_GOSSIP_MS: u64 = 20;

/// A broadcast node's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastConfig {
    /// Its position among the workload's nodes (reported in its state).
    #[serde(default)]
    pub index: u32,
    /// How often it gossips, in milliseconds (positive).
    #[serde(default = "default_gossip_ms")]
    pub gossip_ms: u64,
}

fn default_gossip_ms() -> u64 {
    DEFAULT_GOSSIP_MS
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        BroadcastConfig {
            index: 0,
            gossip_ms: DEFAULT_GOSSIP_MS,
        }
    }
}

/// What a broadcast node receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BroadcastMessage {
    /// From a client: make `value` known to every node.
    Broadcast {
        /// The value.
        value: i64,
    },
    /// From the scenario: these are your neighbours.
    Topology {
        /// The nodes this one gossips with.
        neighbours: Vec<Handle<BroadcastNode>>,
    },
    /// From a neighbour: values it learnt.
    Gossip {
        /// The values, each once.
        values: Vec<i64>,
    },
}

/// A broadcast node's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastState {
    /// Its position among the workload's nodes.
    pub index: u32,
    /// Every value it holds, in the order it learnt them.
    pub values: Vec<i64>,
    /// How many neighbours it has.
    pub neighbours: usize,
}

/// One node of the broadcast workload (Maelstrom's `broadcast`): a client's value reaches every
/// node, each node holding it exactly once, over the given topology. Gossip is batched: what a
/// node learns is sent at the next tick to each neighbour it did not come from and that has
/// not gossiped it to this node meanwhile.
///
/// It persists its neighbours and values whenever they change; after a crash of its machine it
/// sends every neighbour every value again (what it had sent and not had acknowledged was lost
/// with the machine; a neighbour ignores what it knows).
#[derive(Debug)]
pub struct BroadcastNode {
    index: u32,
    gossip_ms: u64,
    neighbours: Vec<Handle<BroadcastNode>>,
    /// Each neighbour's position in `neighbours`.
    position: FxHashMap<NodeHandle, usize>,
    /// Every value, in the order learnt; `seen` is the same as a set.
    values: Vec<i64>,
    seen: FxHashSet<i64>,
    /// Per neighbour (by position in `neighbours`): what it has not been sent yet.
    unsent: Vec<Vec<i64>>,
    /// Whether some list of `unsent` is not empty.
    pending: bool,
    tick_pending: bool,
}

/// What a broadcast node writes to its machine's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastDurable {
    /// Its neighbours.
    pub neighbours: Vec<Handle<BroadcastNode>>,
    /// Every value it holds, in the order it learnt them.
    pub values: Vec<i64>,
}

impl BroadcastNode {
    /// Writes the neighbours and values to the machine's disk.
    fn save(&self, ctl: &mut Ctl<'_, Self>) {
        ctl.persist(BroadcastDurable {
            neighbours: self.neighbours.clone(),
            values: self.values.clone(),
        });
    }

    /// Arms the gossip timer if something is unsent and none is armed.
    fn arm(&mut self, ctl: &mut Ctl<'_, Self>) {
        if self.pending && !self.tick_pending {
            self.tick_pending = true;
            ctl.set_timer(self.gossip_ms, Gossip);
        }
    }

    /// Takes back from what `from` has not been sent the `values` it gossiped: it holds them.
    fn heard(&mut self, from: NodeHandle, values: &[i64]) {
        let Some(unsent) = self
            .position
            .get(&from)
            .and_then(|at| self.unsent.get_mut(*at))
        else {
            return;
        };
        if unsent.is_empty() {
            return;
        }
        let held: FxHashSet<i64> = values.iter().copied().collect();
        unsent.retain(|value| !held.contains(value));
    }

    /// Makes `neighbours` this node's, from position `first` on.
    fn place(&mut self, first: usize) {
        for (at, neighbour) in self.neighbours.iter().enumerate().skip(first) {
            self.position.insert(neighbour.untyped(), at);
        }
    }

    /// Records `value` if new, queueing it for every neighbour but `from`.
    fn learn(&mut self, ctl: &mut Ctl<'_, Self>, value: i64, from: Option<NodeHandle>) {
        if !self.seen.insert(value) {
            return;
        }
        self.values.push(value);
        for (neighbour, unsent) in self.neighbours.iter().zip(&mut self.unsent) {
            if Some(neighbour.untyped()) != from {
                unsent.push(value);
                self.pending = true;
            }
        }
        self.arm(ctl);
    }
}

/// The broadcast node's one timer: gossip what was learnt since the last round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gossip;

impl TypedNode for BroadcastNode {
    const TYPE: &'static str = "BroadcastNode";
    type Config = BroadcastConfig;
    type Message = BroadcastMessage;
    type State = BroadcastState;
    type Timer = Gossip;
    type Durable = BroadcastDurable;

    fn new(config: BroadcastConfig) -> Result<Self, NodeError> {
        if config.gossip_ms == 0 {
            return Err(NodeError::Protocol(
                "BroadcastNode gossip_ms must be positive".into(),
            ));
        }
        Ok(BroadcastNode {
            index: config.index,
            gossip_ms: config.gossip_ms,
            neighbours: Vec::new(),
            position: FxHashMap::default(),
            values: Vec::new(),
            seen: FxHashSet::default(),
            unsent: Vec::new(),
            pending: false,
            tick_pending: false,
        })
    }

    fn recover(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        durable: BroadcastDurable,
    ) -> Result<(), NodeError> {
        self.neighbours = durable.neighbours;
        self.place(0);
        self.seen = durable.values.iter().copied().collect();
        self.values = durable.values;
        self.unsent = vec![self.values.clone(); self.neighbours.len()];
        self.pending = !self.values.is_empty() && !self.neighbours.is_empty();
        self.arm(ctl);
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: Option<NodeHandle>,
        message: BroadcastMessage,
    ) -> Result<(), NodeError> {
        let before = (self.neighbours.len(), self.values.len());
        match message {
            BroadcastMessage::Broadcast { value } => self.learn(ctl, value, None),
            BroadcastMessage::Gossip { values } => {
                if let Some(from) = from {
                    self.heard(from, &values);
                }
                for value in values {
                    self.learn(ctl, value, from);
                }
            }
            BroadcastMessage::Topology { neighbours } => {
                // Neighbours who join late are sent everything known so far.
                let first = self.neighbours.len();
                self.neighbours.extend(neighbours);
                self.place(first);
                self.unsent
                    .resize(self.neighbours.len(), self.values.clone());
                self.pending |= !self.values.is_empty() && !self.neighbours.is_empty();
                self.arm(ctl);
            }
        }
        if (self.neighbours.len(), self.values.len()) != before {
            self.save(ctl);
        }
        Ok(())
    }

    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, _: Gossip) -> Result<(), NodeError> {
        self.tick_pending = false;
        self.pending = false;
        for (neighbour, unsent) in self.neighbours.iter().zip(&mut self.unsent) {
            if unsent.is_empty() {
                continue;
            }
            let values = std::mem::take(unsent);
            ctl.send(*neighbour, &BroadcastMessage::Gossip { values })?;
        }
        Ok(())
    }

    fn state(&self) -> BroadcastState {
        BroadcastState {
            index: self.index,
            values: self.values.clone(),
            neighbours: self.neighbours.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Harness;

    fn node() -> Harness<BroadcastNode> {
        Harness::new(BroadcastConfig::default()).expect("builds")
    }

    fn handle(machine: u32) -> Handle<BroadcastNode> {
        Handle::assume(Harness::<BroadcastNode>::handle(machine, 1))
    }

    fn gossip_to(harness: &mut Harness<BroadcastNode>) -> Vec<(NodeHandle, Vec<i64>)> {
        harness
            .take_sent()
            .iter()
            .map(|sent| match sent.decode::<BroadcastNode>() {
                Ok(BroadcastMessage::Gossip { values }) => (sent.to, values),
                other => panic!("not gossip: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn simulated_a_broadcast_value_is_gossiped_to_every_neighbour_at_the_next_tick() {
        let mut harness = node();
        let (a, b) = (handle(1), handle(2));
        harness
            .receive(
                None,
                BroadcastMessage::Topology {
                    neighbours: vec![a, b],
                },
            )
            .expect("topology");
        harness
            .receive(None, BroadcastMessage::Broadcast { value: 7 })
            .expect("broadcast");
        harness
            .receive(None, BroadcastMessage::Broadcast { value: 8 })
            .expect("broadcast");
        assert!(harness.sent().is_empty(), "batched until the tick");
        assert_eq!(harness.pending_timers(), vec![DEFAULT_GOSSIP_MS]);
        harness.advance(DEFAULT_GOSSIP_MS).expect("tick");
        assert_eq!(
            gossip_to(&mut harness),
            vec![(a.untyped(), vec![7, 8]), (b.untyped(), vec![7, 8])]
        );
        assert_eq!(harness.state().values, vec![7, 8]);
    }

    #[test]
    fn simulated_gossip_is_not_sent_back_nor_to_a_neighbour_that_gossiped_it_and_known_values_are_kept_once(
    ) {
        let mut harness = node();
        let (a, b) = (handle(1), handle(2));
        harness
            .receive(
                None,
                BroadcastMessage::Topology {
                    neighbours: vec![a, b],
                },
            )
            .expect("topology");
        let from_a = BroadcastMessage::Gossip { values: vec![1, 2] };
        harness
            .receive(Some(a.untyped()), from_a.clone())
            .expect("gossip");
        harness.receive(Some(a.untyped()), from_a).expect("again");
        harness
            .receive(
                Some(b.untyped()),
                BroadcastMessage::Gossip { values: vec![2] },
            )
            .expect("gossip");
        harness.advance(DEFAULT_GOSSIP_MS).expect("tick");
        assert_eq!(
            gossip_to(&mut harness),
            vec![(b.untyped(), vec![1])],
            "b gossiped 2 itself: it holds it"
        );
        assert_eq!(harness.state().values, vec![1, 2], "each value once");
        harness.advance(1_000).expect("quiet");
        assert!(harness.sent().is_empty(), "nothing new, nothing sent");
    }

    #[test]
    fn simulated_a_neighbour_added_late_gets_everything_known() {
        let mut harness = node();
        harness
            .receive(None, BroadcastMessage::Broadcast { value: 3 })
            .expect("broadcast");
        harness.advance(DEFAULT_GOSSIP_MS).expect("tick");
        assert!(harness.sent().is_empty(), "no neighbours yet");
        let late = handle(4);
        harness
            .receive(
                None,
                BroadcastMessage::Topology {
                    neighbours: vec![late],
                },
            )
            .expect("topology");
        harness.advance(DEFAULT_GOSSIP_MS).expect("tick");
        assert_eq!(gossip_to(&mut harness), vec![(late.untyped(), vec![3])]);
    }

    #[test]
    fn simulated_malformed_messages_and_configs_are_rejected_naming_the_node_type() {
        let mut harness = node();
        let wrong =
            crate::messages::Message::new(serde_json::json!({"type": "gossip", "values": "x"}))
                .expect("an object");
        let error = harness.receive_wire(None, &wrong).expect_err("rejected");
        assert!(
            error
                .to_string()
                .contains("BroadcastNode rejected a `gossip` message"),
            "{error}"
        );
        let unknown =
            crate::messages::Message::new(serde_json::json!({"type": "read"})).expect("an object");
        assert!(harness.receive_wire(None, &unknown).is_err());
        assert!(Harness::<BroadcastNode>::new(BroadcastConfig {
            gossip_ms: 0,
            ..BroadcastConfig::default()
        })
        .is_err());
    }
}
