//! The report of a scenario run: one JSON object, or a readable summary.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Scenario;
use crate::app::AnyVerdict;
use crate::counters::Counters;
use crate::faults::FaultKind;
use crate::hardware::Mode;
use crate::observe::gather::{unreadable_line, UnreadableMachine};
use crate::terminal::escape;
use crate::time::Millis;

/// What the network's faults did and what reliable delivery did about them: the part of a run's
/// [`Counters`] the report shows under `faults`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultReport {
    /// Transmissions lost to the drop rule.
    pub dropped: u64,
    /// Transmissions delivered twice.
    pub duplicated: u64,
    /// Transmissions held back so that later ones overtook them.
    pub reordered: u64,
    /// Transmissions lost to a partition.
    pub partitioned: u64,
    /// Packets the link layer sent again.
    pub retransmitted: u64,
    /// Packets received twice and dropped by the link layer.
    pub duplicates_suppressed: u64,
    /// Transmissions held by a hold until its release.
    pub held: u64,
    /// Pauses of a machine that was up.
    pub pauses: u64,
    /// Machines that crashed.
    pub crashes: u64,
    /// Machines that booted again after a crash.
    pub restarts: u64,
}

impl From<&Counters> for FaultReport {
    fn from(counters: &Counters) -> Self {
        FaultReport {
            dropped: counters.dropped,
            duplicated: counters.duplicated,
            reordered: counters.reordered,
            partitioned: counters.partitioned,
            retransmitted: counters.retransmitted,
            duplicates_suppressed: counters.duplicates_suppressed,
            held: counters.held,
            pauses: counters.pauses,
            crashes: counters.crashes,
            restarts: counters.restarts,
        }
    }
}

/// What a run did, and what its application concluded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The application, by name.
    pub application: &'static str,
    /// What the readable summary calls the application.
    #[serde(skip)]
    pub title: &'static str,
    /// The mode it ran in.
    pub mode: Mode,
    /// The seed it ran on.
    pub seed: u64,
    /// How many machines.
    pub machines: u32,
    /// The run's size as the application says it, e.g. `6 users`.
    #[serde(skip)]
    pub size: String,
    /// How long the system ran (virtual milliseconds in simulated mode, real ones elsewhere).
    pub simulated_ms: Millis,
    /// Wall-clock milliseconds the run took.
    pub wall_ms: f64,
    /// Events processed.
    pub events: u64,
    /// Messages handed to nodes.
    pub messages_delivered: u64,
    /// Envelopes for nodes or machines that did not exist.
    pub undeliverable: u64,
    /// Hash of the event trace (simulated mode): equal for equal seeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_hash: Option<String>,
    /// What the faults did and what reliable delivery did about them (simulated mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultReport>,
    /// The kinds of fault the scenario asked for that this mode could not apply (empty when
    /// every one was applied; always empty in simulated mode).
    pub not_applied: Vec<FaultKind>,
    /// Whether the system had settled when the run ended: nothing in flight. An output that
    /// differs in a run that has not settled may only be late, not wrong.
    pub settled: bool,
    /// How much was still in flight when the run ended: packets sent and not yet acknowledged,
    /// transmissions the network still carried outside reliable delivery, and messages waiting
    /// for their node's spawn.
    pub in_flight: u64,
    /// What the application reports (for the sum network: `users`, `expected_total`,
    /// `outputs`); its fields sit at the top level of the JSON.
    #[serde(flatten)]
    pub outcome: Map<String, Value>,
    /// Whether the application judged the run correct.
    pub correct: bool,
    /// Why, in one line (e.g. `all 6 outputs equal 88`).
    #[serde(skip)]
    pub summary: String,
    /// The application's lines of the readable summary.
    #[serde(skip)]
    pub lines: Vec<String>,
    /// The machines whose structured trace could not be read (a run observed in virtual or cloud
    /// mode), so that the run's merged trace lacks their records; empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_machines: Vec<UnreadableMachine>,
}

