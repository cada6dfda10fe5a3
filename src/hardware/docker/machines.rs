//! The host's view of a run's machines: one control connection each, every call bounded by a
//! timeout, and a diagnosis from Docker when a machine stops answering.

use std::net::SocketAddr;
use std::time::Duration;

use bollard::query_parameters::{KillContainerOptions, LogsOptions};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::counters::Counters;
use crate::hardware::HardwareError;
use crate::machine::protocol::{ControlRequest, ControlResponse};
use crate::machine::{ControlClient, ControlError};
use crate::manager::NodeState;
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};

/// How long an ordinary control call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a health check may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a shutdown request may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a peer round-trip measurement may take.
const PING_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of a dead container's output quoted in the error.
const LOG_TAIL: &str = "5";

struct Slot {
    container: String,
    addr: SocketAddr,
    client: Option<ControlClient>,
}

/// Control connections to every machine of a run.
pub struct Machines {
    docker: Docker,
    token: String,
    slots: Vec<Slot>,
}

impl Machines {
    /// Waits until every machine (container name, control address) answers a status request.
    pub async fn connect(
        docker: Docker,
        controls: Vec<(String, SocketAddr)>,
        token: String,
        timeout: Duration,
    ) -> Result<Self, HardwareError> {
        let deadline = Instant::now() + timeout;
        let waits = controls
            .iter()
            .enumerate()
            .map(|(index, (container, addr))| {
                let machine = MachineId(u32::try_from(index).unwrap_or(u32::MAX));
                wait_ready(&docker, machine, container, *addr, &token, deadline)
            });
        let mut slots = Vec::with_capacity(controls.len());
        for ((container, addr), client) in controls
            .iter()
            .zip(futures_util::future::join_all(waits).await)
        {
            slots.push(Slot {
                container: container.clone(),
                addr: *addr,
                client: Some(client?),
            });
        }
        Ok(Machines {
            docker,
            token,
            slots,
        })
    }

    /// How many machines.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The run's token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Machine `machine`'s control address.
    pub fn control_addr(&self, machine: MachineId) -> Result<SocketAddr, HardwareError> {
        Ok(self.slot(machine)?.addr)
    }

