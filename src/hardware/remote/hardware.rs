//! One [`Hardware`] for every mode whose machines are processes elsewhere: containers (virtual
//! mode) and instances (cloud mode) are driven the same way, over the machines' control
//! connections, and differ only in their [`Provider`] — how the machines were
//! made, where their records are read, and how everything the run created is removed.
//!
//! The [`Hardware`] trait is synchronous: every call blocks on the run's own tokio runtime, so a
//! `RemoteHardware` must not be used from inside async code.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::machines::{Backend, Machines};
use super::stop::{Stop, Stopper};
use crate::counters::Counters;
use crate::faults::Fault;
use crate::hardware::{Finished, Hardware, HardwareError, Mode, RunHardware};
use crate::machine::TRACE_FILE;
use crate::manager::NodeState;
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};
use crate::observe::gather::{gather, MachineTrace, TraceLoss};
use crate::observe::merge::merge;
use crate::time::{Micros, Millis};

/// Where a run's machines keep their structured records for the runner to read.
#[derive(Debug, Clone, Copy)]
pub enum RecordsAt<'a> {
    /// In `<dir>/m<i>/trace.jsonl` on this host (containers' bind-mounted log directories): read
    /// once the machines have stopped, so that a machine killed mid-run still gives every
    /// complete record it wrote.
    LogFiles(&'a Path),
    /// Only on the machines: asked for over the control connections before they stop.
    Machines,
}

/// What one remote mode provisions, and how it takes it down again. Sealed: the crate's own
/// providers (containers, instances) are the only ones, as their back-ends are crate-private.
#[allow(
    private_bounds,
    reason = "a sealed trait: only the crate's own providers implement it"
)]
pub trait Provider {
    /// What the runner's control connections need to know about this provider's machines.
    #[doc(hidden)]
    type Backend: Backend;

    /// The runtime every call of the run blocks on.
    fn runtime(&self) -> &tokio::runtime::Runtime;

    /// Where the machines' structured records are.
    fn records(&self) -> RecordsAt<'_>;

    /// Waits, briefly, until every machine process has exited once it was asked to stop.
    fn exited(&self) -> impl Future<Output = ()>;

    /// Removes everything the run created; says what it could not remove. Called again, it has
    /// nothing left to do.
    fn remove(&mut self) -> Result<(), HardwareError>;
}

/// A running system of machines that are processes elsewhere, one control connection each.
/// Everything the run created is removed by [`RemoteHardware::finish`], or when it is dropped
/// (an error, a panic, a signal).
pub struct RemoteHardware<P: Provider> {
    /// `None` once the machines were asked to stop.
    machines: Option<Machines<P::Backend>>,
    provider: P,
    stopper: Stopper,
    run_id: String,
    /// The run's secret token (kept after the machines stopped).
    token: String,
    /// How many machines the run has (also once they stopped).
    count: usize,
    /// The run's start on the runner's monotonic clock: time zero of [`Hardware::now_ms`].
    started: Instant,
    /// The same moment in microseconds since the UNIX epoch.
    run_start_unix_us: u64,
}

impl<P: Provider> RemoteHardware<P> {
    /// The run of `machines`, made by `provider`, with `stopper` listening for signals (or not).
    pub(crate) fn new(
        provider: P,
        machines: Machines<P::Backend>,
        stopper: Stopper,
        run_id: String,
    ) -> Self {
        RemoteHardware {
            count: machines.len(),
            token: machines.token().to_owned(),
            started: machines.started(),
            run_start_unix_us: machines.run_start_unix_us(),
            machines: Some(machines),
            provider,
            stopper,
            run_id,
        }
    }

    /// The run's id (every container, network or cloud resource it made carries it).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// What made the machines.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The run's start, time zero of [`Hardware::now_ms`] and of every machine's clock: the
    /// moment every machine had answered, in microseconds since the UNIX epoch on the runner's
    /// clock (which containers share; instances keep theirs close with NTP, see
    /// docs/cloud-mode.md).
    pub fn run_start_unix_us(&self) -> u64 {
        self.run_start_unix_us
    }

