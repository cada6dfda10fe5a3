//! The report of a scenario run: one JSON object, or a readable summary.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{Outcome, Scenario};
use crate::hardware::simulated::FaultCounters;
use crate::hardware::Mode;
use crate::manager::LinkCounters;
use crate::terminal::escape;
use crate::time::Millis;

/// What the network's faults did and what reliable delivery did about them.
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
}

impl FaultReport {
    /// Combines the network's and the link layer's counters.
    pub fn new(faults: &FaultCounters, link: &LinkCounters) -> Self {
        FaultReport {
            dropped: faults.dropped,
            duplicated: faults.duplicated,
            reordered: faults.reordered,
            partitioned: faults.partitioned,
            retransmitted: link.retransmitted,
            duplicates_suppressed: link.duplicates_suppressed,
        }
    }
}

/// How many outputs the readable summary lists before it only counts them.
const LISTED_OUTPUTS: usize = 12;

/// What a run did and whether every output converged to the total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The mode it ran in.
    pub mode: Mode,
    /// The seed it ran on.
    pub seed: u64,
    /// How many machines.
    pub machines: u32,
    /// How many users.
    pub users: usize,
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
    /// Whether the system had settled when the run ended: nothing in flight. An output that
    /// differs in a run that has not settled may only be late, not wrong.
    pub settled: bool,
    /// How much was still in flight when the run ended: packets sent and not yet acknowledged,
    /// and transmissions the network still carried outside reliable delivery.
    pub in_flight: u64,
    /// The sum of every increment.
    pub expected_total: i64,
    /// User name → that user's output total (`null` if it has none).
    pub outputs: BTreeMap<String, Option<i64>>,
    /// Whether every output equals `expected_total`.
    pub correct: bool,
}

/// What the hardware counted during a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounters {
    /// Events processed.
    pub events: u64,
    /// Messages handed to nodes.
    pub messages_delivered: u64,
    /// Envelopes for nodes or machines that did not exist.
    pub undeliverable: u64,
    /// What the faults did and what reliable delivery did about them.
    pub faults: FaultReport,
    /// What was still in flight at the end (see [`Report::in_flight`]).
    pub in_flight: u64,
}

impl Report {
    /// The report of a run of `scenario` on `seed` in `mode` that lasted `simulated_ms` of system
    /// time and `wall_ms` of wall time, counted `counters`, and came to `outcome`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mode: Mode,
        scenario: &Scenario,
        seed: u64,
        simulated_ms: Millis,
        wall_ms: f64,
        counters: RunCounters,
        trace_hash: Option<String>,
        outcome: Outcome,
    ) -> Self {
        Report {
            mode,
            seed,
            machines: scenario.machines,
            users: scenario.users.len(),
            simulated_ms,
            wall_ms,
            events: counters.events,
            messages_delivered: counters.messages_delivered,
            undeliverable: counters.undeliverable,
            trace_hash,
            faults: Some(counters.faults),
            settled: counters.in_flight == 0,
            in_flight: counters.in_flight,
            correct: outcome.correct(),
            expected_total: outcome.expected_total,
            outputs: outcome.outputs,
        }
    }

    fn wrong_outputs(&self) -> usize {
        self.outputs
            .values()
            .filter(|total| **total != Some(self.expected_total))
            .count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "DistZero sum network, {} mode, seed {}",
            self.mode, self.seed
        )?;
        let speed = if self.wall_ms > 0.0 {
            format!(
                " ({:.0}x real time)",
                self.simulated_ms.0 as f64 / self.wall_ms
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "  {} machines, {} users: {} ms of system time in {:.1} ms of wall time{speed}",
            self.machines, self.users, self.simulated_ms.0, self.wall_ms
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
        writeln!(f, "  expected total: {}", self.expected_total)?;
        let listed: Vec<_> = self
            .outputs
            .iter()
            .take(LISTED_OUTPUTS)
            .map(|(user, total)| (escape(user), total))
            .collect();
        let width = listed
            .iter()
            .map(|(user, _)| user.chars().count())
            .max()
            .unwrap_or(0);
        for (user, total) in listed {
            let (shown, mark) = match total {
                Some(total) if *total == self.expected_total => (total.to_string(), "ok"),
                Some(total) => (total.to_string(), "WRONG"),
                None => (String::from("no output"), "WRONG"),
            };
            writeln!(f, "    {user:<width$}  {shown:>8}  {mark}")?;
        }
        if self.outputs.len() > LISTED_OUTPUTS {
            writeln!(
                f,
                "    ... and {} more users",
                self.outputs.len() - LISTED_OUTPUTS
            )?;
        }
        if self.correct {
            write!(
                f,
                "correct: all {} outputs equal {}",
                self.outputs.len(),
                self.expected_total
            )
        } else {
            write!(
                f,
                "WRONG: {} of {} outputs differ from {}",
                self.wrong_outputs(),
                self.outputs.len(),
                self.expected_total
            )?;
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
