//! The NodeManager: holds one machine's nodes, routes what arrives to them, keeps their timers,
//! and hands everything they want done to the hardware as [`Effect`]s.
//!
//! It is the single implementation of [`MachineController`] and is the same code in every mode:
//! the simulator, a container's machine process and a cloud instance all drive a `NodeManager`
//! and carry out its effects in their own way. It never reads a clock: the hardware passes the
//! current time into every call.

mod context;
mod disk;
mod envelope;
mod failure;
mod link;
mod links;
mod rtt;
mod spawn_order;

pub use disk::{Cursor, Disk, StoredNode};
pub use envelope::Envelope;
pub use failure::NodeFailure;
pub use link::ACK_DELAY_MS;
pub use rtt::{INITIAL_RTO_MS, MAX_UNMEASURED_BACKOFF_MS, MIN_RTO_MS, PROBE_FLOOR_MS};

use std::sync::Arc;

use indexmap::IndexMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle, NodeId};
use crate::node::{MachineController, Node, NodeError, NodeRegistry, Persisted, TimerId};
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

/// One node's observable state, as reported to tests, scenario reports and control requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// The node.
    pub handle: NodeHandle,
    /// Its type, from its config.
    pub node_type: String,
    /// What [`Node::state`] returned.
    pub state: serde_json::Value,
    /// Messages handed to this node since its machine last booted (`messages_delivered`), and
    /// what the reliable link layer did for its messages (`sent`, `acknowledged`,
    /// `retransmitted`, `duplicates_suppressed`); the other counters stay zero.
    #[serde(default)]
    pub counters: Counters,
}

struct Slot {
    node: Box<dyn Node>,
    node_type: String,
    /// The config it was created from (on the machine's disk).
    config: NodeConfig,
    counters: Counters,
    /// Its random stream, made on its first draw (most nodes never draw).
    random: Option<Box<ChaCha8Rng>>,
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
    /// How many times this machine has booted after a crash.
    incarnation: u32,
    /// What each node last persisted (on the machine's disk); looked up, never iterated.
    persisted: FxHashMap<NodeId, Persisted>,
    registry: Arc<NodeRegistry>,
    now_us: u64,
    next_serial: u32,
    next_timer: u64,
    /// Pending timers; looked up and removed, never iterated, so hash order cannot leak.
    timers: FxHashMap<TimerId, TimerTarget>,
    /// The system's seed, from which each node's random stream is drawn.
    seed: u64,
    effects: Vec<Effect>,
}

impl Core {
    /// The random stream of node `id` in this incarnation of the machine: ChaCha8 keyed with the
    /// system's seed and the incarnation, on stream `id`. A node's draws depend on nothing but
    /// those, so they do not change when another node is placed on the same machine.
    fn random_of(&self, id: NodeId) -> ChaCha8Rng {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..12].copy_from_slice(&self.incarnation.to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(u64::from(id.origin) << 32 | u64::from(id.serial));
        rng
    }
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
    /// The nodes whose state may have changed since [`NodeManager::take_touched`] was last
    /// called (created, handed a message or a timer, terminated), if it is kept.
    touched: Option<Vec<NodeId>>,
}

impl NodeManager {
    /// A manager for `machine` with no nodes. Each of its nodes draws from a random stream of
    /// its own, reproducible from `seed`, its id and the machine's incarnation.
    pub fn new(machine: MachineId, registry: Arc<NodeRegistry>, seed: u64) -> Self {
        NodeManager {
            nodes: IndexMap::default(),
            links: Links::default(),
            reliable: true,
            spawn_order: SpawnOrder::default(),
            spare_effects: Vec::new(),
            stats: Counters::default(),
            touched: None,
            core: Core {
                machine,
                incarnation: 0,
                persisted: FxHashMap::default(),
                registry,
                now_us: 0,
                next_serial: 0,
                next_timer: 0,
                timers: FxHashMap::default(),
                seed,
                effects: Vec::new(),
            },
        }
    }

    /// Keeps the ids of the nodes whose state may change, for [`NodeManager::take_touched`]
    /// (off by default: only a system that checks invariants after every event asks).
    pub fn track_touched(&mut self) {
        self.touched.get_or_insert_with(Vec::new);
    }

