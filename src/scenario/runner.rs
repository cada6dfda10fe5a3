//! Plays a scenario on any hardware and reports what each user's output converged to.

#[cfg(feature = "docker")]
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Observed, Report, Sampler, Scenario, ScenarioError};
use crate::app::{AnyVerdict, PlayError, SectionError};
use crate::faults::{FaultKind, NetworkConfig};
use crate::hardware::simulated::fault_windows;
use crate::hardware::{start, Hardware, HardwareError, RunHardware, Started, SystemSpec, Target};
use crate::node::{DuplicateNodeType, NodeRegistry};
use crate::observe::failure_history;
use crate::observe::merge::with_windows;
use crate::observe::Record;
use crate::system::{Checks, InvariantBroken, Pacer, Sim, SystemError};
use crate::terminal::err;
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
    if app.has_invariant(section) {
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

/// A run in any mode that may have stopped early (a node failed, a capacity limit was reached,
/// a machine was lost, a signal stopped it): its report or why it stopped, and what it
/// observed either way, to replay and study.
pub struct RunOutcome {
    /// The report, or why there is none.
    pub result: Result<Report, RunError>,
    /// The full event trace up to where the run ended, if [`RunOptions::keep_trace_text`] was
    /// set and the run started at all (simulated mode).
    pub trace_text: Option<String>,
    /// The structured trace and series up to where the run ended, if [`RunOptions::observe`]
    /// was set and the machines had started.
    pub observed: Option<Observed>,
    /// The run's id, when what it created outside this process carried one (virtual, cloud).
    pub run_id: Option<String>,
    /// The host directory of the machines' logs, when they are on this host (virtual).
    pub logs: Option<PathBuf>,
    /// Milliseconds it took to start the machines.
    pub startup_ms: f64,
}

impl RunOutcome {
    /// An outcome of a run that never started.
    fn not_started(error: RunError) -> Self {
        RunOutcome {
            result: Err(error),
            trace_text: None,
            observed: None,
            run_id: None,
            logs: None,
            startup_ms: 0.0,
        }
    }
}

/// Runs a scenario in simulated mode.
pub fn simulate(scenario: &Scenario, options: &RunOptions) -> Result<SimulatedRun, RunError> {
    let RunOutcome {
        result,
        trace_text,
        observed,
        ..
    } = run(scenario, &Target::Simulated, options);
    result.map(|report| SimulatedRun {
        report,
        trace_text,
        observed,
    })
}

/// A remote run's merged `records` with the partitions, pauses and crashes of `network` that
/// the runner applied (every window whose kind is not in `not_applied`) written in at the times
/// the runner applied them, up to the end of the trace or of the run, whichever is later.
fn applied_windows(
    records: Vec<Record>,
    network: &NetworkConfig,
    not_applied: &[FaultKind],
    run_ms: Millis,
) -> Vec<Record> {
    let kind = |fault: &str| match fault {
        "partition" => Some(FaultKind::Partition),
        "pause" => Some(FaultKind::Pause),
        "crash" => Some(FaultKind::Crash),
        _ => None,
    };
    let windows = fault_windows(network)
        .into_iter()
        .filter(|timed| kind(&timed.window.fault).is_some_and(|k| !not_applied.contains(&k)))
        .collect();
    let end_us = records
        .last()
        .map_or(0, |record| record.at_us)
        .max(run_ms.to_micros_saturating().0);
    with_windows(records, windows, end_us)
}

/// Runs `scenario` on `target`: the one run path of every mode, used by the command line, the
/// tests and library users alike. It starts the hardware with the scenario's fault plan on its
/// schedule, plays the application, runs to the end, judges the nodes' states and ends the run
/// (removing whatever it created, also when it failed), keeping what it observed either way.
pub fn run(scenario: &Scenario, target: &Target, options: &RunOptions) -> RunOutcome {
    if let Err(error) = scenario.validate().and_then(|()| fits(scenario, target)) {
        return RunOutcome::not_started(error.into());
    }
    let mut registry = NodeRegistry::new();
    if let Some(on) = options.wire_check {
        registry.set_wire_check(on);
    }
    scenario.app().register(&mut registry);
    let seed = options.seed.unwrap_or(scenario.seed);
    let spec = SystemSpec {
        machines: scenario.machines,
        seed,
        network: scenario.network.clone(),
        reliable: options.reliable.unwrap_or(scenario.reliable_delivery),
        observe: options.observe,
        keep_trace_text: options.keep_trace_text,
        max_events: options.max_events,
    };
    let started = match start(target, &spec, Arc::new(registry)) {
        Ok(started) => started,
        Err(HardwareError::Network(error)) => {
            return RunOutcome::not_started(ScenarioError::from(error).into())
        }
        Err(error) => return RunOutcome::not_started(error.into()),
    };
    let Started {
        mut hardware,
        not_applied,
        startup_ms,
    } = started;
    let run_id = hardware.run_id().map(str::to_owned);
    #[cfg(feature = "docker")]
    let logs = hardware.logs_dir().map(Path::to_path_buf);
    #[cfg(not(feature = "docker"))]
    let logs = None;
    let sampler = Sampler::new(scenario.app().as_ref(), scenario.section(), scenario.run_ms);
    let sampler = options.observe.then_some(&sampler);
    let played = play(&mut *hardware, scenario, seed, options.progress, sampler);
    let trace_hash = hardware.trace_hash();
    let (finished, left) = hardware.finish(options.observe);
    let not_applied_kinds = not_applied.clone();
    let mut result = match (played, finished) {
        (Ok(report), Ok(())) => Ok(Report {
            not_applied,
            unreadable_machines: left.unreadable.clone(),
            trace_hash,
            ..report
        }),
        (Ok(_), Err(error)) => Err(error.into()),
        (Err(error), Ok(())) => Err(error),
        (Err(error), Err(cleanup)) => {
            if !matches!(cleanup, HardwareError::Stopped(_)) {
                err!("dist-zero: {cleanup}");
            }
            Err(error)
        }
    };
    let records = left.records.unwrap_or_default();
    let records = if matches!(target, Target::Simulated) {
        records // the simulator wrote its windows as they came
    } else {
        applied_windows(
            records,
            &scenario.network,
            &not_applied_kinds,
            scenario.run_ms,
        )
    };
    // A machine in another process reports its failure without the messages that led to it:
    // they are in the records, read back the way the simulator's would be.
    if let Err(RunError::Hardware(HardwareError::NodeFailed(report))) = &mut result {
        if report.trace.is_empty() {
            report.trace = failure_history(&records, &report.failure);
        }
    }
    let observed = sampler.map(|sampler| Observed {
        records,
        samples: sampler.samples(),
        unreadable_machines: left.unreadable,
    });
    RunOutcome {
        result,
        trace_text: left.trace_text,
        observed,
        run_id,
        logs,
        startup_ms,
    }
}

/// Refuses a scenario its target cannot run, before anything is created.
fn fits(scenario: &Scenario, target: &Target) -> Result<(), ScenarioError> {
    #[cfg(feature = "docker")]
    if matches!(target, Target::Virtual(_))
        && scenario.machines > crate::hardware::docker::MAX_MACHINES
    {
        return Err(ScenarioError::Invalid {
            field: "machines".into(),
            reason: format!(
                "virtual mode runs at most {} machines (one container each, on one /24 Docker \
                 network), not {}",
                crate::hardware::docker::MAX_MACHINES,
                scenario.machines
            ),
        });
    }
    let _ = (scenario, target);
    Ok(())
}

/// Plays `scenario` on running hardware and reports on it (what it could not apply, whose
/// records were lost and the trace hash are the caller's to fill in, once the run has ended).
fn play(
    hardware: &mut dyn RunHardware,
    scenario: &Scenario,
    seed: u64,
    progress: bool,
    sampler: Option<&Sampler<'_>>,
) -> Result<Report, RunError> {
    let progress = Progress::new(scenario.run_ms, progress);
    let started = Instant::now();
    let verdict = run_scenario_sampled(&mut *hardware, scenario, seed, &progress, sampler);
    progress.finish();
    let verdict = verdict?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let counters = hardware.totals()?;
    Ok(Report::new(
        hardware.mode(),
        scenario,
        seed,
        Millis(hardware.now_ms()),
        wall_ms,
        counters,
        None,
        verdict,
    ))
}
