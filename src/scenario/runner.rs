//! Plays a scenario on any hardware and reports what each user's output converged to.

use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Observed, Report, Sampler, Scenario, ScenarioError};
use crate::app::{AnyVerdict, PlayError, SectionError};
use crate::hardware::simulated::{fault_windows, SimulatedHardware, SimulationConfig};
use crate::hardware::{Hardware, HardwareError};
use crate::node::{DuplicateNodeType, NodeRegistry};
use crate::system::{Checks, InvariantBroken, Pacer, Sim, SystemError};
use crate::time::Millis;

/// How many times at most the runner stops on its way to a time (to move the progress bar,
/// sample the series, and, on hardware on the real clock, check the invariant).
const STEPS: u64 = 200;
/// The shortest step.
const MIN_STEP: Millis = Millis(50);

/// Why a scenario run did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario is not valid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The hardware or a node failed during the run.
    #[error(transparent)]
    Hardware(#[from] HardwareError),
    /// A node's final state does not read back as its type's `State`.
    #[error("node {node} ({node_type}): its state does not read back as its State type: {reason}")]
    UnreadableState {
        /// The node.
        node: String,
        /// Its type.
        node_type: String,
        /// What serde said.
        reason: String,
    },
    /// The application's invariant did not hold.
    #[error(transparent)]
    Invariant(Box<InvariantBroken>),
    /// The application registers two node types under one name.
    #[error(transparent)]
    DuplicateNodeType(#[from] DuplicateNodeType),
    /// The system could not do what the application's play asked.
    #[error(transparent)]
    System(SystemError),
}

impl From<SystemError> for RunError {
    fn from(error: SystemError) -> Self {
        match error {
            SystemError::Hardware(error) => RunError::Hardware(error),
            SystemError::Invariant(broken) => RunError::Invariant(broken),
            SystemError::UnreadableState {
                node,
                node_type,
                reason,
            } => RunError::UnreadableState {
                node,
                node_type,
                reason,
            },
            SystemError::DuplicateNodeType(duplicate) => RunError::DuplicateNodeType(duplicate),
            other => RunError::System(other),
        }
    }
}

/// An application's play that stopped: what the system said, as if the runner had asked it,
/// and a field found unplayable as an invalid scenario.
impl From<PlayError> for RunError {
    fn from(error: PlayError) -> Self {
        match error {
            PlayError::System(error) => error.into(),
            PlayError::Section(error) => RunError::Scenario(SectionError::from(error).into()),
        }
    }
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
    /// Turns the wire check on or off (see
    /// [`NodeRegistry::set_wire_check`](crate::node::NodeRegistry::set_wire_check)); by default
    /// it is on in debug builds.
    pub wire_check: Option<bool>,
    /// Keep the structured trace and sample the application's series, for a report or a
    /// JSON-lines trace (simulated mode; off, it costs nothing).
    pub observe: bool,
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

    /// Moves the bar to `to_ms`.
    pub fn advance(&self, to_ms: Millis) {
        self.0.set_position(to_ms.0);
    }

    /// Takes the bar off the screen.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Plays `scenario`'s application on `hardware`, runs to the end of the run, and lets the
/// application judge the nodes' states. The application's invariant, if it has one, is checked
/// as the run goes: after every event in simulated mode.
pub fn run_scenario(
    hardware: &mut dyn Hardware,
    scenario: &Scenario,
    seed: u64,
    progress: &Progress,
) -> Result<AnyVerdict, RunError> {
    run_scenario_sampled(hardware, scenario, seed, progress, None)
}

/// [`run_scenario`], and with `sampler`, the application's series sampled between the runner's
/// steps and at the end.
pub fn run_scenario_sampled(
    hardware: &mut dyn Hardware,
    scenario: &Scenario,
    seed: u64,
    progress: &Progress,
    sampler: Option<&Sampler<'_>>,
) -> Result<AnyVerdict, RunError> {
    let app = scenario.app();
    let section = scenario.section();
    let mut registry = NodeRegistry::new();
    app.register(&mut registry);
    registry.check()?;
    let mut checks = Checks::none();
    if app.has_invariant() {
        let (app, section) = (Arc::clone(app), Arc::clone(section));
        let name = format!("{} invariant", app.name());
        checks = checks.boxed_invariant(&name, move |states| app.invariant(&section, states));
    }
    let plan_cuts = u32::try_from(scenario.network.partitions.len()).unwrap_or(u32::MAX);
    let mut sim = Sim::over(
        Box::new(&mut *hardware),
        seed,
        Arc::new(registry),
        checks,
        plan_cuts,
    );
    sim.pace(Pacer {
        steps: STEPS,
        min_step: MIN_STEP,
        observe: Box::new(|hardware: &mut dyn Hardware| {
            let now_ms = hardware.now_ms();
            progress.advance(Millis(now_ms));
            if let Some(sampler) = sampler.filter(|sampler| sampler.due(now_ms)) {
                sampler.sample_states(now_ms, &hardware.node_states()?);
            }
            Ok(())
        }),
    });
    app.play(section, &mut sim)?;
    sim.run_until(scenario.run_ms.0)?;
    drop(sim);
    progress.finish();
    let states = hardware.node_states()?;
    if let Some(sampler) = sampler {
        sampler.sample_states(hardware.now_ms(), &states);
    }
    let mut registry = NodeRegistry::new();
    app.register(&mut registry);
    for state in &states {
        registry
            .check_state(&state.node_type, &state.state)
            .map_err(|reason| RunError::UnreadableState {
                node: state.handle.to_string(),
                node_type: state.node_type.clone(),
                reason,
            })?;
    }
    Ok(app.check(section, &states))
}

/// The outcome of a simulated run: its report, and its trace text if it was kept.
pub struct SimulatedRun {
    /// The report.
    pub report: Report,
    /// The full event trace, if [`RunOptions::keep_trace_text`] was set.
    pub trace_text: Option<String>,
    /// The structured trace and series, if [`RunOptions::observe`] was set.
    pub observed: Option<Observed>,
}

/// A simulated run that may have stopped early (a node failed, a capacity limit was reached):
/// its report or why it stopped, and its trace text either way, to replay and study.
pub struct TracedRun {
    /// The report, or why there is none.
    pub result: Result<Report, RunError>,
    /// The full event trace up to where the run ended, if [`RunOptions::keep_trace_text`] was
    /// set and the run started at all.
    pub trace_text: Option<String>,
    /// The structured trace and series up to where the run ended, if [`RunOptions::observe`]
    /// was set and the run started at all.
    pub observed: Option<Observed>,
}

/// Runs a scenario in simulated mode.
pub fn simulate(scenario: &Scenario, options: &RunOptions) -> Result<SimulatedRun, RunError> {
    let TracedRun {
        result,
        trace_text,
        observed,
    } = simulate_traced(scenario, options);
    result.map(|report| SimulatedRun {
        report,
        trace_text,
        observed,
    })
}

/// Runs a scenario in simulated mode and keeps its trace even if the run stops early.
pub fn simulate_traced(scenario: &Scenario, options: &RunOptions) -> TracedRun {
    let mut hardware = match start_simulation(scenario, options) {
        Ok(hardware) => hardware,
        Err(error) => {
            return TracedRun {
                result: Err(error),
                trace_text: None,
                observed: None,
            }
        }
    };
    let sampler = Sampler::new(scenario.app().as_ref(), scenario.section(), scenario.run_ms);
    let sampler = options.observe.then_some(&sampler);
    let result = play_simulated(&mut hardware, scenario, options, sampler);
    let observed = sampler.map(|sampler| Observed {
        records: hardware.take_records(),
        samples: sampler.samples(),
        unreadable_machines: Vec::new(),
    });
    TracedRun {
        result,
        trace_text: hardware.trace().text().map(str::to_owned),
        observed,
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
    let mut registry = NodeRegistry::new();
    if let Some(on) = options.wire_check {
        registry.set_wire_check(on);
    }
    scenario.app().register(&mut registry);
    let mut hardware =
        SimulatedHardware::new(config, Arc::new(registry)).map_err(ScenarioError::from)?;
    if let Some(max) = options.max_events {
        hardware.limit_events(max);
    }
    if options.observe {
        hardware.record_events(fault_windows(&scenario.network));
    }
    Ok(hardware)
}

/// Plays `scenario` on `hardware` and reports on it.
fn play_simulated(
    hardware: &mut SimulatedHardware,
    scenario: &Scenario,
    options: &RunOptions,
    sampler: Option<&Sampler<'_>>,
) -> Result<Report, RunError> {
    let progress = Progress::new(scenario.run_ms, options.progress);
    let started = Instant::now();
    let seed = hardware.seed();
    let verdict = run_scenario_sampled(hardware, scenario, seed, &progress, sampler);
    progress.finish();
    let verdict = verdict?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Report::new(
        hardware.mode(),
        scenario,
        hardware.seed(),
        Millis(hardware.now_ms()),
        wall_ms,
        hardware.stats(),
        Some(hardware.trace().hash()),
        verdict,
    ))
}
