//! Virtual mode: every machine is a `dist-zero machine` process in its own Docker container on
//! this host, driven through the Docker Engine API (bollard).
//!
//! A run loads (or reuses) an image holding only the static `dist-zero` binary, creates
//! a bridge network on its own /24 with a fixed address per machine (no DNS anywhere), starts one
//! container per machine (each with a memory limit), and waits until each answers on its control
//! port. Everything it creates carries the labels `dist-zero=true` and `dist-zero.run=<run id>`,
//! and the runner's identity ([`owner`]), and is removed when the [`DockerHardware`] is dropped —
//! at the end of a run, on an error, on a panic, and (when it listens for them, as the CLI does)
//! on Ctrl-C or SIGTERM ([`crate::hardware::remote::stop`]). Each machine's logs are bind-mounted to
//! `<runs dir>/<run id>/m<i>/` on the host.
//!
//! The run is driven as cloud mode's is, by [`RemoteHardware`]: this module only says how the
//! containers are made and removed ([`DockerRun`]) and how a container is paused, killed and
//! started again ([`Containers`]).

mod clean;
pub(crate) mod engine;
mod image;
mod machines;
pub mod owner;
mod resources;
#[cfg(feature = "cloud")]
pub(crate) use resources::remove_network;

pub use clean::{clean, CleanOptions, Cleaned, Left};
pub use resources::MAX_MACHINES;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::HardwareError;
use crate::faults::FaultRule;
use crate::hardware::remote::hardware::{Provider, RecordsAt, RemoteHardware};
use crate::hardware::remote::machines::Machines;
use crate::hardware::remote::stop::Stopper;
use crate::hardware::remote::MachineConfig;
use crate::messages::MachineId;
use crate::settings::Settings;
pub use machines::Containers;
use resources::{ContainerSpec, Resources};

/// Label on everything DistZero creates in Docker.
pub const LABEL_ALL: &str = "dist-zero";
/// Label naming the run a container or network belongs to.
pub const LABEL_RUN: &str = "dist-zero.run";
/// Label naming a container's machine index.
pub const LABEL_MACHINE: &str = "dist-zero.machine";
/// Label on images: the hash of the binary inside.
pub const LABEL_BINARY: &str = "dist-zero.binary";
/// Label on images: the image's name (`DIST_ZERO_IMAGE`), which an untagged image no longer shows.
pub const LABEL_IMAGE: &str = "dist-zero.image";
/// The port machines listen on for each other.
pub const PEER_PORT: u16 = 7000;
/// The port machines listen on for control requests.
pub const CONTROL_PORT: u16 = 7001;
/// Where a machine's log directory is mounted inside its container.
const LOG_DIR_IN_CONTAINER: &str = "/logs";

/// What a virtual-mode system is made of.
#[derive(Debug, Clone)]
pub struct VirtualConfig {
    /// How many machines (1 to [`MAX_MACHINES`]).
    pub machines: u32,
    /// The seed every machine's random generator derives from.
    pub seed: u64,
    /// The statically linked `dist-zero` binary to run in the containers.
    pub binary: PathBuf,
    /// Docker endpoint, runs directory, image name, machine log filter.
    pub settings: Settings,
    /// How long machines have to come up and answer.
    pub ready_timeout: Duration,
    /// Whether the runtime's reliable delivery runs between the machines.
    pub reliable: bool,
    /// Transmissions each machine drops on purpose.
    pub drop: Option<FaultRule>,
    /// Transmissions each machine sends twice on purpose.
    pub duplicate: Option<FaultRule>,
    /// Whether SIGINT and SIGTERM stop the run (and no longer end the process): the CLI sets it;
    /// a program embedding the hardware handles its own signals.
    pub stop_on_signals: bool,
    /// Whether each machine writes the structured trace (`trace.jsonl` in its log directory).
    pub record: bool,
}

impl VirtualConfig {
    /// A config with the default readiness timeout (30 s).
    pub fn new(machines: u32, seed: u64, binary: PathBuf, settings: Settings) -> Self {
        VirtualConfig {
            machines,
            seed,
            binary,
            settings,
            ready_timeout: Duration::from_secs(30),
            reliable: true,
            drop: None,
            duplicate: None,
            stop_on_signals: false,
            record: false,
        }
    }
}

/// A running system of containers, one per machine.
pub type DockerHardware = RemoteHardware<DockerRun>;

/// What a virtual-mode run made in Docker: its network and containers, and the host directory
/// holding each machine's log directory (where the machines' structured records are read).
pub struct DockerRun {
    resources: Resources,
    logs_dir: PathBuf,
    removed: bool,
}

impl Provider for DockerRun {
    type Backend = Containers;

    fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.resources.runtime
    }

    fn records(&self) -> RecordsAt<'_> {
        RecordsAt::LogFiles(&self.logs_dir)
    }

    async fn exited(&self) {
        self.resources.wait_exited().await;
    }

    fn remove(&mut self) -> Result<(), HardwareError> {
        if std::mem::replace(&mut self.removed, true) {
            return Ok(());
        }
        self.resources.remove()
    }
}

