//! The commands DistZero's own binary adds for the sum network: the demo and the benchmarks.

use std::process::ExitCode;

use clap::Subcommand;

use super::bench::{self, BenchArgs};
use super::bench_checks::{self, BenchChecksArgs};
use super::bench_trees::{self, BenchTreesArgs};
#[cfg(feature = "docker")]
use super::bench_virtual::{self, BenchVirtualArgs};
use super::workload::Workload;
use crate::cli::{run_simulated, ExtraCommands, Failure};
use crate::scenario::RunOptions;
use crate::settings::Settings;
use crate::time::Millis;

/// The sum network's demo and benchmarks.
#[derive(Debug, Subcommand)]
pub enum SumCommands {
    /// Generate a sum-network scenario and run it (simulated).
    Demo {
        /// Machines in the system.
        #[arg(long, default_value_t = 3)]
        machines: u32,
        /// Users, spread over the machines.
        #[arg(long, default_value_t = 6)]
        users: u32,
        /// Increments each user makes.
        #[arg(long, default_value_t = 4)]
        increments: u32,
        /// Seed of the generated scenario and of the run.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Simulated milliseconds to run.
        #[arg(long, default_value_t = 1000)]
        run_ms: u64,
        /// Print exactly one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Measure the simulator on large sum networks and print wall time and events per second.
    Bench(BenchArgs),
    /// Measure what invariants after every event cost: a sum network without an invariant and
    /// with one checked every N events, side by side.
    BenchChecks(BenchChecksArgs),
    /// Measure what the self-scaling trees buy: the flat network and the trees side by side,
    /// at each size (fan-out, traffic between machines, delays, settling, events, memory).
    BenchTrees(BenchTreesArgs),
    /// Measure virtual mode: container start-up, machine-to-machine round trips, sum throughput.
    #[cfg(feature = "docker")]
    BenchVirtual(BenchVirtualArgs),
}

impl ExtraCommands for SumCommands {
    fn json(&self) -> bool {
        matches!(self, SumCommands::Demo { json: true, .. })
    }

    #[cfg_attr(not(feature = "docker"), allow(unused_variables))]
    fn execute(self, settings: &Settings) -> u8 {
        match self {
            SumCommands::Demo {
                machines,
                users,
                increments,
                seed,
                run_ms,
                json,
            } => {
                let workload = Workload {
                    machines,
                    users,
                    increments,
                    run_ms: Millis(run_ms),
                    seed,
                };
                if let Err(error) = workload.validate() {
                    return Failure::bad_input(&error).report(json);
                }
                match workload.scenario() {
                    Ok(scenario) => run_simulated(&scenario, RunOptions::default(), json, None),
                    Err(error) => Failure::bad_input(&error).report(json),
                }
            }
            SumCommands::Bench(args) => bench::run(&args),
            SumCommands::BenchChecks(args) => bench_checks::run(&args),
            SumCommands::BenchTrees(args) => bench_trees::run(&args),
            #[cfg(feature = "docker")]
            SumCommands::BenchVirtual(args) => bench_virtual::run(&args, settings),
        }
    }
}

/// DistZero's own binary: the built-in applications (the sum network, the default, and the
/// broadcast workload), with the sum network's demo and benchmarks.
pub fn builtin_main() -> ExitCode {
    crate::cli::main_with::<SumCommands>(crate::apps::builtin())
}
