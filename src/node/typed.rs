//! Typed nodes: a node type declares its config, its messages and its observable state as Rust
//! types, and the runtime does the JSON.
//!
//! The wire stays what it is — JSON objects with a `"type"` key — but node code never sees it:
//! a [`TypedNode`] receives its own `Message` type (usually an enum with
//! `#[serde(tag = "type")]`), sends through [`Ctl`] to [`Handle`]s that know the receiver's type,
//! and spawns nodes from their typed config. A message the receiving type cannot read is
//! rejected by the runtime, naming the node type and the message.

use std::fmt;
use std::marker::PhantomData;

use rand::RngCore;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::config::WithoutType;
use super::{MachineController, Node, NodeError, Persisted, TimerId};
use crate::messages::{MachineId, Message, MessageError, NodeConfig, NodeHandle};

/// A node type written in plain typed Rust. Register it with
/// [`NodeRegistry::add`](super::NodeRegistry::add); its name is [`TypedNode::TYPE`], given once.
pub trait TypedNode: Sized + Send + 'static {
    /// The type's name: the `"type"` of its configs, as registered.
    const TYPE: &'static str;
    /// What a spawn of this type carries (the config's other keys). Use [`NoConfig`] for none.
    type Config: Serialize + DeserializeOwned;
    /// The messages this type receives: a serde type that encodes as a JSON object with a
    /// `"type"` key (an enum with `#[serde(tag = "type")]`).
    type Message: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// What the node shows to tests, reports and checks.
    type State: Serialize + DeserializeOwned;
    /// The node's timers: the value given to [`Ctl::set_timer`] comes back to
    /// [`TypedNode::timer`] when the timer fires. Use [`NoTimer`] for none.
    type Timer: Send + 'static;
    /// What the node writes to its machine's disk with [`Ctl::persist`], and recovers from with
    /// [`TypedNode::recover`] after a crash. Use [`Volatile`] for a node that persists nothing.
    type Durable: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Builds the node from its config (it starts with [`TypedNode::start`]).
    fn new(config: Self::Config) -> Result<Self, NodeError>;

    /// Called once, right after the node is created on its machine.
    fn start(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        let _ = ctl;
        Ok(())
    }

    /// Called instead of [`TypedNode::start`] when the node is built again from its config
    /// after its machine crashed and rebooted, with what it last persisted. A node that never
    /// persisted anything starts afresh ([`TypedNode::start`]) instead. By default it starts
    /// afresh either way.
    fn recover(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        durable: Self::Durable,
    ) -> Result<(), NodeError> {
        let _ = durable;
        self.start(ctl)
    }

    /// Handles one message; `from` is `None` for messages from outside the system.
    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: Option<NodeHandle>,
        message: Self::Message,
    ) -> Result<(), NodeError>;

    /// Handles a timer set with [`Ctl::set_timer`].
    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, timer: Self::Timer) -> Result<(), NodeError> {
        let _ = ctl;
        let _ = timer;
        Ok(())
    }

    /// The node's observable state.
    fn state(&self) -> Self::State;
}

/// The [`TypedNode::Timer`] of a node type that sets no timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTimer {}

/// The [`TypedNode::Durable`] of a node type that persists nothing: it starts afresh after a
/// crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Volatile {}

/// The config of a node type that needs none (encodes as an empty object).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoConfig {}

/// A handle to a node of type `N`: sending through it is type-checked. It travels in messages
/// exactly as a [`NodeHandle`] does.
pub struct Handle<N> {
    untyped: NodeHandle,
    node_type: PhantomData<fn() -> N>,
}

impl<N> Handle<N> {
    /// Asserts that `untyped` names a node of type `N` (the runtime rejects messages a node
    /// cannot read, so a wrong assertion fails loudly, not silently).
    pub fn assume(untyped: NodeHandle) -> Self {
        Handle {
            untyped,
            node_type: PhantomData,
        }
    }

    /// The untyped handle.
    pub fn untyped(&self) -> NodeHandle {
        self.untyped
    }
}

impl<N> Clone for Handle<N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N> Copy for Handle<N> {}

impl<N> PartialEq for Handle<N> {
    fn eq(&self, other: &Self) -> bool {
        self.untyped == other.untyped
    }
}

impl<N> Eq for Handle<N> {}

impl<N> fmt::Debug for Handle<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.untyped.id, self.untyped.machine)
    }
}

impl<N> From<Handle<N>> for NodeHandle {
    fn from(handle: Handle<N>) -> Self {
        handle.untyped
    }
}