    /// Moves the ids of the nodes touched since the last call onto `into` (in the order they
    /// were touched, possibly more than once); nothing unless tracking is on.
    pub fn take_touched(&mut self, into: &mut Vec<NodeId>) {
        if let Some(touched) = &mut self.touched {
            into.append(touched);
        }
    }

    /// The machine this manager runs.
    pub fn machine(&self) -> MachineId {
        self.core.machine
    }

    /// How many times this machine has booted after a crash (0 on its first boot).
    pub fn incarnation(&self) -> u32 {
        self.core.incarnation
    }

    /// The machine's disk as it stands: what would survive a crash now.
    pub fn disk(&self) -> Disk {
        Disk {
            incarnation: self.core.incarnation,
            next_serial: self.core.next_serial,
            nodes: self
                .nodes
                .iter()
                .map(|(id, slot)| StoredNode {
                    id: *id,
                    config: slot.config.clone(),
                    persisted: self.core.persisted.get(id).cloned(),
                })
                .collect(),
            cursors: self.links.cursors(),
            peers: self.links.peers(),
            outbox: self.links.unacknowledged_runtime(),
        }
    }

    /// Cuts the machine's power: everything in memory is gone, and what was on its disk is left.
    pub fn crash(self) -> Disk {
        self.disk()
    }

    /// Boots `machine` again from `disk`, as its next incarnation: every node on the disk is
    /// built again from its config and recovers from what it persisted (a node that persisted
    /// nothing starts afresh); the link layer receives each peer's stream from where the crashed
    /// incarnation had delivered it, starts its own streams over, and tells every peer it knew
    /// that it rebooted. Each node's random stream is a new one in each incarnation.
    pub fn restart(
        machine: MachineId,
        registry: Arc<NodeRegistry>,
        seed: u64,
        reliable: bool,
        disk: Disk,
        now_us: u64,
    ) -> Result<Self, NodeFailure> {
        let mut manager = NodeManager::new(machine, registry, seed);
        manager.reliable = reliable;
        manager.core.incarnation = disk.incarnation.saturating_add(1);
        manager.core.next_serial = disk.next_serial;
        manager.core.now_us = now_us;
        manager.links = Links::resumed(&disk.cursors);
        for stored in disk.nodes {
            let me = NodeHandle {
                id: stored.id,
                machine,
            };
            // Read back as JSON, as a disk is read.
            let kind = stored.config.kind();
            let json = stored
                .persisted
                .as_ref()
                .map(|persisted| persisted.read_back(kind))
                .transpose()
                .map_err(|error| failure(me, kind, error, now_us))?;
            if let Some(persisted) = stored.persisted {
                manager.core.persisted.insert(stored.id, persisted);
            }
            manager.build(stored.id, &stored.config, Boot::Recover(json.as_ref()))?;
        }
        for (to, envelope) in disk.outbox {
            manager.core.effects.push(Effect::Transmit { to, envelope });
        }
        let incarnation = manager.core.incarnation;
        for peer in disk.peers {
            manager.core.effects.push(Effect::Transmit {
                to: peer,
                envelope: Envelope::Rebooted {
                    from: machine,
                    incarnation,
                },
            });
        }
        Ok(manager)
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

    /// Sends `message` to `to` at `now_us` as if node `from` of this machine had sent it (a
    /// test's client speaks through its node this way); `false` if this machine has no such
    /// node.
    pub fn send_as(&mut self, now_us: u64, from: NodeId, to: NodeHandle, message: Message) -> bool {
        if !self.nodes.contains_key(&from) {
            return false;
        }
        self.core.now_us = now_us;
        let me = NodeHandle {
            id: from,
            machine: self.core.machine,
        };
        Context::new(&mut self.core, me, &mut None).send(to, message);
        true
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
                incarnation,
                seq,
                sent_us,
                payload,
            } => {
                let addressee = match &*payload {
                    Envelope::Deliver { to, .. } => Some(*to),
                    _ => None,
                };
                self.heard(from, incarnation);
                let link = self.links.to(from);
                if !link.accepts(incarnation) {
                    self.stats.stale += 1;
                    return Ok(Handled::Done);
                }
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
                incarnation,
                session,
                upto,
                also,
                echo_us,
                echo_seq,
            } => {
                self.heard(from, incarnation);
                if session != self.core.incarnation {
                    // It acknowledges a stream of this machine's before its last crash.
                    self.stats.stale += 1;
                    return Ok(Handled::Done);
                }
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
            Envelope::Rebooted { from, incarnation } => {
                self.heard(from, incarnation);
                Ok(Handled::Done)
            }
            payload => self.handle_payload(payload),
        }
    }

