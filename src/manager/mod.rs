//! The NodeManager: holds one machine's nodes, routes what arrives to them, keeps their timers,
//! and hands everything they want done to the hardware as [`Effect`]s.
//!
//! It is the single implementation of [`MachineController`] and is the same code in every mode:
//! the simulator, a container's machine process and a cloud instance all drive a `NodeManager`
//! and carry out its effects in their own way. It never reads a clock: the hardware passes the
//! current time into every call.

mod context;
mod envelope;

pub use envelope::Envelope;

use std::sync::Arc;

use indexmap::IndexMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::Serialize;

use crate::messages::{MachineId, NodeConfig, NodeHandle, NodeId};
use crate::node::{Node, NodeError, NodeRegistry, TimerId};
use context::Context;

/// Something the hardware must do on a machine's behalf.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Carry `envelope` to the NodeManager of machine `to` (which may be this one).
    Transmit {
        /// The destination machine.
        to: MachineId,
        /// What to carry.
        envelope: Envelope,
    },
    /// Call [`NodeManager::fire_timer`] with `timer` once the time is `at_us`.
    Wake {
        /// When, in microseconds since the system started.
        at_us: u64,
        /// Which timer.
        timer: TimerId,
    },
}

/// What became of an envelope that reached this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A node handled it (or it was a spawn or terminate that took effect).
    Done,
    /// It was addressed to a node this machine does not have (never had, or terminated).
    NoSuchNode(NodeId),
}

/// A node raised an error; in the simulator this stops the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {node} ({node_type}) failed: {error}")]
pub struct NodeFailure {
    /// The failing node.
    pub node: NodeHandle,
    /// Its type, from its config.
    pub node_type: String,
    /// What it raised.
    pub error: NodeError,
}

/// One node's observable state, as reported to tests, scenario reports and control requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeState {
    /// The node.
    pub handle: NodeHandle,
    /// Its type, from its config.
    pub node_type: String,
    /// What [`Node::state`] returned.
    pub state: serde_json::Value,
}

struct Slot {
    node: Box<dyn Node>,
    node_type: String,
}

/// The part of a NodeManager that a node's controller may touch while the node itself is
/// borrowed.
struct Core {
    machine: MachineId,
    registry: Arc<NodeRegistry>,
    now_us: u64,
    next_serial: u32,
    next_timer: u64,
    /// Pending timers; looked up and removed, never iterated, so hash order cannot leak.
    timers: FxHashMap<TimerId, (NodeId, u64)>,
    rng: ChaCha8Rng,
    effects: Vec<Effect>,
}

/// Holds and drives the nodes of one machine.
pub struct NodeManager {
    /// Iterated in insertion order (IndexMap), hashed with Fx for speed.
    nodes: IndexMap<NodeId, Slot, FxBuildHasher>,
    core: Core,
}

