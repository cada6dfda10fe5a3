//! A machine's logs: human-readable text and JSON lines in its log directory, and text on stderr
//! (what `docker logs` shows).

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// The human-readable log's file name.
pub const TEXT_LOG: &str = "machine.log";
/// The JSON log's file name (one object per line).
pub const JSON_LOG: &str = "machine.jsonl";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot open log file {path}: {reason}")]
pub struct LoggingError {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Installs the machine's global subscriber: both files under `dir` plus stderr, filtered by
/// `filter` (falls back to `info` if it does not parse).
pub fn init(dir: &Path, filter: &str) -> Result<(), LoggingError> {
    let _ = std::fs::create_dir_all(dir);
    let text = open(&dir.join(TEXT_LOG))?;
    let json = open(&dir.join(JSON_LOG))?;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_ansi(false).with_writer(Mutex::new(text)))
        .with(fmt::layer().json().with_writer(Mutex::new(json)))
        .with(fmt::layer().with_ansi(false).with_writer(std::io::stderr))
        .try_init();
    Ok(())
}

fn open(path: &Path) -> Result<File, LoggingError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| LoggingError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}
