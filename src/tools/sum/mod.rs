//! The sum network's demo and benchmarks: the commands DistZero's own binary adds. They time
//! runs with the wall clock, so they live here, apart from the application and its nodes.

mod baseline;
mod bench;
mod bench_checks;
mod bench_trees;
#[cfg(feature = "docker")]
mod bench_virtual;
mod commands;
mod workload;

pub use commands::{builtin_main, SumCommands};
pub use workload::{Workload, WorkloadError, MAX_GENERATED_ACTIONS, MAX_GENERATED_USERS};
