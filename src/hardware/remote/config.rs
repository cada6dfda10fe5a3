//! A machine process's configuration: which machine it is, where the others are, its secret.

use crate::faults::{FaultRule, SenderFaults};
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::messages::MachineId;

/// Everything one machine process needs to know, given to it as JSON on its command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    /// The run this machine belongs to.
    pub run_id: String,
    /// This machine's index.
    pub machine: MachineId,
    /// The address book: machine `i`'s peer address is entry `i` (IP addresses, never names).
    pub peers: Vec<SocketAddr>,
    /// The run's secret: every control request and peer connection must present it.
    pub token: String,
    /// The run's seed; this machine's random generator derives from it.
    pub seed: u64,
    /// Port for connections from other machines.
    pub peer_port: u16,
    /// Port for control requests from the process that runs the system.
    pub control_port: u16,
    /// Directory for this machine's logs (`machine.log`, `machine.jsonl`).
    pub log_dir: PathBuf,
    /// Log filter (tracing-subscriber `EnvFilter` syntax).
    #[serde(default = "default_log_filter")]
    pub log_filter: String,
    /// Whether the runtime's reliable delivery runs between machines (every machine of a run
    /// must agree).
    #[serde(default = "reliable_by_default")]
    pub reliable: bool,
    /// Transmissions to other machines this machine drops on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<FaultRule>,
    /// Transmissions to other machines this machine sends twice on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<FaultRule>,
    /// TLS on both ports (cloud mode): the peer and control ports then take only TLS
    /// connections from holders of the run's certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<MachineTls>,
    /// Write the structured trace (every event as a JSON line) to `trace.jsonl` in the log
    /// directory, for the runner to merge into the run's report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record: bool,
    /// Write the machine's disk through to the device (fsync) before what it holds leaves the
    /// machine (cloud mode: a crash is a forced stop, which loses what the instance's kernel
    /// had not written; a killed process in a container leaves that to the host).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync_disk: bool,
}

/// A run's TLS material as a machine gets it, all in PEM.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineTls {
    /// The run's authority certificate: the only issuer a machine trusts.
    pub authority: String,
    /// The certificate every machine of the run presents.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

impl std::fmt::Debug for MachineTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MachineTls(..)")
    }
}

fn reliable_by_default() -> bool {
    true
}

fn default_log_filter() -> String {
    "info".into()
}

/// Why a machine config is unusable.
#[derive(Debug, thiserror::Error)]
pub enum MachineConfigError {
    /// Not valid JSON, or not the expected fields.
    #[error("the machine config is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// The config file cannot be read.
    #[error("cannot read the machine config {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The fields contradict each other.
    #[error("the machine config is not valid: {0}")]
    Invalid(String),
}

impl MachineConfig {
    /// Parses and validates a config from JSON text.
    pub fn parse(text: &str) -> Result<Self, MachineConfigError> {
        let config: MachineConfig = serde_json::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads (at most [`MAX_INPUT_BYTES`](crate::files::MAX_INPUT_BYTES) of it), parses and
    /// validates a config file.
    pub fn load(path: &std::path::Path) -> Result<Self, MachineConfigError> {
        let text = crate::files::read_text(path).map_err(|e| MachineConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// Checks that the fields fit together.
    pub fn validate(&self) -> Result<(), MachineConfigError> {
        if self.machine.index() >= self.peers.len() {
            return Err(MachineConfigError::Invalid(format!(
                "machine {} is not in the address book of {} machines",
                self.machine,
                self.peers.len()
            )));
        }
        if self.token.is_empty() {
            return Err(MachineConfigError::Invalid("the token is empty".into()));
        }
        SenderFaults::new(
            self.drop.as_ref(),
            self.duplicate.as_ref(),
            self.seed,
            self.machine,
        )
        .map_err(|e| MachineConfigError::Invalid(e.to_string()))?;
        if self.tls.is_some() && !cfg!(feature = "cloud") {
            return Err(MachineConfigError::Invalid(
                "the config asks for TLS, which this build lacks (build with --features cloud)"
                    .into(),
            ));
        }
        if self.peer_port == self.control_port {
            return Err(MachineConfigError::Invalid(format!(
                "peer and control ports are both {}",
                self.peer_port
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MachineConfig {
        MachineConfig {
            run_id: "dz-test".into(),
            machine: MachineId(1),
            peers: vec![
                "10.0.0.2:7000".parse().expect("addr"),
                "10.0.0.3:7000".parse().expect("addr"),
            ],
            token: "t".into(),
            seed: 3,
            peer_port: 7000,
            control_port: 7001,
            log_dir: "/logs".into(),
            log_filter: "info".into(),
            reliable: true,
            drop: None,
            duplicate: None,
            tls: None,
            record: false,
            sync_disk: false,
        }
    }

    #[test]
    fn virtual_a_bad_fault_rule_makes_the_config_invalid() {
        let mut config = sample();
        config.drop = Some(FaultRule {
            rate: 2.0,
            types: None,
        });
        let error = config.validate().expect_err("rate out of range");
        assert!(error.to_string().contains("network.drop.rate"), "{error}");
    }

    #[test]
    fn virtual_machine_config_round_trips() {
        let text = serde_json::to_string(&sample()).expect("encodes");
        assert_eq!(MachineConfig::parse(&text).expect("parses"), sample());
    }

    #[test]
    fn virtual_machine_outside_the_address_book_is_refused() {
        let mut config = sample();
        config.machine = MachineId(2);
        let text = serde_json::to_string(&config).expect("encodes");
        let error = MachineConfig::parse(&text).expect_err("invalid");
        assert!(error.to_string().contains("address book"), "{error}");
    }

    #[test]
    fn virtual_a_config_file_beyond_64_mib_is_refused() {
        let dir = std::env::temp_dir().join(format!("dist-zero-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        let path = dir.join("machine.json");
        let mut text = serde_json::to_string(&sample()).expect("encodes");
        text.push_str(&" ".repeat(64 * 1024 * 1024));
        std::fs::write(&path, text).expect("written");
        let error = MachineConfig::load(&path).expect_err("too large");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(error.to_string().contains("64 MiB"), "{error}");
    }

    #[test]
    fn virtual_garbage_config_is_an_error() {
        assert!(MachineConfig::parse("{\"run_id\": 3}").is_err());
        assert!(MachineConfig::parse("not json").is_err());
    }
}
