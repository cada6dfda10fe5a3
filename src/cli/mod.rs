//! The command line, for any set of applications: run a scenario (simulated, in containers, a
//! sweep of seeds), run one machine (the process inside a container), clean up. DistZero's own
//! binary adds the sum network's demo and benchmarks; a library user's binary gets the rest for
//! its own application with [`main`].
//!
//! Exit status: 0 when every output is correct; 1 when a run completed but some output is wrong,
//! a node failed during it, or it reached a capacity limit; 2 for bad input or usage (one clear
//! line on stderr). With `--json`, every outcome is one JSON object on stdout: a report, or an
//! error object (`error`, `exit_code`, `kind`).

mod check;
#[cfg(feature = "docker")]
mod clean;
#[cfg(feature = "cloud")]
pub mod cloud;
#[cfg(feature = "docker")]
mod machine;
mod report_args;
mod shell;
mod sweep;

pub use check::{CheckArgs, InputLimit};
pub use report_args::ReportArgs;
pub use sweep::SeedRange;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::app::{Application, Applications};
use crate::hardware::{HardwareError, Mode, Target};
use crate::manager::NodeFailure;
use crate::scenario::{Report, RunError, RunOptions, RunOutcome, Scenario};
use crate::settings::Settings;
use crate::terminal::{err, escape, escape_lines, out};

/// Exit status: the run completed and every output is correct.
pub const EXIT_CORRECT: u8 = 0;
/// Exit status: the run completed but some output is wrong, or a node failed.
pub const EXIT_WRONG: u8 = 1;
/// Exit status: bad input or usage.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Commands a binary adds to the common ones (DistZero's own adds the sum network's demo and
/// benchmarks).
pub trait ExtraCommands: Subcommand + std::fmt::Debug {
    /// Whether the command was asked for JSON output.
    fn json(&self) -> bool;
    /// Runs the command; returns the exit status.
    fn execute(self, settings: &Settings) -> u8;
}

/// No commands beyond the common ones.
#[derive(Debug, Subcommand)]
pub enum NoCommands {}

impl ExtraCommands for NoCommands {
    fn json(&self) -> bool {
        match *self {}
    }

    fn execute(self, _settings: &Settings) -> u8 {
        match self {}
    }
}

/// Write a distributed program once; run it simulated, in containers, or in the cloud.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli<E: ExtraCommands> {
    /// What to do.
    #[command(subcommand)]
    pub command: Command<E>,
}

/// What `run` is told.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario (JSON; see docs/scenarios.md for its format).
    pub scenario: PathBuf,
    /// Replaces the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Which hardware to run on.
    #[arg(long, default_value_t = Mode::Simulated)]
    pub mode: Mode,
    /// Run every seed of a range A..B (B excluded) in parallel and report the failing ones,
    /// each with the command that replays it (simulated mode).
    #[arg(long, conflicts_with_all = ["seed", "trace", "events"])]
    pub seeds: Option<SeedRange>,
    /// With `--seeds`: list at most this many failing seeds, the lowest (every failure is
    /// counted).
    #[arg(long, requires = "seeds", default_value_t = sweep::DEFAULT_MAX_FAILING)]
    pub max_failing: usize,
    /// Write the run's event trace to this file, one event a line (simulated mode).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Turn the runtime's reliable delivery off, to see what the faults do without it.
    #[arg(long)]
    pub unreliable: bool,
    /// Stop a run (each run of a sweep) with a capacity error after this many events
    /// (simulated mode).
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Check that every message a typed node receives survives a round trip through its type
    /// (on by default in debug builds; simulated mode).
    #[arg(long)]
    pub wire_check: bool,
    /// How much of the scenario file is read.
    #[command(flatten)]
    pub input: InputLimit,
    /// Seeing the run: the structured trace, the HTML report, the diagram's filters.
    #[command(flatten)]
    pub see: ReportArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command<E: ExtraCommands> {
    /// Run a scenario file.
    Run(Box<RunArgs>),
    /// Read and validate a scenario file without running it, and say what it holds.
    Check(CheckArgs),
    /// Run one machine of a virtual-mode system (what each container runs).
    #[cfg(feature = "docker")]
    Machine(machine::MachineArgs),
    /// Remove the containers and networks of virtual-mode runs whose runner is gone, and the
    /// machine images when no run is left; runs in progress are left unless `--all`. With
    /// `--cloud`: every cloud resource of dead runs (tagged `dist-zero=true`) in the region.
    #[cfg(feature = "docker")]
    Clean(clean::CleanArgs),
    /// Start moto (the AWS emulator) on 127.0.0.1 and a realizer that runs its instances as
    /// containers, so that `--mode cloud` works without an AWS account; Ctrl-C stops both.
    #[cfg(feature = "cloud")]
    CloudEmulator {
        /// The port moto listens on.
        #[arg(long, default_value_t = 5000)]
        port: u16,
    },
    /// The binary's own commands.
    #[command(flatten)]
    Extra(E),
}

