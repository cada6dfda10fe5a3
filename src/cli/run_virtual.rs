//! `dist-zero run --mode virtual`: the same scenario and the same report as simulated mode, with
//! every machine in its own Docker container. Ctrl-C or SIGTERM stops the run, removes what it
//! created and exits 130 or 143.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::hardware::docker::{DockerHardware, VirtualConfig, MAX_MACHINES};
use crate::hardware::{Hardware, HardwareError, Mode};
use crate::machine::TRACE_FILE;
use crate::messages::MachineId;
use crate::observe::gather::{gather, TraceLoss, UnreadableMachine};
use crate::observe::merge::merge;
use crate::observe::Record;
use crate::scenario::{
    run_scenario_sampled, Observed, Progress, Report, RunError, Sampler, Scenario, ScenarioError,
};
use crate::settings::Settings;
use crate::terminal::{err, out};
use crate::time::Millis;

use super::{Failure, ReportArgs, EXIT_CORRECT, EXIT_WRONG};

/// A virtual run's report and where its logs are.
pub struct VirtualRun {
    /// The report, as in simulated mode (`mode` is virtual, no trace hash).
    pub report: Report,
    /// The run's id.
    pub run_id: String,
    /// The host directory holding one log directory per machine.
    pub logs: PathBuf,
    /// Milliseconds it took to build or find the image and start every machine.
    pub startup_ms: f64,
}

/// Refuses a scenario virtual mode cannot run, before anything is created.
fn check_fits(scenario: &Scenario) -> Result<(), ScenarioError> {
    if scenario.machines > MAX_MACHINES {
        return Err(ScenarioError::Invalid {
            field: "machines".into(),
            reason: format!(
                "virtual mode runs at most {MAX_MACHINES} machines (one container each, on one \
                 /24 Docker network), not {}",
                scenario.machines
            ),
        });
    }
    Ok(())
}

/// The running binary, which virtual mode copies into its machine image (a library user's own
/// binary ships their node types this way).
pub fn this_executable() -> Result<PathBuf, Failure> {
    std::env::current_exe()
        .map_err(|error| Failure::internal(&format!("cannot find this executable: {error}")))
}

/// Runs `scenario` in containers, printing the report; returns the exit status. `reliable`
/// replaces the scenario's `reliable_delivery`.
pub fn run(
    scenario: &Scenario,
    path: &Path,
    seed: Option<u64>,
    json: bool,
    reliable: Option<bool>,
    settings: &Settings,
    see: &ReportArgs,
) -> u8 {
    if let Err(error) = scenario.validate().and_then(|()| check_fits(scenario)) {
        return Failure::bad_input(&error).report(json);
    }
    let binary = match this_executable() {
        Ok(binary) => binary,
        Err(failure) => return failure.report(json),
    };
    let progress = !json && std::io::stderr().is_terminal();
    let options = VirtualOptions {
        seed,
        reliable,
        progress,
        stop_on_signals: true,
        observe: see.wanted(),
    };
    let (result, observed) = execute_observed(scenario, &options, binary, settings.clone());
    let mut written = Ok(());
    if let Some(observed) = observed {
        let seed = seed.unwrap_or(scenario.seed);
        let replay = format!(
            "{} run {} --mode virtual --seed {seed}",
            super::program_command(),
            super::shell::quote_os_path(path.as_os_str())
        );
        let report = result.as_ref().map(|run| &run.report);
        let notes = match &report {
            Ok(report) if !report.not_applied.is_empty() => {
                let kinds: Vec<String> =
                    report.not_applied.iter().map(ToString::to_string).collect();
                vec![format!("not applied in virtual mode: {}", kinds.join(", "))]
            }
            _ => Vec::new(),
        };
        written = see.write(scenario, seed, report, observed, replay, notes);
    }
    match result {
        Ok(run) => super::after_printing(print(&run, json), written),
        Err(error) => {
            if let Err(failure) = written {
                super::report_error(failure.exit_code, &failure.error);
            }
            Failure::of_run(&error, None).report(json)
        }
    }
}

/// The machines' structured traces in `logs` (one directory per machine), merged by time with
/// `start_us` (on the host's clock) as time zero, and the machines whose file is missing or
/// malformed (left out, named). A machine killed mid-write keeps every complete record: only
/// its torn last line is dropped.
pub fn merged_trace(
    logs: &Path,
    machines: u32,
    start_us: u64,
) -> (Vec<Record>, Vec<UnreadableMachine>) {
    let traces = (0..machines)
        .map(|machine| {
            let path = logs.join(MachineId(machine).to_string()).join(TRACE_FILE);
            std::fs::read(&path).map_err(|error| {
                (
                    TraceLoss::Unreadable,
                    format!("{}: {error}", path.display()),
                )
            })
        })
        .collect();
    let gathered = gather(traces);
    (merge(gathered.per_machine, start_us), gathered.unreadable)
}

/// How to run a scenario in containers.
#[derive(Debug, Clone, Default)]
pub struct VirtualOptions {
    /// Replaces the scenario's seed.
    pub seed: Option<u64>,
    /// Replaces the scenario's `reliable_delivery`.
    pub reliable: Option<bool>,
    /// Show a progress bar on standard error.
    pub progress: bool,
    /// Let SIGINT and SIGTERM stop the run (see [`VirtualConfig::stop_on_signals`]).
    pub stop_on_signals: bool,
    /// Have every machine record the structured trace, merge them, and sample the
    /// application's series.
    pub observe: bool,
}

