//! `dist-zero bench`: the simulator on large sum networks, timed, fault-free and with drops.

use std::time::Instant;

use super::baseline::{self, Carry};
use super::Workload;
use crate::cli::{report_error, EXIT_BAD_INPUT, EXIT_CORRECT, EXIT_WRONG};
use crate::faults::FaultRule;
use crate::observe::write_records;
use crate::scenario::{simulate, RunOptions, Scenario};
use crate::terminal::{err, out};
use crate::time::Millis;

/// The benchmark's shape; each `--users` value is one fault-free run, and each `--drop-users`
/// value is one more run with `--drop` of every transmission lost.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Users per fault-free run (repeat for several runs).
    #[arg(long = "users", default_values_t = [3_000u32, 100_000])]
    pub users: Vec<u32>,
    /// Users per run with drops (repeat for several runs; none with `--drop-users 0`).
    #[arg(long = "drop-users", default_values_t = [3_000u32])]
    pub drop_users: Vec<u32>,
    /// The share of transmissions dropped in the runs with drops.
    #[arg(long, default_value_t = 0.1)]
    pub drop: f64,
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
    /// Observe every run as `--events` and `--report` do: keep the structured trace and sample
    /// the series, and encode the trace as JSON lines (to nowhere), within the timed run.
    #[arg(long)]
    pub observe: bool,
    /// Instead of the table, run each `--users` value fault-free in DistZero and in a bare
    /// event loop doing the same work (plain values, and JSON per message), side by side, and
    /// print the ratio.
    #[arg(long)]
    pub baseline: bool,
}

/// One measured configuration.
struct Measured {
    events: u64,
    best_ms: f64,
    correct: bool,
}

/// Runs every configured benchmark and prints one row each. Exits 1 if any run was incorrect.
pub fn run(args: &BenchArgs) -> u8 {
    if !(0.0..=1.0).contains(&args.drop) {
        return report_error(
            EXIT_BAD_INPUT,
            &format!("--drop {} is outside [0, 1]", args.drop),
        );
    }
    if args.baseline {
        return run_baseline(args);
    }
    out!(
        "{:>8} {:>9} {:>11} {:>9} {:>6} {:>12} {:>10} {:>10} {:>8}",
        "machines",
        "users",
        "increments",
        "sim ms",
        "drop",
        "events",
        "wall ms",
        "Mevents/s",
        "correct"
    );
    let mut fault_free_ms = std::collections::BTreeMap::new();
    let runs = args.users.iter().map(|users| (*users, 0.0)).chain(
        args.drop_users
            .iter()
            .filter(|users| **users > 0)
            .map(|users| (*users, args.drop)),
    );
    let mut all_correct = true;
    for (users, drop) in runs {
        let workload = Workload {
            machines: args.machines,
            users,
            increments: args.increments,
            run_ms: Millis(args.run_ms),
            seed: args.seed,
        };
        if let Err(error) = workload.validate() {
            return report_error(EXIT_BAD_INPUT, &error);
        }
        let mut scenario = match workload.scenario() {
            Ok(scenario) => scenario,
            Err(error) => return report_error(EXIT_BAD_INPUT, &error),
        };
        if drop > 0.0 {
            scenario.network.drop = Some(FaultRule {
                rate: drop,
                types: None,
            });
        }
        let measured = match measure(&scenario, args.repeat, args.observe) {
            Ok(measured) => measured,
            Err(error) => {
                err!("dist-zero: benchmark with {users} users failed: {error}");
                return EXIT_WRONG;
            }
        };
        all_correct &= measured.correct;
        let cost = if drop > 0.0 {
            fault_free_ms
                .get(&users)
                .map(|base: &f64| {
                    format!(
                        "  ({:.2}x the fault-free wall time)",
                        measured.best_ms / base
                    )
                })
                .unwrap_or_default()
        } else {
            fault_free_ms.insert(users, measured.best_ms);
            String::new()
        };
        out!(
            "{:>8} {:>9} {:>11} {:>9} {:>6} {:>12} {:>10.1} {:>10.2} {:>8}{cost}",
            args.machines,
            users,
            args.increments,
            args.run_ms,
            drop,
            measured.events,
            measured.best_ms,
            measured.events as f64 / measured.best_ms / 1000.0,
            measured.correct,
        );
    }
    exit_status(all_correct)
}

