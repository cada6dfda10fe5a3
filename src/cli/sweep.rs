//! `run SCENARIO --seeds A..B`: one scenario on many seeds, in parallel, with the
//! command that replays each failing seed.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use rayon::prelude::*;
use serde::Serialize;

use super::report_args::{page, ReportArgs};
use super::shell::{quote, quote_path};
use super::Failure;
use crate::report::{write_report, write_sweep_index, SweepEntry};
use crate::scenario::{simulate, simulate_traced, RunOptions, Scenario};
use crate::terminal::{escape, escape_lines};

/// A half-open range of seeds, written `A..B` (B excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRange(pub Range<u64>);

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a seed range; write A..B, e.g. 0..1000");
        let (start, end) = text.split_once("..").ok_or_else(bad)?;
        let start: u64 = start.trim().parse().map_err(|_| bad())?;
        let end: u64 = end.trim().parse().map_err(|_| bad())?;
        if end <= start {
            return Err(format!(
                "seed range {text} is empty: the end must be above the start"
            ));
        }
        Ok(SeedRange(start..end))
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.0.start, self.0.end)
    }
}

/// One seed that did not come out correct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingSeed {
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub reason: String,
    /// The command that replays this seed, trace and all, quoted for a POSIX shell.
    pub replay: String,
}

/// The outcome of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// How many seeds ran.
    pub seeds: u64,
    /// How many came out correct.
    pub correct: u64,
    /// The others, in seed order.
    pub failing: Vec<FailingSeed>,
}

/// Runs `scenario` (read from `path`) on every seed of `range` across all cores, each with
/// `options` (`reliable` and `max_events`; the seed is each seed of the range). Replay commands
/// start with `program`, the binary's name.
pub fn sweep(
    program: &str,
    scenario: &Scenario,
    path: &Path,
    range: &SeedRange,
    options: &RunOptions,
) -> SweepReport {
    let mut failing: Vec<FailingSeed> = range
        .0
        .clone()
        .into_par_iter()
        .filter_map(|seed| {
            let options = RunOptions {
                seed: Some(seed),
                keep_trace_text: false,
                progress: false,
                ..options.clone()
            };
            let reason = match simulate(scenario, &options) {
                Ok(run) if run.report.correct => return None,
                Ok(run) => {
                    let unsettled = if run.report.settled {
                        String::new()
                    } else {
                        format!(
                            " (not settled: {} messages still in flight)",
                            run.report.in_flight
                        )
                    };
                    format!("{}{unsettled}", run.report.summary)
                }
                Err(error) => error.to_string(),
            };
            let replay = replay_command(program, path, seed, &options);
            Some(FailingSeed {
                seed,
                reason,
                replay,
            })
        })
        .collect();
    failing.sort_by_key(|failure| failure.seed);
    let seeds = range.0.end - range.0.start;
    SweepReport {
        seeds,
        correct: seeds - failing.len() as u64,
        failing,
    }
}

/// The command that replays `seed` of the scenario at `path` with `options`, writing its text
/// trace and its report (whose diagram shows what led to the failure), quoted for a POSIX
/// shell; it starts with `program`, the binary's name.
pub fn replay_command(program: &str, path: &Path, seed: u64, options: &RunOptions) -> String {
    let mut flags = String::new();
    if options.reliable == Some(false) {
        flags.push_str(" --unreliable");
    }
    if let Some(max) = options.max_events {
        flags.push_str(&format!(" --max-events {max}"));
    }
    if options.wire_check == Some(true) {
        flags.push_str(" --wire-check");
    }
    let path = path.display().to_string();
    let path = quote_path(&path);
    let program = quote(program);
    format!(
        "{program} run {path} --seed {seed}{flags} --trace seed-{seed}.trace --report seed-{seed}-report"
    )
}

/// The most failing seeds a sweep writes a report for.
pub const MAX_SWEEP_REPORTS: usize = 20;

/// Writes into `dir` a report for each of the first [`MAX_SWEEP_REPORTS`] failing seeds of
/// `sweep` (each replayed, observed), as `seed-<n>/`, and an index linking them.
pub fn write_reports(
    dir: &Path,
    scenario: &Scenario,
    path: &Path,
    range: &SeedRange,
    options: &RunOptions,
    sweep: &SweepReport,
    see: &ReportArgs,
) -> Result<(), Failure> {
    let filter = see.filter()?;
    let written: Vec<Result<SweepEntry, Failure>> = sweep
        .failing
        .par_iter()
        .take(MAX_SWEEP_REPORTS)
        .map(|failing| {
            let options = RunOptions {
                seed: Some(failing.seed),
                observe: true,
                progress: false,
                keep_trace_text: false,
                ..options.clone()
            };
            let run = simulate_traced(scenario, &options);
            let observed = run.observed.unwrap_or_default();
            let page = page(
                scenario,
                failing.seed,
                run.result.as_ref(),
                observed,
                failing.replay.clone(),
                Vec::new(),
            );
            let name = format!("seed-{}", failing.seed);
            write_report(&dir.join(&name), &page, &filter).map_err(|error| {
                Failure::bad_input(&format!("cannot write the report: {error}"))
            })?;
            Ok(SweepEntry {
                seed: failing.seed,
                reason: failing.reason.clone(),
                replay: failing.replay.clone(),
                report: Some(name),
            })
        })
        .collect();
    let mut entries = written.into_iter().collect::<Result<Vec<_>, _>>()?;
    entries.extend(
        sweep
            .failing
            .iter()
            .skip(MAX_SWEEP_REPORTS)
            .map(|failing| SweepEntry {
                seed: failing.seed,
                reason: failing.reason.clone(),
                replay: failing.replay.clone(),
                report: None,
            }),
    );
    let mut notes = Vec::new();
    if sweep.failing.len() > MAX_SWEEP_REPORTS {
        notes.push(format!(
            "Reports were written for the first {MAX_SWEEP_REPORTS} failing seeds; replay any other with its command."
        ));
    }
    let title = format!(
        "DistZero {}: {} on seeds {range}",
        scenario.app().title(),
        path.display()
    );
    let outcome = format!("{} of {} seeds correct", sweep.correct, sweep.seeds);
    write_sweep_index(dir, &title, &outcome, &entries, &notes)
        .map_err(|error| Failure::bad_input(&format!("cannot write the report: {error}")))?;
    Ok(())
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.failing {
            writeln!(
                f,
                "seed {}: {}",
                failure.seed,
                escape_lines(&failure.reason)
            )?;
            writeln!(f, "  replay: {}", escape(&failure.replay))?;
        }
        write!(f, "{} of {} seeds correct", self.correct, self.seeds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_seed_ranges_parse_and_reject_nonsense() {
        assert_eq!("0..1000".parse(), Ok(SeedRange(0..1000)));
        assert_eq!(" 5 .. 7".parse(), Ok(SeedRange(5..7)));
        for bad in ["", "5", "..3", "a..b", "3..3", "9..2", "-1..4"] {
            assert!(bad.parse::<SeedRange>().is_err(), "{bad}");
        }
    }
}
