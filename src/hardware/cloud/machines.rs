//! The runner's view of a cloud run's machines: a control connection to each, over TLS pinned
//! to the run's authority (through a loopback forwarder, so the plain control client is reused),
//! every call bounded by a timeout, and a diagnosis from EC2 when a machine stops answering.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::aws::{api, Clients};
use crate::counters::Counters;
use crate::hardware::HardwareError;
use crate::machine::protocol::{ControlRequest, ControlResponse};
use crate::machine::{tls, ControlClient, ControlError};
use crate::manager::NodeState;
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};

/// How long an ordinary control call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a health check may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a shutdown request may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// One machine as the runner knows it.
pub struct Slot {
    /// Its instance.
    pub instance: String,
    /// Its private address.
    pub private_ip: Ipv4Addr,
    /// The address the runner reaches its control port at.
    pub remote: SocketAddr,
    local: SocketAddr,
    client: Option<ControlClient>,
}

/// Control connections to every machine of a run.
pub struct Machines {
    clients: Clients,
    token: String,
    slots: Vec<Slot>,
    forwarders: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Machines {
    fn drop(&mut self) {
        for forwarder in &self.forwarders {
            forwarder.abort();
        }
    }
}

impl Machines {
    /// Starts a forwarder per machine and waits until every machine answers a status request.
    pub async fn connect(
        clients: Clients,
        connector: TlsConnector,
        machines: Vec<(String, Ipv4Addr, SocketAddr)>,
        token: String,
        timeout: Duration,
    ) -> Result<Self, HardwareError> {
        let mut slots = Vec::new();
        let mut forwarders = Vec::new();
        for (instance, private_ip, remote) in machines {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .map_err(|e| HardwareError::Infrastructure(format!("cannot listen: {e}")))?;
            let local = listener
                .local_addr()
                .map_err(|e| HardwareError::Infrastructure(format!("cannot listen: {e}")))?;
            forwarders.push(tokio::spawn(tls::forward_over_tls(
                listener,
                connector.clone(),
                remote,
            )));
            slots.push(Slot {
                instance,
                private_ip,
                remote,
                local,
                client: None,
            });
        }
        let mut machines = Machines {
            clients,
            token,
            slots,
            forwarders,
        };
        let deadline = Instant::now() + timeout;
        let waits = machines.slots.iter().enumerate().map(|(index, slot)| {
            let machine = MachineId(u32::try_from(index).unwrap_or(u32::MAX));
            wait_ready(&machines.clients, machine, slot, &machines.token, deadline)
        });
        let ready = futures_util::future::join_all(waits).await;
        for (slot, client) in machines.slots.iter_mut().zip(ready) {
            slot.client = Some(client?);
        }
        Ok(machines)
    }

    /// How many machines.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Sends one request to one machine; a machine that does not answer is diagnosed as lost.
    async fn call(
        &mut self,
        machine: MachineId,
        request: ControlRequest,
        timeout: Duration,
    ) -> Result<ControlResponse, HardwareError> {
        let machines = self.slots.len();
        let slot = self
            .slots
            .get_mut(machine.index())
            .ok_or(HardwareError::NoSuchMachine { machine, machines })?;
        call_slot(&self.clients, &self.token, machine, slot, request, timeout).await
    }