    /// Runs `call` on the machines' control connections, abandoning it with
    /// [`HardwareError::Stopped`] if a signal asks the run to stop first.
    fn with_machines<T>(
        &mut self,
        call: impl AsyncFnOnce(&mut Machines<P::Backend>) -> Result<T, HardwareError>,
    ) -> Result<T, HardwareError> {
        let machines = self.machines.as_mut().ok_or_else(stopped)?;
        self.stopper
            .block_on(self.provider.runtime(), call(machines))
    }

    fn machines(&self) -> Result<&Machines<P::Backend>, HardwareError> {
        self.machines.as_ref().ok_or_else(stopped)
    }

    /// Machine `machine`'s own reading of the run's clock now, in microseconds since the run's
    /// start (what its nodes read, in milliseconds, as `now_ms`).
    pub fn machine_now_us(&mut self, machine: MachineId) -> Result<u64, HardwareError> {
        self.with_machines(async |machines| machines.clock(machine).await)
    }

    /// The run's secret token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Machine `machine`'s control address, as the runner reaches it.
    pub fn control_addr(&self, machine: MachineId) -> Result<SocketAddr, HardwareError> {
        self.machines()?.addr(machine)
    }

    /// The machines' counters, summed, with the crashes and restarts the runner applied.
    pub fn stats(&mut self) -> Result<Counters, HardwareError> {
        self.with_machines(async |machines| Ok(machines.stats().await? + machines.applied()))
    }

    /// Kills machine `machine`'s process at once, as a power cut would, behind the runner's
    /// back: the run finds it lost (a crash verb, [`Hardware::apply`], is the planned way).
    pub fn kill_machine(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        self.with_machines(async |machines| machines.backend().kill(machine).await)
    }

    /// Measures `count` message round trips from machine `from` to machine `to`.
    pub fn round_trips(
        &mut self,
        from: MachineId,
        to: MachineId,
        count: u32,
    ) -> Result<Vec<Duration>, HardwareError> {
        self.with_machines(async |machines| machines.round_trips(from, to, count).await)
    }

    /// Every machine's structured trace so far, as JSON lines, machine by machine (the machines
    /// must record it). A machine that cannot give its trace (lost, it refuses, its file cannot
    /// be read) is said so in its entry, and the others are still read.
    pub fn traces(&mut self) -> Vec<MachineTrace> {
        let count = self.machine_count();
        match self.provider.records() {
            RecordsAt::LogFiles(dir) => (0..count)
                .map(|index| {
                    let machine = machine_id(index);
                    let path = dir.join(machine.to_string()).join(TRACE_FILE);
                    std::fs::read(&path).map_err(|error| {
                        (
                            TraceLoss::Unreadable,
                            format!("{}: {error}", path.display()),
                        )
                    })
                })
                .collect(),
            RecordsAt::Machines => {
                let read = self.with_machines(async |machines| {
                    let mut traces = Vec::new();
                    for index in 0..machines.len() {
                        let machine = machine_id(index);
                        let trace = machines.read_trace(machine).await;
                        traces.push(trace.map(String::into_bytes).map_err(|error| {
                            let why = match error {
                                HardwareError::MachineLost { .. } => TraceLoss::Lost,
                                _ => TraceLoss::Refused,
                            };
                            (why, error.to_string())
                        }));
                    }
                    Ok(traces)
                });
                read.unwrap_or_else(|error| {
                    (0..count)
                        .map(|_| Err((TraceLoss::Lost, error.to_string())))
                        .collect()
                })
            }
        }
    }

    /// Asks every machine to stop, then removes everything the run created. Call it after a
    /// failed run too: it is how a run ends. A second signal skips asking the machines; the
    /// removal always happens. Says [`HardwareError::Stopped`] if a signal stopped the run.
    pub fn finish(mut self) -> Result<(), HardwareError> {
        self.stop()?;
        self.stopper.check()
    }