/// The command line of a library user's binary, for its one application `app`: every common
/// command (`run` in every mode, sweeps, traces, `machine`, `clean`). Its `main` is one line:
/// `fn main() -> std::process::ExitCode { dist_zero::main(MyApp) }`.
pub fn main(app: impl Application) -> ExitCode {
    main_with::<NoCommands>(Applications::of(app))
}

/// Parses the process arguments, runs the command for `apps` (and the binary's own commands
/// `E`), and returns its exit status.
pub fn main_with<E: ExtraCommands>(apps: Applications) -> ExitCode {
    let cli = match parse::<E>() {
        Ok(cli) => cli,
        Err(error) => return ExitCode::from(usage_error(&error)),
    };
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            let failure = Failure::bad_input(&error);
            return ExitCode::from(failure.report(cli.command.json()));
        }
    };
    // A binary whose applications register two node types under one name runs nothing.
    if let Err(duplicate) = apps.registry().check() {
        return ExitCode::from(Failure::bad_input(&duplicate).report(cli.command.json()));
    }
    // A machine process logs to its own files (see `machine::logging`).
    if !cli.command.is_machine() {
        init_logging(&settings);
    }
    ExitCode::from(execute(cli.command, &settings, &apps))
}

/// The command line, as this binary names itself: a library user's binary shows its own name in
/// `--help` and `--version` (with the DistZero version it was built with), not `dist-zero`.
fn parse<E: ExtraCommands>() -> Result<Cli<E>, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let name = program_name();
    let mut command = Cli::<E>::command();
    if name != env!("CARGO_PKG_NAME") {
        // clap keeps names as `&'static str`; these two are made once per process.
        let version = format!("(built with DistZero {})", env!("CARGO_PKG_VERSION"));
        let name: &'static str = name.leak();
        command = command.name(name).bin_name(name).version(&*version.leak());
    }
    Cli::<E>::from_arg_matches(&command.try_get_matches()?)
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints clap's help or version as clap does; any other usage error becomes one line on stderr.
/// Returns the exit status.
fn usage_error(error: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return EXIT_CORRECT;
    }
    // clap's message is its first paragraph (e.g. "the following required arguments were not
    // provided:" and the arguments); tips and usage follow after a blank line.
    let text = error.to_string();
    let message = text
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    report_error(EXIT_BAD_INPUT, &format!("{message} (see --help)"))
}

impl<E: ExtraCommands> Command<E> {
    /// Whether the command was asked for JSON output.
    fn json(&self) -> bool {
        match self {
            Command::Run(args) => args.json,
            Command::Check(args) => args.json,
            Command::Extra(extra) => extra.json(),
            #[cfg(feature = "docker")]
            _ => false,
        }
    }

    fn is_machine(&self) -> bool {
        #[cfg(feature = "docker")]
        if matches!(self, Command::Machine(_)) {
            return true;
        }
        false
    }
}

