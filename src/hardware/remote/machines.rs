//! The runner's view of a run's machines, for every back-end whose machines are processes
//! elsewhere: one control connection each, every call bounded by a timeout, waiting until every
//! machine answers, their counters summed, and a diagnosis when a machine stops answering.
//!
//! What differs between back-ends — how to name a machine, and what became of one that stopped
//! answering (its container's state, its instance's state) — is behind [`Backend`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::client::{ControlClient, ControlError};
use super::protocol::{ControlRequest, ControlResponse};
use crate::counters::Counters;
use crate::faults::Fault;
use crate::hardware::{FailureReport, HardwareError, Mode};
use crate::manager::{NodeFailure, NodeState};
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle, NodeId};
use crate::observe::merge::host_now_us;
use crate::time::Micros;

/// How long each kind of control call may take, and how to wait for machines to come up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// An ordinary control call.
    pub call: Duration,
    /// A health check.
    pub status: Duration,
    /// A shutdown request.
    pub shutdown: Duration,
    /// A peer round-trip measurement.
    pub ping: Duration,
    /// Connecting, while waiting for a machine to come up.
    pub ready_connect: Duration,
    /// The status answer, while waiting for a machine to come up.
    pub ready_answer: Duration,
    /// While waiting, ask the back-end whether the machine is gone every this many attempts.
    pub ready_diagnose_every: u32,
    /// The pause between two attempts.
    pub ready_pause: Duration,
}

/// What one back-end knows about its machines that the control connections do not.
pub(crate) trait Backend {
    /// The timeouts of this back-end's control calls.
    const TIMEOUTS: Timeouts;

    /// How a message names machine `machine` (e.g. `container dz-…-m1`, `instance i-…
    /// (10.96.0.11)`).
    fn describe(&self, machine: MachineId) -> String;

    /// The address machine `machine`'s control port is known by, if it is not the one the
    /// runner connects to (a cloud runner connects through a local TLS forwarder).
    fn shown_addr(&self, machine: MachineId) -> Option<SocketAddr>;

    /// If machine `machine` no longer runs: what became of it.
    fn gone(&self, machine: MachineId) -> impl Future<Output = Option<String>>;

    /// The mode these machines are.
    const MODE: Mode;

    /// Whether this back-end applies `fault` (link verbs are every machine's own; pauses,
    /// crashes and restarts need the back-end).
    fn applies(fault: &Fault) -> bool;

    /// Freezes machine `machine`'s process, memory kept.
    fn pause(&self, machine: MachineId) -> impl Future<Output = Result<(), HardwareError>>;

    /// Lets machine `machine`'s frozen process go on.
    fn unpause(&self, machine: MachineId) -> impl Future<Output = Result<(), HardwareError>>;

    /// Kills machine `machine`'s process, as a power cut would.
    fn kill(&self, machine: MachineId) -> impl Future<Output = Result<(), HardwareError>>;

    /// Starts machine `machine`'s killed process again, at the same address, on the same disk.
    fn start(&self, machine: MachineId) -> impl Future<Output = Result<(), HardwareError>>;
}

struct Slot {
    /// Where the runner connects to the machine's control port.
    addr: SocketAddr,
    client: Option<ControlClient>,
    /// How many pauses the machine is in (its process is frozen while there is one, and the
    /// runner does not ask it anything).
    pauses: u32,
    /// What the machine missed while paused, handed to it in order when it goes on.
    missed: Vec<Missed>,
    /// The states of its nodes as it was paused (a frozen machine's nodes do not change).
    frozen_states: Vec<NodeState>,
    /// Whether the runner crashed it and has not restarted it (it is asked nothing, and has
    /// no nodes to show).
    down: bool,
}

/// What a paused machine is given when it goes on.
enum Missed {
    /// A link verb.
    Fault(Fault),
    /// A message from outside the system.
    Deliver(NodeHandle, Message),
}