impl<N> Serialize for Handle<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.untyped.serialize(serializer)
    }
}

impl<'de, N> Deserialize<'de> for Handle<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        NodeHandle::deserialize(deserializer).map(Handle::assume)
    }
}

/// Where the answer to a request goes: a node that reads messages of type `M`, whatever its node
/// type. A request carries one, made from the requester's own typed handle (`ctl.me().into()`,
/// or a test's [`Client`](crate::system::Client) handle), and the node that answers sends to it
/// with [`Ctl::reply`]: both sides are checked by the compiler, so no one casts the untyped
/// `from` of a message to a node type. It travels in messages as a [`NodeHandle`] does.
pub struct ReplyTo<M> {
    untyped: NodeHandle,
    message_type: PhantomData<fn(M)>,
}

impl<M> ReplyTo<M> {
    /// The node the answer goes to.
    pub fn untyped(&self) -> NodeHandle {
        self.untyped
    }
}

impl<N: TypedNode> From<Handle<N>> for ReplyTo<N::Message> {
    fn from(handle: Handle<N>) -> Self {
        ReplyTo {
            untyped: handle.untyped,
            message_type: PhantomData,
        }
    }
}

impl<M> Clone for ReplyTo<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for ReplyTo<M> {}

impl<M> PartialEq for ReplyTo<M> {
    fn eq(&self, other: &Self) -> bool {
        self.untyped == other.untyped
    }
}

impl<M> Eq for ReplyTo<M> {}

impl<M> fmt::Debug for ReplyTo<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reply to {}@{}", self.untyped.id, self.untyped.machine)
    }
}

impl<M> Serialize for ReplyTo<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.untyped.serialize(serializer)
    }
}

impl<'de, M> Deserialize<'de> for ReplyTo<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        NodeHandle::deserialize(deserializer).map(|untyped| ReplyTo {
            untyped,
            message_type: PhantomData,
        })
    }
}

/// A config written with its node type first: `{"type": …, its fields…}`.
#[derive(Serialize)]
struct Tagged<'a, C> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    config: &'a C,
}

/// Encodes `N`'s config as the JSON object a spawn carries: `"type": N::TYPE` and its fields.
pub fn config_of<N: TypedNode>(config: &N::Config) -> Result<NodeConfig, NodeError> {
    // Written straight to text with the type first. A config that is not a plain object, or
    // that has a `"type"` of its own (which the node type replaces), takes the long way.
    let tagged = Tagged {
        kind: N::TYPE,
        config,
    };
    if let Ok(message) = Message::encode(&tagged) {
        return Ok(message);
    }
    let value = serde_json::to_value(config).map_err(encode_error)?;
    let mut fields = match value {
        serde_json::Value::Object(fields) => fields,
        _ => {
            return Err(NodeError::Message(MessageError::Encode(format!(
                "the config of {} must encode as a JSON object",
                N::TYPE
            ))))
        }
    };
    fields.remove("type");
    Ok(Message::tagged(N::TYPE, fields))
}

/// Reads `N`'s config from a spawn's JSON (its `"type"` key aside).
pub(super) fn read_config<N: TypedNode>(config: &NodeConfig) -> Result<N::Config, NodeError> {
    serde_json::from_str::<WithoutType<N::Config>>(config.as_json())
        .map(|read| read.0)
        .map_err(|e| {
            NodeError::Message(MessageError::Malformed {
                kind: N::TYPE.to_owned(),
                reason: format!("bad config: {e}"),
            })
        })
}

/// Encodes a message for a node of type `N`, keeping the typed value beside its JSON (see
/// [`Message::encode_typed`]).
pub fn message_for<N: TypedNode>(message: &N::Message) -> Result<Message, NodeError> {
    Ok(Message::encode_typed(message)?)
}

fn encode_error(error: serde_json::Error) -> NodeError {
    NodeError::Message(MessageError::Encode(error.to_string()))
}

/// What a typed node of type `N` may do to the world: the [`MachineController`], with typed
/// sending, spawning, timers and persistence.
pub struct Ctl<'a, N: TypedNode> {
    inner: &'a mut dyn MachineController,
    timers: &'a mut Timers<N::Timer>,
}

impl<'a, N: TypedNode> Ctl<'a, N> {
    /// Wraps the controller the runtime hands a node, with the node's timers.
    fn new(inner: &'a mut dyn MachineController, timers: &'a mut Timers<N::Timer>) -> Self {
        Ctl { inner, timers }
    }

    /// The node being driven.
    pub fn me(&self) -> Handle<N> {
        Handle::assume(self.inner.me())
    }

