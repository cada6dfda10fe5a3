//! `dist-zero run --mode virtual`: the same scenario and the same report as simulated mode, with
//! every machine in its own Docker container. Ctrl-C or SIGTERM stops the run, removes what it
//! created and exits 130 or 143.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use crate::hardware::docker::{DockerHardware, VirtualConfig, MAX_MACHINES};
use crate::hardware::{Hardware, HardwareError, Mode};
use crate::scenario::{run_scenario, Progress, Report, RunError, Scenario, ScenarioError};
use crate::settings::Settings;
use crate::terminal::escape;
use crate::time::Millis;

use super::{Failure, EXIT_CORRECT, EXIT_WRONG};

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

/// The parts of a scenario's network model that a real network cannot follow.
fn unsupported_faults(scenario: &Scenario) -> Vec<&'static str> {
    let network = &scenario.network;
    let mut ignored = Vec::new();
    if network.latency_ms != crate::hardware::simulated::LatencySpec::default() {
        ignored.push("latency model");
    }
    if network.reorder.is_some() {
        ignored.push("reorder rule");
    }
    if !network.partitions.is_empty() {
        ignored.push("partitions");
    }
    if !network.pauses.is_empty() {
        ignored.push("pauses");
    }
    ignored
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
    seed: Option<u64>,
    json: bool,
    reliable: Option<bool>,
    settings: &Settings,
) -> u8 {
    if let Err(error) = scenario.validate().and_then(|()| check_fits(scenario)) {
        return Failure::bad_input(&error).report(json);
    }
    let binary = match this_executable() {
        Ok(binary) => binary,
        Err(failure) => return failure.report(json),
    };
    let ignored = unsupported_faults(scenario);
    if !ignored.is_empty() {
        eprintln!(
            "{}: virtual mode does not apply the scenario's {} (the network is real); drops and duplicates are injected at the sending machine",
            escape(&super::program_name()),
            ignored.join(", ")
        );
    }
    let progress = !json && std::io::stderr().is_terminal();
    let options = VirtualOptions {
        seed,
        reliable,
        progress,
        stop_on_signals: true,
    };
    match execute(scenario, &options, binary, settings.clone()) {
        Ok(run) => print(&run, json),
        Err(error) => Failure::of_run(&error, None).report(json),
    }
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
}

/// Starts the containers, plays the scenario, gathers the report, removes the containers — also
/// when the run fails or a signal stops it.
pub fn execute(
    scenario: &Scenario,
    options: &VirtualOptions,
    binary: PathBuf,
    settings: Settings,
) -> Result<VirtualRun, RunError> {
    scenario.validate()?;
    check_fits(scenario)?;
    let seed = options.seed.unwrap_or(scenario.seed);
    let mut config = VirtualConfig::new(scenario.machines, seed, binary, settings);
    config.reliable = options.reliable.unwrap_or(scenario.reliable_delivery);
    config.drop = scenario.network.drop.clone();
    config.duplicate = scenario.network.duplicate.clone();
    config.stop_on_signals = options.stop_on_signals;
    let begun = Instant::now();
    let mut hardware = DockerHardware::start(&config)?;
    let startup_ms = begun.elapsed().as_secs_f64() * 1000.0;
    let played = play(&mut hardware, scenario, seed, options.progress, startup_ms);
    let finished = hardware.finish();
    match (played, finished) {
        (Ok(run), Ok(())) => Ok(run),
        (Ok(_), Err(error)) => Err(error.into()),
        (Err(error), Ok(())) => Err(error),
        (Err(error), Err(cleanup)) => {
            if !matches!(cleanup, HardwareError::Stopped(_)) {
                eprintln!("dist-zero: {cleanup}");
            }
            Err(error)
        }
    }
}

/// Plays the scenario on running hardware and gathers the report.
fn play(
    hardware: &mut DockerHardware,
    scenario: &Scenario,
    seed: u64,
    progress: bool,
    startup_ms: f64,
) -> Result<VirtualRun, RunError> {
    let progress = Progress::new(scenario.run_ms, progress);
    let started = Instant::now();
    let verdict = run_scenario(hardware, scenario, &progress)?;
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
        println!("{value}");
    } else {
        println!("{}", run.report);
        println!(
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