    /// Hears of `peer`'s incarnation: if the peer rebooted since this machine last heard of it,
    /// every packet it has not acknowledged is sent again.
    fn heard(&mut self, peer: MachineId, incarnation: u32) {
        let now_us = self.core.now_us;
        let link = self.links.to(peer);
        let resend = link.heard_incarnation(now_us, incarnation);
        if resend.is_empty() {
            return;
        }
        let wake = link.wake();
        self.retransmit(peer, resend);
        self.core.wake_link(wake, peer);
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
                touch(&mut self.touched, to);
                let mut ctl = Context::new(&mut self.core, me, &mut slot.random);
                slot.node
                    .receive(&mut ctl, from, &message)
                    .map_err(|error| failure(me, &slot.node_type, error, now_us))?;
                self.stats.messages_delivered += 1;
                slot.counters.messages_delivered += 1;
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
                    touch(&mut self.touched, id);
                    self.core.persisted.remove(&id);
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
            Envelope::Sequenced { .. } | Envelope::Ack { .. } | Envelope::Rebooted { .. } => {
                Handled::Done
            }
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
                touch(&mut self.touched, id);
                let mut ctl = Context::new(&mut self.core, me, &mut slot.random);
                slot.node
                    .timer(&mut ctl, tag)
                    .map_err(|error| failure(me, &slot.node_type, error, now_us))
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
        let (session, _) = link.cursor();
        let from = self.core.machine;
        let incarnation = self.core.incarnation;
        self.core.effects.push(Effect::Transmit {
            to: peer,
            envelope: Envelope::Ack {
                from,
                incarnation,
                session,
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
        self.build(id, config, Boot::Start)
    }

    /// Builds node `id` from `config` and starts it, or has it recover what it persisted.
    fn build(
        &mut self,
        id: NodeId,
        config: &NodeConfig,
        boot: Boot<'_>,
    ) -> Result<(), NodeFailure> {
        let me = NodeHandle {
            id,
            machine: self.core.machine,
        };
        let node_type = config.kind().to_owned();
        let now_us = self.core.now_us;
        let mut node = self
            .core
            .registry
            .build(config)
            .map_err(|error| failure(me, &node_type, error, now_us))?;
        touch(&mut self.touched, id);
        let mut random = None;
        let mut ctl = Context::new(&mut self.core, me, &mut random);
        match boot {
            Boot::Start => node.start(&mut ctl),
            Boot::Recover(persisted) => node.recover(&mut ctl, persisted),
        }
        .map_err(|error| failure(me, &node_type, error, now_us))?;
        self.nodes.insert(
            id,
            Slot {
                node,
                node_type,
                config: config.clone(),
                counters: Counters::default(),
                random,
            },
        );
        Ok(())
    }
}

/// Notes in `touched`, if it is kept, that node `id`'s state may have changed.
fn touch(touched: &mut Option<Vec<NodeId>>, id: NodeId) {
    if let Some(touched) = touched {
        touched.push(id);
    }
}

/// How a node begins on its machine.
enum Boot<'a> {
    /// Created now.
    Start,
    /// Built again after its machine rebooted, with what it last persisted.
    Recover(Option<&'a serde_json::Value>),
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
                incarnation: self.incarnation,
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

fn failure(node: NodeHandle, node_type: &str, error: NodeError, now_us: u64) -> NodeFailure {
    NodeFailure::new(node, node_type, &error, crate::time::Micros(now_us))
}
