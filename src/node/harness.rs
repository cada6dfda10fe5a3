//! Unit-testing one node without a simulator: hand it a message or let time pass, then look at
//! what it sent, spawned, set, cancelled and terminated, and at its typed state.
//!
//! ```
//! use dist_zero::node::{Ctl, Harness, NoConfig, NodeError, ReplyTo, TypedNode, Volatile};
//! use dist_zero::messages::NodeHandle;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! #[serde(tag = "type", rename_all = "snake_case")]
//! enum Ping {
//!     Ping { n: u32, reply_to: ReplyTo<Ping> },
//! }
//!
//! /// The one timer: answer the last ping.
//! struct Answer;
//!
//! /// Answers every ping with the next number, after 10 ms.
//! struct Echo {
//!     last: Option<(ReplyTo<Ping>, u32)>,
//! }
//!
//! impl TypedNode for Echo {
//!     const TYPE: &'static str = "Echo";
//!     type Config = NoConfig;
//!     type Message = Ping;
//!     type State = u32;
//!     type Timer = Answer;
//!     type Durable = Volatile;
//!
//!     fn new(_: NoConfig) -> Result<Self, NodeError> {
//!         Ok(Echo { last: None })
//!     }
//!
//!     fn receive(&mut self, ctl: &mut Ctl<'_, Self>, _: Option<NodeHandle>, message: Ping)
//!         -> Result<(), NodeError> {
//!         let Ping::Ping { n, reply_to } = message;
//!         self.last = Some((reply_to, n));
//!         ctl.set_timer(10, Answer);
//!         Ok(())
//!     }
//!
//!     fn timer(&mut self, ctl: &mut Ctl<'_, Self>, _: Answer) -> Result<(), NodeError> {
//!         if let Some((to, n)) = self.last {
//!             ctl.reply(to, &Ping::Ping { n: n + 1, reply_to: ctl.me().into() })?;
//!         }
//!         Ok(())
//!     }
//!
//!     fn state(&self) -> u32 {
//!         self.last.map_or(0, |(_, n)| n)
//!     }
//! }
//!
//! let mut echo = Harness::<Echo>::new(NoConfig {}).unwrap();
//! let peer = Harness::<Echo>::peer::<Echo>(1, 7);
//! let ping = Ping::Ping { n: 4, reply_to: peer.into() };
//! echo.receive(Some(peer.untyped()), ping).unwrap();
//! assert!(echo.sent().is_empty(), "nothing before the timer");
//! echo.advance(10).unwrap();
//! let sent = echo.take_sent();
//! assert_eq!(sent[0].to, peer.untyped());
//! assert!(matches!(sent[0].decode::<Echo>(), Ok(Ping::Ping { n: 5, .. })));
//! assert_eq!(echo.state(), 4);
//! ```

use std::collections::BTreeMap;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::typed::Typed;
use super::{Handle, MachineController, Node, NodeError, Persisted, TimerId, TypedNode};
use crate::messages::{MachineId, Message, MessageError, NodeConfig, NodeHandle, NodeId};

/// A message the node sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The receiver.
    pub to: NodeHandle,
    /// The message, as it went on the wire.
    pub message: Message,
}

impl Sent {
    /// Reads the message as one for a node of type `N`.
    pub fn decode<N: TypedNode>(&self) -> Result<N::Message, MessageError> {
        self.message.decode()
    }
}

/// A node the node spawned.
#[derive(Debug, Clone, PartialEq)]
pub struct Spawned {
    /// Where.
    pub machine: MachineId,
    /// The handle the spawn returned.
    pub handle: NodeHandle,
    /// The config, as it went on the wire.
    pub config: NodeConfig,
}

impl Spawned {
    /// Reads the config as that of a node of type `N`.
    pub fn decode<N: TypedNode>(&self) -> Result<N::Config, NodeError> {
        super::typed::read_config::<N>(&self.config)
    }

    /// The spawned node's type.
    pub fn node_type(&self) -> &str {
        self.config.kind()
    }
}

