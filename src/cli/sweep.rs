//! `run SCENARIO --seeds A..B`: one scenario on many seeds, in parallel, with the
//! command that replays each failing seed.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

use super::report_args::{page, ReportArgs};
use super::shell::quote_os_path;
use super::Failure;
use crate::hardware::StopSignal;
use crate::hardware::Target;
use crate::report::{write_report, write_sweep_index, SweepEntry};
use crate::scenario::{run, simulate, RunOptions, Scenario};
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

/// How many failing seeds a sweep lists by default (each is counted, whatever the number).
pub const DEFAULT_MAX_FAILING: usize = 100;

/// The outcome of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// How many seeds ran (all of the range, unless a signal stopped the sweep).
    pub seeds: u64,
    /// How many seeds the range holds.
    pub requested: u64,
    /// How many came out correct.
    pub correct: u64,
    /// How many did not (every one is counted, listed or not).
    pub failed: u64,
    /// The lowest failing seeds, at most the sweep's `max_failing`, in seed order.
    pub failing: Vec<FailingSeed>,
    /// The signal that stopped the sweep before it ran every seed (`SIGINT`, `SIGTERM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
}

/// What a sweep runs besides the seeds: how many failing seeds it keeps, whether it shows its
/// progress, and whether SIGINT and SIGTERM stop it (printing what ran).
#[derive(Debug, Clone, Copy)]
pub struct SweepOptions {
    /// The most failing seeds it keeps and lists (the lowest); every failure is counted.
    pub max_failing: usize,
    /// A progress bar on standard error.
    pub progress: bool,
    /// Let SIGINT and SIGTERM stop the sweep after the runs under way; a second signal ends the
    /// process at once.
    pub stop_on_signals: bool,
}

/// What the runs of a sweep add up to so far: counts, and the lowest failing seeds.
#[derive(Default)]
struct Tally {
    ran: u64,
    correct: u64,
    failed: u64,
    lowest: BTreeMap<u64, FailingSeed>,
}

impl Tally {
    /// Counts one run; keeps its failure if it is among the `keep` lowest seeds.
    fn add(&mut self, seed: u64, failure: Option<(String, String)>, keep: usize) {
        self.ran += 1;
        let Some((reason, replay)) = failure else {
            self.correct += 1;
            return;
        };
        self.failed += 1;
        let lowest_enough = self.lowest.len() < keep
            || self
                .lowest
                .last_key_value()
                .is_some_and(|(last, _)| seed < *last);
        if lowest_enough {
            self.lowest.insert(
                seed,
                FailingSeed {
                    seed,
                    reason,
                    replay,
                },
            );
            if self.lowest.len() > keep {
                self.lowest.pop_last();
            }
        }
    }
}

/// Runs `scenario` (read from `path`) on every seed of `range` across all cores, each with
/// `options` (`reliable` and `max_events`; the seed is each seed of the range). Replay commands
/// start with `program`, the command that starts this binary. Memory does not grow with the
/// range: every seed is counted, and only the lowest `sweep.max_failing` failures are kept.
pub fn sweep(
    program: &str,
    scenario: &Scenario,
    path: &Path,
    range: &SeedRange,
    options: &RunOptions,
    sweep: SweepOptions,
) -> SweepReport {
    let requested = range.0.end - range.0.start;
    let stop = sweep.stop_on_signals.then(StopOnSignals::arm).flatten();
    let bar = progress_bar(requested, sweep.progress);
    let tally = Mutex::new(Tally::default());
    // Once a signal came, the first `Err` ends the iteration: no seed left is even looked at.
    let _stopped = range.0.clone().into_par_iter().try_for_each(|seed| {
        if stop.as_ref().is_some_and(StopOnSignals::stopped) {
            return Err(());
        }
        let failure = run_seed(program, scenario, path, seed, options);
        let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.add(seed, failure, sweep.max_failing);
        if tally.failed > 0 {
            bar.set_message(format!("{} failing", tally.failed));
        }
        bar.inc(1);
        Ok(())
    });
    bar.finish_and_clear();
    let tally = tally.into_inner().unwrap_or_else(PoisonError::into_inner);
    SweepReport {
        seeds: tally.ran,
        requested,
        correct: tally.correct,
        failed: tally.failed,
        failing: tally.lowest.into_values().collect(),
        stopped_by: stop
            .as_ref()
            .and_then(StopOnSignals::signal)
            .map(|signal| signal.to_string()),
    }
}

