//! Containers as the machines of a run: how a message names one, what Docker says became of
//! one that stopped answering, and killing one. The control connections themselves are
//! [`crate::hardware::remote::machines`].

use std::net::SocketAddr;
use std::time::Duration;

use bollard::query_parameters::{KillContainerOptions, LogsOptions};
use bollard::Docker;
use futures_util::StreamExt;

use crate::faults::{Fault, RuleKind};
use crate::hardware::remote::machines::{Backend, Timeouts};
use crate::hardware::{HardwareError, Mode};
use crate::messages::MachineId;

/// Lines of a dead container's output quoted in the error.
const LOG_TAIL: &str = "5";

/// A run's containers, machine `i` in container `names[i]`.
pub struct Containers {
    pub(crate) docker: Docker,
    pub(crate) names: Vec<String>,
}

impl Containers {
    fn name(&self, machine: MachineId) -> &str {
        self.names.get(machine.index()).map_or("?", String::as_str)
    }

    fn known(&self, machine: MachineId) -> Result<&str, HardwareError> {
        self.names
            .get(machine.index())
            .map(String::as_str)
            .ok_or(HardwareError::NoSuchMachine {
                machine,
                machines: self.names.len(),
            })
    }
}

impl Backend for Containers {
    const TIMEOUTS: Timeouts = Timeouts {
        call: Duration::from_secs(10),
        status: Duration::from_secs(3),
        shutdown: Duration::from_secs(2),
        ping: Duration::from_secs(60),
        ready_connect: Duration::from_secs(1),
        ready_answer: Duration::from_secs(3),
        ready_diagnose_every: 10,
        ready_pause: Duration::from_millis(50),
    };

    fn describe(&self, machine: MachineId) -> String {
        format!("container {}", self.name(machine))
    }

    fn shown_addr(&self, _machine: MachineId) -> Option<SocketAddr> {
        None
    }

    async fn gone(&self, machine: MachineId) -> Option<String> {
        dead(&self.docker, self.name(machine)).await
    }

    const MODE: Mode = Mode::Virtual;

    /// Every verb but the reorder rule: the real network orders what it carries.
    fn applies(fault: &Fault) -> bool {
        !matches!(
            fault,
            Fault::Rule {
                kind: RuleKind::Reorder,
                ..
            }
        )
    }

    /// `docker pause`: the process keeps its memory and runs nothing, as in a long stall; what
    /// is sent to it waits in its sockets.
    async fn pause(&self, machine: MachineId) -> Result<(), HardwareError> {
        self.docker
            .pause_container(self.known(machine)?)
            .await
            .map_err(super::engine::failed("pause a machine container"))
    }

    /// `docker unpause`.
    async fn unpause(&self, machine: MachineId) -> Result<(), HardwareError> {
        self.docker
            .unpause_container(self.known(machine)?)
            .await
            .map_err(super::engine::failed("unpause a machine container"))
    }

    /// `docker kill` (SIGKILL).
    async fn kill(&self, machine: MachineId) -> Result<(), HardwareError> {
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        self.docker
            .kill_container(self.known(machine)?, Some(options))
            .await
            .map_err(super::engine::failed("kill a machine container"))
    }

    /// `docker start` of the killed container: the same address on the run's network, the
    /// same log directory, which holds the machine's disk.
    async fn start(&self, machine: MachineId) -> Result<(), HardwareError> {
        self.docker
            .start_container(
                self.known(machine)?,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(super::engine::failed("start a machine container again"))
    }
}

/// If the container is not running: what became of it, with the last lines it printed; or that
/// it is paused (it runs nothing, so its control port cannot answer).
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
    if state.paused == Some(true) {
        return Some(format!(
            "container {container} is paused (`docker pause`): it keeps its memory but runs \
             nothing, so it cannot answer; `docker unpause {container}` lets it go on"
        ));
    }
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