/// Runs one command for `apps` and returns its exit status.
#[cfg_attr(not(feature = "docker"), allow(unused_variables))]
pub fn execute<E: ExtraCommands>(
    command: Command<E>,
    settings: &Settings,
    apps: &Applications,
) -> u8 {
    match command {
        Command::Run(args) => run(*args, settings, apps),
        Command::Check(args) => check::check(&args, apps),
        #[cfg(feature = "docker")]
        Command::Machine(args) => machine::run(&args, apps),
        #[cfg(feature = "docker")]
        #[cfg(feature = "cloud")]
        Command::Clean(args) if args.cloud => cloud::clean(&args, settings),
        #[cfg(all(feature = "docker", not(feature = "cloud")))]
        Command::Clean(args) if args.cloud => Failure::bad_input(
            &"cloud mode is not available in this build; rebuild with `--features cloud`",
        )
        .report(false),
        #[cfg(feature = "docker")]
        Command::Clean(args) => clean::run(&args, settings),
        #[cfg(feature = "cloud")]
        Command::CloudEmulator { port } => cloud::emulator(port, settings),
        Command::Extra(extra) => extra.execute(settings),
    }
}

/// `run`: one scenario, in one mode or on a sweep of seeds.
#[cfg_attr(not(feature = "docker"), allow(unused_variables))]
fn run(args: RunArgs, settings: &Settings, apps: &Applications) -> u8 {
    let RunArgs {
        scenario: path,
        seed,
        json,
        mode,
        seeds,
        max_failing,
        trace,
        unreliable,
        max_events,
        wire_check,
        input,
        see,
    } = args;
    let scenario = match Scenario::load_limited(&path, apps, input.bytes()) {
        Ok(scenario) => scenario,
        Err(error) => return Failure::bad_input(&error).report(json),
    };
    if mode != Mode::Simulated && (seeds.is_some() || trace.is_some() || max_events.is_some()) {
        return Failure::bad_input(&"--seeds, --trace and --max-events need --mode simulated")
            .report(json);
    }
    if let Err(failure) = see.filter().and_then(|_| see.prepare(trace.as_deref())) {
        return failure.report(json);
    }
    let options = RunOptions {
        seed,
        reliable: unreliable.then_some(false),
        max_events,
        wire_check: wire_check.then_some(true),
        ..RunOptions::default()
    };
    match (mode, seeds) {
        (Mode::Simulated, Some(range)) => {
            let shown = sweep::SweepOptions {
                max_failing,
                progress: !json && std::io::stderr().is_terminal(),
                stop_on_signals: true,
            };
            let program = program_command();
            let report = sweep::sweep(&program, &scenario, &path, &range, &options, shown);
            // A stopped sweep prints what ran at once, without replaying its failures.
            let written = match &see.report {
                Some(dir) if report.stopped_by.is_none() => {
                    sweep::write_reports(dir, &scenario, &path, &range, &options, &report, &see)
                }
                _ => Ok(()),
            };
            if json {
                print_json(&report);
            } else {
                out!("{report}");
            }
            after_printing(report.exit_status(), written)
        }
        (Mode::Simulated, None) => {
            let replay = sweep::replay_command(
                &program_command(),
                &path,
                options.seed.unwrap_or(scenario.seed),
                &options,
            );
            let target = Target::Simulated;
            run_seen(
                &scenario,
                &target,
                options,
                json,
                trace.as_deref(),
                &see,
                replay,
            )
        }
        (mode, _) => match remote_target(mode, settings) {
            Ok(target) => {
                let replay = format!(
                    "{} run {} --mode {mode} --seed {}",
                    program_command(),
                    shell::quote_os_path(path.as_os_str()),
                    options.seed.unwrap_or(scenario.seed)
                );
                run_seen(&scenario, &target, options, json, None, &see, replay)
            }
            Err(failure) => failure.report(json),
        },
    }
}

