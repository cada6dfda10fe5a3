//! `dist-zero run --mode cloud`: the same scenario and the same report as virtual mode, with
//! every machine an EC2 instance; `dist-zero clean --cloud`; `dist-zero cloud-emulator`.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use crate::hardware::cloud::clean::{CloudCleanOptions, CloudCleaned};
use crate::hardware::cloud::realizer::{
    Emulator, EmulatorOptions, EMULATOR_KEY_ID, EMULATOR_SECRET,
};
use crate::hardware::cloud::{clean, CloudConfig, CloudHardware, TeardownHandle};
use crate::hardware::{Hardware, HardwareError, Mode, StopSignal};
use crate::observe::gather::{gather, TraceLoss, UnreadableMachine};
use crate::observe::merge::merge;
use crate::observe::Record;
use crate::scenario::{
    run_scenario_sampled, Observed, Progress, Report, RunError, Sampler, Scenario,
};
use crate::settings::Settings;
use crate::terminal::{err, out};

use super::clean::CleanArgs;

use super::run_virtual::this_executable;
use super::{report_error, Failure, ReportArgs, EXIT_BAD_INPUT, EXIT_CORRECT, EXIT_WRONG};
use crate::time::Millis;

/// Runs `scenario` on EC2 instances, printing the report (and writing what `see` asks for);
/// returns the exit status.
pub fn run(
    scenario: &Scenario,
    path: &Path,
    seed: Option<u64>,
    reliable: Option<bool>,
    json: bool,
    settings: &Settings,
    see: &ReportArgs,
) -> u8 {
    let binary = match this_executable() {
        Ok(binary) => binary,
        Err(failure) => return failure.report(json),
    };
    let progress = !json && std::io::stderr().is_terminal();
    let mut observed = see.wanted().then(Observed::default);
    let result = execute(
        scenario,
        seed,
        reliable,
        binary,
        settings.clone(),
        progress,
        observed.as_mut(),
    );
    if let Some(observed) = observed {
        let seed = seed.unwrap_or(scenario.seed);
        let replay = format!(
            "{} run {} --mode cloud --seed {seed}",
            super::program_command(),
            super::shell::quote_os_path(path.as_os_str())
        );
        let report = result.as_ref().map(|(report, _, _)| report);
        if let Err(failure) = see.write(scenario, seed, report, observed, replay, Vec::new()) {
            if let Err(error) = &result {
                report_error(EXIT_WRONG, error);
            }
            return failure.report(json);
        }
    }
    match result {
        Ok((report, run_id, startup_ms)) => {
            if json {
                let mut value = serde_json::to_value(&report).unwrap_or_default();
                if let Some(object) = value.as_object_mut() {
                    object.insert("run_id".into(), run_id.into());
                    object.insert("startup_ms".into(), startup_ms.into());
                }
                out!("{value}");
            } else {
                out!("{report}");
                out!("run {run_id}: machines started in {startup_ms:.0} ms; every resource of the run has been removed");
            }
            if report.correct {
                EXIT_CORRECT
            } else {
                EXIT_WRONG
            }
        }
        Err(error) => Failure::of_run(&error, None).report(json),
    }
}

/// On SIGINT or SIGTERM: removes what the run created, then exits.
fn arm_signals(runtime: &tokio::runtime::Handle, teardown: TeardownHandle) {
    runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        let received = tokio::select! {
            _ = term.recv() => StopSignal::Terminate,
            _ = tokio::signal::ctrl_c() => StopSignal::Interrupt,
        };
        err!("dist-zero: {received}: removing the run's cloud resources");
        let status = match teardown.teardown().await {
            Ok(()) => i32::from(received.exit_status()),
            Err(error) => {
                err!("dist-zero: {error}");
                i32::from(EXIT_WRONG)
            }
        };
        std::process::exit(status);
    });
}