    /// The machine this node runs on.
    pub fn machine(&self) -> MachineId {
        self.inner.machine()
    }

    /// Milliseconds since the system started (virtual in the simulator, real elsewhere).
    pub fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    /// Sends `message` to the node `to`, of type `M`. Delivery is asynchronous.
    pub fn send<M: TypedNode>(
        &mut self,
        to: Handle<M>,
        message: &M::Message,
    ) -> Result<(), NodeError> {
        let message = message_for::<M>(message)?;
        self.inner.send(to.untyped, message);
        Ok(())
    }

    /// Answers a request: sends `message` to the node the request named to answer
    /// ([`ReplyTo`]).
    pub fn reply<M: Serialize>(&mut self, to: ReplyTo<M>, message: &M) -> Result<(), NodeError> {
        let message = Message::encode(message)?;
        self.inner.send(to.untyped, message);
        Ok(())
    }

    /// Sends one `message` to every node in `to`, encoding it once.
    pub fn broadcast<'h, M: TypedNode + 'h>(
        &mut self,
        to: impl IntoIterator<Item = &'h Handle<M>>,
        message: &M::Message,
    ) -> Result<(), NodeError> {
        let message = message_for::<M>(message)?;
        for handle in to {
            self.inner.send(handle.untyped, message.clone());
        }
        Ok(())
    }

    /// Creates a node of type `M` on `machine` and returns its handle at once; the node starts
    /// when the spawn reaches that machine.
    pub fn spawn<M: TypedNode>(
        &mut self,
        machine: MachineId,
        config: &M::Config,
    ) -> Result<Handle<M>, NodeError> {
        let config = config_of::<M>(config)?;
        self.inner.spawn(machine, config).map(Handle::assume)
    }

    /// Calls this node's [`TypedNode::timer`] with `timer` after `after_ms`.
    pub fn set_timer(&mut self, after_ms: u64, timer: N::Timer) -> TimerId {
        let tag = self.timers.next_tag;
        self.timers.next_tag += 1;
        let id = self.inner.set_timer(after_ms, tag);
        self.timers.by_tag.insert(tag, (id, timer));
        self.timers.tag_of.insert(id, tag);
        id
    }

    /// Cancels one of this node's timers (another's, or the runtime's, are out of reach).
    pub fn cancel_timer(&mut self, timer: TimerId) {
        if let Some(tag) = self.timers.tag_of.remove(&timer) {
            self.timers.by_tag.remove(&tag);
            self.inner.cancel_timer(timer);
        }
    }

    /// This node's own random stream, reproducible from the system's seed, the node's id and
    /// its machine's incarnation: what other nodes draw does not change it.
    pub fn random(&mut self) -> &mut dyn RngCore {
        self.inner.random()
    }

    /// Terminates `node` (which may be this node).
    pub fn terminate(&mut self, node: impl Into<NodeHandle>) {
        self.inner.terminate(node.into());
    }

    /// Writes `durable` to this machine's disk as what this node persisted, replacing what it
    /// persisted before; after a crash, [`TypedNode::recover`] gets it back. It is on disk before
    /// anything the node does next leaves the machine. The value is kept as it is, not encoded
    /// (persisting after every change costs no encoding): it is encoded as JSON when it is read
    /// back, so a value that does not survive the round trip fails the node's recovery.
    pub fn persist(&mut self, durable: N::Durable) {
        self.inner.persist(Persisted::new(durable));
    }
}

/// A node's pending timers, by the tag the runtime hands back and by their id; looked up, never
/// iterated.
pub(super) struct Timers<T> {
    next_tag: u64,
    by_tag: FxHashMap<u64, (TimerId, T)>,
    tag_of: FxHashMap<TimerId, u64>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            next_tag: 0,
            by_tag: FxHashMap::default(),
            tag_of: FxHashMap::default(),
        }
    }
}

impl<T> Timers<T> {
    /// The timer the runtime fired with `tag`, if it is still pending.
    fn fired(&mut self, tag: u64) -> Option<T> {
        let (id, timer) = self.by_tag.remove(&tag)?;
        self.tag_of.remove(&id);
        Some(timer)
    }
}

/// Runs a [`TypedNode`] as a [`Node`]: decodes what arrives, encodes the state.
pub(super) struct Typed<N: TypedNode> {
    pub(super) node: N,
    /// Whether every message received is checked to survive a round trip through its type.
    wire_check: bool,
    pub(super) timers: Timers<N::Timer>,
}