/// The hardware of a remote `mode`: this binary shipped to the machines, SIGINT and SIGTERM
/// stopping the run; or why this build cannot run that mode.
fn remote_target(mode: Mode, settings: &Settings) -> Result<Target, Failure> {
    match mode {
        Mode::Simulated => Ok(Target::Simulated),
        #[cfg(feature = "docker")]
        Mode::Virtual => Ok(Target::Virtual(remote(settings)?)),
        #[cfg(feature = "cloud")]
        Mode::Cloud => Ok(Target::Cloud(remote(settings)?)),
        #[cfg(not(feature = "docker"))]
        Mode::Virtual => {
            let _ = settings;
            Err(Failure::bad_input(
                &"virtual mode is not available in this build; rebuild with `--features docker`",
            ))
        }
        #[cfg(not(feature = "cloud"))]
        Mode::Cloud => Err(Failure::bad_input(&format!(
            "{mode} mode is not available in this build; rebuild with `--features cloud`"
        ))),
    }
}

/// This binary as what the machines of a remote run execute, the run stopped by SIGINT and
/// SIGTERM.
#[cfg(feature = "docker")]
fn remote(settings: &Settings) -> Result<crate::hardware::Remote, Failure> {
    Ok(crate::hardware::Remote {
        binary: this_executable()?,
        settings: settings.clone(),
        stop_on_signals: true,
    })
}

/// The running binary, which a remote mode copies to its machines (a library user's own binary
/// ships their node types this way).
pub fn this_executable() -> Result<PathBuf, Failure> {
    std::env::current_exe()
        .map_err(|error| Failure::internal(&format!("cannot find this executable: {error}")))
}

/// The name this binary was started by — `dist-zero`, or a library user's own binary — for
/// what it prints: its error lines and a sweep's replay commands.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .map_or_else(|| "dist-zero".to_owned(), str::to_owned)
}

/// The command that starts this binary, quoted for a POSIX shell, for the replay commands it
/// prints: its name when that name, looked up on `PATH`, finds this very binary; otherwise the
/// path it was started by (e.g. `./target/release/replicated-kv`), or failing that the path of
/// the running executable.
pub(crate) fn program_command() -> String {
    let name = program_name();
    let found = find_on_path(&name).and_then(|found| found.canonicalize().ok());
    let started = std::env::args_os().next().map(PathBuf::from);
    let this = started
        .as_deref()
        .filter(|started| started.components().count() > 1)
        .and_then(|started| started.canonicalize().ok())
        .or_else(|| std::env::current_exe().ok()?.canonicalize().ok());
    if found.is_some() && found == this {
        return shell::quote(&name).into_owned();
    }
    match started.filter(|started| started.components().count() > 1) {
        Some(started) => shell::quote_os_path(started.as_os_str()),
        None => this.map_or_else(
            || shell::quote(&name).into_owned(),
            |this| shell::quote_os_path(this.as_os_str()),
        ),
    }
}