    fn stop(&mut self) -> Result<(), HardwareError> {
        if let Some(mut machines) = self.machines.take() {
            if self.stopper.state() != Stop::No {
                tracing::info!(run = %self.run_id, "stopped by a signal; removing the run");
            }
            let provider = &self.provider;
            self.stopper
                .block_on_unless_urgent(provider.runtime(), async {
                    machines.shutdown().await;
                    provider.exited().await;
                });
        }
        self.provider.remove()
    }
}

/// What a call on a run whose machines were asked to stop gets.
fn stopped() -> HardwareError {
    HardwareError::Infrastructure("the system has been stopped".into())
}

/// Machine `index`'s id.
fn machine_id(index: usize) -> MachineId {
    MachineId(u32::try_from(index).unwrap_or(u32::MAX))
}

impl<P: Provider> Drop for RemoteHardware<P> {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "clean-up after the run failed");
            eprintln!("dist-zero: {error}");
        }
    }
}

impl<P: Provider> RunHardware for RemoteHardware<P> {
    fn totals(&mut self) -> Result<Counters, HardwareError> {
        self.stats()
    }

    fn run_id(&self) -> Option<&str> {
        Some(&self.run_id)
    }

    fn logs_dir(&self) -> Option<&Path> {
        match self.provider.records() {
            RecordsAt::LogFiles(dir) => Some(dir),
            RecordsAt::Machines => None,
        }
    }

    /// Records kept on the machines are read over the control connections before they stop;
    /// records in log files once the machines are gone. Either way a machine that cannot be
    /// read is named, and the others' records are kept.
    fn finish(mut self: Box<Self>, observe: bool) -> (Result<(), HardwareError>, Finished) {
        let start_us = self.run_start_unix_us();
        let mut traces = None;
        if observe && matches!(self.provider.records(), RecordsAt::Machines) {
            traces = Some(self.traces());
        }
        let stopped = self.stop();
        if observe && traces.is_none() {
            traces = Some(self.traces());
        }
        let mut left = Finished::default();
        if let Some(traces) = traces {
            let gathered = gather(traces);
            left.records = Some(merge(gathered.per_machine, start_us));
            left.unreadable = gathered.unreadable;
        }
        (stopped.and_then(|()| self.stopper.check()), left)
    }
}

impl<P: Provider> Hardware for RemoteHardware<P> {
    fn mode(&self) -> Mode {
        P::Backend::MODE
    }

    fn machine_count(&self) -> usize {
        self.count
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn spawn(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError> {
        self.with_machines(async |machines| machines.start_node(machine, config).await)
    }

    fn send(&mut self, to: NodeHandle, message: Message) -> Result<(), HardwareError> {
        self.with_machines(async |machines| machines.deliver(to, message).await)
    }

    fn send_all(&mut self, sends: Vec<(NodeHandle, Message)>) -> Result<(), HardwareError> {
        self.with_machines(async |machines| machines.deliver_all(sends).await)
    }

    fn run_until(&mut self, at_ms: u64) -> Result<(), HardwareError> {
        let limit = Millis(at_ms).to_micros_saturating();
        let deadline = self.started + Duration::from_millis(at_ms);
        self.with_machines(async |machines| {
            machines.apply_due(limit).await?;
            tokio::time::sleep_until(deadline.into()).await;
            machines.check().await
        })
    }

    fn node_states(&mut self) -> Result<Vec<NodeState>, HardwareError> {
        self.with_machines(async |machines| machines.node_states().await)
    }

    /// Partitions, holds and the drop and duplicate rules are applied by every machine to what
    /// it sends (the runner's control connections, on another port, stay up); pauses, crashes
    /// and restarts by the provider where it can (see each mode's guide).
    fn apply(&mut self, fault: &Fault) -> Result<(), HardwareError> {
        self.with_machines(async |machines| machines.apply(fault).await)
    }

    /// Keeps `fault` to apply when the run reaches `at_us` (see [`Hardware::run_until`]); a
    /// verb this mode cannot apply is refused now.
    fn schedule(&mut self, at_us: Micros, fault: Fault) -> Result<(), HardwareError> {
        self.machines
            .as_mut()
            .ok_or_else(stopped)?
            .schedule(at_us, fault)
    }
}
