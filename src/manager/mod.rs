//! The NodeManager: holds one machine's nodes, routes what arrives to them, keeps their timers,
//! and hands everything they want done to the hardware as [`Effect`]s.
//!
//! It is the single implementation of [`MachineController`](crate::node::MachineController) and is the same code in every mode:
//! the simulator, a container's machine process and a cloud instance all drive a `NodeManager`
//! and carry out its effects in their own way. It never reads a clock: the hardware passes the
//! current time into every call.

mod context;
mod envelope;
mod link;
mod links;
mod rtt;
mod spawn_order;

pub use envelope::Envelope;
pub use link::ACK_DELAY_MS;
pub use rtt::{INITIAL_RTO_MS, MAX_UNMEASURED_BACKOFF_MS, MIN_RTO_MS, PROBE_FLOOR_MS};

use std::sync::Arc;

use indexmap::IndexMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::messages::{MachineId, NodeConfig, NodeHandle, NodeId};
use crate::node::{Node, NodeError, NodeRegistry, TimerId};
use context::Context;
use link::{AckRange, Resend};
use links::Links;
use spawn_order::{Missing, SpawnOrder};

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
    /// It was addressed to a node whose spawn is still on its way; it waits for the node.
    Held(NodeId),
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// The node.
    pub handle: NodeHandle,
    /// Its type, from its config.
    pub node_type: String,
    /// What [`Node::state`] returned.
    pub state: serde_json::Value,
    /// What the reliable link layer did for this node's messages (`sent`, `acknowledged`,
    /// `retransmitted`, `duplicates_suppressed`; the other counters stay zero).
    #[serde(default)]
    pub counters: Counters,
}

struct Slot {
    node: Box<dyn Node>,
    node_type: String,
    counters: Counters,
}

/// Who a timer wakes: a node, or the link layer's work for one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerTarget {
    Node(NodeId, u64),
    Retransmit(MachineId),
    Acknowledge(MachineId),
    AcknowledgeGap(MachineId),
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
    timers: FxHashMap<TimerId, TimerTarget>,
    rng: ChaCha8Rng,
    effects: Vec<Effect>,
}

/// Holds and drives the nodes of one machine.
pub struct NodeManager {
    /// Iterated in insertion order (IndexMap), hashed with Fx for speed.
    nodes: IndexMap<NodeId, Slot, FxBuildHasher>,
    core: Core,
    /// The reliable link to each peer machine.
    links: Links,
    /// Whether envelopes to other machines go through the link layer.
    reliable: bool,
    /// Envelopes that overtook the spawn of their node, waiting for it.
    spawn_order: SpawnOrder,
    /// An empty buffer kept for [`NodeManager::drain_effects`], so it allocates nothing.
    spare_effects: Vec<Effect>,
    /// What this machine counted: deliveries, envelopes it could not deliver, and the link
    /// layer's work over all of its links.
    stats: Counters,
}

impl NodeManager {
    /// A manager for `machine` with no nodes. Its random generator is stream `machine + 1` of
    /// ChaCha8 seeded with `seed`, so every machine draws its own reproducible sequence.
    pub fn new(machine: MachineId, registry: Arc<NodeRegistry>, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::from(machine.0) + 1);
        NodeManager {
            nodes: IndexMap::default(),
            links: Links::default(),
            reliable: true,
            spawn_order: SpawnOrder::default(),
            spare_effects: Vec::new(),
            stats: Counters::default(),
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

    /// Turns the reliable link layer on (the default) or off. Off, envelopes to other machines
    /// are sent once and whatever the network loses stays lost — useful to show what the layer
    /// is for. Every machine of a system must agree.
    pub fn set_reliable(&mut self, reliable: bool) {
        self.reliable = reliable;
    }

    /// What this machine has done so far (`messages_delivered`, `undeliverable`, the link
    /// layer's counters), and what it has in flight now: packets sent to other machines and not
    /// yet acknowledged, and envelopes waiting for their node's spawn.
    pub fn stats(&self) -> Counters {
        Counters {
            in_flight: (self.unacknowledged() + self.waiting_for_spawn()) as u64,
            ..self.stats
        }
    }

    /// Packets sent to other machines and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.links.unacknowledged()
    }