impl<N: TypedNode> Typed<N> {
    /// Builds the node from its spawn's JSON.
    pub(super) fn build(config: &NodeConfig, wire_check: bool) -> Result<Self, NodeError> {
        N::new(read_config::<N>(config)?).map(|node| Typed {
            node,
            wire_check,
            timers: Timers::default(),
        })
    }

    /// Encodes `typed` again and compares it with the JSON it was decoded from.
    fn check_wire(message: &Message, typed: &N::Message) -> Result<(), NodeError> {
        let again = message_for::<N>(typed)?;
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
        if parse(message.as_json()) == parse(again.as_json()) {
            return Ok(());
        }
        Err(NodeError::WireMismatch {
            node_type: N::TYPE,
            received: message.as_json().to_owned(),
            reencoded: again.as_json().to_owned(),
        })
    }
}

impl<N: TypedNode> Node for Typed<N> {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        self.node.start(&mut Ctl::new(ctl, &mut self.timers))
    }

    fn recover(
        &mut self,
        ctl: &mut dyn MachineController,
        persisted: Option<&serde_json::Value>,
    ) -> Result<(), NodeError> {
        let mut ctl = Ctl::new(ctl, &mut self.timers);
        let Some(persisted) = persisted else {
            return self.node.start(&mut ctl);
        };
        let durable = N::Durable::deserialize(persisted).map_err(|error| {
            NodeError::Message(MessageError::Malformed {
                kind: N::TYPE.to_owned(),
                reason: format!(
                    "what it persisted does not read back as its Durable type: {error}"
                ),
            })
        })?;
        self.node.recover(&mut ctl, durable)
    }

    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        let rejected = |error: MessageError| NodeError::Rejected {
            node_type: N::TYPE,
            kind: message.kind().to_owned(),
            reason: error.to_string(),
        };
        // Checked, the node gets what it decodes from the wire form, as in a real mode (one
        // decoding, shared by every receiver of a broadcast), and that must encode back to the
        // same JSON. Unchecked, it gets a copy of the value the sender encoded, if that was of
        // its message type.
        let sent = (!self.wire_check)
            .then(|| message.sent_value::<N::Message>())
            .flatten();
        let typed = match sent {
            Some(typed) => typed,
            None => message
                .decode_shared(|message| message.decode::<N::Message>())
                .map_err(rejected)?,
        };
        if self.wire_check {
            Self::check_wire(message, &typed)?;
        }
        self.node
            .receive(&mut Ctl::new(ctl, &mut self.timers), sender, typed)
    }

    fn timer(&mut self, ctl: &mut dyn MachineController, tag: u64) -> Result<(), NodeError> {
        match self.timers.fired(tag) {
            Some(timer) => self.node.timer(&mut Ctl::new(ctl, &mut self.timers), timer),
            None => Ok(()),
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(self.node.state()).unwrap_or_else(|error| {
            serde_json::Value::String(format!("the state of {} cannot be shown: {error}", N::TYPE))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Plain {
        size: u32,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
        size: u32,
    }

    struct Node<C>(PhantomData<C>);

    impl<C: Serialize + DeserializeOwned + Send + 'static> TypedNode for Node<C> {
        const TYPE: &'static str = "Sized";
        type Config = C;
        type Message = i64;
        type State = ();
        type Timer = NoTimer;
        type Durable = Volatile;

        fn new(_: C) -> Result<Self, NodeError> {
            Ok(Node(PhantomData))
        }

        fn receive(
            &mut self,
            _: &mut Ctl<'_, Self>,
            _: Option<NodeHandle>,
            _: i64,
        ) -> Result<(), NodeError> {
            Ok(())
        }

        fn state(&self) {}
    }

    #[test]
    fn simulated_a_config_is_written_with_its_type_first_and_reads_back() {
        let config = config_of::<Node<Plain>>(&Plain { size: 3 }).expect("encodes");
        assert_eq!(config.as_json(), r#"{"type":"Sized","size":3}"#);
        assert_eq!(config.kind(), "Sized");
        assert_eq!(
            read_config::<Node<Plain>>(&config).ok(),
            Some(Plain { size: 3 })
        );
    }

    #[test]
    fn simulated_a_config_with_a_type_of_its_own_gets_the_node_type() {
        let own = Typed {
            kind: "Other".into(),
            size: 4,
        };
        let config = config_of::<Node<Typed>>(&own).expect("encodes");
        assert_eq!(config.kind(), "Sized");
        assert!(config_of::<Node<u32>>(&7).is_err(), "not an object");
    }
}
