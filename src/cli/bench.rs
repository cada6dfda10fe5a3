//! `dist-zero bench`: the simulator on large sum networks, timed.

use std::time::Instant;

use crate::scenario::{simulate, RunOptions, Workload};

/// The benchmark's shape; each `--users` value is one run.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Users per run (repeat for several runs).
    #[arg(long = "users", default_values_t = [3_000u32, 100_000])]
    pub users: Vec<u32>,
    /// Machines in the system.
    #[arg(long, default_value_t = 101)]
    pub machines: u32,
    /// Increments each user makes.
    #[arg(long, default_value_t = 20)]
    pub increments: u32,
    /// Simulated milliseconds per run.
    #[arg(long, default_value_t = 5_000)]
    pub run_ms: u64,
    /// Times each run is repeated; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Seed of the generated scenarios.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs every configured benchmark and prints one row each. Exits 1 if any run was incorrect.
pub fn run(args: &BenchArgs) -> u8 {
    println!(
        "{:>8} {:>9} {:>11} {:>9} {:>12} {:>13} {:>8}",
        "machines", "users", "increments", "sim ms", "events", "wall ms", "Mevents/s"
    );
    let mut all_correct = true;
    for &users in &args.users {
        let scenario = Workload {
            machines: args.machines,
            users,
            increments: args.increments,
            run_ms: args.run_ms,
            seed: args.seed,
        }
        .scenario();
        let mut best_ms = f64::INFINITY;
        let mut events = 0;
        for _ in 0..args.repeat.max(1) {
            let started = Instant::now();
            let run = match simulate(&scenario, &RunOptions::default()) {
                Ok(run) => run,
                Err(error) => {
                    eprintln!("dist-zero: benchmark with {users} users failed: {error}");
                    return super::EXIT_WRONG;
                }
            };
            best_ms = best_ms.min(started.elapsed().as_secs_f64() * 1000.0);
            events = run.report.events;
            all_correct &= run.report.correct;
        }
        println!(
            "{:>8} {:>9} {:>11} {:>9} {:>12} {:>13.1} {:>8.2}",
            args.machines,
            users,
            args.increments,
            args.run_ms,
            events,
            best_ms,
            events as f64 / best_ms / 1000.0
        );
    }
    if all_correct {
        super::EXIT_CORRECT
    } else {
        eprintln!("dist-zero: some benchmark run was not correct");
        super::EXIT_WRONG
    }
}
