//! Node types by name: how a JSON config becomes a running node.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::typed::Typed;
use super::{Node, NodeError, TypedNode};
use crate::messages::NodeConfig;

/// Builds a node from its config.
pub type NodeFactory = Box<dyn Fn(&NodeConfig) -> Result<Box<dyn Node>, NodeError> + Send + Sync>;

/// Maps a config's `"type"` to the factory that builds that node type. The built-in
/// applications register theirs exactly like a library user's own.
#[derive(Default)]
pub struct NodeRegistry {
    factories: BTreeMap<String, NodeFactory>,
}

impl NodeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a node type under `name` with an arbitrary factory.
    pub fn register_factory(&mut self, name: &str, factory: NodeFactory) {
        self.factories.insert(name.to_owned(), factory);
    }

    /// Registers a node type whose config deserializes into `C` and is turned into a node by
    /// `build`. The config's `"type"` key is ignored by `C` unless it asks for it.
    pub fn register<C, N>(&mut self, name: &str, build: fn(C) -> Result<N, NodeError>)
    where
        C: DeserializeOwned + 'static,
        N: Node + 'static,
    {
        self.register_factory(
            name,
            Box::new(move |config: &NodeConfig| {
                let parsed: C = config.decode()?;
                Ok(Box::new(build(parsed)?) as Box<dyn Node>)
            }),
        );
    }

    /// Registers the typed node type `N` under its name, [`TypedNode::TYPE`].
    pub fn add<N: TypedNode>(&mut self) {
        self.register_factory(
            N::TYPE,
            Box::new(|config: &NodeConfig| {
                Ok(Box::new(Typed::<N>::build(config)?) as Box<dyn Node>)
            }),
        );
    }

    /// Whether `name` is a registered node type.
    pub fn knows(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    /// Builds the node that `config` describes.
    pub fn build(&self, config: &NodeConfig) -> Result<Box<dyn Node>, NodeError> {
        let factory = self
            .factories
            .get(config.kind())
            .ok_or_else(|| NodeError::UnknownNodeType(config.kind().to_owned()))?;
        factory(config)
    }
}
