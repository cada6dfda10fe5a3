//! Hardware: creates machines, moves bytes between them and passes time — the only layer where
//! the modes differ. The scenario runner drives any of them through [`Hardware`].

pub(crate) mod carrier;
#[cfg(feature = "cloud")]
pub mod cloud;
#[cfg(feature = "docker")]
pub mod docker;
mod failure;
pub(crate) mod queue;
#[cfg(feature = "docker")]
pub mod remote;
pub mod simulated;
pub mod start;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::faults::{Fault, FaultKind};
use crate::manager::NodeState;
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};
use crate::node::NodeError;
use crate::time::{Micros, Millis};

pub use failure::FailureReport;
pub use queue::QueueFull;
pub use simulated::{LastEvent, SimulatedHardware};
#[cfg(feature = "docker")]
pub use start::Remote;
pub use start::{start, Finished, RunHardware, Started, SystemSpec, Target};

/// Which kind of hardware a system runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every machine in this process, virtual time, a seeded network.
    Simulated,
    /// Every machine a real process in its own Docker container on this host.
    Virtual,
    /// Every machine a provisioned cloud instance.
    Cloud,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "simulated" => Ok(Mode::Simulated),
            "virtual" => Ok(Mode::Virtual),
            "cloud" => Ok(Mode::Cloud),
            other => Err(format!(
                "`{other}` is not a mode; one of simulated, virtual, cloud"
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Simulated => "simulated",
            Mode::Virtual => "virtual",
            Mode::Cloud => "cloud",
        })
    }
}

/// What provides the machines of a remote mode, as named by a [`HardwareError::Backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The Docker Engine (virtual mode, and cloud mode's local realizer of emulated instances).
    Docker,
    /// An AWS API (cloud mode).
    Aws,
    /// The run's TLS material (cloud mode).
    Tls,
}

/// A signal that stopped a run before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl StopSignal {
    /// The exit status a process stopped by this signal reports: 128 plus the signal's number
    /// (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_status(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        })
    }
}

