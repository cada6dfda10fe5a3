//! Virtual mode: every machine is a `dist-zero machine` process in its own Docker container on
//! this host, driven through the Docker Engine API (bollard).
//!
//! A run builds (or reuses) a `FROM scratch` image holding the static `dist-zero` binary, creates
//! a bridge network on its own /24 with a fixed address per machine (no DNS anywhere), starts one
//! container per machine, and waits until each answers on its control port. Everything it creates
//! carries the labels `dist-zero=true` and `dist-zero.run=<run id>` and is removed when the
//! [`DockerHardware`] is dropped — at the end of a run, on an error and on a panic. Each machine's
//! logs are bind-mounted to `<runs dir>/<run id>/m<i>/` on the host.
//!
//! The [`Hardware`] trait is synchronous: every call blocks on the run's own tokio runtime, so a
//! `DockerHardware` must not be used from inside async code.

mod clean;
pub(crate) mod engine;
mod image;
mod machines;
mod resources;

pub use clean::{clean, Cleaned};
pub use machines::VirtualStats;

use crate::hardware::faults::FaultRule;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Hardware, HardwareError, Mode};
use crate::machine::MachineConfig;
use crate::manager::NodeState;
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};
use crate::settings::Settings;
use machines::Machines;
use resources::{ContainerSpec, Resources};

/// Label on everything DistZero creates in Docker.
pub const LABEL_ALL: &str = "dist-zero";
/// Label naming the run a container or network belongs to.
pub const LABEL_RUN: &str = "dist-zero.run";
/// Label naming a container's machine index.
pub const LABEL_MACHINE: &str = "dist-zero.machine";
/// Label on images: the hash of the binary inside.
pub const LABEL_BINARY: &str = "dist-zero.binary";
/// The port machines listen on for each other.
pub const PEER_PORT: u16 = 7000;
/// The port machines listen on for control requests.
pub const CONTROL_PORT: u16 = 7001;
/// Where a machine's log directory is mounted inside its container.
const LOG_DIR_IN_CONTAINER: &str = "/logs";

/// What a virtual-mode system is made of.
#[derive(Debug, Clone)]
pub struct VirtualConfig {
    /// How many machines (1 to 240).
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
        }
    }
}

/// A running system of containers, one per machine.
pub struct DockerHardware {
    machines: Machines,
    resources: Resources,
    run_id: String,
    logs_dir: PathBuf,
    started: Instant,
}

impl DockerHardware {
    /// Builds the image if needed, creates the network and the containers, and waits until every
    /// machine answers. On any failure, whatever was created is removed before returning.
    pub fn start(config: &VirtualConfig) -> Result<Self, HardwareError> {
        if config.machines == 0 || config.machines > resources::MAX_MACHINES {
            return Err(HardwareError::Infrastructure(format!(
                "virtual mode runs 1 to {} machines, not {}",
                resources::MAX_MACHINES,
                config.machines
            )));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| HardwareError::Infrastructure(format!("cannot start a runtime: {e}")))?;
        let docker = runtime.block_on(engine::connect(&config.settings.docker_host))?;
        let source = image::ImageSource::read(&config.binary, &config.settings.machine_image)?;
        {
            let _lock = image_lock(&config.settings.runs_dir);
            runtime.block_on(source.ensure(&docker))?;
        }

        let run_id = new_run_id();
        let token = new_token();
        let logs_dir = run_logs_dir(&config.settings.runs_dir, &run_id)?;
        let mut resources = Resources::new(runtime, docker, &run_id);
        let base = resources.create_network()?;
        let peers: Vec<SocketAddr> = (0..config.machines)
            .map(|m| SocketAddr::from((resources::machine_ip(base, m), PEER_PORT)))
            .collect();
        let mut specs = Vec::new();
        for machine in 0..config.machines {
            let host_dir = logs_dir.join(MachineId(machine).to_string());
            std::fs::create_dir_all(&host_dir).map_err(|e| {
                HardwareError::Infrastructure(format!("cannot create {}: {e}", host_dir.display()))
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
            };
            let json = serde_json::to_string(&machine_config).map_err(|e| {
                HardwareError::Infrastructure(format!("cannot encode a machine config: {e}"))
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
        let controls: Vec<(String, SocketAddr)> = (0..config.machines)
            .map(|m| {
                (
                    format!("{run_id}-m{m}"),
                    SocketAddr::from((resources::machine_ip(base, m), CONTROL_PORT)),
                )
            })
            .collect();
        let machines = resources.runtime.block_on(Machines::connect(
            resources.docker.clone(),
            controls,
            token,
            config.ready_timeout,
        ))?;
        tracing::info!(run = %run_id, machines = config.machines, "virtual system ready");
        Ok(DockerHardware {
            machines,
            resources,
            run_id,
            logs_dir,
            started: Instant::now(),
        })
    }

    /// The run's id (its containers and network carry it as a label).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The host directory holding one log directory per machine.
    pub fn logs_dir(&self) -> &Path {
        &self.logs_dir
    }

    /// The run's secret token.
    pub fn token(&self) -> &str {
        self.machines.token()
    }

    /// Machine `machine`'s control address, as the host reaches it.
    pub fn control_addr(&self, machine: MachineId) -> Result<SocketAddr, HardwareError> {
        self.machines.control_addr(machine)
    }

    /// Machine `machine`'s peer address (where other machines send envelopes).
    pub fn peer_addr(&self, machine: MachineId) -> Result<SocketAddr, HardwareError> {
        let control = self.machines.control_addr(machine)?;
        Ok(SocketAddr::new(control.ip(), PEER_PORT))
    }

    /// The machines' counters, summed.
    pub fn stats(&mut self) -> Result<VirtualStats, HardwareError> {
        self.resources.runtime.block_on(self.machines.stats())
    }

    /// Kills machine `machine`'s container (SIGKILL), as a crash would.
    pub fn kill_machine(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        self.resources.runtime.block_on(self.machines.kill(machine))
    }

    /// Measures `count` message round trips from machine `from` to machine `to`.
    pub fn round_trips(
        &mut self,
        from: MachineId,
        to: MachineId,
        count: u32,
    ) -> Result<Vec<Duration>, HardwareError> {
        self.resources
            .runtime
            .block_on(self.machines.round_trips(from, to, count))
    }

    /// Asks every machine to stop, then removes the containers and the network.
    pub fn finish(mut self) -> Result<(), HardwareError> {
        self.resources.runtime.block_on(self.machines.shutdown());
        self.resources.remove()
    }
}

impl Hardware for DockerHardware {
    fn mode(&self) -> Mode {
        Mode::Virtual
    }

    fn machine_count(&self) -> usize {
        self.machines.len()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn spawn(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError> {
        self.resources
            .runtime
            .block_on(self.machines.start_node(machine, config))
    }

    fn send(&mut self, to: NodeHandle, message: Message) -> Result<(), HardwareError> {
        self.resources
            .runtime
            .block_on(self.machines.deliver(to, message))
    }

    fn run_until(&mut self, at_ms: u64) -> Result<(), HardwareError> {
        let deadline = self.started + Duration::from_millis(at_ms);
        let machines = &mut self.machines;
        self.resources.runtime.block_on(async {
            tokio::time::sleep_until(deadline.into()).await;
            machines.check().await
        })
    }

    fn node_states(&mut self) -> Result<Vec<NodeState>, HardwareError> {
        self.resources.runtime.block_on(self.machines.node_states())
    }
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
        .map_err(|e| HardwareError::Infrastructure(format!("cannot create {}: {e}", dir.display())))
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
