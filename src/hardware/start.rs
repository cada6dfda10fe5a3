//! Starting a system on any hardware: the one place where the choice of mode becomes machines.
//!
//! A [`Target`] names the hardware, a [`SystemSpec`] says what to start on it — the same fields
//! in every mode — and [`start`] returns the running system as a [`RunHardware`] with the fault
//! plan on its schedule and the kinds of fault it could not apply. The scenario runner
//! (`crate::scenario::run`) and the system builder (`crate::system::Builder::on`) both start
//! their hardware here, so a scenario and a test built in code run the same way in every mode.

#[cfg(feature = "docker")]
use std::path::Path;
#[cfg(feature = "docker")]
use std::path::PathBuf;
use std::sync::Arc;
#[cfg(feature = "docker")]
use std::time::Instant;

#[cfg(feature = "docker")]
use super::schedule_plan;
use super::simulated::{fault_windows, SimulatedHardware, SimulationConfig};
use super::{Hardware, HardwareError};
use crate::counters::Counters;
use crate::faults::{FaultKind, NetworkConfig};
use crate::node::NodeRegistry;
use crate::observe::gather::UnreadableMachine;
use crate::observe::Record;
#[cfg(feature = "docker")]
use crate::settings::Settings;

/// Which hardware a system runs on.
#[derive(Debug, Clone, Default)]
#[cfg_attr(
    feature = "docker",
    allow(
        clippy::large_enum_variant,
        reason = "one target is made per run; boxing would only burden every caller"
    )
)]
pub enum Target {
    /// Every machine an object in this process, on virtual time (no Docker, no account).
    #[default]
    Simulated,
    /// Every machine a process in its own Docker container on this host.
    #[cfg(feature = "docker")]
    Virtual(Remote),
    /// Every machine an EC2 instance (or, with an emulator, a local container posing as one).
    #[cfg(feature = "cloud")]
    Cloud(Remote),
}

impl Target {
    /// The mode this target runs in.
    pub fn mode(&self) -> super::Mode {
        match self {
            Target::Simulated => super::Mode::Simulated,
            #[cfg(feature = "docker")]
            Target::Virtual(_) => super::Mode::Virtual,
            #[cfg(feature = "cloud")]
            Target::Cloud(_) => super::Mode::Cloud,
        }
    }
}

/// What a mode whose machines are processes elsewhere needs beyond the system itself.
#[cfg(feature = "docker")]
#[derive(Debug, Clone)]
pub struct Remote {
    /// The statically linked binary the machines run (this program's, so that a library user's
    /// own node types ship with it).
    pub binary: PathBuf,
    /// Docker endpoint, runs directory, image name, cloud section, machine log filter.
    pub settings: Settings,
    /// Whether SIGINT and SIGTERM stop the run (and no longer end the process): the CLI sets
    /// it; a program embedding DistZero handles its own signals.
    pub stop_on_signals: bool,
}

#[cfg(feature = "docker")]
impl Remote {
    /// A remote target running `binary`, signals left to the program.
    pub fn new(binary: PathBuf, settings: Settings) -> Self {
        Remote {
            binary,
            settings,
            stop_on_signals: false,
        }
    }
}

/// What to start: the same in every mode.
#[derive(Debug, Clone)]
pub struct SystemSpec {
    /// How many machines.
    pub machines: u32,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// The network model and fault plan: its windows go on the hardware's schedule, its drop
    /// and duplicate rules to every machine.
    pub network: NetworkConfig,
    /// Whether the runtime's reliable delivery runs between the machines.
    pub reliable: bool,
    /// Whether the run keeps the structured trace ([`Finished::records`]).
    pub observe: bool,
    /// Whether the run keeps the text of the event trace (simulated mode).
    pub keep_trace_text: bool,
    /// Stops the run with a capacity error after this many events (simulated mode).
    pub max_events: Option<u64>,
}

/// A system that has started.
pub struct Started {
    /// The running system.
    pub hardware: Box<dyn RunHardware>,
    /// The kinds of fault the plan asks for that this hardware cannot apply.
    pub not_applied: Vec<FaultKind>,
    /// Milliseconds it took to start the machines (building or finding an image, creating
    /// containers or instances, waiting until each answers); about nothing in simulation.
    pub startup_ms: f64,
}

/// What a run leaves once its hardware has finished.
#[derive(Default)]
pub struct Finished {
    /// Every event recorded, merged by time, when the run kept the structured trace.
    pub records: Option<Vec<Record>>,
    /// The machines whose records could not be read (the others' are in `records`).
    pub unreadable: Vec<UnreadableMachine>,
    /// The text of the event trace, if it was kept.
    pub trace_text: Option<String>,
}

