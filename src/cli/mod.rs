//! The `dist-zero` command line: run a scenario, run the demo, run the benchmarks.
//!
//! Exit status: 0 when every output is correct; 1 when a run completed but some output is wrong,
//! or a node failed during it; 2 for bad input or usage (one clear line on stderr).

mod bench;
#[cfg(feature = "docker")]
mod bench_virtual;
#[cfg(feature = "docker")]
mod clean;
#[cfg(feature = "docker")]
mod machine;
#[cfg(feature = "cloud")]
pub mod run_cloud;
#[cfg(feature = "docker")]
pub mod run_virtual;
mod sweep;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::hardware::Mode;
use crate::scenario::{simulate, Report, RunOptions, Scenario, Workload};
use crate::settings::Settings;

/// Runs with at least this many users show a progress bar (on a terminal, without `--json`).
const PROGRESS_MIN_USERS: usize = 500;

/// Exit status: the run completed and every output is correct.
pub const EXIT_CORRECT: u8 = 0;
/// Exit status: the run completed but some output is wrong, or a node failed.
pub const EXIT_WRONG: u8 = 1;
/// Exit status: bad input or usage.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Write a distributed program once; run it simulated, in containers, or in the cloud.
#[derive(Debug, Parser)]
#[command(name = "dist-zero", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a sum-network scenario file.
    Run {
        /// The scenario (JSON; see the README for its format).
        scenario: PathBuf,
        /// Replaces the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Print exactly one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Which hardware to run on.
        #[arg(long, value_enum, default_value_t = Mode::Simulated)]
        mode: Mode,
        /// Run every seed of a range A..B (B excluded) in parallel and report the failing ones,
        /// each with the command that replays it (simulated mode).
        #[arg(long, conflicts_with_all = ["seed", "trace"])]
        seeds: Option<sweep::SeedRange>,
        /// Write the run's event trace to this file, one event a line (simulated mode).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Turn the runtime's reliable delivery off, to see what the faults do without it.
        #[arg(long)]
        unreliable: bool,
    },
    /// Generate a sum-network scenario and run it (simulated).
    Demo {
        /// Machines in the system.
        #[arg(long, default_value_t = 3)]
        machines: u32,
        /// Users, spread over the machines.
        #[arg(long, default_value_t = 6)]
        users: u32,
        /// Increments each user makes.
        #[arg(long, default_value_t = 4)]
        increments: u32,
        /// Seed of the generated scenario and of the run.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Simulated milliseconds to run.
        #[arg(long, default_value_t = 1000)]
        run_ms: u64,
        /// Print exactly one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Measure the simulator on large sum networks and print wall time and events per second.
    Bench(bench::BenchArgs),
    /// Measure virtual mode: container start-up, machine-to-machine round trips, sum throughput.
    #[cfg(feature = "docker")]
    BenchVirtual(bench_virtual::BenchVirtualArgs),
    /// Run one machine of a virtual-mode system (what each container runs).
    #[cfg(feature = "docker")]
    Machine(machine::MachineArgs),
    /// Remove every container, network and image that earlier virtual-mode runs left behind
    /// (with `--cloud`: every cloud resource tagged `dist-zero=true` in the region instead).
    #[cfg(feature = "docker")]
    Clean {
        /// Clean the cloud (AWS, or the emulator AWS_ENDPOINT_URL points at) instead of Docker.
        #[arg(long)]
        cloud: bool,
    },
    /// Start moto (the AWS emulator) on 127.0.0.1 and a realizer that runs its instances as
    /// containers, so that `--mode cloud` works without an AWS account; Ctrl-C stops both.
    #[cfg(feature = "cloud")]
    CloudEmulator {
        /// The port moto listens on.
        #[arg(long, default_value_t = 5000)]
        port: u16,
    },
}

/// Parses the process arguments, runs the command, and returns its exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => return fail(EXIT_BAD_INPUT, &error),
    };
    // A machine process logs to its own files (see `machine::logging`).
    if !cli.command.is_machine() {
        init_logging(&settings);
    }
    ExitCode::from(execute(cli.command, &settings))
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

impl Command {
    fn is_machine(&self) -> bool {
        #[cfg(feature = "docker")]
        if matches!(self, Command::Machine(_)) {
            return true;
        }
        false
    }
}

