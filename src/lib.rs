//! DistZero: write a distributed program once — many small nodes exchanging JSON messages — and run
//! it simulated (one process, virtual time, a seeded network), virtual (a Docker container per
//! machine) or in the cloud, without changing a line of node code.
//!
//! Layers, each using only the ones below it:
//! - [`cli`] and [`scenario`]: the command line for any set of applications ([`main`] gives a
//!   library user's binary all of it), the generic scenario, its runner and its report;
//! - [`app`] and the built-in [`apps`] (the sum network, the broadcast workload): applications as
//!   plug-ins — node types, a scenario section, a check;
//! - [`hardware`]: one per mode — the only place the modes differ;
//! - [`manager`]: the NodeManager, the single implementation of [`node::MachineController`];
//! - [`node`]: state machines written against the controller, and the typed API over it;
//! - [`messages`]: handles and JSON messages.
//!
//! With the `docker` feature, `machine` is the process that runs one machine of a virtual-mode
//! system in real time, and `hardware::docker` runs a system of them in containers. With the
//! `cloud` feature, `hardware::cloud` runs them on EC2 instances (or moto and local containers).
//!
//! [`settings`] is the only module that reads the environment; [`files`] reads the files a user
//! names, with a size limit; [`time`] holds the typed milliseconds and microseconds every layer
//! uses; [`counters`] what every layer counts, added up the same way; [`terminal`] escapes what
//! users wrote before it is printed.

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
