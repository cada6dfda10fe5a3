//! Instances as the machines of a run: a loopback forwarder per machine that carries the control
//! connection over TLS pinned to the run's authority (so the plain control client is reused), how
//! a message names an instance, what EC2 says became of one that stopped answering, and crashes
//! and restarts as a forced stop and a start of the instance. The control connections
//! themselves are [`crate::hardware::remote::machines`].

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;

use super::aws::{api, eventually, ApiError, Clients};
use super::CONTROL_PORT;
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
    /// The address the runner reaches its control port at, which its forwarder follows (on AWS
    /// a stopped and started instance has a new public address).
    pub remote: watch::Sender<SocketAddr>,
}

/// How long an instance may take to reach `stopped` or `running` (EC2 takes seconds to minutes).
const STATE_LIMIT: Duration = Duration::from_secs(600);
/// How long a port may keep accepting after its instance stopped (with an emulator: until the
/// realizer has taken its container down), or keep refusing after it runs again.
const PORT_LIMIT: Duration = Duration::from_secs(120);
/// How long one TLS handshake with a control port may take while waiting on it: on the
/// emulator's local network, and across the internet to an instance.
const PORT_ATTEMPT: (Duration, Duration) = (Duration::from_millis(300), Duration::from_secs(3));

/// A run's instances, machine `i` in `instances[i]`, and the forwarders to them.
pub struct Instances {
    clients: Clients,
    /// Whether the instances are an emulator's (the runner reaches their private addresses).
    emulated: bool,
    /// TLS to the machines, pinned to the run's authority.
    connector: TlsConnector,
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
    emulated: bool,
    connector: TlsConnector,
    machines: Vec<(String, Ipv4Addr, SocketAddr)>,
    token: String,
    seed: u64,
    timeout: Duration,
) -> Result<Machines, HardwareError> {
    let mut instances = Instances {
        clients,
        emulated,
        connector: connector.clone(),
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
        let (remote, follows) = watch::channel(remote);
        instances
            .forwarders
            .push(tokio::spawn(tls::forward_over_tls_to(
                listener,
                connector.clone(),
                follows,
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

    fn known(&self, machine: MachineId) -> Result<&Instance, HardwareError> {
        self.get(machine).ok_or(HardwareError::NoSuchMachine {
            machine,
            machines: self.instances.len(),
        })
    }

    /// Waits until machine `machine`'s instance is `wanted`, and returns it as EC2 describes it
    /// then; an instance that terminates meanwhile is a lost machine.
    async fn wait_for(
        &self,
        machine: MachineId,
        slot: &Instance,
        wanted: InstanceStateName,
    ) -> Result<aws_sdk_ec2::types::Instance, HardwareError> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let instance = eventually(|| describe(&self.clients, &slot.instance)).await?;
            let state = instance
                .as_ref()
                .and_then(|i| i.state())
                .and_then(|s| s.name());
            match (&instance, state) {
                (Some(instance), Some(state)) if *state == wanted => return Ok(instance.clone()),
                (_, Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)) => {
                    return Err(HardwareError::MachineLost {
                        machine,
                        reason: format!(
                            "instance {} ({}) terminated while the runner waited for it to be {}",
                            slot.instance,
                            slot.private_ip,
                            wanted.as_str()
                        ),
                    })
                }
                _ => {}
            }
            if started.elapsed() > STATE_LIMIT {
                return Err(HardwareError::Infrastructure(format!(
                    "instance {} ({}) was not {} within {} s",
                    slot.instance,
                    slot.private_ip,
                    wanted.as_str(),
                    STATE_LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Waits until machine `machine`'s control port completes a TLS handshake (`accepting`) or
    /// no longer does, for at most [`PORT_LIMIT`].
    async fn wait_for_port(
        &self,
        machine: MachineId,
        slot: &Instance,
        accepting: bool,
    ) -> Result<(), HardwareError> {
        let started = tokio::time::Instant::now();
        let attempt = if self.emulated {
            PORT_ATTEMPT.0
        } else {
            PORT_ATTEMPT.1
        };
        loop {
            let addr = *slot.remote.borrow();
            let accepts = matches!(
                tokio::time::timeout(attempt, tls::connect(&self.connector, addr)).await,
                Ok(Ok(_))
            );
            if accepts == accepting {
                return Ok(());
            }
            if started.elapsed() > PORT_LIMIT {
                let what = if accepting {
                    "runs but its control port does not accept connections"
                } else {
                    "stopped but its control port still accepts connections"
                };
                return Err(HardwareError::MachineLost {
                    machine,
                    reason: format!(
                        "instance {} ({}) {what} after {} s ({addr})",
                        slot.instance,
                        slot.private_ip,
                        PORT_LIMIT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
        self.get(machine).map(|slot| *slot.remote.borrow())
    }

    async fn gone(&self, machine: MachineId) -> Option<String> {
        gone(&self.clients, self.get(machine)?).await
    }

    const MODE: Mode = Mode::Cloud;

    /// The link verbs (partitions, holds, drops and duplicates), which every machine applies to
    /// what it sends, and crashes and restarts (a forced stop and a start of the instance); not
    /// pauses (EC2 cannot freeze an instance) or reordering.
    fn applies(fault: &Fault) -> bool {
        matches!(
            fault,
            Fault::Partition { .. }
                | Fault::Repair { .. }
                | Fault::Hold { .. }
                | Fault::Release { .. }
                | Fault::Crash { .. }
                | Fault::Restart { .. }
                | Fault::Rule {
                    kind: RuleKind::Drop | RuleKind::Duplicate,
                    ..
                }
        )
    }

    /// Not applied: EC2 has no way to freeze an instance with its memory (hibernation needs a
    /// prepared instance and takes minutes).
    async fn pause(&self, _machine: MachineId) -> Result<(), HardwareError> {
        Err(pause_not_applied())
    }

    /// Not applied, as [`Instances::pause`].
    async fn unpause(&self, _machine: MachineId) -> Result<(), HardwareError> {
        Err(pause_not_applied())
    }

    /// `StopInstances` with `Force`: the power is pulled, without a clean shutdown; the instance
    /// keeps its private address and its EBS root volume, which holds the machine's disk.
    /// Returns once EC2 says `stopped` and, with an emulator (whose stop takes no time), once the
    /// machine's control port no longer accepts connections (the realizer killed its container).
    async fn kill(&self, machine: MachineId) -> Result<(), HardwareError> {
        let slot = self.known(machine)?;
        eventually(|| async {
            self.clients
                .ec2
                .stop_instances()
                .instance_ids(&slot.instance)
                .force(true)
                .send()
                .await
                .map_err(api("StopInstances"))
        })
        .await?;
        self.wait_for(machine, slot, InstanceStateName::Stopped)
            .await?;
        if self.emulated {
            self.wait_for_port(machine, slot, false).await?;
        }
        Ok(())
    }

    /// `StartInstances` (tried again while the instance is still stopping), then waits until it
    /// is `running` and its control port accepts connections: the bootstrap's per-boot script
    /// runs the machine again on its disk, at the same private address. On AWS the instance has
    /// a new public address, which the runner's forwarder follows from then on.
    async fn start(&self, machine: MachineId) -> Result<(), HardwareError> {
        let slot = self.known(machine)?;
        eventually(|| async {
            self.clients
                .ec2
                .start_instances()
                .instance_ids(&slot.instance)
                .send()
                .await
                .map_err(api("StartInstances"))
        })
        .await?;
        let running = self
            .wait_for(machine, slot, InstanceStateName::Running)
            .await?;
        if !self.emulated {
            let public = running
                .public_ip_address()
                .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
                .ok_or_else(|| HardwareError::MachineLost {
                    machine,
                    reason: format!(
                        "instance {} ({}) runs again without a public address",
                        slot.instance, slot.private_ip
                    ),
                })?;
            slot.remote
                .send_replace(SocketAddr::from((public, CONTROL_PORT)));
        }
        self.wait_for_port(machine, slot, true).await
    }
}

/// Cloud mode does not pause instances.
fn pause_not_applied() -> HardwareError {
    HardwareError::FaultNotApplied {
        kind: FaultKind::Pause,
        mode: Mode::Cloud,
    }
}

/// What EC2 says of instance `id` (nothing if it lists none).
async fn describe(
    clients: &Clients,
    id: &str,
) -> Result<Option<aws_sdk_ec2::types::Instance>, ApiError> {
    let described = clients
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(api("DescribeInstances"))?;
    Ok(described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned())
}

/// If the instance is no longer running: what EC2 says became of it.
async fn gone(clients: &Clients, slot: &Instance) -> Option<String> {
    let instance = match describe(clients, &slot.instance).await {
        Ok(instance) => instance?,
        Err(error) if error.is_gone() => {
            return Some(format!("instance {} is gone", slot.instance))
        }
        Err(_) => return None,
    };
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