/// The controller of a [`Harness`]: records what the node asks for.
struct Recorder {
    me: NodeHandle,
    now_ms: u64,
    next_serial: u32,
    next_timer: u64,
    /// Pending timers: id → (due ms, tag).
    timers: BTreeMap<TimerId, (u64, u64)>,
    rng: ChaCha8Rng,
    sent: Vec<Sent>,
    spawned: Vec<Spawned>,
    cancelled: Vec<TimerId>,
    terminated: Vec<NodeHandle>,
    /// What the node last persisted.
    persisted: Option<Persisted>,
}

impl MachineController for Recorder {
    fn me(&self) -> NodeHandle {
        self.me
    }

    fn machine(&self) -> MachineId {
        self.me.machine
    }

    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn send(&mut self, to: NodeHandle, message: Message) {
        self.sent.push(Sent { to, message });
    }

    fn spawn(&mut self, machine: MachineId, config: NodeConfig) -> Result<NodeHandle, NodeError> {
        self.next_serial += 1;
        let handle = NodeHandle {
            id: NodeId {
                origin: self.me.machine.0,
                serial: self.next_serial,
            },
            machine,
        };
        self.spawned.push(Spawned {
            machine,
            handle,
            config,
        });
        Ok(handle)
    }

    fn set_timer(&mut self, after_ms: u64, tag: u64) -> TimerId {
        let timer = TimerId(self.next_timer);
        self.next_timer += 1;
        self.timers
            .insert(timer, (self.now_ms.saturating_add(after_ms), tag));
        timer
    }

    fn cancel_timer(&mut self, timer: TimerId) {
        if self.timers.remove(&timer).is_some() {
            self.cancelled.push(timer);
        }
    }

    fn random(&mut self) -> &mut dyn RngCore {
        &mut self.rng
    }

    fn terminate(&mut self, node: NodeHandle) {
        self.terminated.push(node);
    }

    fn persist(&mut self, state: Persisted) {
        self.persisted = Some(state);
    }
}

/// Drives one node of type `N` by hand, with a recording controller and a clock that moves only
/// when told to. Messages go through their JSON wire form, as in every mode, with the wire check
/// on (see [`NodeRegistry::set_wire_check`](super::NodeRegistry::set_wire_check)).
pub struct Harness<N: TypedNode> {
    node: Typed<N>,
    ctl: Recorder,
    /// The config the node was built from (to build it again after a crash).
    config: NodeConfig,
}

impl<N: TypedNode> Harness<N> {
    /// Builds the node from `config` as node `n0.0` on machine 0, at time 0, and starts it.
    pub fn new(config: N::Config) -> Result<Self, NodeError> {
        Self::at(Self::handle(0, 0), config, 0)
    }

    /// Builds the node from `config` as `me`, with randomness seeded by `seed`, and starts it.
    pub fn at(me: NodeHandle, config: N::Config, seed: u64) -> Result<Self, NodeError> {
        let config = super::config_of::<N>(&config)?;
        let mut harness = Harness {
            node: Typed::<N>::build(&config, true)?,
            config,
            ctl: Recorder {
                me,
                now_ms: 0,
                next_serial: me.id.serial,
                next_timer: 0,
                timers: BTreeMap::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                sent: Vec::new(),
                spawned: Vec::new(),
                cancelled: Vec::new(),
                terminated: Vec::new(),
                persisted: None,
            },
        };
        harness.node.start(&mut harness.ctl)?;
        Ok(harness)
    }

    /// A handle for node `n<machine>.<serial>` on `machine`, to stand for a peer in a test.
    pub fn handle(machine: u32, serial: u32) -> NodeHandle {
        NodeHandle {
            id: NodeId {
                origin: machine,
                serial,
            },
            machine: MachineId(machine),
        }
    }

    /// A typed handle for a node of type `M`, `n<machine>.<serial>` on `machine`, to stand for
    /// a peer in a test (what the peer would send as `ctl.me()`).
    pub fn peer<M: TypedNode>(machine: u32, serial: u32) -> Handle<M> {
        Handle::assume(Self::handle(machine, serial))
    }