/// Control connections to every machine of a run.
pub(crate) struct Machines<B> {
    backend: B,
    token: String,
    slots: Vec<Slot>,
    /// Every link verb applied so far, in order: a machine that boots again after a crash is
    /// told them all.
    link_verbs: Vec<Fault>,
    /// Fault verbs waiting for their time on the run's clock, by time (in the order given at
    /// one time).
    scheduled: Vec<(Micros, Fault)>,
    /// What the runner itself did to the machines: crashes and restarts.
    applied: Counters,
    /// The run's start: microseconds since the UNIX epoch on the runner's wall clock, time zero
    /// of every machine's clock.
    run_start_unix_us: u64,
    /// The same moment on the runner's monotonic clock.
    started: std::time::Instant,
    /// How long a machine may take to answer once it starts (again, after a crash).
    ready: Duration,
    /// The run's seed, which a failure report gives to replay the run.
    seed: u64,
}

impl<B: Backend> Machines<B> {
    /// Waits until every machine (reached at `addrs[i]`) answers a status request, then starts
    /// the run's clock: the run starts now, and every machine is told so
    /// ([`ControlRequest::StartClock`]).
    pub(crate) async fn connect(
        backend: B,
        addrs: Vec<SocketAddr>,
        token: String,
        seed: u64,
        timeout: Duration,
    ) -> Result<Self, HardwareError> {
        let mut machines = Machines {
            backend,
            seed,
            link_verbs: Vec::new(),
            scheduled: Vec::new(),
            applied: Counters::default(),
            token,
            slots: addrs
                .into_iter()
                .map(|addr| Slot {
                    addr,
                    client: None,
                    pauses: 0,
                    missed: Vec::new(),
                    frozen_states: Vec::new(),
                    down: false,
                })
                .collect(),
            run_start_unix_us: 0,
            started: std::time::Instant::now(),
            ready: timeout,
        };
        let deadline = Instant::now() + timeout;
        let waits = machines.slots.iter().enumerate().map(|(index, slot)| {
            wait_ready(
                &machines.backend,
                machine_id(index),
                slot,
                &machines.token,
                deadline,
            )
        });
        let ready = futures_util::future::join_all(waits).await;
        for (slot, client) in machines.slots.iter_mut().zip(ready) {
            slot.client = Some(client?);
        }
        machines.start_clock().await?;
        Ok(machines)
    }

    /// A node's failure on a machine, as the run reports it (its history is in the machines'
    /// structured records, not in the report).
    fn node_failed(&self, failure: NodeFailure) -> HardwareError {
        HardwareError::NodeFailed(Box::new(FailureReport {
            failure,
            seed: self.seed,
            trace: Vec::new(),
        }))
    }

