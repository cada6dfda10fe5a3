//! Scenarios: a JSON description of a run (machines, its length, the seed, the network, and the
//! application's own section), the runner that plays one on any
//! [`Hardware`](crate::hardware::Hardware), and the report of what came of it.

mod format;
mod observed;
mod report;
mod runner;

pub use format::{Scenario, ScenarioError, MAX_MACHINES};
pub use observed::{Observed, Sample, Sampler};
pub use report::{FaultReport, Report};
pub use runner::{
    run_scenario, run_scenario_sampled, simulate, simulate_traced, Progress, RunError, RunOptions,
    SimulatedRun, TracedRun,
};
