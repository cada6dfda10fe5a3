//! The broadcast workload (after Maelstrom's): clients broadcast values to nodes at scenario
//! times, nodes gossip them over a given topology, and every node must end up holding every value
//! broadcast, each exactly once.

mod app;
mod node;
mod topology;

pub use app::{
    BroadcastApp, BroadcastOutcome, BroadcastSection, BroadcastSpec, BroadcastViolation, MAX_EDGES,
    MAX_NODES,
};
pub use node::{
    BroadcastConfig, BroadcastDurable, BroadcastMessage, BroadcastNode, BroadcastState, Gossip,
    DEFAULT_GOSSIP_MS,
};
pub use topology::Shape;
