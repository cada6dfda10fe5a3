//! DistZero: write a distributed program once — many small nodes exchanging JSON messages — and run
//! it simulated (one process, virtual time, a seeded network), virtual (a Docker container per
//! machine) or in the cloud, without changing a line of node code.
//!
//! The guide is in the repository's `docs/` directory (`docs/README.md` lists its pages); this
//! page is the map of the crate.
//!
//! # A node, run in the simulator
//!
//! A [`TypedNode`](node::TypedNode) declares its config, its messages and its state as Rust
//! types; the runtime does the JSON. Here two counters on two machines add up what they are sent,
//! the first passing each amount on to the second, over a network that drops a tenth of all
//! transmissions; the runtime's reliable delivery repairs the losses, and the same seed gives
//! the same run.
//!
//! ```
//! use dist_zero::faults::FaultRule;
//! use dist_zero::messages::NodeHandle;
//! use dist_zero::node::{Ctl, Handle, NoTimer, NodeError, TypedNode, Volatile};
//! use dist_zero::system::Builder;
//! use serde::{Deserialize, Serialize};
//!
//! /// What a counter receives: on the wire, `{"type": "add", "amount": 2}`.
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! #[serde(tag = "type", rename_all = "snake_case")]
//! enum Count {
//!     Add { amount: i64 },
//! }
//!
//! /// A counter's config: the counter it passes amounts on to, if any.
//! #[derive(Serialize, Deserialize)]
//! struct CounterConfig {
//!     next: Option<Handle<Counter>>,
//! }
//!
//! /// Adds up what it is sent, and passes each amount on.
//! struct Counter {
//!     next: Option<Handle<Counter>>,
//!     total: i64,
//! }
//!
//! impl TypedNode for Counter {
//!     const TYPE: &'static str = "Counter";
//!     type Config = CounterConfig;
//!     type Message = Count;
//!     type State = i64;
//!     type Timer = NoTimer;
//!     type Durable = Volatile;
//!
//!     fn new(config: CounterConfig) -> Result<Self, NodeError> {
//!         Ok(Counter { next: config.next, total: 0 })
//!     }
//!
//!     fn receive(&mut self, ctl: &mut Ctl<'_, Self>, _from: Option<NodeHandle>, message: Count)
//!         -> Result<(), NodeError> {
//!         let Count::Add { amount } = message;
//!         self.total += amount;
//!         if let Some(next) = self.next {
//!             ctl.send(next, &Count::Add { amount })?;
//!         }
//!         Ok(())
//!     }
//!
//!     fn state(&self) -> i64 {
//!         self.total
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut sim = Builder::new()
//!     .machines(3)
//!     .seed(7)
//!     .drops(FaultRule { rate: 0.1, types: None })
//!     .node::<Counter>()
//!     .build()?;
//! let second = sim.spawn::<Counter>(2, &CounterConfig { next: None })?;
//! let first = sim.spawn::<Counter>(1, &CounterConfig { next: Some(second) })?;
//! for amount in 1..=10 {
//!     sim.send(first, &Count::Add { amount })?; // from outside the system
//! }
//! sim.run_until(2_000)?; // virtual milliseconds
//! assert_eq!((sim.state(first)?, sim.state(second)?), (55, 55));
//! # Ok(())
//! # }
//! ```
//!
//! [`system`] is the builder a test drives: typed spawning, sending and state reads, a client
//! that receives replies, running by time, by condition or by the event, fault verbs at any
//! moment (partition, hold, pause, crash and restart) and invariants after every event. One node
//! alone is unit-tested with [`node::Harness`], without a simulator; a whole program is an
//! [`app::Application`] (node types, a scenario section, a check), and [`main`] gives a
//! binary of your own DistZero's whole command line for it.
//!
//! # Layers
//!
//! Each uses only the ones below it:
//! - [`cli`] and [`scenario`]: the command line for any set of applications ([`main`] gives a
//!   library user's binary all of it), the generic scenario, its runner and its report;
//! - [`app`] and the built-in [`apps`] (the sum network, the broadcast workload, and
//!   [`apps::builtin`], the set DistZero's own binary knows): applications as plug-ins — node
//!   types, a scenario section, a check; [`app`] imports neither [`scenario`] nor [`apps`];
//! - [`system`]: the system a test builds and drives, fault verbs and checks;
//! - [`hardware`]: one per mode — the only place the modes differ; [`faults`] is the
//!   mode-neutral fault plan and verbs every mode applies;
//! - [`manager`]: the NodeManager, the single implementation of [`node::MachineController`];
//! - [`node`]: state machines written against the controller, and the typed API over it;
//! - [`messages`]: handles and JSON messages.
//!
//! With the `docker` feature, `machine` is the process that runs one machine of a virtual-mode
//! system in real time, and `hardware::docker` runs a system of them in containers. With the
//! `cloud` feature, `hardware::cloud` runs them on EC2 instances (or moto and local containers).
//!
//! [`observe`] records a run as structured events, and [`report`] draws them (a
//! message-sequence diagram, plots, an HTML page). [`settings`] is the only module that reads the
//! environment; [`files`] reads the files a user names, with a size limit; [`time`] holds the
//! typed milliseconds and microseconds every layer uses; [`counters`] what every layer counts,
//! added up the same way; [`terminal`] escapes what users wrote before it is printed; [`tools`]
//! holds the demo and benchmarks of DistZero's own binary, and the workloads they generate.

pub mod app;
pub mod apps;
pub mod cli;
pub mod counters;
pub mod faults;
pub mod files;
pub mod hardware;
#[cfg(feature = "docker")]
pub mod machine;
pub mod manager;
pub mod messages;
pub mod node;
pub mod observe;
pub mod report;
pub mod scenario;
pub mod settings;
pub mod system;
pub mod terminal;
pub mod time;
pub mod tools;

pub use cli::main;

/// The guide's pages as doc tests, so that every Rust block in them compiles (and runs) against
/// this crate: `cargo test --doc`. Not part of the API (only built for doc tests).
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../README.md")]
    pub struct Readme;
    #[doc = include_str!("../docs/README.md")]
    pub struct Index;
    #[doc = include_str!("../docs/scenarios.md")]
    pub struct Scenarios;
    #[doc = include_str!("../docs/applications.md")]
    pub struct Applications;
    #[doc = include_str!("../docs/faults.md")]
    pub struct Faults;
    #[doc = include_str!("../docs/seeing-a-run.md")]
    pub struct SeeingARun;
    #[doc = include_str!("../docs/virtual-mode.md")]
    pub struct VirtualMode;
    #[doc = include_str!("../docs/cloud-mode.md")]
    pub struct CloudMode;
    #[doc = include_str!("../docs/guarantees.md")]
    pub struct Guarantees;
    #[doc = include_str!("../docs/benchmarks.md")]
    pub struct Benchmarks;
    #[doc = include_str!("../docs/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../docs/configuration.md")]
    pub struct Configuration;
    #[doc = include_str!("../docs/layout.md")]
    pub struct Layout;
}