/// Runs one command and returns its exit status.
#[cfg_attr(not(feature = "docker"), allow(unused_variables))]
pub fn execute(command: Command, settings: &Settings) -> u8 {
    match command {
        Command::Run {
            scenario: path,
            seed,
            json,
            mode,
            seeds,
            trace,
            unreliable,
        } => {
            let scenario = match Scenario::load(&path) {
                Ok(scenario) => scenario,
                Err(error) => return report_error(EXIT_BAD_INPUT, &error),
            };
            if mode != Mode::Simulated && (seeds.is_some() || trace.is_some()) {
                return report_error(EXIT_BAD_INPUT, &"--seeds and --trace need --mode simulated");
            }
            let reliable = unreliable.then_some(false);
            match (mode, seeds) {
                (Mode::Simulated, Some(range)) => {
                    let report = sweep::sweep(&scenario, &path, &range, reliable);
                    if json {
                        println!("{}", serde_json::to_string(&report).unwrap_or_default());
                    } else {
                        println!("{report}");
                    }
                    if report.failing.is_empty() {
                        EXIT_CORRECT
                    } else {
                        EXIT_WRONG
                    }
                }
                (Mode::Simulated, None) => run_simulated(&scenario, seed, json, trace.as_deref(), reliable),
                #[cfg(feature = "docker")]
                (Mode::Virtual, _) => run_virtual::run(&scenario, seed, json, settings),
                #[cfg(not(feature = "docker"))]
                (Mode::Virtual, _) => report_error(
                    EXIT_BAD_INPUT,
                    &"virtual mode is not available in this build; rebuild with `--features docker`",
                ),
                #[cfg(feature = "cloud")]
                (Mode::Cloud, _) => run_cloud::run(&scenario, seed, json, settings),
                #[cfg(not(feature = "cloud"))]
                (Mode::Cloud, _) => report_error(
                    EXIT_BAD_INPUT,
                    &format!(
                        "{mode} mode is not available in this build; rebuild with `--features cloud`"
                    ),
                ),
            }
        }
        Command::Demo {
            machines,
            users,
            increments,
            seed,
            run_ms,
            json,
        } => {
            if machines == 0 {
                return report_error(EXIT_BAD_INPUT, &"--machines must be at least 1");
            }
            let workload = Workload {
                machines,
                users,
                increments,
                run_ms,
                seed,
            };
            run_simulated(&workload.scenario(), None, json, None, None)
        }
        Command::Bench(args) => bench::run(&args),
        #[cfg(feature = "docker")]
        Command::BenchVirtual(args) => bench_virtual::run(&args, settings),
        #[cfg(feature = "docker")]
        Command::Machine(args) => machine::run(&args),
        #[cfg(feature = "cloud")]
        Command::Clean { cloud: true } => run_cloud::clean(settings),
        #[cfg(all(feature = "docker", not(feature = "cloud")))]
        Command::Clean { cloud: true } => report_error(
            EXIT_BAD_INPUT,
            &"cloud mode is not available in this build; rebuild with `--features cloud`",
        ),
        #[cfg(feature = "docker")]
        Command::Clean { cloud: false } => clean::run(settings),
        #[cfg(feature = "cloud")]
        Command::CloudEmulator { port } => run_cloud::emulator(port, settings),
    }
}

fn run_simulated(
    scenario: &Scenario,
    seed: Option<u64>,
    json: bool,
    trace: Option<&Path>,
    reliable: Option<bool>,
) -> u8 {
    let options = RunOptions {
        seed,
        keep_trace_text: trace.is_some(),
        reliable,
        progress: !json
            && scenario.users.len() >= PROGRESS_MIN_USERS
            && std::io::stderr().is_terminal(),
    };
    match simulate(scenario, &options) {
        Ok(run) => {
            if let (Some(path), Some(text)) = (trace, &run.trace_text) {
                if let Err(error) = std::fs::write(path, text) {
                    return report_error(
                        EXIT_BAD_INPUT,
                        &format!("cannot write the trace to {}: {error}", path.display()),
                    );
                }
            }
            print_report(&run.report, json)
        }
        Err(crate::scenario::RunError::Scenario(error)) => report_error(EXIT_BAD_INPUT, &error),
        Err(error) => report_error(EXIT_WRONG, &error),
    }
}

fn print_report(report: &Report, json: bool) -> u8 {
    if json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if report.correct {
        EXIT_CORRECT
    } else {
        EXIT_WRONG
    }
}

fn report_error(code: u8, error: &dyn std::fmt::Display) -> u8 {
    eprintln!("dist-zero: {error}");
    code
}

fn fail(code: u8, error: &dyn std::fmt::Display) -> ExitCode {
    ExitCode::from(report_error(code, error))
}
