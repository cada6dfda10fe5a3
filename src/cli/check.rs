//! `check`: read and validate a scenario without running it, and the flag that sets how much of
//! a scenario file is read.

use std::path::PathBuf;

use serde::Serialize;

use super::{print_json, Failure, EXIT_CORRECT};
use crate::app::Applications;
use crate::files::MAX_SCENARIO_BYTES;
use crate::scenario::Scenario;
use crate::terminal::{escape, out};

/// The most MiB `--max-input-mb` may allow: a TiB.
const MAX_INPUT_MB: u64 = 1024 * 1024;

/// How much of a scenario file is read before it is refused as too large.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct InputLimit {
    /// Read at most this many MiB of the scenario file (a larger or endless file is refused
    /// with one line, after reading that much and a byte more).
    #[arg(long = "max-input-mb", value_name = "MIB", default_value_t = MAX_SCENARIO_BYTES >> 20,
          value_parser = clap::value_parser!(u64).range(1..=MAX_INPUT_MB))]
    pub max_input_mb: u64,
}

impl InputLimit {
    /// The limit in bytes.
    pub fn bytes(self) -> u64 {
        self.max_input_mb << 20
    }
}

/// What `check` is told.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The scenario (JSON; see docs/scenarios.md for its format).
    pub scenario: PathBuf,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// How much of the file is read.
    #[command(flatten)]
    pub input: InputLimit,
}

/// What `check --json` prints of a valid scenario.
#[derive(Debug, Serialize)]
struct Checked {
    valid: bool,
    application: &'static str,
    machines: u32,
    run_ms: u64,
    seed: u64,
    size: String,
}

/// `check`: reads and validates the scenario as `run` would, and says what it holds; exit 0 if
/// it is valid, 2 (naming the field at fault) if not.
pub(super) fn check(args: &CheckArgs, apps: &Applications) -> u8 {
    let scenario = match Scenario::load_limited(&args.scenario, apps, args.input.bytes()) {
        Ok(scenario) => scenario,
        Err(error) => return Failure::bad_input(&error).report(args.json),
    };
    let checked = Checked {
        valid: true,
        application: scenario.app().name(),
        machines: scenario.machines,
        run_ms: scenario.run_ms.0,
        seed: scenario.seed,
        size: scenario.app().size(scenario.section()),
    };
    if args.json {
        print_json(&checked);
    } else {
        out!(
            "valid: {}, {} machines, {}, run_ms {}, seed {}",
            scenario.app().title(),
            checked.machines,
            escape(&checked.size),
            checked.run_ms,
            checked.seed
        );
    }
    EXIT_CORRECT
}