/// Starts the instances, plays the scenario, gathers the report, removes everything. With
/// `observed`, every machine records the structured trace and the application's series is
/// sampled; both are put there (also when the run fails once its machines have started).
pub fn execute(
    scenario: &Scenario,
    seed: Option<u64>,
    reliable: Option<bool>,
    binary: std::path::PathBuf,
    settings: Settings,
    progress: bool,
    observed: Option<&mut Observed>,
) -> Result<(Report, String, f64), RunError> {
    scenario.validate()?;
    let seed = seed.unwrap_or(scenario.seed);
    let mut config = CloudConfig::new(scenario.machines, seed, binary, settings);
    config.reliable = reliable.unwrap_or(scenario.reliable_delivery);
    config.drop = scenario.network.drop.clone();
    config.duplicate = scenario.network.duplicate.clone();
    config.record = observed.is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| HardwareError::Io {
            action: "start a runtime".into(),
            source,
        })?;
    let signals = runtime.handle().clone();
    let begun = Instant::now();
    let mut hardware = CloudHardware::start_on(runtime, &config, |teardown| {
        arm_signals(&signals, teardown);
    })?;
    let startup_ms = begun.elapsed().as_secs_f64() * 1000.0;
    let not_applied = crate::hardware::schedule_plan(&mut hardware, &scenario.network)?;
    let progress = Progress::new(scenario.run_ms, progress);
    let sampler = Sampler::new(scenario.app().as_ref(), scenario.section(), scenario.run_ms);
    let sampler = observed.is_some().then_some(&sampler);
    let start_us = hardware.run_start_unix_us();
    let started = Instant::now();
    let verdict = run_scenario_sampled(&mut hardware, scenario, seed, &progress, sampler);
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut unreadable = Vec::new();
    if let (Some(observed), Some(sampler)) = (observed, sampler) {
        let (records, unreadable_machines) = merged_trace(&mut hardware, start_us);
        unreadable.clone_from(&unreadable_machines);
        *observed = Observed {
            records,
            samples: sampler.samples(),
            unreadable_machines,
        };
    }
    let verdict = verdict?;
    let counters = hardware.stats()?;
    let report = Report::new(
        Mode::Cloud,
        scenario,
        seed,
        Millis(hardware.now_ms()),
        wall_ms,
        counters,
        None,
        verdict,
    );
    let report = Report {
        unreadable_machines: unreadable,
        not_applied,
        ..report
    };
    let run_id = hardware.run_id().to_owned();
    hardware.finish()?;
    Ok((report, run_id, startup_ms))
}

/// The machines' structured traces, read over their control connections and merged by time with
/// `start_us` (on the runner's clock) as time zero, and the machines whose trace could not be
/// had (left out, named; the others' records are kept).
fn merged_trace(
    hardware: &mut CloudHardware,
    start_us: u64,
) -> (Vec<Record>, Vec<UnreadableMachine>) {
    let traces = hardware.traces().unwrap_or_else(|error| {
        tracing::warn!(%error, "the machines' structured traces cannot be read");
        (0..hardware.machine_count())
            .map(|_| Err((TraceLoss::Lost, error.to_string())))
            .collect()
    });
    let gathered = gather(traces);
    (merge(gathered.per_machine, start_us), gathered.unreadable)
}

/// `dist-zero clean --cloud`: removes and lists what dead runs left in the region.
pub fn clean(args: &CleanArgs, settings: &Settings) -> u8 {
    let options = CloudCleanOptions {
        all: args.all,
        run: args.run.clone(),
    };
    match clean::clean(&settings.cloud, &options) {
        Ok(cleaned) if cleaned == CloudCleaned::default() => {
            out!("nothing to clean: no dist-zero cloud resources");
            EXIT_CORRECT
        }
        Ok(cleaned) => {
            for line in &cleaned.removed {
                out!("removed {line}");
            }
            for line in &cleaned.left {
                out!("left {line}");
            }
            out!(
                "removed {} cloud resources; left {} runs",
                cleaned.removed.len(),
                cleaned.left.len()
            );
            EXIT_CORRECT
        }
        Err(error @ HardwareError::Unavailable(_)) => report_error(EXIT_BAD_INPUT, &error),
        Err(error) => report_error(EXIT_WRONG, &error),
    }
}

/// `dist-zero cloud-emulator`: moto on 127.0.0.1 and a realizer, until Ctrl-C.
pub fn emulator(port: u16, settings: &Settings) -> u8 {
    let options = EmulatorOptions {
        port: Some(port),
        check_signatures: false,
        realizer: true,
    };
    let emulator = match Emulator::start(settings, &options) {
        Ok(emulator) => emulator,
        Err(error) => return report_error(EXIT_BAD_INPUT, &error),
    };
    let cloud = &emulator.settings.cloud;
    out!("moto and the realizer are running; in another shell:");
    out!();
    out!(
        "  export AWS_ENDPOINT_URL={} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID={EMULATOR_KEY_ID} AWS_SECRET_ACCESS_KEY={EMULATOR_SECRET} DIST_ZERO_CLOUD_SUBNET={}",
        cloud.endpoint_url.as_deref().unwrap_or_default(),
        cloud.subnet
    );
    out!("  dist-zero run examples/sum_of_two.json --mode cloud");
    out!();
    out!("Ctrl-C stops moto and removes the realizer's network and containers.");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return report_error(EXIT_WRONG, &error),
    };
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    });
    match emulator.stop() {
        Ok(()) => EXIT_CORRECT,
        Err(error) => report_error(EXIT_WRONG, &error),
    }
}
