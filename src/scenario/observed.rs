//! What a run that was asked to be observed keeps besides its report: the structured trace and
//! the application's series sampled over time.

use std::cell::RefCell;

use serde::Serialize;

use crate::app::{AnyApplication, AnySection};
use crate::manager::NodeState;
use crate::observe::gather::UnreadableMachine;
use crate::observe::Record;
use crate::time::Millis;

/// The application's series at one moment of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// When, in milliseconds since the run started.
    pub at_ms: u64,
    /// Each series' value then, by name.
    pub values: Vec<(String, f64)>,
}

/// A run's structured trace and its application's series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Every event, in time order, linked to its cause.
    pub records: Vec<Record>,
    /// The application's series, sampled between the runner's steps and at the end.
    pub samples: Vec<Sample>,
    /// The machines whose records are missing from `records` (real runs: a machine whose trace
    /// could not be read); the other machines' records are there.
    pub unreadable_machines: Vec<UnreadableMachine>,
}

/// How many samples a run keeps at most, spread over its length (and one at its end).
pub const MAX_SAMPLES: u64 = 100;

/// Collects samples of an application's series as a run goes, no closer together than a
/// `MAX_SAMPLES`th of the run (reading every node's state is the costly part).
pub struct Sampler<'a> {
    app: &'a dyn AnyApplication,
    section: &'a AnySection,
    gap_ms: u64,
    samples: RefCell<Vec<Sample>>,
}

impl<'a> Sampler<'a> {
    /// A sampler of `app`'s series for `section`, over a run of `run_ms`.
    pub fn new(app: &'a dyn AnyApplication, section: &'a AnySection, run_ms: Millis) -> Self {
        Sampler {
            app,
            section,
            gap_ms: (run_ms.0 / MAX_SAMPLES).max(1),
            samples: RefCell::new(Vec::new()),
        }
    }

    /// Whether a sample taken at `at_ms` would be kept (it is far enough from the last one).
    pub fn due(&self, at_ms: u64) -> bool {
        self.samples
            .borrow()
            .last()
            .is_none_or(|last| at_ms >= last.at_ms.saturating_add(self.gap_ms))
    }

    /// Samples the series from `states`, read at `at_ms` (replacing a sample taken at the same
    /// time).
    pub fn sample_states(&self, at_ms: u64, states: &[NodeState]) {
        let values = self.app.series(self.section, states);
        let mut samples = self.samples.borrow_mut();
        if samples.last().is_some_and(|last| last.at_ms == at_ms) {
            samples.pop();
        }
        samples.push(Sample { at_ms, values });
    }

    /// The samples taken so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.borrow().clone()
    }
}
