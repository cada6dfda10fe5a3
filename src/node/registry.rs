//! Node types by name: how a JSON config becomes a running node.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize as _;

use super::typed::Typed;
use super::{Node, NodeError, TypedNode};
use crate::messages::NodeConfig;

/// Builds a node from its config.
pub type NodeFactory = Box<dyn Fn(&NodeConfig) -> Result<Box<dyn Node>, NodeError> + Send + Sync>;

/// Builds a typed node from its config, checking its messages' wire form if asked to.
type TypedFactory = fn(&NodeConfig, bool) -> Result<Box<dyn Node>, NodeError>;

/// Whether a typed node's state, as JSON, reads back as its `State` type (why not, if not).
type StateCheck = fn(&serde_json::Value) -> Result<(), String>;

enum Factory {
    Plain(NodeFactory),
    Typed {
        build: TypedFactory,
        state: StateCheck,
    },
}

/// A node type's name registered twice, by two different types or factories: the second is
/// refused, and the registry with it (see [`NodeRegistry::check`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node type `{name}` is registered twice: first by {first}, then by {second}")]
pub struct DuplicateNodeType {
    /// The name, e.g. `Counter`.
    pub name: String,
    /// What registered it first (a Rust type's name).
    pub first: String,
    /// What tried to register it again.
    pub second: String,
}

struct Entry {
    /// What registered it: the Rust type of its nodes.
    origin: String,
    factory: Factory,
}

/// Maps a config's `"type"` to the factory that builds that node type. The built-in
/// applications register theirs exactly like a library user's own. A name is registered once:
/// registering the same typed node again changes nothing; another type or factory under the
/// same name is refused — the first stays, and [`NodeRegistry::check`] names both, so that a
/// system or run with such a registry does not start.
pub struct NodeRegistry {
    factories: BTreeMap<String, Entry>,
    duplicate: Option<DuplicateNodeType>,
    wire_check: bool,
}

impl Default for NodeRegistry {
    fn default() -> Self {
        NodeRegistry {
            factories: BTreeMap::new(),
            duplicate: None,
            wire_check: cfg!(debug_assertions),
        }
    }
}

impl NodeRegistry {
    /// An empty registry. The wire check (see [`NodeRegistry::set_wire_check`]) is on in debug
    /// builds — the test suite — and off in release builds, where it would only cost time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a node type under `name` with an arbitrary factory.
    pub fn register_factory(&mut self, name: &str, factory: NodeFactory) {
        self.insert(name, "a node factory".to_owned(), Factory::Plain(factory));
    }

    /// Adds `factory` under `name` unless the name is taken; a name taken by something else
    /// than the same typed node is remembered as a duplicate (the first one only).
    fn insert(&mut self, name: &str, origin: String, factory: Factory) {
        match self.factories.get(name) {
            None => {
                self.factories
                    .insert(name.to_owned(), Entry { origin, factory });
            }
            Some(first)
                if first.origin == origin && matches!(first.factory, Factory::Typed { .. }) => {}
            Some(first) => {
                self.duplicate.get_or_insert(DuplicateNodeType {
                    name: name.to_owned(),
                    first: first.origin.clone(),
                    second: origin,
                });
            }
        }
    }

    /// `Err` naming both registrations if a node type's name was registered twice, by two
    /// different types or factories.
    pub fn check(&self) -> Result<(), DuplicateNodeType> {
        match &self.duplicate {
            Some(duplicate) => Err(duplicate.clone()),
            None => Ok(()),
        }
    }

    /// Turns the wire check on or off for the typed nodes this registry builds from now on: each
    /// message such a node receives is decoded, encoded again and compared with what came over
    /// the wire, and a difference (a message type whose serde form loses or invents something)
    /// stops the run. It changes nothing else: a run's trace is the same with or without it.
    pub fn set_wire_check(&mut self, on: bool) {
        self.wire_check = on;
    }

    /// Registers a node type whose config deserializes into `C` and is turned into a node by
    /// `build`. The config's `"type"` key is ignored by `C` unless it asks for it.
    pub fn register<C, N>(&mut self, name: &str, build: fn(C) -> Result<N, NodeError>)
    where
        C: DeserializeOwned + 'static,
        N: Node + 'static,
    {
        self.insert(
            name,
            std::any::type_name::<N>().to_owned(),
            Factory::Plain(Box::new(move |config: &NodeConfig| {
                let parsed: C = config.decode()?;
                Ok(Box::new(build(parsed)?) as Box<dyn Node>)
            })),
        );
    }

    /// Registers the typed node type `N` under its name, [`TypedNode::TYPE`].
    pub fn add<N: TypedNode>(&mut self) {
        fn build<N: TypedNode>(
            config: &NodeConfig,
            wire_check: bool,
        ) -> Result<Box<dyn Node>, NodeError> {
            Ok(Box::new(Typed::<N>::build(config, wire_check)?))
        }
        fn state<N: TypedNode>(state: &serde_json::Value) -> Result<(), String> {
            N::State::deserialize(state)
                .map(drop)
                .map_err(|error| error.to_string())
        }
        self.insert(
            N::TYPE,
            std::any::type_name::<N>().to_owned(),
            Factory::Typed {
                build: build::<N>,
                state: state::<N>,
            },
        );
    }

    /// Checks that `state`, the state a node of type `node_type` showed, reads back as that
    /// type's `State` (typed node types only; others are taken as they are). A state that does
    /// not (a serde form that loses or renames a field, a state that could not be encoded) would
    /// otherwise be missing from what an application's check sees.
    pub fn check_state(&self, node_type: &str, state: &serde_json::Value) -> Result<(), String> {
        match self.factories.get(node_type).map(|entry| &entry.factory) {
            Some(Factory::Typed { state: check, .. }) => check(state),
            Some(Factory::Plain(_)) | None => Ok(()),
        }
    }

    /// Adds every node type `other` registered, as [`NodeRegistry::add`] would (a name both
    /// have for different types is a duplicate), and any duplicate `other` had.
    pub fn extend(&mut self, other: NodeRegistry) {
        if let Some(duplicate) = other.duplicate {
            self.duplicate.get_or_insert(duplicate);
        }
        for (name, entry) in other.factories {
            self.insert(&name, entry.origin, entry.factory);
        }
    }

    /// Whether `name` is a registered node type.
    pub fn knows(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    /// Builds the node that `config` describes.
    pub fn build(&self, config: &NodeConfig) -> Result<Box<dyn Node>, NodeError> {
        let factory = &self
            .factories
            .get(config.kind())
            .ok_or_else(|| NodeError::UnknownNodeType(config.kind().to_owned()))?
            .factory;
        match factory {
            Factory::Plain(factory) => factory(config),
            Factory::Typed { build, .. } => build(config, self.wire_check),
        }
    }
}