    fn slot(&self, machine: MachineId) -> Result<&Slot, HardwareError> {
        self.slots
            .get(machine.index())
            .ok_or(HardwareError::NoSuchMachine {
                machine,
                machines: self.slots.len(),
            })
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
        call_slot(&self.docker, &self.token, machine, slot, request, timeout).await
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

    /// Every machine's counters, concurrently.
    async fn statuses(&mut self) -> Result<Vec<(Counters, Vec<String>)>, HardwareError> {
        let docker = &self.docker;
        let token = &self.token;
        let calls = self.slots.iter_mut().enumerate().map(|(index, slot)| {
            let machine = MachineId(u32::try_from(index).unwrap_or(u32::MAX));
            async move {
                match call_slot(
                    docker,
                    token,
                    machine,
                    slot,
                    ControlRequest::Status,
                    STATUS_TIMEOUT,
                )
                .await?
                {
                    ControlResponse::Status { counters, failures } => Ok((counters, failures)),
                    other => Err(unexpected(machine, &other)),
                }
            }
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect()
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

    /// Measures round trips from one machine to another.
    pub async fn round_trips(
        &mut self,
        from: MachineId,
        to: MachineId,
        count: u32,
    ) -> Result<Vec<Duration>, HardwareError> {
        self.slot(to)?;
        match self
            .call(from, ControlRequest::PingPeer { to, count }, PING_TIMEOUT)
            .await?
        {
            ControlResponse::RoundTrips { micros } => {
                Ok(micros.into_iter().map(Duration::from_micros).collect())
            }
            ControlResponse::Failed { reason } => Err(HardwareError::Infrastructure(reason)),
            other => Err(unexpected(from, &other)),
        }
    }

    /// Kills one machine's container.
    pub async fn kill(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        let container = self.slot(machine)?.container.clone();
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        self.docker
            .kill_container(&container, Some(options))
            .await
            .map_err(super::engine::failed("kill a machine container"))
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
    docker: &Docker,
    token: &str,
    machine: MachineId,
    slot: &mut Slot,
    request: ControlRequest,
    timeout: Duration,
) -> Result<ControlResponse, HardwareError> {
    let client = match slot.client.as_mut() {
        Some(client) => client,
        None => {
            let connected = ControlClient::connect(slot.addr, token, timeout, timeout).await;
            match connected {
                Ok(client) => slot.client.insert(client),
                Err(error) => return Err(diagnose(docker, machine, &slot.container, &error).await),
            }
        }
    };
    match client.call(request, timeout).await {
        Ok(response) => Ok(response),
        Err(error) => {
            slot.client = None;
            Err(diagnose(docker, machine, &slot.container, &error).await)
        }
    }
}

/// Connects to one machine's control port and waits for a status answer, retrying until
/// `deadline`; a container that exits meanwhile is reported at once.
async fn wait_ready(
    docker: &Docker,
    machine: MachineId,
    container: &str,
    addr: SocketAddr,
    token: &str,
    deadline: Instant,
) -> Result<ControlClient, HardwareError> {
    let mut attempt = 0u32;
    loop {
        // Connecting asks for the machine's status: a client that connects is ready.
        let connecting =
            ControlClient::connect(addr, token, Duration::from_secs(1), STATUS_TIMEOUT).await;
        let error = match connecting {
            Ok(client) => return Ok(client),
            Err(error) => error,
        };
        attempt += 1;
        if attempt.is_multiple_of(10) || Instant::now() >= deadline {
            if let Some(reason) = dead(docker, container).await {
                return Err(HardwareError::MachineLost { machine, reason });
            }
        }
        if Instant::now() >= deadline {
            return Err(HardwareError::MachineLost {
                machine,
                reason: format!(
                    "container {container} did not answer on {addr} in time (last error: {error})"
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Why a machine stopped answering: its container's state if Docker says it is gone.
async fn diagnose(
    docker: &Docker,
    machine: MachineId,
    container: &str,
    error: &ControlError,
) -> HardwareError {
    let reason = match dead(docker, container).await {
        Some(reason) => reason,
        None => format!("container {container} is running but its control port failed: {error}"),
    };
    HardwareError::MachineLost { machine, reason }
}

/// If the container is not running: what became of it, with the last lines it printed.
async fn dead(docker: &Docker, container: &str) -> Option<String> {
    let state = match docker
        .inspect_container(
            container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        Ok(inspected) => inspected.state.unwrap_or_default(),
        Err(error) => return Some(format!("container {container} is gone ({error})")),
    };
    if state.running == Some(true) {
        return None;
    }
    let status = state
        .status
        .map_or_else(|| "stopped".to_owned(), |s| s.to_string());
    let code = state.exit_code.unwrap_or_default();
    let killed = if code == 137 {
        ", killed by SIGKILL"
    } else {
        ""
    };
    let oom = if state.oom_killed == Some(true) {
        ", out of memory"
    } else {
        ""
    };
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: LOG_TAIL.into(),
        ..Default::default()
    };
    let mut tail = String::new();
    let mut logs = docker.logs(container, Some(options));
    while let Some(Ok(line)) = logs.next().await {
        tail.push_str(&line.to_string());
    }
    let tail = tail.trim();
    let tail = if tail.is_empty() {
        String::new()
    } else {
        format!("; last output: {}", tail.replace('\n', " | "))
    };
    Some(format!(
        "container {container} is {status} (exit code {code}{killed}{oom}){tail}"
    ))
}

fn unexpected(machine: MachineId, response: &ControlResponse) -> HardwareError {
    HardwareError::Infrastructure(format!(
        "machine {machine} gave an unexpected answer: {response:?}"
    ))
}