    /// Picks the run's start (now) and gives it to every machine, concurrently.
    async fn start_clock(&mut self) -> Result<(), HardwareError> {
        self.started = std::time::Instant::now();
        self.run_start_unix_us = host_now_us();
        let run_start_unix_us = self.run_start_unix_us;
        let backend = &self.backend;
        let token = &self.token;
        let calls = self.slots.iter_mut().enumerate().map(|(index, slot)| {
            let machine = machine_id(index);
            async move {
                let request = ControlRequest::StartClock { run_start_unix_us };
                match call_slot(backend, token, machine, slot, request, B::TIMEOUTS.call).await? {
                    ControlResponse::ClockStarted => Ok(()),
                    other => Err(unexpected(machine, &other)),
                }
            }
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect()
    }

    /// The run's start, in microseconds since the UNIX epoch on the runner's wall clock.
    pub(crate) fn run_start_unix_us(&self) -> u64 {
        self.run_start_unix_us
    }

    /// The run's start on the runner's monotonic clock.
    pub(crate) fn started(&self) -> std::time::Instant {
        self.started
    }

    /// Machine `machine`'s time now, in microseconds since the run's start, as it reads it.
    pub(crate) async fn clock(&mut self, machine: MachineId) -> Result<u64, HardwareError> {
        match self
            .call(machine, ControlRequest::Clock, B::TIMEOUTS.call)
            .await?
        {
            ControlResponse::Clock { now_us } => Ok(now_us),
            other => Err(unexpected(machine, &other)),
        }
    }

    /// The back-end.
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    /// How many machines.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The run's token.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Where the runner reaches machine `machine`'s control port.
    pub(crate) fn addr(&self, machine: MachineId) -> Result<SocketAddr, HardwareError> {
        self.slots
            .get(machine.index())
            .map(|slot| slot.addr)
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
        call_slot(&self.backend, &self.token, machine, slot, request, timeout).await
    }

    /// Starts a node on `machine` (not while it is paused: the handle is its machine's to give).
    pub(crate) async fn start_node(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError> {
        let slot = self.slot(machine)?;
        if slot.pauses > 0 || slot.down {
            let state = if slot.down { "down" } else { "paused" };
            return Err(HardwareError::FaultRefused {
                fault: format!("start a node on {machine}"),
                reason: format!("{machine} is {state}"),
            });
        }
        let request = ControlRequest::StartNode {
            config: config.clone(),
        };
        match self.call(machine, request, B::TIMEOUTS.call).await? {
            ControlResponse::Started { handle } => Ok(handle),
            ControlResponse::NodeFailed { failure } => Err(self.node_failed(failure)),
            other => Err(unexpected(machine, &other)),
        }
    }

    /// Delivers `message` to `to` from outside the system (to a paused machine when it goes
    /// on, as a message waits in a frozen process's socket).
    pub(crate) async fn deliver(
        &mut self,
        to: NodeHandle,
        message: Message,
    ) -> Result<(), HardwareError> {
        let slot = self.slot(to.machine)?;
        if slot.pauses > 0 || slot.down {
            slot.missed.push(Missed::Deliver(to, message));
            return Ok(());
        }
        let request = ControlRequest::Deliver { to: to.id, message };
        match self.call(to.machine, request, B::TIMEOUTS.call).await? {
            ControlResponse::Delivered { .. } => Ok(()),
            other => Err(unexpected(to.machine, &other)),
        }
    }

    /// Delivers each message to its node from outside the system, in order: one control request
    /// per machine for its share (a paused or down machine's wait, as with [`Self::deliver`]).
    pub(crate) async fn deliver_all(
        &mut self,
        sends: Vec<(NodeHandle, Message)>,
    ) -> Result<(), HardwareError> {
        let mut shares: Vec<Vec<(NodeId, Message)>> = vec![Vec::new(); self.slots.len()];
        for (to, message) in sends {
            let slot = self.slot(to.machine)?;
            if slot.pauses > 0 || slot.down {
                slot.missed.push(Missed::Deliver(to, message));
            } else {
                shares[to.machine.index()].push((to.id, message));
            }
        }
        for (index, deliveries) in shares.into_iter().enumerate() {
            if deliveries.is_empty() {
                continue;
            }
            let machine = machine_id(index);
            let request = ControlRequest::DeliverAll { deliveries };
            match self.call(machine, request, B::TIMEOUTS.call).await? {
                ControlResponse::DeliveredAll { .. } => {}
                other => return Err(unexpected(machine, &other)),
            }
        }
        Ok(())
    }

    /// Every node's state, machine by machine (a paused machine's as it was paused).
    pub(crate) async fn node_states(&mut self) -> Result<Vec<NodeState>, HardwareError> {
        let mut states = Vec::new();
        for index in 0..self.slots.len() {
            let machine = machine_id(index);
            if self.slots[index].down {
                continue; // a machine that is down shows no nodes, as in the simulator
            }
            if self.slots[index].pauses > 0 {
                states.extend(self.slots[index].frozen_states.iter().cloned());
                continue;
            }
            states.extend(self.machine_states(machine).await?);
        }
        Ok(states)
    }

    /// The state of every node on one machine that is going.
    async fn machine_states(
        &mut self,
        machine: MachineId,
    ) -> Result<Vec<NodeState>, HardwareError> {
        match self
            .call(machine, ControlRequest::NodeStates, B::TIMEOUTS.call)
            .await?
        {
            ControlResponse::NodeStates { nodes } => Ok(nodes),
            other => Err(unexpected(machine, &other)),
        }
    }

    /// Whether `fault` can be applied to these machines: the back-end applies its kind, and
    /// every machine it names is one of the run's.
    fn admit(&self, fault: &Fault) -> Result<(), HardwareError> {
        if !B::applies(fault) {
            return Err(HardwareError::FaultNotApplied {
                kind: fault.kind(),
                mode: B::MODE,
            });
        }
        for machine in fault.machines() {
            self.addr(machine)?;
        }
        Ok(())
    }

    /// Applies a fault verb now: a link verb on every machine, a pause, resume, crash or restart
    /// through the back-end. A verb the back-end cannot apply is refused, and so is one naming
    /// a machine the run lacks.
    pub(crate) async fn apply(&mut self, fault: &Fault) -> Result<(), HardwareError> {
        self.admit(fault)?;
        match fault {
            Fault::Pause { machine } => {
                if self.pause(*machine).await? {
                    self.backend.pause(*machine).await?;
                }
                self.applied.pauses += 1;
                Ok(())
            }
            Fault::Resume { machine } => {
                if self.resume(*machine)? {
                    self.backend.unpause(*machine).await?;
                    self.resumed(*machine).await?;
                }
                Ok(())
            }
            Fault::Crash { machine } => {
                self.crash(*machine).await?;
                self.applied.crashes += 1;
                Ok(())
            }
            Fault::Restart { machine } => {
                self.restarted(*machine).await?;
                self.applied.restarts += 1;
                Ok(())
            }
            _ => self.apply_to_links(fault).await,
        }
    }

    /// Keeps `fault` to apply when the run's clock reaches `at_us` (see
    /// [`Machines::apply_due`]); a verb the back-end cannot apply is refused now.
    pub(crate) fn schedule(&mut self, at_us: Micros, fault: Fault) -> Result<(), HardwareError> {
        self.admit(&fault)?;
        let place = self.scheduled.partition_point(|(at, _)| *at <= at_us);
        self.scheduled.insert(place, (at_us, fault));
        Ok(())
    }

    /// Applies every scheduled verb due by `limit`, each at its time on the run's clock.
    pub(crate) async fn apply_due(&mut self, limit: Micros) -> Result<(), HardwareError> {
        while self.scheduled.first().is_some_and(|(at, _)| *at <= limit) {
            let (at, fault) = self.scheduled.remove(0);
            tokio::time::sleep_until((self.started + Duration::from_micros(at.0)).into()).await;
            self.apply(&fault).await?;
        }
        Ok(())
    }

    /// The pauses, crashes and restarts the runner applied.
    pub(crate) fn applied(&self) -> Counters {
        self.applied
    }

    /// Applies a link verb (a partition, a hold, a rule) on every machine: each applies it to
    /// what it sends. A paused machine gets it when it goes on.
    async fn apply_to_links(&mut self, fault: &Fault) -> Result<(), HardwareError> {
        self.link_verbs.push(fault.clone());
        for index in 0..self.slots.len() {
            let machine = machine_id(index);
            if self.slots[index].down {
                continue; // told every verb when it boots again
            }
            if self.slots[index].pauses > 0 {
                self.slots[index].missed.push(Missed::Fault(fault.clone()));
                continue;
            }
            self.tell(machine, fault).await?;
        }
        Ok(())
    }

    /// Tells one machine a link verb.
    async fn tell(&mut self, machine: MachineId, fault: &Fault) -> Result<(), HardwareError> {
        let request = ControlRequest::Fault {
            fault: fault.clone(),
        };
        match self.call(machine, request, B::TIMEOUTS.call).await? {
            ControlResponse::FaultApplied => Ok(()),
            ControlResponse::Failed { reason } => Err(HardwareError::FaultRefused {
                fault: fault.to_string(),
                reason,
            }),
            other => Err(unexpected(machine, &other)),
        }
    }

    /// Counts one more pause of `machine`; whether its process must be frozen now (its first,
    /// after which the runner asks it nothing: its nodes' states are read now, for the time it
    /// is frozen).
    async fn pause(&mut self, machine: MachineId) -> Result<bool, HardwareError> {
        if self.slot(machine)?.pauses == 0 {
            let states = self.machine_states(machine).await?;
            self.slot(machine)?.frozen_states = states;
        }
        let slot = self.slot(machine)?;
        slot.pauses += 1;
        Ok(slot.pauses == 1)
    }

    /// Ends one pause of `machine`; whether its process must go on now (its last).
    fn resume(&mut self, machine: MachineId) -> Result<bool, HardwareError> {
        let slot = self.slot(machine)?;
        let last = slot.pauses == 1;
        slot.pauses = slot.pauses.saturating_sub(1);
        Ok(last)
    }

    /// After `machine`'s process went on: the link verbs and the messages it missed, in order.
    async fn resumed(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        let slot = self.slot(machine)?;
        slot.frozen_states.clear();
        for missed in std::mem::take(&mut slot.missed) {
            match missed {
                Missed::Fault(fault) => self.tell(machine, &fault).await?,
                Missed::Deliver(to, message) => self.deliver(to, message).await?,
            }
        }
        Ok(())
    }

    /// Marks `machine` down and kills its process: the runner asks it nothing until
    /// [`Machines::restarted`], and messages from outside to it wait for then. A paused machine
    /// is let go on first (a frozen container cannot be killed).
    async fn crash(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        let slot = self.slot(machine)?;
        if slot.down {
            return Err(HardwareError::FaultRefused {
                fault: format!("crash {machine}"),
                reason: format!("{machine} is down already"),
            });
        }
        let paused = slot.pauses > 0;
        slot.pauses = 0;
        slot.down = true;
        slot.client = None;
        slot.frozen_states.clear();
        // What it would have been told is in the link verbs; messages from outside wait.
        slot.missed
            .retain(|missed| matches!(missed, Missed::Deliver(..)));
        if paused {
            self.backend.unpause(machine).await?;
        }
        self.backend.kill(machine).await
    }

    /// Starts `machine`'s process again, waits until it answers, tells it every link verb in
    /// force, and hands it the messages from outside that waited for it.
    async fn restarted(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        if !self.slot(machine)?.down {
            return Err(HardwareError::FaultRefused {
                fault: format!("restart {machine}"),
                reason: format!("{machine} is up"),
            });
        }
        self.backend.start(machine).await?;
        let deadline = Instant::now() + self.ready;
        let slot = &self.slots[machine.index()];
        let client = wait_ready(&self.backend, machine, slot, &self.token, deadline).await?;
        let slot = self.slot(machine)?;
        slot.client = Some(client);
        slot.down = false;
        for fault in self.link_verbs.clone() {
            self.tell(machine, &fault).await?;
        }
        let missed = std::mem::take(&mut self.slot(machine)?.missed);
        for missed in missed {
            if let Missed::Deliver(to, message) = missed {
                self.deliver(to, message).await?;
            }
        }
        Ok(())
    }

    fn slot(&mut self, machine: MachineId) -> Result<&mut Slot, HardwareError> {
        let machines = self.slots.len();
        self.slots
            .get_mut(machine.index())
            .ok_or(HardwareError::NoSuchMachine { machine, machines })
    }

    /// Every machine's counters and node failures, concurrently; a paused machine, which
    /// cannot answer, shows nothing.
    async fn statuses(&mut self) -> Result<Vec<(Counters, Vec<NodeFailure>)>, HardwareError> {
        let backend = &self.backend;
        let token = &self.token;
        let calls = self.slots.iter_mut().enumerate().map(|(index, slot)| {
            let machine = machine_id(index);
            async move {
                if slot.pauses > 0 || slot.down {
                    return Ok((Counters::default(), Vec::new()));
                }
                let request = ControlRequest::Status;
                match call_slot(backend, token, machine, slot, request, B::TIMEOUTS.status).await? {
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
    pub(crate) async fn check(&mut self) -> Result<(), HardwareError> {
        for (_, failures) in self.statuses().await? {
            if let Some(failure) = failures.into_iter().next() {
                return Err(self.node_failed(failure));
            }
        }
        Ok(())
    }

    /// Machine `machine`'s structured trace so far, as JSON lines (see
    /// [`ControlRequest::ReadTrace`]), for a provider whose machines' log files are not on
    /// this host.
    pub(crate) async fn read_trace(&mut self, machine: MachineId) -> Result<String, HardwareError> {
        let mut trace = String::new();
        loop {
            let offset = trace.len() as u64;
            match self
                .call(
                    machine,
                    ControlRequest::ReadTrace { offset },
                    B::TIMEOUTS.call,
                )
                .await?
            {
                ControlResponse::Trace { text, end } => {
                    let stuck = text.is_empty() && !end;
                    trace.push_str(&text);
                    if end || stuck {
                        return Ok(trace);
                    }
                }
                other => return Err(unexpected(machine, &other)),
            }
        }
    }

    /// The machines' counters, summed.
    pub(crate) async fn stats(&mut self) -> Result<Counters, HardwareError> {
        Ok(self
            .statuses()
            .await?
            .into_iter()
            .map(|(counters, _)| counters)
            .sum())
    }

    /// Measures round trips from one machine to another.
    pub(crate) async fn round_trips(
        &mut self,
        from: MachineId,
        to: MachineId,
        count: u32,
    ) -> Result<Vec<Duration>, HardwareError> {
        self.addr(to)?;
        match self
            .call(
                from,
                ControlRequest::PingPeer { to, count },
                B::TIMEOUTS.ping,
            )
            .await?
        {
            ControlResponse::RoundTrips { micros } => {
                Ok(micros.into_iter().map(Duration::from_micros).collect())
            }
            ControlResponse::Failed { reason } => Err(HardwareError::Infrastructure(reason)),
            other => Err(unexpected(from, &other)),
        }
    }

    /// Asks every machine to stop, without waiting long for any.
    pub(crate) async fn shutdown(&mut self) {
        let stops = self.slots.iter_mut().map(|slot| async move {
            if let Some(client) = slot.client.as_mut() {
                let _ = client
                    .call(ControlRequest::Shutdown, B::TIMEOUTS.shutdown)
                    .await;
            }
            slot.client = None;
        });
        futures_util::future::join_all(stops).await;
    }
}

/// Machine number `index`.
fn machine_id(index: usize) -> MachineId {
    MachineId(u32::try_from(index).unwrap_or(u32::MAX))
}

async fn call_slot<B: Backend>(
    backend: &B,
    token: &str,
    machine: MachineId,
    slot: &mut Slot,
    request: ControlRequest,
    timeout: Duration,
) -> Result<ControlResponse, HardwareError> {
    let client = match slot.client.as_mut() {
        Some(client) => client,
        None => match ControlClient::connect(slot.addr, token, timeout, timeout).await {
            Ok(client) => slot.client.insert(client),
            Err(error) => return Err(diagnose(backend, machine, &error).await),
        },
    };
    match client.call(request, timeout).await {
        Ok(response) => Ok(response),
        Err(error) => {
            slot.client = None;
            Err(diagnose(backend, machine, &error).await)
        }
    }
}

/// Connects to one machine and waits for a status answer, retrying until `deadline`; a machine
/// that stops meanwhile is reported at once.
async fn wait_ready<B: Backend>(
    backend: &B,
    machine: MachineId,
    slot: &Slot,
    token: &str,
    deadline: Instant,
) -> Result<ControlClient, HardwareError> {
    let timeouts = B::TIMEOUTS;
    let mut attempt = 0u32;
    loop {
        let error = match ControlClient::connect(
            slot.addr,
            token,
            timeouts.ready_connect,
            timeouts.ready_answer,
        )
        .await
        {
            Ok(mut client) => match client.call(ControlRequest::Status, timeouts.status).await {
                Ok(_) => return Ok(client),
                Err(error) => error,
            },
            Err(error) => error,
        };
        attempt += 1;
        let late = Instant::now() >= deadline;
        if attempt.is_multiple_of(timeouts.ready_diagnose_every) || late {
            if let Some(reason) = backend.gone(machine).await {
                return Err(HardwareError::MachineLost { machine, reason });
            }
        }
        if late {
            let shown = backend.shown_addr(machine).unwrap_or(slot.addr);
            return Err(HardwareError::MachineLost {
                machine,
                reason: format!(
                    "{} did not answer on {shown} in time ({})",
                    backend.describe(machine),
                    probe(shown, &error).await
                ),
            });
        }
        tokio::time::sleep(timeouts.ready_pause).await;
    }
}

/// What a plain connection to a machine's control port says. It tells a machine that never
/// started (refused, unreachable) from one that answers wrongly, which the last error may not:
/// cloud mode's TLS forwarder passes a refused connection on as a reset.
async fn probe(addr: SocketAddr, last: &ControlError) -> String {
    match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => format!("its port accepts connections; the last exchange failed: {last}"),
        Ok(Err(error)) => format!("nothing answers there: {error}; last error: {last}"),
        Err(_) => format!("connecting timed out; last error: {last}"),
    }
}

/// Why a machine stopped answering: what the back-end says became of it, or that its control
/// port failed while it runs.
async fn diagnose<B: Backend>(
    backend: &B,
    machine: MachineId,
    error: &ControlError,
) -> HardwareError {
    let reason = match backend.gone(machine).await {
        Some(reason) => reason,
        None => format!(
            "{} is running but its control port failed: {error}",
            backend.describe(machine)
        ),
    };
    HardwareError::MachineLost { machine, reason }
}

fn unexpected(machine: MachineId, response: &ControlResponse) -> HardwareError {
    HardwareError::Infrastructure(format!(
        "machine {machine} gave an unexpected answer: {response:?}"
    ))
}
