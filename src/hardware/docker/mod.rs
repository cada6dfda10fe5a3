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
//! The [`Hardware`] trait is synchronous: every call blocks on the run's own tokio runtime, so a
//! `DockerHardware` must not be used from inside async code.

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
use std::time::{Duration, Instant};

use super::{Hardware, HardwareError, Mode};
use crate::counters::Counters;
use crate::faults::{Fault, FaultRule};
use crate::hardware::remote::machines::{Backend, Machines};
use crate::hardware::remote::stop::{Stop, Stopper};
use crate::hardware::remote::MachineConfig;
use crate::machine::TRACE_FILE;
use crate::manager::NodeState;
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};
use crate::observe::gather::{gather, TraceLoss, UnreadableMachine};
use crate::observe::merge::merge;
use crate::observe::Record;
use crate::settings::Settings;
use crate::time::{Micros, Millis};
use machines::Containers;
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
pub struct DockerHardware {
    machines: Machines<Containers>,
    resources: Resources,
    stopper: Stopper,
    run_id: String,
    logs_dir: PathBuf,
    started: Instant,
}

impl DockerHardware {
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
            Machines::connect(containers, controls, token, config.ready_timeout),
        )?;
        tracing::info!(run = %run_id, machines = config.machines, "virtual system ready");
        let started = machines.started();
        Ok(DockerHardware {
            machines,
            resources,
            stopper,
            run_id,
            logs_dir,
            started,
        })
    }

    /// The run's id (its containers and network carry it as a label).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's start, time zero of [`Hardware::now_ms`] and of every machine's clock: the
    /// moment every machine had answered, in microseconds since the UNIX epoch on this host's
    /// clock (which the containers share).
    pub fn run_start_unix_us(&self) -> u64 {
        self.machines.run_start_unix_us()
    }

    /// Machine `machine`'s own reading of the run's clock now, in microseconds since the run's
    /// start (what its nodes read, in milliseconds, as `now_ms`).
    pub fn machine_now_us(&mut self, machine: MachineId) -> Result<u64, HardwareError> {
        self.stopper
            .block_on(&self.resources.runtime, self.machines.clock(machine))
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
        self.machines.addr(machine)
    }

    /// Machine `machine`'s peer address (where other machines send envelopes).
    pub fn peer_addr(&self, machine: MachineId) -> Result<SocketAddr, HardwareError> {
        let control = self.machines.addr(machine)?;
        Ok(SocketAddr::new(control.ip(), PEER_PORT))
    }

    /// The machines' counters, summed, with the crashes and restarts the runner applied.
    pub fn stats(&mut self) -> Result<Counters, HardwareError> {
        let counted = self
            .stopper
            .block_on(&self.resources.runtime, self.machines.stats())?;
        Ok(counted + self.machines.applied())
    }

    /// Kills machine `machine`'s container (SIGKILL), as a crash would.
    pub fn kill_machine(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        self.stopper.block_on(
            &self.resources.runtime,
            self.machines.backend().kill(machine),
        )
    }

    /// Measures `count` message round trips from machine `from` to machine `to`.
    pub fn round_trips(
        &mut self,
        from: MachineId,
        to: MachineId,
        count: u32,
    ) -> Result<Vec<Duration>, HardwareError> {
        self.stopper.block_on(
            &self.resources.runtime,
            self.machines.round_trips(from, to, count),
        )
    }

    /// Asks every machine to stop, then removes the containers and the network. Call it after
    /// a failed run too: it is how a run ends. A second signal skips asking the machines; the
    /// removal always happens. Says [`HardwareError::Stopped`] if a signal stopped the run.
    pub fn finish(mut self) -> Result<(), HardwareError> {
        if self.stopper.state() != Stop::No {
            tracing::info!(run = %self.run_id, "stopped by a signal; removing the run");
        }
        let resources = &self.resources;
        let machines = &mut self.machines;
        self.stopper
            .block_on_unless_urgent(&resources.runtime, async {
                machines.shutdown().await;
                resources.wait_exited().await;
            });
        self.resources.remove()?;
        self.stopper.check()
    }
}

