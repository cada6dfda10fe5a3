//! Cloud mode's own commands: `dist-zero clean --cloud` and `dist-zero cloud-emulator` (a cloud
//! run itself goes the one run path of every mode, `crate::scenario::run`).

use crate::hardware::cloud::clean;
use crate::hardware::cloud::clean::{CloudCleanOptions, CloudCleaned};
use crate::hardware::cloud::realizer::{
    Emulator, EmulatorOptions, EMULATOR_KEY_ID, EMULATOR_SECRET,
};
use crate::hardware::HardwareError;
use crate::settings::Settings;
use crate::terminal::out;

use super::clean::CleanArgs;
use super::{report_error, EXIT_BAD_INPUT, EXIT_CORRECT, EXIT_WRONG};

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
