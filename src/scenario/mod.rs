//! Scenarios: a JSON description of a sum-network run (machines, users, their actions, the
//! network), a generator for demo and benchmark scenarios, and the runner that plays one on any
//! [`Hardware`](crate::hardware::Hardware) and reports the outcome.

mod format;
mod generate;
mod report;
mod runner;

pub use format::{Scenario, ScenarioError, UserSpec, MAX_MACHINES};
pub use generate::{Workload, WorkloadError, MAX_GENERATED_ACTIONS, MAX_GENERATED_USERS};
pub use report::{FaultReport, Report, RunCounters};
pub use runner::{
    run_scenario, simulate, simulate_traced, Outcome, Progress, RunError, RunOptions, SimulatedRun,
    TracedRun,
};
