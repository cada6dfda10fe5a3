//! The broadcast workload (after Maelstrom's): clients broadcast values to nodes at scenario
//! times, nodes gossip them over a given topology, and every node must end up holding every value
//! broadcast, each exactly once.

mod node;

pub use node::{
    BroadcastConfig, BroadcastMessage, BroadcastNode, BroadcastState, DEFAULT_GOSSIP_MS,
};