    /// The node's own handle.
    pub fn me(&self) -> NodeHandle {
        self.ctl.me
    }

    /// Delivers `message` from `from` (through its JSON form).
    pub fn receive(
        &mut self,
        from: Option<NodeHandle>,
        message: N::Message,
    ) -> Result<(), NodeError> {
        let message = super::message_for::<N>(&message)?;
        self.receive_wire(from, &message)
    }

    /// Delivers a message as it came off the wire (to test what the node rejects).
    pub fn receive_wire(
        &mut self,
        from: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        self.node.receive(&mut self.ctl, from, message)
    }

    /// Lets `ms` milliseconds pass, firing every timer that falls due, in order.
    pub fn advance(&mut self, ms: u64) -> Result<(), NodeError> {
        let until = self.ctl.now_ms.saturating_add(ms);
        while let Some((timer, at_ms, tag)) = self.next_due(until) {
            self.ctl.timers.remove(&timer);
            self.ctl.now_ms = at_ms;
            self.node.timer(&mut self.ctl, tag)?;
        }
        self.ctl.now_ms = until;
        Ok(())
    }

    fn next_due(&self, until: u64) -> Option<(TimerId, u64, u64)> {
        self.ctl
            .timers
            .iter()
            .map(|(timer, (at_ms, tag))| (*timer, *at_ms, *tag))
            .filter(|(_, at_ms, _)| *at_ms <= until)
            .min_by_key(|(timer, at_ms, _)| (*at_ms, *timer))
    }

    /// Milliseconds since the harness started.
    pub fn now_ms(&self) -> u64 {
        self.ctl.now_ms
    }

    /// When the timers set and not yet fired or cancelled fall due, earliest first.
    pub fn pending_timers(&self) -> Vec<u64> {
        let mut timers: Vec<u64> = self.ctl.timers.values().map(|(at_ms, _)| *at_ms).collect();
        timers.sort_unstable();
        timers
    }

    /// What the node last persisted, read back as its [`TypedNode::Durable`] (`None` if it never
    /// persisted anything).
    pub fn persisted(&self) -> Result<Option<N::Durable>, NodeError> {
        self.ctl
            .persisted
            .as_ref()
            .map(|persisted| {
                persisted
                    .to_json()
                    .and_then(serde_json::from_value)
                    .map_err(|error| {
                        NodeError::Message(MessageError::Malformed {
                            kind: N::TYPE.to_owned(),
                            reason: format!("what it persisted does not read back: {error}"),
                        })
                    })
            })
            .transpose()
    }

    /// Crashes the node's machine and boots it again: the node is built afresh from its config,
    /// its timers are gone, and it recovers from what it last persisted (or starts afresh). What
    /// it sent, spawned and cancelled before is kept in the record.
    pub fn crash_and_restart(&mut self) -> Result<(), NodeError> {
        self.node = Typed::<N>::build(&self.config, true)?;
        self.ctl.timers.clear();
        let persisted = self
            .ctl
            .persisted
            .as_ref()
            .map(|persisted| persisted.read_back(N::TYPE))
            .transpose()?;
        self.node.recover(&mut self.ctl, persisted.as_ref())
    }

    /// The messages sent so far.
    pub fn sent(&self) -> &[Sent] {
        &self.ctl.sent
    }

    /// Takes the messages sent so far, leaving none.
    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.ctl.sent)
    }

    /// The nodes spawned so far.
    pub fn spawned(&self) -> &[Spawned] {
        &self.ctl.spawned
    }

    /// The timers cancelled so far (those that were pending).
    pub fn cancelled(&self) -> &[TimerId] {
        &self.ctl.cancelled
    }

    /// The nodes terminated so far.
    pub fn terminated(&self) -> &[NodeHandle] {
        &self.ctl.terminated
    }

    /// The node's typed state.
    pub fn state(&self) -> N::State {
        self.node.node.state()
    }

    /// The node itself.
    pub fn node(&self) -> &N {
        &self.node.node
    }
}