/// The first file called `name` in a directory of `PATH`, as a shell would find it.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let search = crate::settings::search_path()?;
    std::env::split_paths(&search)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `scenario` in simulated mode with `options`, writes its trace to `trace` (also when the
/// run stops early, so a failure can be studied), and prints the outcome.
pub fn run_simulated(
    scenario: &Scenario,
    options: RunOptions,
    json: bool,
    trace: Option<&Path>,
) -> u8 {
    run_seen(
        scenario,
        &Target::Simulated,
        options,
        json,
        trace,
        &ReportArgs::default(),
        String::new(),
    )
}

/// Runs `scenario` on `target` with `options` (the one run path, [`crate::scenario::run`]),
/// writes its trace to `trace` (simulated mode, also when the run stops early, so a failure can
/// be studied) and what `see` asks for (the structured trace, the report, whose replay command
/// is `replay`), and prints the outcome; returns the exit status.
pub fn run_seen(
    scenario: &Scenario,
    target: &Target,
    options: RunOptions,
    json: bool,
    trace: Option<&Path>,
    see: &ReportArgs,
    replay: String,
) -> u8 {
    let simulated = target.mode() == Mode::Simulated;
    let options = RunOptions {
        keep_trace_text: trace.is_some(),
        observe: see.wanted(),
        progress: !json
            && (!simulated || scenario.app().is_large(scenario.section()))
            && std::io::stderr().is_terminal(),
        ..options
    };
    let mut run = crate::scenario::run(scenario, target, &options);
    let written = match (trace, &run.trace_text) {
        (Some(path), Some(text)) => std::fs::write(path, text).map_err(|error| {
            Failure::bad_input(&format!(
                "cannot write the trace to {}: {error}",
                path.display()
            ))
        }),
        _ => Ok(()),
    };
    let seed = options.seed.unwrap_or(scenario.seed);
    let notes = match &run.result {
        Ok(report) if !report.not_applied.is_empty() => {
            let kinds: Vec<String> = report.not_applied.iter().map(ToString::to_string).collect();
            vec![format!(
                "not applied in {} mode: {}",
                report.mode,
                kinds.join(", ")
            )]
        }
        _ => Vec::new(),
    };
    let seen = match run.observed.take() {
        Some(observed) => see.write(scenario, seed, run.result.as_ref(), observed, replay, notes),
        None => Ok(()),
    };
    let written = written.and(seen);
    match &run.result {
        Ok(report) => {
            let printed = print_run(report, &run, json);
            after_printing(printed, written)
        }
        Err(error) => {
            if let Err(failure) = written {
                report_error(failure.exit_code, &failure.error);
            }
            Failure::of_run(error, Some(seed).filter(|_| simulated)).report(json)
        }
    }
}

/// Prints a run's report (one JSON object with `json`), with where a remote run's machines
/// were (its id, its logs, how long they took to start); returns the exit status it means.
fn print_run(report: &Report, run: &RunOutcome, json: bool) -> u8 {
    let Some(run_id) = &run.run_id else {
        return print_report(report, json);
    };
    if json {
        let mut value = serde_json::to_value(report).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("run_id".into(), run_id.clone().into());
            if let Some(logs) = &run.logs {
                object.insert("logs".into(), logs.display().to_string().into());
            }
            object.insert("startup_ms".into(), run.startup_ms.into());
        }
        print_json(&value);
    } else {
        out!("{report}");
        match &run.logs {
            Some(logs) => out!(
                "run {run_id}: machines started in {:.0} ms; logs in {}/m<i>/ (machine.log, machine.jsonl)",
                run.startup_ms,
                logs.display()
            ),
            None => out!(
                "run {run_id}: machines started in {:.0} ms; every resource of the run has been removed",
                run.startup_ms
            ),
        }
    }
    if report.correct {
        EXIT_CORRECT
    } else {
        EXIT_WRONG
    }
}

/// The exit status of a command that printed its result with status `printed` and then wrote,
/// or failed to write, its files: `printed`, or the write's failure, said on stderr (the
/// result is on stdout already, one JSON object with `--json`).
fn after_printing(printed: u8, written: Result<(), Failure>) -> u8 {
    match written {
        Ok(()) => printed,
        Err(failure) => report_error(failure.exit_code, &failure.error),
    }
}

/// Prints `report` (one JSON object with `json`); returns the exit status it means.
pub fn print_report(report: &Report, json: bool) -> u8 {
    if json {
        print_json(report);
    } else {
        out!("{report}");
    }
    if report.correct {
        EXIT_CORRECT
    } else {
        EXIT_WRONG
    }
}

/// Prints `value` as one line of JSON on stdout.
fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => out!("{text}"),
        Err(error) => out!(
            "{}",
            serde_json::json!({
                "error": format!("cannot encode the output: {error}"),
                "exit_code": EXIT_WRONG,
                "kind": FailureKind::Internal,
            })
        ),
    }
}

