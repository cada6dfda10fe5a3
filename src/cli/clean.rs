//! `dist-zero clean`: remove what earlier virtual-mode runs leaked, leaving runs in progress.

use crate::hardware::docker::{self, CleanOptions};
use crate::hardware::HardwareError;
use crate::settings::Settings;
use crate::terminal::{err, out};

use super::{report_error, EXIT_BAD_INPUT, EXIT_CORRECT, EXIT_WRONG};

/// What to clean.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Also remove runs still in progress (their runners then fail) and runs whose runner cannot
    /// be checked from here, and every machine image.
    #[arg(long)]
    pub all: bool,
    /// Only this run's containers and network (images are left alone).
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// Clean the cloud (AWS, or the emulator `AWS_ENDPOINT_URL` points at) instead of Docker:
    /// the resources of runs whose runner is gone or that have expired (with `--all`, every run's;
    /// with `--run`, that run's).
    #[arg(long)]
    pub cloud: bool,
}

/// Removes the containers and networks of runs whose runner is gone (all of them with `--all`)
/// and the images no run left may use; says what it removed and what it left. Exit status 0,
/// or 1 if something could not be removed.
pub fn run(args: &CleanArgs, settings: &Settings) -> u8 {
    let options = CleanOptions {
        all: args.all,
        run: args.run.clone(),
    };
    let cleaned = match docker::clean(&settings.docker_host, &options) {
        Ok(cleaned) => cleaned,
        Err(error @ HardwareError::Unavailable(_)) => return report_error(EXIT_BAD_INPUT, &error),
        Err(error) => return report_error(EXIT_WRONG, &error),
    };
    if cleaned.is_empty() {
        out!("nothing to clean: no dist-zero containers, networks or images");
        return EXIT_CORRECT;
    }
    for (kind, names) in [
        ("container", &cleaned.containers),
        ("network", &cleaned.networks),
        ("image", &cleaned.images),
    ] {
        for name in names {
            out!("removed {kind} {name}");
        }
    }
    for left in &cleaned.left {
        out!("left {}: {}", left.what, left.why);
    }
    for failure in &cleaned.failed {
        err!("dist-zero: could not remove {failure}");
    }
    out!(
        "removed {} containers, {} networks, {} images; left {}; could not remove {}",
        cleaned.containers.len(),
        cleaned.networks.len(),
        cleaned.images.len(),
        cleaned.left.len(),
        cleaned.failed.len()
    );
    if cleaned.failed.is_empty() {
        EXIT_CORRECT
    } else {
        EXIT_WRONG
    }
}