impl RemoteHardware<DockerRun> {
    /// Loads the image if needed, creates the network and the containers, and waits until every
    /// machine answers. On any failure, or a signal when it listens for them, whatever was created
    /// is removed before returning.
    pub fn start(config: &VirtualConfig) -> Result<Self, HardwareError> {
        check_machines(config.machines)?;
        let runtime = crate::hardware::remote::runtime()?;
        let stopper = if config.stop_on_signals {
            Stopper::listen(&runtime)?
        } else {
            Stopper::never()
        };
        let docker = stopper.block_on(&runtime, engine::connect(&config.settings.docker_host))?;
        let source = image::ImageSource::read(&config.binary, &config.settings.machine_image)?;
        {
            let _lock = image_lock(&config.settings.runs_dir);
            stopper.block_on(&runtime, source.ensure(&docker))?;
        }
        let run_id = new_run_id();
        let token = new_token();
        let logs_dir = run_logs_dir(&config.settings.runs_dir, &run_id)?;
        let mut resources =
            Resources::new(runtime, docker, &run_id, config.settings.machine_memory_mib);
        // Requests to Docker that create something run to their end, so that what they create
        // is known and removed; a signal is noticed between them.
        let base = resources.create_network()?;
        stopper.check()?;
        let peers: Vec<SocketAddr> = (0..config.machines)
            .map(|m| SocketAddr::from((resources::machine_ip(base, m), PEER_PORT)))
            .collect();
        let mut specs = Vec::new();
        for machine in 0..config.machines {
            let host_dir = logs_dir.join(MachineId(machine).to_string());
            std::fs::create_dir_all(&host_dir).map_err(|source| HardwareError::Io {
                action: format!("create {}", host_dir.display()),
                source,
            })?;
            let machine_config = MachineConfig {
                run_id: run_id.clone(),
                machine: MachineId(machine),
                peers: peers.clone(),
                token: token.clone(),
                seed: config.seed,
                peer_port: PEER_PORT,
                control_port: CONTROL_PORT,
                log_dir: PathBuf::from(LOG_DIR_IN_CONTAINER),
                log_filter: config.settings.machine_log_filter.clone(),
                reliable: config.reliable,
                drop: config.drop.clone(),
                duplicate: config.duplicate.clone(),
                tls: None,
                record: config.record,
                sync_disk: false,
            };
            let json =
                serde_json::to_string(&machine_config).map_err(|source| HardwareError::Encode {
                    what: "a machine config",
                    source,
                })?;
            specs.push(ContainerSpec {
                machine,
                image: source.tag.clone(),
                cmd: vec!["machine".into(), "--config-json".into(), json],
                binds: vec![format!("{}:{LOG_DIR_IN_CONTAINER}", host_dir.display())],
                ip: resources::machine_ip(base, machine),
            });
        }
        resources.start_containers(specs)?;
        stopper.check()?;
        let containers = Containers {
            docker: resources.docker.clone(),
            names: (0..config.machines)
                .map(|m| format!("{run_id}-m{m}"))
                .collect(),
        };
        let controls = (0..config.machines)
            .map(|m| SocketAddr::from((resources::machine_ip(base, m), CONTROL_PORT)))
            .collect();
        let machines = stopper.block_on(
            &resources.runtime,
            Machines::connect(
                containers,
                controls,
                token,
                config.seed,
                config.ready_timeout,
            ),
        )?;
        tracing::info!(run = %run_id, machines = config.machines, "virtual system ready");
        let run = DockerRun {
            resources,
            logs_dir,
            removed: false,
        };
        Ok(RemoteHardware::new(run, machines, stopper, run_id))
    }

    /// The host directory holding one log directory per machine.
    pub fn logs_dir(&self) -> &Path {
        &self.provider().logs_dir
    }

    /// Machine `machine`'s peer address (where other machines send envelopes).
    pub fn peer_addr(&self, machine: MachineId) -> Result<SocketAddr, HardwareError> {
        let control = self.control_addr(machine)?;
        Ok(SocketAddr::new(control.ip(), PEER_PORT))
    }
}

/// Checks a machine count against what virtual mode can run, before anything is created.
pub fn check_machines(machines: u32) -> Result<(), HardwareError> {
    if machines == 0 || machines > MAX_MACHINES {
        return Err(HardwareError::Infrastructure(format!(
            "virtual mode runs 1 to {MAX_MACHINES} machines, not {machines}"
        )));
    }
    Ok(())
}

/// A run id unique on this host: `dz-<ms since epoch, hex>-<pid>-<counter>`.
pub(crate) fn new_run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "dz-{millis:x}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// 128 random bits from the OS, as hex (falls back to a hash of the time if unavailable).
pub(crate) fn new_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = format!("{nanos}/{}/{}", std::process::id(), new_run_id());
        bytes = xxhash_rust::xxh3::xxh3_128(seed.as_bytes()).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<runs dir>/<run id>`, created, as an absolute path (Docker bind mounts need one).
fn run_logs_dir(runs_dir: &Path, run_id: &str) -> Result<PathBuf, HardwareError> {
    let dir = runs_dir.join(run_id);
    std::fs::create_dir_all(&dir)
        .and_then(|()| dir.canonicalize())
        .map_err(|source| HardwareError::Io {
            action: format!("create {}", dir.display()),
            source,
        })
}

/// Holds an exclusive lock on `<runs dir>/.image.lock` so concurrent runs build the image once.
fn image_lock(runs_dir: &Path) -> Option<std::fs::File> {
    std::fs::create_dir_all(runs_dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(runs_dir.join(".image.lock"))
        .ok()?;
    file.lock().ok()?;
    Some(file)
}