/// What kind of failure an error object reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A file, field, flag or setting is invalid (exit 2).
    BadInput,
    /// The hardware a mode needs is not there, e.g. no Docker Engine (exit 2).
    Unavailable,
    /// A node raised an error during the run (exit 1).
    NodeFailed,
    /// The run outgrew a capacity limit, e.g. the simulator's event queue or `--max-events`
    /// (exit 1).
    Capacity,
    /// The hardware failed during the run: a machine lost, Docker failing (exit 1).
    Hardware,
    /// The application's invariant did not hold during the run (exit 1).
    Invariant,
    /// Ctrl-C or SIGTERM stopped the run (exit 130 or 143).
    Stopped,
    /// DistZero itself could not do what it should (exit 1).
    Internal,
}

/// A command that did not produce a report: what `--json` prints instead, as one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What went wrong, as it is printed on stderr (but not escaped: JSON escapes it).
    pub error: String,
    /// The exit status the command ends with.
    pub exit_code: u8,
    /// What kind of failure it is.
    pub kind: FailureKind,
    /// The seed of the run that failed, to replay it (simulated runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The node that failed, in every mode: which node, of what type, what kind of error, what
    /// it said and when (for a [`FailureKind::NodeFailed`] from a node's own error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_failure: Option<NodeFailure>,
}

impl Failure {
    /// Bad input or usage: exit 2.
    pub fn bad_input(error: &dyn std::fmt::Display) -> Self {
        Failure {
            error: error.to_string(),
            exit_code: EXIT_BAD_INPUT,
            kind: FailureKind::BadInput,
            seed: None,
            node_failure: None,
        }
    }

    /// DistZero itself could not do what it should: exit 1.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        Failure {
            error: error.to_string(),
            exit_code: EXIT_WRONG,
            kind: FailureKind::Internal,
            seed: None,
            node_failure: None,
        }
    }

    /// Why a run on `seed` produced no report.
    pub fn of_run(error: &RunError, seed: Option<u64>) -> Self {
        let (exit_code, kind) = match error {
            RunError::Scenario(_) | RunError::DuplicateNodeType(_) => {
                (EXIT_BAD_INPUT, FailureKind::BadInput)
            }
            RunError::Hardware(HardwareError::Unavailable(_)) => {
                (EXIT_BAD_INPUT, FailureKind::Unavailable)
            }
            RunError::Hardware(HardwareError::NodeFailed(_)) | RunError::UnreadableState { .. } => {
                (EXIT_WRONG, FailureKind::NodeFailed)
            }
            RunError::Hardware(HardwareError::Capacity(_) | HardwareError::QueueFull(_)) => {
                (EXIT_WRONG, FailureKind::Capacity)
            }
            RunError::Hardware(HardwareError::Stopped(signal)) => {
                (signal.exit_status(), FailureKind::Stopped)
            }
            RunError::Hardware(_) | RunError::System(_) => (EXIT_WRONG, FailureKind::Hardware),
            RunError::Invariant { .. } => (EXIT_WRONG, FailureKind::Invariant),
        };
        Failure {
            error: error.to_string(),
            exit_code,
            kind,
            seed: seed.filter(|_| exit_code != EXIT_BAD_INPUT),
            node_failure: match error {
                RunError::Hardware(HardwareError::NodeFailed(report)) => {
                    Some(report.failure.clone())
                }
                _ => None,
            },
        }
    }

    /// Says what went wrong on stderr, and with `json` as one object on stdout too; returns the
    /// exit status.
    pub fn report(&self, json: bool) -> u8 {
        if json {
            print_json(self);
        }
        report_error(self.exit_code, &self.error)
    }
}

/// Says what went wrong on stderr, after the binary's name, with every character unsafe on a
/// terminal escaped: one line for bad input and usage, the lines of the message otherwise (a
/// node's failure comes with the trace of messages that led to it). Returns `code`.
pub fn report_error(code: u8, error: &dyn std::fmt::Display) -> u8 {
    let text = error.to_string();
    let text = if code == EXIT_BAD_INPUT {
        escape(&text)
    } else {
        escape_lines(&text)
    };
    err!("{}: {text}", escape(&program_name()));
    code
}
