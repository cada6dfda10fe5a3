//! Plays a scenario on any hardware and reports what each user's output converged to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::{FaultReport, Report, RunCounters, Scenario, ScenarioError};
use crate::hardware::simulated::{SimulatedHardware, SimulationConfig};
use crate::hardware::{Hardware, HardwareError};
use crate::messages::MachineId;
use crate::node::NodeRegistry;
use crate::sum_network::{InputNode, OutputLeafNode, OutputNode, SumMessage, SumNode};
use crate::time::Millis;

/// How many times at most the progress bar moves while the runner advances to a time.
const PROGRESS_STEPS: u64 = 200;

/// Why a scenario run did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario is not valid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The hardware or a node failed during the run.
    #[error(transparent)]
    Hardware(#[from] HardwareError),
}

/// How to run a scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces the scenario's seed.
    pub seed: Option<u64>,
    /// Keep the full text of the event trace (simulated mode).
    pub keep_trace_text: bool,
    /// Show a progress bar on standard error.
    pub progress: bool,
    /// Replaces the scenario's `reliable_delivery`.
    pub reliable: Option<bool>,
    /// Stops the run with a capacity error once it has processed this many events (simulated
    /// mode).
    pub max_events: Option<u64>,
}

/// Progress through a run's time, shown as a bar when asked for.
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar over the `run_ms` of a run, or a hidden one.
    pub fn new(run_ms: Millis, visible: bool) -> Self {
        if !visible {
            return Progress(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(run_ms.0);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} ms ({elapsed})")
        {
            bar.set_style(style);
        }
        bar.set_message("simulating");
        Progress(bar)
    }

    fn advance(&self, to_ms: Millis) {
        self.0.set_position(to_ms.0);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// What every user's output came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The sum of every increment.
    pub expected_total: i64,
    /// User name → that user's output total (`None` if its output leaf does not exist).
    pub outputs: BTreeMap<String, Option<i64>>,
}

impl Outcome {
    /// Whether every user's output equals the expected total.
    pub fn correct(&self) -> bool {
        self.outputs
            .values()
            .all(|total| *total == Some(self.expected_total))
    }
}

/// Builds the sum network on machine 0, lets every user join at its time, runs to the end, and
/// reads every output leaf.
pub fn run_scenario(
    hardware: &mut dyn Hardware,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, RunError> {
    let root = MachineId(0);
    let encode = |e: crate::node::NodeError| {
        HardwareError::Infrastructure(format!("cannot encode a root config: {e}"))
    };
    let sum = hardware.spawn(root, &SumNode::config())?;
    let input = hardware.spawn(root, &InputNode::config(vec![sum]).map_err(encode)?)?;
    let output = hardware.spawn(root, &OutputNode::config(vec![sum]).map_err(encode)?)?;

    let mut joining: Vec<_> = scenario.users.iter().collect();
    joining.sort_by_key(|user| user.join_ms);
    for user in joining {
        advance(hardware, user.join_ms, progress)?;
        let machine = Scenario::machine_of(user);
        let add_input = SumMessage::AddKid {
            machine,
            user: user.name.clone(),
            recording: Some(Scenario::recording_of(user)?),
        };
        let add_output = SumMessage::AddKid {
            machine,
            user: user.name.clone(),
            recording: None,
        };
        hardware.send(input, add_input.to_message().map_err(encode)?)?;
        hardware.send(output, add_output.to_message().map_err(encode)?)?;
    }
    advance(hardware, scenario.run_ms, progress)?;
    progress.finish();

    let mut outputs: BTreeMap<String, Option<i64>> = scenario
        .users
        .iter()
        .map(|user| (user.name.clone(), None))
        .collect();
    for node in hardware.node_states()? {
        if node.node_type != OutputLeafNode::TYPE {
            continue;
        }
        let user = node.state.get("user").and_then(|v| v.as_str());
        let total = node.state.get("total").and_then(|v| v.as_i64());
        if let (Some(user), Some(total)) = (user, total) {
            if let Some(slot) = outputs.get_mut(user) {
                *slot = Some(total);
            }
        }
    }
    Ok(Outcome {
        expected_total: scenario.expected_total(),
        outputs,
    })
}

/// Runs the hardware forward to `to_ms` in at most [`PROGRESS_STEPS`] steps (none shorter than
/// 50 ms), moving the progress bar as it goes; the number of steps never grows with the length
/// of the run.
fn advance(
    hardware: &mut dyn Hardware,
    to_ms: Millis,
    progress: &Progress,
) -> Result<(), HardwareError> {
    const MIN_STEP: Millis = Millis(50);
    let mut at = Millis(hardware.now_ms());
    let step = Millis(to_ms.saturating_sub(at).0 / PROGRESS_STEPS).max(MIN_STEP);
    while at < to_ms {
        at = at.saturating_add(step).min(to_ms);
        hardware.run_until(at.0)?;
        progress.advance(at);
    }
    Ok(())
}

/// The outcome of a simulated run: its report, and its trace text if it was kept.
pub struct SimulatedRun {
    /// The report.
    pub report: Report,
    /// The full event trace, if [`RunOptions::keep_trace_text`] was set.
    pub trace_text: Option<String>,
}

/// A simulated run that may have stopped early (a node failed, a capacity limit was reached):
/// its report or why it stopped, and its trace text either way, to replay and study.
pub struct TracedRun {
    /// The report, or why there is none.
    pub result: Result<Report, RunError>,
    /// The full event trace up to where the run ended, if [`RunOptions::keep_trace_text`] was
    /// set and the run started at all.
    pub trace_text: Option<String>,
}

/// Runs a scenario in simulated mode.
pub fn simulate(scenario: &Scenario, options: &RunOptions) -> Result<SimulatedRun, RunError> {
    let TracedRun { result, trace_text } = simulate_traced(scenario, options);
    result.map(|report| SimulatedRun { report, trace_text })
}

/// Runs a scenario in simulated mode and keeps its trace even if the run stops early.
pub fn simulate_traced(scenario: &Scenario, options: &RunOptions) -> TracedRun {
    let mut hardware = match start_simulation(scenario, options) {
        Ok(hardware) => hardware,
        Err(error) => {
            return TracedRun {
                result: Err(error),
                trace_text: None,
            }
        }
    };
    let result = play_simulated(&mut hardware, scenario, options);
    TracedRun {
        result,
        trace_text: hardware.trace().text().map(str::to_owned),
    }
}

/// The simulated hardware for `scenario` with `options` applied, before anything runs.
fn start_simulation(
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<SimulatedHardware, RunError> {
    scenario.validate()?;
    let config = SimulationConfig {
        machines: scenario.machines,
        seed: options.seed.unwrap_or(scenario.seed),
        network: scenario.network.clone(),
        keep_trace_text: options.keep_trace_text,
        reliable: options.reliable.unwrap_or(scenario.reliable_delivery),
    };
    let mut hardware = SimulatedHardware::new(config, Arc::new(NodeRegistry::with_builtins()))
        .map_err(ScenarioError::from)?;
    if let Some(max) = options.max_events {
        hardware.limit_events(max);
    }
    Ok(hardware)
}

/// Plays `scenario` on `hardware` and reports on it.
fn play_simulated(
    hardware: &mut SimulatedHardware,
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<Report, RunError> {
    let progress = Progress::new(scenario.run_ms, options.progress);
    let started = Instant::now();
    let outcome = run_scenario(hardware, scenario, &progress);
    progress.finish();
    let outcome = outcome?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let stats = hardware.stats();
    let counters = RunCounters {
        events: stats.events,
        messages_delivered: stats.messages_delivered,
        undeliverable: stats.undeliverable,
        faults: FaultReport::new(&stats.faults, &stats.link),
        in_flight: hardware.in_flight(),
    };
    Ok(Report::new(
        hardware.mode(),
        scenario,
        hardware.seed(),
        Millis(hardware.now_ms()),
        wall_ms,
        counters,
        Some(hardware.trace().hash()),
        outcome,
    ))
}
