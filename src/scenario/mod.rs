//! Scenarios: a JSON description of a run (machines, its length, the seed, the network, and the
//! application's own section), the one run path that plays one in any mode ([`run`], on a
//! [`Target`](crate::hardware::Target)), and the report of what came of it.

mod format;
mod observed;
mod report;
mod runner;

pub use format::{Scenario, ScenarioError, MAX_MACHINES};
pub use observed::{Observed, Sample, Sampler};
pub use report::{FaultReport, Report};
pub use runner::{
    run, run_scenario, run_scenario_sampled, simulate, Progress, RunError, RunOptions, RunOutcome,
    SimulatedRun,
};
