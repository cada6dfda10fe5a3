//! `dist-zero clean`: remove whatever earlier virtual-mode runs leaked.

use crate::hardware::docker;
use crate::hardware::HardwareError;
use crate::settings::Settings;

use super::{report_error, EXIT_BAD_INPUT, EXIT_CORRECT, EXIT_WRONG};

/// Removes every container, network and image labelled `dist-zero=true`, and says what it removed.
pub fn run(settings: &Settings) -> u8 {
    match docker::clean(&settings.docker_host) {
        Ok(cleaned) if cleaned.is_empty() => {
            println!("nothing to clean: no dist-zero containers, networks or images");
            EXIT_CORRECT
        }
        Ok(cleaned) => {
            for (kind, names) in [
                ("container", &cleaned.containers),
                ("network", &cleaned.networks),
                ("image", &cleaned.images),
            ] {
                for name in names {
                    println!("removed {kind} {name}");
                }
            }
            println!(
                "removed {} containers, {} networks, {} images",
                cleaned.containers.len(),
                cleaned.networks.len(),
                cleaned.images.len()
            );
            EXIT_CORRECT
        }
        Err(error @ HardwareError::Unavailable(_)) => report_error(EXIT_BAD_INPUT, &error),
        Err(error) => report_error(EXIT_WRONG, &error),
    }
}
