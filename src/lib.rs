//! DistZero: write a distributed program once — many small nodes exchanging JSON messages — and run
//! it simulated (one process, virtual time, a seeded network), virtual (a Docker container per
//! machine) or in the cloud, without changing a line of node code.
//!
//! Layers, each using only the ones below it:
//! - [`cli`] and [`scenario`]: the `dist-zero` binary and the scenario runner;
//! - [`hardware`]: one per mode — the only place the modes differ;
//! - [`manager`]: the NodeManager, the single implementation of [`node::MachineController`];
//! - [`node`] and the built-in [`sum_network`]: state machines written against the controller;
//! - [`messages`]: handles and JSON messages.
//!
//! With the `docker` feature, `machine` is the process that runs one machine of a virtual-mode
//! system in real time, and `hardware::docker` runs a system of them in containers. With the
//! `cloud` feature, `hardware::cloud` runs them on EC2 instances (or moto and local containers).
//!
//! [`settings`] is the only module that reads the environment.

pub mod cli;
pub mod hardware;
#[cfg(feature = "docker")]
pub mod machine;
pub mod manager;
pub mod messages;
pub mod node;
pub mod scenario;
pub mod settings;
pub mod sum_network;
