//! Instances as the machines of a run: a loopback forwarder per machine that carries the control
//! connection over TLS pinned to the run's authority (so the plain control client is reused), how
//! a message names an instance, and what EC2 says became of one that stopped answering. The
//! control connections themselves are [`crate::hardware::remote::machines`].

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use tokio::net::TcpListener;
use tokio_rustls::TlsConnector;

use super::aws::{api, Clients};
use crate::faults::{Fault, FaultKind, RuleKind};
use crate::hardware::remote::machines::{self, Backend, Timeouts};
use crate::hardware::remote::tls;
use crate::hardware::{HardwareError, Mode};
use crate::messages::MachineId;

/// Control connections to every machine of a cloud run.
pub(crate) type Machines = machines::Machines<Instances>;

/// One machine as the runner knows it.
pub(crate) struct Instance {
    /// Its instance.
    pub instance: String,
    /// Its private address.
    pub private_ip: Ipv4Addr,
    /// The address the runner reaches its control port at.
    pub remote: SocketAddr,
}

/// A run's instances, machine `i` in `instances[i]`, and the forwarders to them.
pub struct Instances {
    clients: Clients,
    instances: Vec<Instance>,
    forwarders: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Instances {
    fn drop(&mut self) {
        for forwarder in &self.forwarders {
            forwarder.abort();
        }
    }
}

/// Starts a forwarder per machine (instance, private address, control address) and waits until
/// every machine answers a status request.
pub(crate) async fn connect(
    clients: Clients,
    connector: TlsConnector,
    machines: Vec<(String, Ipv4Addr, SocketAddr)>,
    token: String,
    seed: u64,
    timeout: Duration,
) -> Result<Machines, HardwareError> {
    let mut instances = Instances {
        clients,
        instances: Vec::new(),
        forwarders: Vec::new(),
    };
    let mut locals = Vec::new();
    for (instance, private_ip, remote) in machines {
        let cannot_listen = |source| HardwareError::Io {
            action: "listen".into(),
            source,
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(cannot_listen)?;
        let local = listener.local_addr().map_err(cannot_listen)?;
        instances
            .forwarders
            .push(tokio::spawn(tls::forward_over_tls(
                listener,
                connector.clone(),
                remote,
            )));
        instances.instances.push(Instance {
            instance,
            private_ip,
            remote,
        });
        locals.push(local);
    }
    Machines::connect(instances, locals, token, seed, timeout).await
}

impl Instances {
    fn get(&self, machine: MachineId) -> Option<&Instance> {
        self.instances.get(machine.index())
    }
}

impl Backend for Instances {
    const TIMEOUTS: Timeouts = Timeouts {
        call: Duration::from_secs(20),
        status: Duration::from_secs(5),
        shutdown: Duration::from_secs(2),
        ping: Duration::from_secs(60),
        ready_connect: Duration::from_secs(2),
        ready_answer: Duration::from_secs(5),
        ready_diagnose_every: 20,
        ready_pause: Duration::from_millis(250),
    };

    fn describe(&self, machine: MachineId) -> String {
        match self.get(machine) {
            Some(slot) => format!("instance {} ({})", slot.instance, slot.private_ip),
            None => format!("machine {machine}"),
        }
    }

    fn shown_addr(&self, machine: MachineId) -> Option<SocketAddr> {
        self.get(machine).map(|slot| slot.remote)
    }

    async fn gone(&self, machine: MachineId) -> Option<String> {
        gone(&self.clients, self.get(machine)?).await
    }

    const MODE: Mode = Mode::Cloud;

    /// The link verbs (partitions, holds, drops and duplicates), which every machine applies to
    /// what it sends; not yet pauses, crashes or reordering.
    fn applies(fault: &Fault) -> bool {
        matches!(
            fault,
            Fault::Partition { .. }
                | Fault::Repair { .. }
                | Fault::Hold { .. }
                | Fault::Release { .. }
                | Fault::Rule {
                    kind: RuleKind::Drop | RuleKind::Duplicate,
                    ..
                }
        )
    }

    async fn pause(&self, _machine: MachineId) -> Result<(), HardwareError> {
        Err(not_applied(FaultKind::Pause))
    }

    async fn unpause(&self, _machine: MachineId) -> Result<(), HardwareError> {
        Err(not_applied(FaultKind::Pause))
    }

    async fn kill(&self, _machine: MachineId) -> Result<(), HardwareError> {
        Err(not_applied(FaultKind::Crash))
    }

    async fn start(&self, _machine: MachineId) -> Result<(), HardwareError> {
        Err(not_applied(FaultKind::Crash))
    }
}

/// Cloud mode does not pause, kill or restart instances yet.
fn not_applied(kind: FaultKind) -> HardwareError {
    HardwareError::FaultNotApplied {
        kind,
        mode: Mode::Cloud,
    }
}

/// If the instance is no longer running: what EC2 says became of it.
async fn gone(clients: &Clients, slot: &Instance) -> Option<String> {
    let described = clients
        .ec2
        .describe_instances()
        .instance_ids(&slot.instance)
        .send()
        .await
        .map_err(api("DescribeInstances"));
    let described = match described {
        Ok(described) => described,
        Err(error) if error.is_gone() => {
            return Some(format!("instance {} is gone", slot.instance))
        }
        Err(_) => return None,
    };
    let instance = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()?;
    let state = instance.state().and_then(|s| s.name())?;
    if matches!(
        state,
        InstanceStateName::Running | InstanceStateName::Pending
    ) {
        return None;
    }
    let reason = instance
        .state_reason()
        .and_then(|r| r.message())
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    Some(format!(
        "instance {} ({}) is {}{reason}",
        slot.instance,
        slot.private_ip,
        state.as_str()
    ))
}
