//! A replicated key-value store, written on DistZero as a library user writes an application:
//! typed node types ([`nodes`]), and an [`Application`](dist_zero::app::Application) that sets a
//! scenario up, plays it, and judges it ([`app`]). `main.rs` hands it to DistZero's command line.

pub mod app;
pub mod nodes;

pub use app::{KvApp, KvOutcome, KvSection, WriteSpec};
pub use nodes::{Replica, ReplicaConfig, Sequencer, ToReplica, ToSequencer, Write};