    /// Starts a node on `machine`.
    pub async fn start_node(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError> {
        let request = ControlRequest::StartNode {
            config: config.clone(),
        };
        match self.call(machine, request, CALL_TIMEOUT).await? {
            ControlResponse::Started { handle } => Ok(handle),
            ControlResponse::Failed { reason } => Err(HardwareError::RemoteNodeFailed {
                machine,
                failure: reason,
            }),
            other => Err(unexpected(machine, &other)),
        }
    }

    /// Delivers `message` to `to` from outside the system.
    pub async fn deliver(&mut self, to: NodeHandle, message: Message) -> Result<(), HardwareError> {
        let request = ControlRequest::Deliver { to: to.id, message };
        match self.call(to.machine, request, CALL_TIMEOUT).await? {
            ControlResponse::Delivered { .. } => Ok(()),
            other => Err(unexpected(to.machine, &other)),
        }
    }

    /// Every node's state, machine by machine.
    pub async fn node_states(&mut self) -> Result<Vec<NodeState>, HardwareError> {
        let mut states = Vec::new();
        for index in 0..self.slots.len() {
            let machine = MachineId(u32::try_from(index).unwrap_or(u32::MAX));
            match self
                .call(machine, ControlRequest::NodeStates, CALL_TIMEOUT)
                .await?
            {
                ControlResponse::NodeStates { nodes } => {
                    states.extend(nodes);
                }
                other => return Err(unexpected(machine, &other)),
            }
        }
        Ok(states)
    }

    /// Every machine's counters, one machine after the other.
    async fn statuses(&mut self) -> Result<Vec<(Counters, Vec<String>)>, HardwareError> {
        let mut all = Vec::with_capacity(self.slots.len());
        for index in 0..self.slots.len() {
            let machine = MachineId(u32::try_from(index).unwrap_or(u32::MAX));
            match self
                .call(machine, ControlRequest::Status, STATUS_TIMEOUT)
                .await?
            {
                ControlResponse::Status { counters, failures } => all.push((counters, failures)),
                other => return Err(unexpected(machine, &other)),
            }
        }
        Ok(all)
    }

    /// Checks that every machine is alive and no node has failed.
    pub async fn check(&mut self) -> Result<(), HardwareError> {
        for (index, (_, failures)) in self.statuses().await?.into_iter().enumerate() {
            if let Some(failure) = failures.into_iter().next() {
                return Err(HardwareError::RemoteNodeFailed {
                    machine: MachineId(u32::try_from(index).unwrap_or(u32::MAX)),
                    failure,
                });
            }
        }
        Ok(())
    }

    /// The machines' counters, summed.
    pub async fn stats(&mut self) -> Result<Counters, HardwareError> {
        Ok(self
            .statuses()
            .await?
            .into_iter()
            .map(|(counters, _)| counters)
            .sum())
    }

    /// Asks every machine to stop, without waiting long for any.
    pub async fn shutdown(&mut self) {
        let stops = self.slots.iter_mut().map(|slot| async move {
            if let Some(client) = slot.client.as_mut() {
                let _ = client
                    .call(ControlRequest::Shutdown, SHUTDOWN_TIMEOUT)
                    .await;
            }
            slot.client = None;
        });
        futures_util::future::join_all(stops).await;
    }
}

async fn call_slot(
    clients: &Clients,
    token: &str,
    machine: MachineId,
    slot: &mut Slot,
    request: ControlRequest,
    timeout: Duration,
) -> Result<ControlResponse, HardwareError> {
    let client = match slot.client.as_mut() {
        Some(client) => client,
        None => match ControlClient::connect(slot.local, token, timeout, timeout).await {
            Ok(client) => slot.client.insert(client),
            Err(error) => return Err(diagnose(clients, machine, slot, &error).await),
        },
    };
    match client.call(request, timeout).await {
        Ok(response) => Ok(response),
        Err(error) => {
            slot.client = None;
            Err(diagnose(clients, machine, slot, &error).await)
        }
    }
}

/// Connects to one machine and waits for a status answer, retrying until `deadline`; an
/// instance that stops meanwhile is reported at once.
async fn wait_ready(
    clients: &Clients,
    machine: MachineId,
    slot: &Slot,
    token: &str,
    deadline: Instant,
) -> Result<ControlClient, HardwareError> {
    let mut attempt = 0u32;
    loop {
        let error = match ControlClient::connect(
            slot.local,
            token,
            Duration::from_secs(2),
            Duration::from_secs(5),
        )
        .await
        {
            Ok(mut client) => match client.call(ControlRequest::Status, STATUS_TIMEOUT).await {
                Ok(_) => return Ok(client),
                Err(error) => error,
            },
            Err(error) => error,
        };
        attempt += 1;
        if attempt.is_multiple_of(20) {
            if let Some(reason) = gone(clients, slot).await {
                return Err(HardwareError::MachineLost { machine, reason });
            }
        }
        if Instant::now() >= deadline {
            return Err(HardwareError::MachineLost {
                machine,
                reason: format!(
                    "instance {} did not answer on {} in time (last error: {error})",
                    slot.instance, slot.remote
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Why a machine stopped answering, naming its instance.
async fn diagnose(
    clients: &Clients,
    machine: MachineId,
    slot: &Slot,
    error: &ControlError,
) -> HardwareError {
    let reason = match gone(clients, slot).await {
        Some(reason) => reason,
        None => format!(
            "instance {} ({}) is running but its control port failed: {error}",
            slot.instance, slot.private_ip
        ),
    };
    HardwareError::MachineLost { machine, reason }
}

/// If the instance is no longer running: what EC2 says became of it.
async fn gone(clients: &Clients, slot: &Slot) -> Option<String> {
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

fn unexpected(machine: MachineId, response: &ControlResponse) -> HardwareError {
    HardwareError::Infrastructure(format!(
        "machine {machine} gave an unexpected answer: {response:?}"
    ))
}