/// A running system as a run sees it from start to end: the [`Hardware`] it plays on, what it
/// counted, where it is, and how it ends.
pub trait RunHardware: Hardware {
    /// What the machines counted so far, summed (remote modes ask every machine).
    fn totals(&mut self) -> Result<Counters, HardwareError>;

    /// The run's id, when its resources outside this process carry one.
    fn run_id(&self) -> Option<&str> {
        None
    }

    /// The host directory holding the machines' logs, if they are on this host.
    #[cfg(feature = "docker")]
    fn logs_dir(&self) -> Option<&Path> {
        None
    }

    /// Ends the run: the machines stop and everything the run created is removed (also after a
    /// failed run: it is how every run ends). With `observe`, the machines' structured traces
    /// are gathered, a lost machine's complete records kept and an unreadable one named.
    fn finish(self: Box<Self>, observe: bool) -> (Result<(), HardwareError>, Finished);
}

impl RunHardware for SimulatedHardware {
    fn totals(&mut self) -> Result<Counters, HardwareError> {
        Ok(self.stats())
    }

    fn finish(mut self: Box<Self>, observe: bool) -> (Result<(), HardwareError>, Finished) {
        let finished = Finished {
            records: observe.then(|| self.take_records()),
            unreadable: Vec::new(),
            trace_text: self.trace().text().map(str::to_owned),
        };
        (Ok(()), finished)
    }
}

/// Starts `spec` on `target`, with the node types of `registry`, and puts the fault plan on its
/// schedule. On a failure once something was created, it is removed before returning.
pub fn start(
    target: &Target,
    spec: &SystemSpec,
    registry: Arc<NodeRegistry>,
) -> Result<Started, HardwareError> {
    match target {
        Target::Simulated => {
            let config = SimulationConfig {
                machines: spec.machines,
                seed: spec.seed,
                network: spec.network.clone(),
                keep_trace_text: spec.keep_trace_text,
                reliable: spec.reliable,
            };
            let mut hardware = SimulatedHardware::new(config, registry)?;
            if let Some(max) = spec.max_events {
                hardware.limit_events(max);
            }
            if spec.observe {
                hardware.record_events(fault_windows(&spec.network));
            }
            Ok(Started {
                hardware: Box::new(hardware),
                not_applied: Vec::new(),
                startup_ms: 0.0,
            })
        }
        #[cfg(feature = "docker")]
        Target::Virtual(remote) => {
            let mut config = super::docker::VirtualConfig::new(
                spec.machines,
                spec.seed,
                remote.binary.clone(),
                remote.settings.clone(),
            );
            config.reliable = spec.reliable;
            config.drop = spec.network.drop.clone();
            config.duplicate = spec.network.duplicate.clone();
            config.stop_on_signals = remote.stop_on_signals;
            config.record = spec.observe;
            let begun = Instant::now();
            let hardware = super::docker::DockerHardware::start(&config)?;
            scheduled(Box::new(hardware), &spec.network, begun)
        }
        #[cfg(feature = "cloud")]
        Target::Cloud(remote) => {
            let mut config = super::cloud::CloudConfig::new(
                spec.machines,
                spec.seed,
                remote.binary.clone(),
                remote.settings.clone(),
            );
            config.reliable = spec.reliable;
            config.drop = spec.network.drop.clone();
            config.duplicate = spec.network.duplicate.clone();
            config.stop_on_signals = remote.stop_on_signals;
            config.record = spec.observe;
            let begun = Instant::now();
            let hardware = super::cloud::CloudHardware::start(&config)?;
            scheduled(Box::new(hardware), &spec.network, begun)
        }
    }
}

/// A remote system that has started, with `network`'s plan on its schedule (it is finished,
/// removing what it created, if the plan cannot be scheduled).
#[cfg(feature = "docker")]
fn scheduled(
    mut hardware: Box<dyn RunHardware>,
    network: &NetworkConfig,
    begun: Instant,
) -> Result<Started, HardwareError> {
    let startup_ms = begun.elapsed().as_secs_f64() * 1000.0;
    match schedule_plan(&mut *hardware, network) {
        Ok(not_applied) => Ok(Started {
            hardware,
            not_applied,
            startup_ms,
        }),
        Err(error) => {
            let _ = hardware.finish(false);
            Err(error)
        }
    }
}
