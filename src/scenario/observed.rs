//! What a run that was asked to be observed keeps besides its report: the structured trace and
//! the application's series sampled over time.

use std::cell::RefCell;

use serde::Serialize;

use crate::app::{AnyApplication, AnySection};
use crate::manager::NodeState;
use crate::observe::Record;

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
}

/// Collects samples of an application's series as a run goes.
pub struct Sampler<'a> {
    app: &'a dyn AnyApplication,
    section: &'a AnySection,
    samples: RefCell<Vec<Sample>>,
}

impl<'a> Sampler<'a> {
    /// A sampler of `app`'s series for `section`.
    pub fn new(app: &'a dyn AnyApplication, section: &'a AnySection) -> Self {
        Sampler {
            app,
            section,
            samples: RefCell::new(Vec::new()),
        }
    }

    /// Samples the series from `states`, read at `at_ms`.
    pub fn sample_states(&self, at_ms: u64, states: &[NodeState]) {
        let values = self.app.series(self.section, states);
        self.samples.borrow_mut().push(Sample { at_ms, values });
    }

    /// The samples taken so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.borrow().clone()
    }
}