/// Runs `seed`: `None` if it came out correct, otherwise why not and the command that replays
/// it.
fn run_seed(
    program: &str,
    scenario: &Scenario,
    path: &Path,
    seed: u64,
    options: &RunOptions,
) -> Option<(String, String)> {
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
    Some((reason, replay_command(program, path, seed, &options)))
}

/// A bar over the sweep's seeds on standard error, or a hidden one.
fn progress_bar(seeds: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(seeds);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} seeds {msg} ({elapsed})")
    {
        bar.set_style(style);
    }
    bar
}

/// SIGINT and SIGTERM, caught for the length of a sweep: the first stops it (the runs under way
/// finish, no new one starts), a second ends the process as the signal would have. Once the
/// sweep is over (the guard dropped), both do what they do by default again.
struct StopOnSignals {
    /// The number of the signal that came, or 0.
    received: Arc<AtomicUsize>,
    /// Set once a signal came or the sweep is over: from then on a signal does its default.
    default_again: Arc<AtomicBool>,
}

impl StopOnSignals {
    /// Catches both signals; `None` (the sweep runs on, unstoppable but for SIGKILL's kind of
    /// stop) if the handlers cannot be installed.
    fn arm() -> Option<Self> {
        let received = Arc::new(AtomicUsize::new(0));
        let default_again = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // In this order: the default action only once a signal has already come.
            flag::register_conditional_default(signal, Arc::clone(&default_again)).ok()?;
            flag::register_usize(signal, Arc::clone(&received), signal as usize).ok()?;
            flag::register(signal, Arc::clone(&default_again)).ok()?;
        }
        Some(StopOnSignals {
            received,
            default_again,
        })
    }

    /// Whether a signal came.
    fn stopped(&self) -> bool {
        self.received.load(Ordering::Relaxed) != 0
    }

    /// The signal that came, if one did.
    fn signal(&self) -> Option<StopSignal> {
        match i32::try_from(self.received.load(Ordering::Relaxed)) {
            Ok(SIGINT) => Some(StopSignal::Interrupt),
            Ok(SIGTERM) => Some(StopSignal::Terminate),
            _ => None,
        }
    }
}

impl Drop for StopOnSignals {
    fn drop(&mut self) {
        self.default_again.store(true, Ordering::Relaxed);
    }
}

impl SweepReport {
    /// The exit status the sweep means: 0 if every seed ran and came out correct, 1 if one
    /// failed, 130 or 143 if SIGINT or SIGTERM stopped it.
    pub fn exit_status(&self) -> u8 {
        match self.stopped_by.as_deref() {
            Some("SIGINT") => StopSignal::Interrupt.exit_status(),
            Some(_) => StopSignal::Terminate.exit_status(),
            None if self.failed == 0 => super::EXIT_CORRECT,
            None => super::EXIT_WRONG,
        }
    }
}

/// The command that replays `seed` of the scenario at `path` with `options`, writing its text
/// trace and its report (whose diagram shows what led to the failure), quoted for a POSIX
/// shell; it starts with `program`, the command that starts this binary (quoted already).
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
    let path = quote_os_path(path.as_os_str());
    format!(
        "{program} run {path} --seed {seed}{flags} --trace seed-{seed}.trace --report seed-{seed}-report"
    )
}

/// The most failing seeds a sweep writes a report for.
pub const MAX_SWEEP_REPORTS: usize = 20;

/// Writes into `dir` a report for each of the first [`MAX_SWEEP_REPORTS`] failing seeds of
/// `sweep`, as `seed-<n>/`, and an index linking them. Each seed is replayed observed, one at a
/// time per core: at most as many recorded runs are in memory at once as there are cores.
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
            let run = run(scenario, &Target::Simulated, &options);
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
    let unlisted = sweep.failed - sweep.failing.len() as u64;
    if unlisted > 0 {
        notes.push(format!(
            "{unlisted} more failing seeds are counted but not listed (see --max-failing)."
        ));
    }
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
        let unlisted = self.failed - self.failing.len() as u64;
        if unlisted > 0 {
            writeln!(
                f,
                "... and {unlisted} more failing seeds, counted but not listed (--max-failing N lists more)"
            )?;
        }
        if let Some(signal) = &self.stopped_by {
            write!(
                f,
                "stopped by {signal} after {} of {} seeds: ",
                self.seeds, self.requested
            )?;
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
