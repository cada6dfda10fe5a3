//! `dist-zero run --mode virtual`: the same scenario and the same report as simulated mode, with
//! every machine in its own Docker container.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use crate::hardware::docker::{DockerHardware, VirtualConfig};
use crate::hardware::{Hardware, Mode};
use crate::scenario::{
    run_scenario, FaultReport, Progress, Report, RunCounters, RunError, Scenario,
};
use crate::settings::Settings;
use crate::terminal::escape;

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

/// The running `dist-zero` binary, which virtual mode copies into its machine image.
pub fn this_executable() -> Result<PathBuf, Failure> {
    std::env::current_exe()
        .map_err(|error| Failure::internal(&format!("cannot find this executable: {error}")))
}

/// Runs `scenario` in containers, printing the report; returns the exit status.
pub fn run(scenario: &Scenario, seed: Option<u64>, json: bool, settings: &Settings) -> u8 {
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
    match execute(scenario, seed, binary, settings.clone(), progress) {
        Ok(run) => print(&run, json),
        Err(error) => Failure::of_run(&error, None).report(json),
    }
}

/// Starts the containers, plays the scenario, gathers the report, removes the containers.
pub fn execute(
    scenario: &Scenario,
    seed: Option<u64>,
    binary: PathBuf,
    settings: Settings,
    progress: bool,
) -> Result<VirtualRun, RunError> {
    scenario.validate()?;
    let seed = seed.unwrap_or(scenario.seed);
    let mut config = VirtualConfig::new(scenario.machines, seed, binary, settings);
    config.reliable = scenario.reliable_delivery;
    config.drop = scenario.network.drop.clone();
    config.duplicate = scenario.network.duplicate.clone();
    let begun = Instant::now();
    let mut hardware = DockerHardware::start(&config)?;
    let startup_ms = begun.elapsed().as_secs_f64() * 1000.0;
    let progress = Progress::new(scenario.run_ms, progress);
    let started = Instant::now();
    let verdict = run_scenario(&mut hardware, scenario, &progress)?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let stats = hardware.stats()?;
    let counters = RunCounters {
        events: stats.events,
        messages_delivered: stats.messages_delivered,
        undeliverable: stats.undeliverable,
        faults: FaultReport::new(&stats.faults, &stats.link),
        // Every packet a machine's link layer sent and has not seen acknowledged.
        in_flight: stats.link.sent.saturating_sub(stats.link.acknowledged),
    };
    let report = Report::new(
        Mode::Virtual,
        scenario,
        seed,
        crate::time::Millis(hardware.now_ms()),
        wall_ms,
        counters,
        None,
        verdict,
    );
    let run = VirtualRun {
        report,
        run_id: hardware.run_id().to_owned(),
        logs: hardware.logs_dir().to_path_buf(),
        startup_ms,
    };
    hardware.finish()?;
    Ok(run)
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
