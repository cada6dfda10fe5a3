//! `dist-zero bench-checks`: what invariants after every event cost. One sum network is run
//! through the builder without an invariant (the baseline), then with one invariant over every
//! output checked after every event and after every N, side by side in one run.

use std::time::Instant;

use super::Workload;
use crate::app::Application;
use crate::apps::sum::{OutputLeafNode, SumApp};
use crate::cli::{report_error, EXIT_BAD_INPUT, EXIT_WRONG};
use crate::node::NodeRegistry;
use crate::scenario::RunError;
use crate::system::{Builder, States};
use crate::terminal::{err, out};
use crate::time::Millis;

/// The benchmark's shape: one sum network, and how often the invariant is checked in each run
/// after the baseline.
#[derive(Debug, clap::Args)]
pub struct BenchChecksArgs {
    /// Users in the sum network.
    #[arg(long, default_value_t = 300)]
    pub users: u32,
    /// Machines in the system.
    #[arg(long, default_value_t = 11)]
    pub machines: u32,
    /// Increments each user makes.
    #[arg(long, default_value_t = 20)]
    pub increments: u32,
    /// Simulated milliseconds per run.
    #[arg(long, default_value_t = 5_000)]
    pub run_ms: u64,
    /// Check the invariant after every this many events (repeat for several runs).
    #[arg(long = "every", default_values_t = [1u64, 10, 100])]
    pub every: Vec<u64>,
    /// Times each run is repeated; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Seed of the generated network and of the runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// One measured run.
struct Measured {
    events: u64,
    best_ms: f64,
    correct: bool,
}

/// Runs the baseline and one run per `--every`, and prints a row each. Exits 1 if a run was not
/// correct.
pub fn run(args: &BenchChecksArgs) -> u8 {
    if let Some(zero) = args.every.iter().find(|every| **every == 0) {
        return report_error(EXIT_BAD_INPUT, &format!("--every {zero} must be positive"));
    }
    let workload = Workload {
        machines: args.machines,
        users: args.users,
        increments: args.increments,
        run_ms: Millis(args.run_ms),
        seed: args.seed,
    };
    if let Err(error) = workload.validate() {
        return report_error(EXIT_BAD_INPUT, &error);
    }
    out!(
        "{:<22} {:>10} {:>10} {:>12} {:>14} {:>8}",
        "invariant checked",
        "events",
        "wall ms",
        "x baseline",
        "extra us/event",
        "correct"
    );
    let runs = std::iter::once(None).chain(args.every.iter().copied().map(Some));
    let mut baseline_ms = None;
    let mut all_correct = true;
    for every in runs {
        let measured = match measure(&workload, every, args.repeat) {
            Ok(measured) => measured,
            Err(error) => {
                err!("dist-zero: benchmark run failed: {error}");
                return EXIT_WRONG;
            }
        };
        all_correct &= measured.correct;
        let base = *baseline_ms.get_or_insert(measured.best_ms);
        let (label, per_event) = match every {
            None => ("never (baseline)".to_owned(), "-".to_owned()),
            Some(every) => {
                let events = measured.events.max(1) as f64;
                let extra_us = (measured.best_ms - base).max(0.0) * 1000.0 / events;
                (format!("every {every} events"), format!("{extra_us:.2}"))
            }
        };
        out!(
            "{label:<22} {:>10} {:>10.1} {:>12.2} {per_event:>14} {:>8}",
            measured.events,
            measured.best_ms,
            measured.best_ms / base,
            measured.correct,
        );
    }
    super::bench::exit_status(all_correct)
}

/// Plays `workload` through the builder `repeat` times, with the invariant checked after every
/// `every` events (none if `None`), and keeps the fastest wall time.
fn measure(workload: &Workload, every: Option<u64>, repeat: u32) -> Result<Measured, RunError> {
    let section = workload.section();
    let bound = section.expected_total().max(0);
    // What every user sees is at most the total: the increments are all positive.
    let no_output_above_the_total = move |states: &States| match states
        .of::<OutputLeafNode>()
        .into_iter()
        .find(|(_, leaf)| leaf.total > bound)
    {
        Some((leaf, state)) => Err(format!("{leaf:?} shows {} > {bound}", state.total)),
        None => Ok(()),
    };
    let mut measured = Measured {
        events: 0,
        best_ms: f64::INFINITY,
        correct: true,
    };
    for _ in 0..repeat.max(1) {
        let mut registry = NodeRegistry::new();
        SumApp.register(&mut registry);
        let mut builder = Builder::new()
            .machines(workload.machines)
            .seed(workload.seed)
            .registry(registry);
        if let Some(every) = every {
            builder = builder
                .invariant("no output above the total", no_output_above_the_total)
                .check_every(every);
        }
        let started = Instant::now();
        let mut sim = builder.build().map_err(RunError::System)?;
        SumApp.play(&section, &mut sim)?;
        sim.run_until(workload.run_ms.0).map_err(RunError::System)?;
        let states = sim.hardware().node_states().map_err(RunError::Hardware)?;
        measured.best_ms = measured
            .best_ms
            .min(started.elapsed().as_secs_f64() * 1000.0);
        measured.events = sim.counters().events;
        measured.correct &= SumApp.check(&section, &states).correct;
    }
    Ok(measured)
}