/// `--baseline`: DistZero and the bare loop on each `--users` value, one table each.
fn run_baseline(args: &BenchArgs) -> u8 {
    let mut all_correct = true;
    for users in &args.users {
        let workload = Workload {
            machines: args.machines,
            users: *users,
            increments: args.increments,
            run_ms: Millis(args.run_ms),
            seed: args.seed,
        };
        if let Err(error) = workload.validate() {
            return report_error(EXIT_BAD_INPUT, &error);
        }
        let scenario = match workload.scenario() {
            Ok(scenario) => scenario,
            Err(error) => return report_error(EXIT_BAD_INPUT, &error),
        };
        let distzero = match measure(&scenario, args.repeat, args.observe) {
            Ok(measured) => measured,
            Err(error) => {
                err!("dist-zero: benchmark with {users} users failed: {error}");
                return EXIT_WRONG;
            }
        };
        let section = workload.section();
        let bare = |carry| {
            baseline::best_of(args.repeat, || {
                baseline::run_loop(&section, args.machines, args.run_ms, args.seed, carry)
            })
        };
        let (typed, typed_ms) = bare(Carry::Typed);
        let (json, json_ms) = bare(Carry::Json);
        all_correct &= distzero.correct && typed.correct && json.correct;
        out!(
            "{} machines, {users} users x {} increments, {} ms simulated, best of {}",
            args.machines,
            args.increments,
            args.run_ms,
            args.repeat.max(1)
        );
        out!(
            "{:<30} {:>10} {:>10} {:>10} {:>12} {:>8}",
            "",
            "events",
            "wall ms",
            "ns/event",
            "x bare loop",
            "correct"
        );
        let rows = [
            (
                if args.observe {
                    "DistZero (observed)"
                } else {
                    "DistZero"
                },
                distzero.events,
                distzero.best_ms,
                distzero.correct,
            ),
            ("bare event loop", typed.events, typed_ms, typed.correct),
            (
                "bare loop, JSON per message",
                json.events,
                json_ms,
                json.correct,
            ),
        ];
        for (name, events, wall_ms, correct) in rows {
            out!(
                "{name:<30} {events:>10} {wall_ms:>10.1} {:>10.0} {:>12.2} {correct:>8}",
                wall_ms * 1e6 / events.max(1) as f64,
                wall_ms / typed_ms,
            );
        }
    }
    exit_status(all_correct)
}

/// A benchmark's exit status: 0 if every run was correct, else 1, said on stderr.
pub(super) fn exit_status(all_correct: bool) -> u8 {
    if all_correct {
        EXIT_CORRECT
    } else {
        err!("dist-zero: some benchmark run was not correct");
        EXIT_WRONG
    }
}

/// Runs `scenario` `repeat` times (observed, with `observe`) and keeps the fastest wall time.
fn measure(
    scenario: &Scenario,
    repeat: u32,
    observe: bool,
) -> Result<Measured, crate::scenario::RunError> {
    let options = RunOptions {
        observe,
        ..RunOptions::default()
    };
    let mut measured = Measured {
        events: 0,
        best_ms: f64::INFINITY,
        correct: true,
    };
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let run = simulate(scenario, &options)?;
        if let Some(observed) = &run.observed {
            if let Err(error) = write_records(&mut std::io::sink(), &observed.records) {
                err!("dist-zero: cannot encode the structured trace: {error}");
                measured.correct = false;
            }
        }
        measured.best_ms = measured
            .best_ms
            .min(started.elapsed().as_secs_f64() * 1000.0);
        measured.events = run.report.events;
        measured.correct &= run.report.correct;
    }
    Ok(measured)
}