/// Starts the containers, plays the scenario, gathers the report, removes the containers — also
/// when the run fails or a signal stops it.
pub fn execute(
    scenario: &Scenario,
    options: &VirtualOptions,
    binary: PathBuf,
    settings: Settings,
) -> Result<VirtualRun, RunError> {
    execute_observed(scenario, options, binary, settings).0
}

/// [`execute`], and with [`VirtualOptions::observe`], the machines' structured traces merged by
/// time and the application's series — also when the run failed once its machines had started.
pub fn execute_observed(
    scenario: &Scenario,
    options: &VirtualOptions,
    binary: PathBuf,
    settings: Settings,
) -> (Result<VirtualRun, RunError>, Option<Observed>) {
    match start_and_play(scenario, options, binary, settings) {
        Ok(outcome) => outcome,
        Err(error) => (Err(error), None),
    }
}

type Outcome = (Result<VirtualRun, RunError>, Option<Observed>);

fn start_and_play(
    scenario: &Scenario,
    options: &VirtualOptions,
    binary: PathBuf,
    settings: Settings,
) -> Result<Outcome, RunError> {
    scenario.validate()?;
    check_fits(scenario)?;
    let seed = options.seed.unwrap_or(scenario.seed);
    let mut config = VirtualConfig::new(scenario.machines, seed, binary, settings);
    config.reliable = options.reliable.unwrap_or(scenario.reliable_delivery);
    config.drop = scenario.network.drop.clone();
    config.duplicate = scenario.network.duplicate.clone();
    config.stop_on_signals = options.stop_on_signals;
    config.record = options.observe;
    let begun = Instant::now();
    let mut hardware = DockerHardware::start(&config)?;
    let startup_ms = begun.elapsed().as_secs_f64() * 1000.0;
    let not_applied = match crate::hardware::schedule_plan(&mut hardware, &scenario.network) {
        Ok(not_applied) => not_applied,
        Err(error) => {
            let _ = hardware.finish();
            return Err(error.into());
        }
    };
    let sampler = Sampler::new(scenario.app().as_ref(), scenario.section(), scenario.run_ms);
    let sampler = options.observe.then_some(&sampler);
    let start_us = hardware.run_start_unix_us();
    let played = play(
        &mut hardware,
        scenario,
        seed,
        options.progress,
        startup_ms,
        sampler,
    )
    .map(|mut run| {
        run.report.not_applied = not_applied;
        run
    });
    let logs = hardware.logs_dir().to_path_buf();
    // The machines have written out their traces once they have stopped.
    let finished = hardware.finish();
    let observed = sampler.map(|sampler| {
        let (records, unreadable_machines) = merged_trace(&logs, scenario.machines, start_us);
        Observed {
            records,
            samples: sampler.samples(),
            unreadable_machines,
        }
    });
    let played = played.map(|mut run| {
        if let Some(observed) = &observed {
            run.report
                .unreadable_machines
                .clone_from(&observed.unreadable_machines);
        }
        run
    });
    let result = match (played, finished) {
        (Ok(run), Ok(())) => Ok(run),
        (Ok(_), Err(error)) => Err(error.into()),
        (Err(error), Ok(())) => Err(error),
        (Err(error), Err(cleanup)) => {
            if !matches!(cleanup, HardwareError::Stopped(_)) {
                err!("dist-zero: {cleanup}");
            }
            Err(error)
        }
    };
    Ok((result, observed))
}

/// Plays the scenario on running hardware and gathers the report.
fn play(
    hardware: &mut DockerHardware,
    scenario: &Scenario,
    seed: u64,
    progress: bool,
    startup_ms: f64,
    sampler: Option<&Sampler<'_>>,
) -> Result<VirtualRun, RunError> {
    let progress = Progress::new(scenario.run_ms, progress);
    let started = Instant::now();
    let verdict = run_scenario_sampled(hardware, scenario, seed, &progress, sampler)?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let counters = hardware.stats()?;
    let report = Report::new(
        Mode::Virtual,
        scenario,
        seed,
        Millis(hardware.now_ms()),
        wall_ms,
        counters,
        None,
        verdict,
    );
    Ok(VirtualRun {
        report,
        run_id: hardware.run_id().to_owned(),
        logs: hardware.logs_dir().to_path_buf(),
        startup_ms,
    })
}

fn print(run: &VirtualRun, json: bool) -> u8 {
    if json {
        let mut value = serde_json::to_value(&run.report).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("run_id".into(), run.run_id.clone().into());
            object.insert("logs".into(), run.logs.display().to_string().into());
            object.insert("startup_ms".into(), run.startup_ms.into());
        }
        out!("{value}");
    } else {
        out!("{}", run.report);
        out!(
            "run {}: machines started in {:.0} ms; logs in {}/m<i>/ (machine.log, machine.jsonl)",
            run.run_id,
            run.startup_ms,
            run.logs.display()
        );
    }
    if run.report.correct {
        EXIT_CORRECT
    } else {
        EXIT_WRONG
    }
}