    /// Messages and terminations that arrived before the spawn of their node, waiting for it.
    pub fn waiting_for_spawn(&self) -> usize {
        self.spawn_order.held()
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
    ///
    /// A link-layer packet may make several payloads deliverable at once (when it fills a gap);
    /// they are handled in order, and the result is that of the last.
    pub fn handle(&mut self, now_us: u64, envelope: Envelope) -> Result<Handled, NodeFailure> {
        self.core.now_us = now_us;
        match envelope {
            Envelope::Sequenced {
                from,
                seq,
                sent_us,
                payload,
            } => {
                let addressee = match &*payload {
                    Envelope::Deliver { to, .. } => Some(*to),
                    _ => None,
                };
                let link = self.links.to(from);
                let (received, schedule_ack) = link.receive(seq, sent_us, *payload);
                let probe = link.peer_heard(now_us);
                self.retransmit(from, probe.into_iter().collect());
                if schedule_ack {
                    self.core
                        .set_timer(ACK_DELAY_MS * 1000, TimerTarget::Acknowledge(from));
                }
                if received.duplicate {
                    self.stats.duplicates_suppressed += 1;
                    if let Some(slot) = addressee.and_then(|id| self.nodes.get_mut(&id)) {
                        slot.counters.duplicates_suppressed += 1;
                    }
                }
                let mut outcome = Handled::Done;
                let mut next = received.deliverable;
                while let Some(payload) = next {
                    outcome = self.handle_payload(payload)?;
                    next = self.links.get_mut(from).and_then(|link| link.next_ready());
                }
                Ok(outcome)
            }
            Envelope::Ack {
                from,
                upto,
                also,
                echo_us,
                echo_seq,
            } => {
                let link = self.links.to(from);
                let settled = link.acknowledge(
                    now_us,
                    &AckRange {
                        upto,
                        also,
                        echo_us,
                        echo_seq,
                    },
                );
                for sender in settled.credited {
                    self.stats.acknowledged += 1;
                    if let Some(slot) = sender.and_then(|id| self.nodes.get_mut(&id)) {
                        slot.counters.acknowledged += 1;
                    }
                }
                let mut resend = settled.resend;
                resend.extend(link.peer_heard(now_us));
                self.links.measured(from);
                self.retransmit(from, resend);
                self.core.wake_link(settled.wake_us, from);
                Ok(Handled::Done)
            }
            payload => self.handle_payload(payload),
        }
    }

    fn handle_payload(&mut self, envelope: Envelope) -> Result<Handled, NodeFailure> {
        let now_us = self.core.now_us;
        let outcome = match envelope {
            Envelope::Deliver { from, to, message } => {
                let Some(slot) = self.nodes.get_mut(&to) else {
                    return Ok(self.missing(to, Envelope::Deliver { from, to, message }));
                };
                let me = NodeHandle {
                    id: to,
                    machine: self.core.machine,
                };
                let mut ctl = Context::new(&mut self.core, me);
                slot.node
                    .receive(&mut ctl, from, &message)
                    .map_err(|error| failure(me, &slot.node_type, error))?;
                self.stats.messages_delivered += 1;
                Handled::Done
            }
            // A node is created once: a spawn that arrives again (a duplicate the link layer did
            // not see, with reliable delivery off) must not wipe the node's state.
            Envelope::Spawn { id, .. } if self.nodes.contains_key(&id) => Handled::Done,
            Envelope::Spawn { id, config } => {
                self.create(now_us, id, &config)?;
                let (released, lost) = self.spawn_order.spawned(id);
                self.stats.undeliverable += lost as u64;
                for envelope in released {
                    self.handle_payload(envelope)?;
                }
                Handled::Done
            }
            Envelope::Terminate { id } => match self.nodes.shift_remove(&id) {
                Some(_) => {
                    self.core.timers.retain(
                        |_, target| !matches!(target, TimerTarget::Node(owner, _) if *owner == id),
                    );
                    Handled::Done
                }
                None => self.missing(id, Envelope::Terminate { id }),
            },
            Envelope::AskSpawns { from } => {
                let below = self.core.next_serial;
                let me = self.core.machine;
                self.core.effects.push(Effect::Transmit {
                    to: from,
                    envelope: Envelope::SpawnsSent { from: me, below },
                });
                Handled::Done
            }
            Envelope::SpawnsSent { from, below } => {
                let (lost, again) = self.spawn_order.answered(from, below);
                self.stats.undeliverable += lost as u64;
                if again {
                    self.ask_spawns(from);
                }
                Handled::Done
            }
            Envelope::Sequenced { .. } | Envelope::Ack { .. } => Handled::Done,
        };
        Ok(outcome)
    }

    /// Holds or gives up an envelope for node `id`, which this machine does not have.
    fn missing(&mut self, id: NodeId, envelope: Envelope) -> Handled {
        match self.spawn_order.missing(self.core.machine, id, envelope) {
            Missing::Held { ask } => {
                if let Some(origin) = ask {
                    self.ask_spawns(origin);
                }
                Handled::Held(id)
            }
            Missing::Undeliverable => {
                self.stats.undeliverable += 1;
                Handled::NoSuchNode(id)
            }
        }
    }

    /// Asks machine `origin` which spawns it has sent this one.
    fn ask_spawns(&mut self, origin: MachineId) {
        let from = self.core.machine;
        self.core.effects.push(Effect::Transmit {
            to: origin,
            envelope: Envelope::AskSpawns { from },
        });
    }

    /// Fires `timer` at `now_us`. A timer that was cancelled, or whose node is gone, does nothing.
    pub fn fire_timer(&mut self, now_us: u64, timer: TimerId) -> Result<(), NodeFailure> {
        self.core.now_us = now_us;
        match self.core.timers.remove(&timer) {
            None => Ok(()),
            Some(TimerTarget::Node(id, tag)) => {
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
            Some(TimerTarget::Retransmit(peer)) => {
                let link = self.links.to(peer);
                let (due, wake) = link.on_timer(now_us);
                self.retransmit(peer, due);
                self.core.wake_link(wake, peer);
                Ok(())
            }
            Some(TimerTarget::Acknowledge(peer)) => {
                self.acknowledge(peer);
                Ok(())
            }
            Some(TimerTarget::AcknowledgeGap(peer)) => {
                if self.links.to(peer).gap_ack_due() {
                    self.acknowledge(peer);
                }
                Ok(())
            }
        }
    }

    /// Sends `peer` an acknowledgement of what this machine has of its packets, and schedules the
    /// next one if some wait beyond a gap.
    fn acknowledge(&mut self, peer: MachineId) {
        let link = self.links.to(peer);
        let AckRange {
            upto,
            also,
            echo_us,
            echo_seq,
        } = link.take_ack();
        let again = link.arm_gap_ack();
        let from = self.core.machine;
        self.core.effects.push(Effect::Transmit {
            to: peer,
            envelope: Envelope::Ack {
                from,
                upto,
                also,
                echo_us,
                echo_seq,
            },
        });
        if let Some(after_us) = again {
            self.core
                .set_timer(after_us, TimerTarget::AcknowledgeGap(peer));
        }
    }

    /// Sends packets to `peer` again, crediting their senders.
    fn retransmit(&mut self, peer: MachineId, packets: Vec<Resend>) {
        for (seq, payload, sender) in packets {
            self.stats.retransmitted += 1;
            if let Some(slot) = sender.and_then(|id| self.nodes.get_mut(&id)) {
                slot.counters.retransmitted += 1;
            }
            self.core.transmit_packet(peer, seq, payload);
        }
    }

    /// Whether the last call produced effects that have not been drained yet.
    pub fn has_effects(&self) -> bool {
        !self.core.effects.is_empty()
    }

    /// Moves every effect produced since the last call onto the end of `into`, in order.
    /// Payloads for other machines are first handed to the reliable link layer, which numbers
    /// them, keeps them for retransmission, and sends them as `Sequenced` packets.
    pub fn drain_effects(&mut self, into: &mut Vec<Effect>) {
        if !self.reliable {
            into.append(&mut self.core.effects);
            return;
        }
        // The node's effects are read from one buffer while the results are written into the
        // other; both keep their capacity from call to call.
        let mut effects = std::mem::replace(
            &mut self.core.effects,
            std::mem::take(&mut self.spare_effects),
        );
        for effect in effects.drain(..) {
            match effect {
                Effect::Transmit { to, envelope }
                    if to != self.core.machine && envelope.is_payload() =>
                {
                    let sender = match &envelope {
                        Envelope::Deliver { from, .. } => from.map(|handle| handle.id),
                        _ => None,
                    };
                    self.stats.sent += 1;
                    if let Some(slot) = sender.and_then(|id| self.nodes.get_mut(&id)) {
                        slot.counters.sent += 1;
                    }
                    let now_us = self.core.now_us;
                    let (seq, wake) = self.links.to(to).send(now_us, envelope.clone(), sender);
                    self.core.transmit_packet(to, seq, envelope);
                    self.core.wake_link(wake, to);
                }
                other => self.core.effects.push(other),
            }
        }
        // Effects the link layer added (packets, timers) come after the node's own, in order.
        into.append(&mut self.core.effects);
        self.spare_effects = effects;
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

    fn state_of(&self, id: NodeId, slot: &Slot) -> NodeState {
        NodeState {
            handle: NodeHandle {
                id,
                machine: self.core.machine,
            },
            node_type: slot.node_type.clone(),
            state: slot.node.state(),
            counters: slot.counters,
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
        self.nodes.insert(
            id,
            Slot {
                node,
                node_type,
                counters: Counters::default(),
            },
        );
        Ok(())
    }
}

impl Core {
    /// Schedules a timer for `target` after `after_us`.
    fn set_timer(&mut self, after_us: u64, target: TimerTarget) -> TimerId {
        let timer = TimerId(self.next_timer);
        self.next_timer += 1;
        self.timers.insert(timer, target);
        self.effects.push(Effect::Wake {
            at_us: self.now_us.saturating_add(after_us),
            timer,
        });
        timer
    }

    /// Schedules the retransmission timer of the link to `peer` for `wake_us`, if it must wake.
    fn wake_link(&mut self, wake_us: Option<u64>, peer: MachineId) {
        if let Some(at_us) = wake_us {
            self.set_timer(
                at_us.saturating_sub(self.now_us),
                TimerTarget::Retransmit(peer),
            );
        }
    }

    fn transmit_packet(&mut self, to: MachineId, seq: u64, payload: Envelope) {
        self.effects.push(Effect::Transmit {
            to,
            envelope: Envelope::Sequenced {
                from: self.machine,
                seq,
                sent_us: self.now_us,
                payload: Box::new(payload),
            },
        });
    }

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