impl super::RunHardware for DockerHardware {
    fn totals(&mut self) -> Result<Counters, HardwareError> {
        self.stats()
    }

    fn run_id(&self) -> Option<&str> {
        Some(&self.run_id)
    }

    fn logs_dir(&self) -> Option<&Path> {
        Some(&self.logs_dir)
    }

    /// The machines write out their structured traces as they stop; they are read from the
    /// run's log directory once the containers are gone.
    fn finish(self: Box<Self>, observe: bool) -> (Result<(), HardwareError>, super::Finished) {
        let logs = self.logs_dir.clone();
        let machines = u32::try_from(self.machines.len()).unwrap_or(u32::MAX);
        let start_us = self.run_start_unix_us();
        let finished = DockerHardware::finish(*self);
        let mut left = super::Finished::default();
        if observe {
            let (records, unreadable) = merged_trace(&logs, machines, start_us);
            left.records = Some(records);
            left.unreadable = unreadable;
        }
        (finished, left)
    }
}

/// The machines' structured traces in `logs` (one directory per machine), merged by time with
/// `start_us` (on the host's clock) as time zero, and the machines whose file is missing or
/// malformed (left out, named). A machine killed mid-write keeps every complete record: only
/// its torn last line is dropped.
pub fn merged_trace(
    logs: &Path,
    machines: u32,
    start_us: u64,
) -> (Vec<Record>, Vec<UnreadableMachine>) {
    let traces = (0..machines)
        .map(|machine| {
            let path = logs.join(MachineId(machine).to_string()).join(TRACE_FILE);
            std::fs::read(&path).map_err(|error| {
                (
                    TraceLoss::Unreadable,
                    format!("{}: {error}", path.display()),
                )
            })
        })
        .collect();
    let gathered = gather(traces);
    (merge(gathered.per_machine, start_us), gathered.unreadable)
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
        self.stopper.block_on(
            &self.resources.runtime,
            self.machines.start_node(machine, config),
        )
    }

    fn send(&mut self, to: NodeHandle, message: Message) -> Result<(), HardwareError> {
        self.stopper
            .block_on(&self.resources.runtime, self.machines.deliver(to, message))
    }

    fn run_until(&mut self, at_ms: u64) -> Result<(), HardwareError> {
        let limit = Millis(at_ms).to_micros_saturating();
        let deadline = self.started + Duration::from_millis(at_ms);
        let machines = &mut self.machines;
        self.stopper.block_on(&self.resources.runtime, async {
            machines.apply_due(limit).await?;
            tokio::time::sleep_until(deadline.into()).await;
            machines.check().await
        })
    }

    fn node_states(&mut self) -> Result<Vec<NodeState>, HardwareError> {
        self.stopper
            .block_on(&self.resources.runtime, self.machines.node_states())
    }

    /// Partitions, holds and the drop and duplicate rules are applied by every machine to what
    /// it sends (the runner's control connections, on another port, stay up); a pause freezes
    /// the machine's container (`docker pause`); a crash kills it (`docker kill`) and a restart
    /// starts it again (`docker start`: the same address, and its disk, in its log directory,
    /// from which it boots as its next incarnation). The reorder rule is not applied in
    /// containers.
    fn apply(&mut self, fault: &Fault) -> Result<(), HardwareError> {
        self.stopper
            .block_on(&self.resources.runtime, self.machines.apply(fault))
    }

    /// Keeps `fault` to apply when the run reaches `at_us` (see [`Hardware::run_until`]); a
    /// verb this mode cannot apply is refused now.
    fn schedule(&mut self, at_us: Micros, fault: Fault) -> Result<(), HardwareError> {
        self.machines.schedule(at_us, fault)
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
