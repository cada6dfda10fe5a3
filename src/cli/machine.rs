//! `dist-zero machine`: run one machine of a virtual-mode system (the process inside a container).

use std::path::PathBuf;
use std::sync::Arc;

use crate::app::Applications;
use crate::hardware::remote::MachineConfig;
use crate::machine;

use super::{report_error, EXIT_BAD_INPUT, EXIT_CORRECT, EXIT_WRONG};

/// Where the machine's config comes from (exactly one).
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct MachineArgs {
    /// The machine config as JSON text.
    #[arg(long)]
    pub config_json: Option<String>,
    /// A file holding the machine config as JSON.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs the machine, with the node types of `apps`, until it is told to stop; returns the exit
/// status.
pub fn run(args: &MachineArgs, apps: &Applications) -> u8 {
    let config = match (&args.config_json, &args.config) {
        (Some(text), _) => MachineConfig::parse(text),
        (None, Some(path)) => MachineConfig::load(path),
        (None, None) => return report_error(EXIT_BAD_INPUT, &"give --config-json or --config"),
    };
    let config = match config {
        Ok(config) => config,
        Err(error) => return report_error(EXIT_BAD_INPUT, &error),
    };
    match machine::run(&config, Arc::new(apps.registry())) {
        Ok(()) => EXIT_CORRECT,
        Err(machine::MachineError::Config(error)) => report_error(EXIT_BAD_INPUT, &error),
        Err(error) => report_error(EXIT_WRONG, &error),
    }
}