impl NodeManager {
    /// A manager for `machine` with no nodes. Its random generator is stream `machine + 1` of
    /// ChaCha8 seeded with `seed`, so every machine draws its own reproducible sequence.
    pub fn new(machine: MachineId, registry: Arc<NodeRegistry>, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::from(machine.0) + 1);
        NodeManager {
            nodes: IndexMap::default(),
            core: Core {
                machine,
                registry,
                now_us: 0,
                next_serial: 0,
                next_timer: 0,
                timers: FxHashMap::default(),
                rng,
                effects: Vec::new(),
            },
        }
    }

    /// The machine this manager runs.
    pub fn machine(&self) -> MachineId {
        self.core.machine
    }

    /// The node registry this machine builds nodes from.
    pub fn registry(&self) -> &Arc<NodeRegistry> {
        &self.core.registry
    }

    /// A fresh node id, unique across the system.
    pub fn allocate_id(&mut self) -> NodeId {
        self.core.allocate_id()
    }

    /// Creates and starts a node from `config` right now, under a fresh id.
    pub fn start_node(
        &mut self,
        now_us: u64,
        config: &NodeConfig,
    ) -> Result<NodeHandle, NodeFailure> {
        let id = self.allocate_id();
        self.create(now_us, id, config)?;
        Ok(NodeHandle {
            id,
            machine: self.core.machine,
        })
    }

    /// Handles an envelope that reached this machine at `now_us`.
    pub fn handle(&mut self, now_us: u64, envelope: Envelope) -> Result<Handled, NodeFailure> {
        self.core.now_us = now_us;
        match envelope {
            Envelope::Deliver { from, to, message } => {
                let Some(slot) = self.nodes.get_mut(&to) else {
                    return Ok(Handled::NoSuchNode(to));
                };
                let me = NodeHandle {
                    id: to,
                    machine: self.core.machine,
                };
                let mut ctl = Context::new(&mut self.core, me);
                slot.node
                    .receive(&mut ctl, from, &message)
                    .map_err(|error| failure(me, &slot.node_type, error))?;
                Ok(Handled::Done)
            }
            Envelope::Spawn { id, config } => {
                self.create(now_us, id, &config)?;
                Ok(Handled::Done)
            }
            Envelope::Terminate { id } => match self.nodes.shift_remove(&id) {
                Some(_) => {
                    self.core.timers.retain(|_, (owner, _)| *owner != id);
                    Ok(Handled::Done)
                }
                None => Ok(Handled::NoSuchNode(id)),
            },
        }
    }

    /// Fires `timer` at `now_us`. A timer that was cancelled, or whose node is gone, does nothing.
    pub fn fire_timer(&mut self, now_us: u64, timer: TimerId) -> Result<(), NodeFailure> {
        self.core.now_us = now_us;
        let Some((id, tag)) = self.core.timers.remove(&timer) else {
            return Ok(());
        };
        let Some(slot) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let me = NodeHandle {
            id,
            machine: self.core.machine,
        };
        let mut ctl = Context::new(&mut self.core, me);
        slot.node
            .timer(&mut ctl, tag)
            .map_err(|error| failure(me, &slot.node_type, error))
    }

    /// Whether the last call produced effects that have not been drained yet.
    pub fn has_effects(&self) -> bool {
        !self.core.effects.is_empty()
    }

    /// Moves every effect produced since the last call onto the end of `into`, in order.
    pub fn drain_effects(&mut self, into: &mut Vec<Effect>) {
        into.append(&mut self.core.effects);
    }

    /// The state of every node on this machine, in creation order.
    pub fn node_states(&self) -> Vec<NodeState> {
        self.nodes
            .iter()
            .map(|(id, slot)| self.state_of(*id, slot))
            .collect()
    }

    /// The state of one node, if this machine has it.
    pub fn node_state(&self, id: NodeId) -> Option<NodeState> {
        self.nodes.get(&id).map(|slot| self.state_of(id, slot))
    }

    /// How many nodes this machine holds.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn state_of(&self, id: NodeId, slot: &Slot) -> NodeState {
        NodeState {
            handle: NodeHandle {
                id,
                machine: self.core.machine,
            },
            node_type: slot.node_type.clone(),
            state: slot.node.state(),
        }
    }

    fn create(&mut self, now_us: u64, id: NodeId, config: &NodeConfig) -> Result<(), NodeFailure> {
        self.core.now_us = now_us;
        let me = NodeHandle {
            id,
            machine: self.core.machine,
        };
        let node_type = config.kind().to_owned();
        let mut node = self
            .core
            .registry
            .build(config)
            .map_err(|error| failure(me, &node_type, error))?;
        let mut ctl = Context::new(&mut self.core, me);
        node.start(&mut ctl)
            .map_err(|error| failure(me, &node_type, error))?;
        self.nodes.insert(id, Slot { node, node_type });
        Ok(())
    }
}

impl Core {
    fn allocate_id(&mut self) -> NodeId {
        let serial = self.next_serial;
        self.next_serial += 1;
        NodeId {
            origin: self.machine.0,
            serial,
        }
    }
}

fn failure(node: NodeHandle, node_type: &str, error: NodeError) -> NodeFailure {
    NodeFailure {
        node,
        node_type: node_type.to_owned(),
        error,
    }
}