impl Report {
    /// The report of a run of `scenario` on `seed` in `mode` that lasted `simulated_ms` of system
    /// time and `wall_ms` of wall time, whose hardware counted `counters` (summed over every
    /// machine, with what was in flight at the end), and that came to `verdict`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mode: Mode,
        scenario: &Scenario,
        seed: u64,
        simulated_ms: Millis,
        wall_ms: f64,
        counters: Counters,
        trace_hash: Option<String>,
        verdict: AnyVerdict,
    ) -> Self {
        let app = scenario.app();
        Report {
            application: app.name(),
            title: app.title(),
            mode,
            seed,
            machines: scenario.machines,
            size: app.size(scenario.section()),
            simulated_ms,
            wall_ms,
            events: counters.events,
            messages_delivered: counters.messages_delivered,
            undeliverable: counters.undeliverable,
            trace_hash,
            faults: Some(FaultReport::from(&counters)),
            not_applied: Vec::new(),
            settled: counters.in_flight == 0,
            in_flight: counters.in_flight,
            outcome: verdict.outcome,
            correct: verdict.correct,
            summary: verdict.summary,
            lines: verdict.lines,
            unreadable_machines: Vec::new(),
        }
    }

    /// The application's outcome as its own type (e.g. the sum network's
    /// [`SumOutcome`](crate::apps::sum::SumOutcome)).
    pub fn outcome<O: DeserializeOwned>(&self) -> Result<O, serde_json::Error> {
        serde_json::from_value(Value::Object(self.outcome.clone()))
    }
}

/// How the run's pace compares with the real clock, as the summary says it: ` (1070x real
/// time)`, ` (3.2x slower than real time)`, or nothing when either time is zero.
fn speed(simulated: Millis, wall_ms: f64) -> String {
    let simulated_ms = simulated.0 as f64;
    if wall_ms <= 0.0 || simulated_ms <= 0.0 {
        return String::new();
    }
    let ratio = simulated_ms / wall_ms;
    if ratio >= 1.0 {
        format!(" ({ratio:.0}x real time)")
    } else {
        format!(" ({:.1}x slower than real time)", 1.0 / ratio)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "DistZero {}, {} mode, seed {}",
            self.title, self.mode, self.seed
        )?;
        let speed = speed(self.simulated_ms, self.wall_ms);
        writeln!(
            f,
            "  {} machines, {}: {} ms of system time in {:.1} ms of wall time{speed}",
            self.machines,
            escape(&self.size),
            self.simulated_ms.0,
            self.wall_ms
        )?;
        writeln!(
            f,
            "  {} events, {} messages delivered",
            self.events, self.messages_delivered
        )?;
        if let Some(hash) = &self.trace_hash {
            writeln!(f, "  trace hash {hash}")?;
        }
        if let Some(faults) = self
            .faults
            .filter(|faults| *faults != FaultReport::default())
        {
            writeln!(
                f,
                "  faults: {} dropped, {} duplicated, {} reordered, {} cut by partitions; {} retransmitted, {} duplicates suppressed",
                faults.dropped,
                faults.duplicated,
                faults.reordered,
                faults.partitioned,
                faults.retransmitted,
                faults.duplicates_suppressed
            )?;
            if faults.held + faults.pauses + faults.crashes + faults.restarts > 0 {
                writeln!(
                    f,
                    "  also: {} held, {} pauses, {} crashes, {} restarts",
                    faults.held, faults.pauses, faults.crashes, faults.restarts
                )?;
            }
        }
        if !self.not_applied.is_empty() {
            let kinds: Vec<String> = self.not_applied.iter().map(ToString::to_string).collect();
            writeln!(
                f,
                "  not applied in {} mode: {}",
                self.mode,
                kinds.join(", ")
            )?;
        }
        if !self.settled {
            writeln!(
                f,
                "  not settled: {} {} still in flight when the run ended",
                self.in_flight,
                if self.in_flight == 1 {
                    "message"
                } else {
                    "messages"
                }
            )?;
        }
        for line in &self.lines {
            writeln!(f, "  {}", escape(line))?;
        }
        if let Some(line) = unreadable_line(&self.unreadable_machines) {
            writeln!(f, "  {}", escape(&line))?;
        }
        if self.correct {
            write!(f, "correct: {}", escape(&self.summary))
        } else {
            write!(f, "WRONG: {}", escape(&self.summary))?;
            if self.settled {
                Ok(())
            } else {
                write!(
                    f,
                    " (the run ended before it settled: a longer run_ms may let them converge)"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_a_run_slower_than_real_time_says_how_much_slower() {
        assert_eq!(speed(Millis(1000), 0.9), " (1111x real time)");
        assert_eq!(speed(Millis(1000), 1000.0), " (1x real time)");
        assert_eq!(speed(Millis(100), 320.0), " (3.2x slower than real time)");
        assert_eq!(speed(Millis(0), 5.0), "");
        assert_eq!(speed(Millis(5), 0.0), "");
    }
}
