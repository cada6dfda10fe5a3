//! A system under test, built in code: the scenario as a Rust test.
//!
//! [`Builder`] says how many machines, which seed, which network, which node types and which
//! checks; [`Sim`] is the running system. A test spawns typed nodes, sends them typed messages,
//! talks to them through a [`Client`] that receives their replies, reads their typed states, runs
//! for a time, until a time or until a condition holds, or one event at a time — and strikes with
//! a fault verb at any moment: partition and repair, hold and release, pause and resume, crash
//! and restart, a drop, duplicate or reorder rule switched on or off.
//!
//! Invariants run after every event (or every N events) and stop the run at the first
//! violation, naming the check, the event that broke it and the messages that led to it;
//! "eventually" checks run once the run has settled. Every verb goes on the trace, so the same
//! seed and the same test give the same trace.
//!
//! ```
//! use dist_zero::apps::broadcast::{BroadcastConfig, BroadcastMessage, BroadcastNode};
//! use dist_zero::system::Builder;
//!
//! let mut sim = Builder::new().machines(3).seed(7).node::<BroadcastNode>().build()?;
//! let nodes: Vec<_> = (0..3)
//!     .map(|m| sim.spawn::<BroadcastNode>(m, &BroadcastConfig::default()))
//!     .collect::<Result<_, _>>()?;
//! for node in &nodes {
//!     let neighbours = nodes.iter().filter(|n| *n != node).copied().collect();
//!     sim.send(*node, &BroadcastMessage::Topology { neighbours })?;
//! }
//! let cut = sim.partition(&[&[0], &[1, 2]])?;
//! sim.send(nodes[0], &BroadcastMessage::Broadcast { value: 5 })?;
//! sim.run_for(500)?;
//! assert!(sim.state(nodes[2])?.values.is_empty(), "machine 0 is cut off");
//! sim.repair(cut)?;
//! sim.run_for(2_000)?;
//! assert_eq!(sim.state(nodes[2])?.values, vec![5]);
//! # Ok::<(), dist_zero::system::SystemError>(())
//! ```

mod builder;
mod checks;
mod client;
mod error;
mod sim;

pub use builder::Builder;
pub use checks::{InvariantBroken, States, Violation};
pub use client::Client;
pub use client::Reply;
pub use error::SystemError;
pub use sim::{Checks, Pacer, Sends, Sim, Typed, SETTLE_QUIET_MS};