/// Why the hardware could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    /// A node raised an error, on any hardware; the report says which node, of what type, what
    /// kind of error, when, and (in the simulator) the message trace that led to it.
    #[error("{0}")]
    NodeFailed(Box<FailureReport>),
    /// A machine index beyond the system's machines.
    #[error("machine {machine} is out of range: the system has {machines} machines (0..={})", machines.saturating_sub(1))]
    NoSuchMachine {
        /// The index asked for.
        machine: MachineId,
        /// How many machines there are.
        machines: usize,
    },
    /// A node that is not on its machine was asked to do something.
    #[error("there is no node {node}")]
    NoSuchNode {
        /// The node.
        node: NodeHandle,
    },
    /// A machine that is down (crashed, not restarted) was asked to do something.
    #[error("machine {machine} is down")]
    MachineDown {
        /// The machine.
        machine: MachineId,
    },
    /// This mode cannot apply a kind of fault.
    #[error("{mode} mode cannot apply {kind:?} faults")]
    FaultNotApplied {
        /// The kind of fault.
        kind: FaultKind,
        /// The mode.
        mode: Mode,
    },
    /// This mode cannot do what was asked (e.g. send as a node from outside).
    #[error("{mode} mode cannot {what}")]
    Unsupported {
        /// What was asked.
        what: &'static str,
        /// The mode.
        mode: Mode,
    },
    /// A fault verb cannot be applied now.
    #[error("cannot {fault}: {reason}")]
    FaultRefused {
        /// The verb.
        fault: String,
        /// Why not.
        reason: String,
    },
    /// A machine stopped answering or died during the run.
    #[error("machine {machine} was lost: {reason}")]
    MachineLost {
        /// The machine.
        machine: MachineId,
        /// What was observed.
        reason: String,
    },
    /// A request to what provides a remote mode's machines failed — the Docker Engine, an AWS
    /// API, the run's TLS material — with that back-end's own error (which says what was being
    /// done) kept as the source.
    #[error("{source}")]
    Backend {
        /// Which back-end.
        backend: BackendKind,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Something on this host failed: a file or directory, a socket, the async runtime, the
    /// signal handlers.
    #[error("cannot {action}: {source}")]
    Io {
        /// What was being done, e.g. `create .tmp/dz-…` or `start a runtime`.
        action: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// What is sent to a node from outside the system could not be encoded.
    #[error("cannot encode what is sent from outside: {0}")]
    Outside(#[source] Box<NodeError>),
    /// Something could not be encoded as JSON.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What, e.g. `a machine config`.
        what: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The hardware's own infrastructure is in no state to go on, with no underlying error to
    /// keep: an unexpected answer, a resource left behind, a run stopped while it was created.
    #[error("{0}")]
    Infrastructure(String),
    /// The simulator's agenda is full.
    #[error("capacity limit: {0}")]
    QueueFull(#[from] QueueFull),
    /// The run reached the number of events it was allowed to process.
    #[error("capacity limit: {0}")]
    Capacity(String),
    /// The hardware cannot be reached at all (e.g. the Docker daemon is not running, AWS refuses
    /// the credentials); the message says how to fix it.
    #[error("{0}")]
    Unavailable(String),
    /// The process was told to stop (Ctrl-C or SIGTERM) before the run ended; what the run
    /// created has been or is being removed.
    #[error("the run was stopped by {0}")]
    Stopped(StopSignal),
    /// The network model or the fault plan is not valid.
    #[error(transparent)]
    Network(#[from] crate::faults::NetworkConfigError),
}

/// A running system of machines, as the scenario runner sees it. Times are milliseconds since the
/// system started: virtual in the simulator, real elsewhere.
pub trait Hardware {
    /// Which mode this is.
    fn mode(&self) -> Mode;

    /// How many machines the system has.
    fn machine_count(&self) -> usize;

    /// Milliseconds since the system started.
    fn now_ms(&self) -> u64;

    /// Starts a node from `config` on `machine`, now.
    fn spawn(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError>;

    /// Delivers `message` to node `to` from outside the system.
    fn send(&mut self, to: NodeHandle, message: Message) -> Result<(), HardwareError>;

    /// Delivers each message to its node from outside the system, in order, as if by one
    /// [`Hardware::send`] after another at this instant. Remote hardware hands each machine its
    /// share in one control request (one round trip, not one per message).
    fn send_all(&mut self, sends: Vec<(NodeHandle, Message)>) -> Result<(), HardwareError> {
        for (to, message) in sends {
            self.send(to, message)?;
        }
        Ok(())
    }

    /// Lets the system run until `at_ms` (does nothing if that time has passed).
    fn run_until(&mut self, at_ms: u64) -> Result<(), HardwareError>;

    /// The state of every node on every machine, machine by machine.
    fn node_states(&mut self) -> Result<Vec<NodeState>, HardwareError>;

    /// The state of every node on `machine`, in creation order.
    fn machine_states(&mut self, machine: MachineId) -> Result<Vec<NodeState>, HardwareError> {
        Ok(self
            .node_states()?
            .into_iter()
            .filter(|state| state.handle.machine == machine)
            .collect())
    }

    /// The state of one node, if it exists (and its machine is up).
    fn node_state(&mut self, node: NodeHandle) -> Result<Option<NodeState>, HardwareError> {
        Ok(self
            .machine_states(node.machine)?
            .into_iter()
            .find(|state| state.handle == node))
    }

    /// Microseconds since the system started.
    fn now_us(&self) -> Micros {
        Millis(self.now_ms()).to_micros_saturating()
    }

    /// Processes the next event if it is due at or before `limit_us`, and says whether there
    /// was one (the simulator goes one event at a time). Hardware on the real clock runs until
    /// `limit_us` and says `false`.
    fn step_until(&mut self, limit_us: Micros) -> Result<bool, HardwareError> {
        self.run_until(limit_us.to_millis().0)?;
        Ok(false)
    }

    /// When the next event is due, if the hardware knows (the simulator).
    fn next_event_us(&self) -> Option<Micros> {
        None
    }

    /// Moves time on to `at_us` once every event due by then was processed (the simulator).
    fn advance_to(&mut self, at_us: Micros) {
        let _ = at_us;
    }

    /// Describes every event from now on, for [`Hardware::last_event`] (the simulator).
    fn describe_events(&mut self) {}

    /// Whether the node states it gives, read machine by machine, make a consistent cut: no
    /// state shows a message its sender's state has not sent yet. True of the simulator, whose
    /// states are read between two events; not of machines on the real clock, read one after
    /// another while they run.
    fn states_are_a_cut(&self) -> bool {
        false
    }

    /// The event processed last, if events are described.
    fn last_event(&self) -> Option<&LastEvent> {
        None
    }

    /// Sends `message` to `to` as if node `from` had sent it, from `from`'s machine.
    fn send_from(
        &mut self,
        from: NodeHandle,
        to: NodeHandle,
        message: Message,
    ) -> Result<(), HardwareError> {
        let _ = (from, to, message);
        Err(HardwareError::Unsupported {
            what: "send as a node",
            mode: self.mode(),
        })
    }

    /// Applies a fault verb now.
    fn apply(&mut self, fault: &Fault) -> Result<(), HardwareError> {
        Err(HardwareError::FaultNotApplied {
            kind: fault.kind(),
            mode: self.mode(),
        })
    }

    /// Applies a fault verb at `at_us` (later than now), in its place among the events of that
    /// time (the simulator; elsewhere a test applies verbs as time passes).
    fn schedule(&mut self, at_us: Micros, fault: Fault) -> Result<(), HardwareError> {
        let _ = at_us;
        Err(HardwareError::FaultNotApplied {
            kind: fault.kind(),
            mode: self.mode(),
        })
    }

    /// What the runtime counted so far, over every machine, if the hardware can tell without
    /// asking its machines (the simulator); zero otherwise.
    fn counters(&self) -> Counters {
        Counters::default()
    }

    /// The hash of the event trace, if the hardware keeps one (the simulator).
    fn trace_hash(&self) -> Option<String> {
        None
    }

    /// The full text of the event trace, if the hardware keeps it.
    fn trace_text(&self) -> Option<&str> {
        None
    }

    /// The machines that are down now.
    fn down(&self) -> Vec<MachineId> {
        Vec::new()
    }
}

impl<H: Hardware + ?Sized> Hardware for &mut H {
    fn mode(&self) -> Mode {
        (**self).mode()
    }
    fn machine_count(&self) -> usize {
        (**self).machine_count()
    }
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    fn spawn(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError> {
        (**self).spawn(machine, config)
    }
    fn send(&mut self, to: NodeHandle, message: Message) -> Result<(), HardwareError> {
        (**self).send(to, message)
    }
    fn send_all(&mut self, sends: Vec<(NodeHandle, Message)>) -> Result<(), HardwareError> {
        (**self).send_all(sends)
    }
    fn run_until(&mut self, at_ms: u64) -> Result<(), HardwareError> {
        (**self).run_until(at_ms)
    }
    fn node_states(&mut self) -> Result<Vec<NodeState>, HardwareError> {
        (**self).node_states()
    }
    fn machine_states(&mut self, machine: MachineId) -> Result<Vec<NodeState>, HardwareError> {
        (**self).machine_states(machine)
    }
    fn node_state(&mut self, node: NodeHandle) -> Result<Option<NodeState>, HardwareError> {
        (**self).node_state(node)
    }
    fn now_us(&self) -> Micros {
        (**self).now_us()
    }
    fn step_until(&mut self, limit_us: Micros) -> Result<bool, HardwareError> {
        (**self).step_until(limit_us)
    }
    fn next_event_us(&self) -> Option<Micros> {
        (**self).next_event_us()
    }
    fn advance_to(&mut self, at_us: Micros) {
        (**self).advance_to(at_us);
    }
    fn describe_events(&mut self) {
        (**self).describe_events();
    }
    fn states_are_a_cut(&self) -> bool {
        (**self).states_are_a_cut()
    }
    fn last_event(&self) -> Option<&LastEvent> {
        (**self).last_event()
    }
    fn send_from(
        &mut self,
        from: NodeHandle,
        to: NodeHandle,
        message: Message,
    ) -> Result<(), HardwareError> {
        (**self).send_from(from, to, message)
    }
    fn apply(&mut self, fault: &Fault) -> Result<(), HardwareError> {
        (**self).apply(fault)
    }
    fn schedule(&mut self, at_us: Micros, fault: Fault) -> Result<(), HardwareError> {
        (**self).schedule(at_us, fault)
    }
    fn counters(&self) -> Counters {
        (**self).counters()
    }
    fn trace_hash(&self) -> Option<String> {
        (**self).trace_hash()
    }
    fn trace_text(&self) -> Option<&str> {
        (**self).trace_text()
    }
    fn down(&self) -> Vec<MachineId> {
        (**self).down()
    }
}

/// Puts a scenario's fault windows on `hardware`'s schedule; returns the kinds of fault `network`
/// asks for that the hardware cannot apply: the latency model and reordering outside the
/// simulator (a real network decides them), and whatever verbs it refuses (in order, each
/// once).
pub fn schedule_plan(
    hardware: &mut dyn Hardware,
    network: &crate::faults::NetworkConfig,
) -> Result<Vec<FaultKind>, HardwareError> {
    let mut not_applied: std::collections::BTreeSet<FaultKind> = network
        .kinds()
        .into_iter()
        .filter(|kind| {
            hardware.mode() != Mode::Simulated
                && matches!(kind, FaultKind::Latency | FaultKind::Reorder)
        })
        .collect();
    for timed in network.schedule().verbs() {
        match hardware.schedule(timed.at.to_micros_saturating(), timed.fault.clone()) {
            Ok(()) => {}
            Err(HardwareError::FaultNotApplied { kind, .. }) => {
                not_applied.insert(kind);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(not_applied.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_infrastructure_errors_keep_their_source_and_say_what_was_done() {
        let error = HardwareError::Io {
            action: "create .tmp/dz-1".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        };
        assert_eq!(error.to_string(), "cannot create .tmp/dz-1: denied");
        let source = std::error::Error::source(&error).expect("the io error is kept");
        assert_eq!(source.to_string(), "denied");

        let full = HardwareError::from(QueueFull);
        assert!(
            full.to_string().starts_with("capacity limit: more than"),
            "{full}"
        );
        assert!(std::error::Error::source(&full).is_some());
    }
}
