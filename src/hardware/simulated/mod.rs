//! Simulated mode: every machine in this process, virtual time, a seeded network.
//!
//! Event-driven: a priority queue ordered by (time, sequence number) holds message arrivals and
//! timer wake-ups, so the cost of a run grows with the number of events, not with nodes × time.
//! Deterministic: one seed drives the network's latencies and every machine's random generator,
//! and nothing else (no clock, no thread, no hash-map order) reaches the event order.

mod cause;
mod network;
mod recording;
mod trace;

pub use super::faults::FaultRule;
pub use super::queue::{QueueFull, MAX_PENDING_EVENTS};
pub use cause::{FailureReport, Hop};
pub use network::{
    LatencyDistribution, LatencySpec, NetworkConfig, NetworkConfigError, Partition, Pause,
};
pub use recording::fault_windows;
pub use trace::Trace;

use std::sync::Arc;

use super::carrier::{self, Carrier};
use super::queue::EventQueue;
use super::{Hardware, HardwareError, Mode};
use crate::counters::Counters;
use crate::manager::{Effect, Envelope, NodeFailure, NodeManager, NodeState};
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};
use crate::node::{NodeRegistry, TimerId};
use crate::observe::Recorder;
use crate::time::{Micros, Millis};
use cause::Cause;
use network::Network;

/// What a simulated system is made of.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// How many machines (at least one).
    pub machines: u32,
    /// The one seed every random choice derives from.
    pub seed: u64,
    /// The network model.
    pub network: NetworkConfig,
    /// Keep the full text trace (every event as a line) besides its hash.
    pub keep_trace_text: bool,
    /// Run the reliable link layer between machines (on unless a test shows what it is for).
    pub reliable: bool,
}

enum Event {
    Arrive {
        from: MachineId,
        to: MachineId,
        envelope: Envelope,
        cause: Cause,
        /// The structured trace's record of the transmission (0 when not recording).
        record: u64,
    },
    Wake {
        machine: MachineId,
        timer: TimerId,
        cause: Cause,
    },
}

/// Any number of machines in one process, on virtual time.
pub struct SimulatedHardware {
    managers: Vec<NodeManager>,
    network: Network,
    queue: EventQueue<Event>,
    now_us: Micros,
    scratch: Vec<Effect>,
    trace: Trace,
    events: u64,
    /// The most events the run may process, if limited.
    max_events: Option<u64>,
    /// Envelopes for machines the system does not have.
    no_such_machine: u64,
    seed: u64,
    /// The structured trace, when asked for (see [`SimulatedHardware::record_events`]).
    recorder: Option<Box<Recorder>>,
    /// The structured trace's record of the event being processed.
    current: Option<u64>,
}

impl SimulatedHardware {
    /// A system of `config.machines` machines whose nodes come from `registry`.
    pub fn new(
        config: SimulationConfig,
        registry: Arc<NodeRegistry>,
    ) -> Result<Self, NetworkConfigError> {
        let machines = config.machines.max(1);
        let network = Network::new(&config.network, machines, config.seed)?;
        let managers = (0..machines)
            .map(|index| {
                let mut manager =
                    NodeManager::new(MachineId(index), Arc::clone(&registry), config.seed);
                manager.set_reliable(config.reliable);
                manager
            })
            .collect();
        Ok(SimulatedHardware {
            managers,
            network,
            queue: EventQueue::new(),
            now_us: Micros::ZERO,
            scratch: Vec::new(),
            trace: Trace::new(config.keep_trace_text),
            events: 0,
            max_events: None,
            no_such_machine: 0,
            seed: config.seed,
            recorder: None,
            current: None,
        })
    }

    /// The seed this system runs on.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Counters so far, summed over every machine, with what the network's faults did and what
    /// is in flight now (see [`Counters::in_flight`]).
    pub fn stats(&self) -> Counters {
        let mut stats: Counters = self.managers.iter().map(NodeManager::stats).sum();
        stats += self.network.counters();
        stats += Counters {
            events: self.events,
            undeliverable: self.no_such_machine,
            in_flight: self.carried(),
            ..Counters::default()
        };
        stats
    }

    /// Stops the run with [`HardwareError::Capacity`] once it has processed `max` events, so
    /// that a run which never ends (a node whose timers or messages never stop) stops anyway.
    pub fn limit_events(&mut self, max: u64) {
        self.max_events = Some(max);
    }

    /// Packets sent between machines and not yet acknowledged, over every machine.
    pub fn unacknowledged(&self) -> usize {
        self.managers.iter().map(NodeManager::unacknowledged).sum()
    }

    /// Messages and terminations that reached their machine before their node's spawn and still
    /// wait for it, over every machine.
    pub fn waiting_for_spawn(&self) -> usize {
        self.managers
            .iter()
            .map(NodeManager::waiting_for_spawn)
            .sum()
    }

    /// Transmissions between machines that the network still carries outside the link layer
    /// (all of them when reliable delivery is off). A sequenced packet or an acknowledgement in
    /// the network belongs to the link layer, whose unacknowledged packets every machine counts
    /// itself; what arrives at its own machine was never in the network.
    fn carried(&self) -> u64 {
        self.queue
            .pending()
            .filter(|event| match event {
                Event::Arrive {
                    from, to, envelope, ..
                } => {
                    from != to
                        && !matches!(envelope, Envelope::Sequenced { .. } | Envelope::Ack { .. })
                }
                Event::Wake { .. } => false,
            })
            .count() as u64
    }

    /// Keeps the structured trace from now on: every event as a [`Record`](crate::observe::Record)
    /// linked to its cause, with the start and end of `windows`. Without it nothing is recorded.
    pub fn record_events(&mut self, windows: Vec<crate::observe::TimedWindow>) {
        self.recorder = Some(Box::new(Recorder::new(windows)));
    }

    /// The structured trace so far (empty unless [`SimulatedHardware::record_events`] was
    /// called), with every fault window boundary up to now.
    pub fn take_records(&mut self) -> Vec<crate::observe::Record> {
        let now_us = self.now_us.0;
        self.recorder
            .as_mut()
            .map(|recorder| recorder.finish(now_us))
            .unwrap_or_default()
    }

    /// The event trace so far (its hash, and its text if it was kept).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Virtual time since the system started.
    pub fn now_us(&self) -> Micros {
        self.now_us
    }

    /// Runs for `span` more virtual time.
    pub fn run_for(&mut self, span: Millis) -> Result<(), HardwareError> {
        self.run_until(self.now_us.to_millis().saturating_add(span).0)
    }

    fn machine_index(&self, machine: MachineId) -> Result<usize, HardwareError> {
        if machine.index() < self.managers.len() {
            Ok(machine.index())
        } else {
            Err(HardwareError::NoSuchMachine {
                machine,
                machines: self.managers.len(),
            })
        }
    }

    /// The machine an event happens on.
    fn machine_of(event: &Event) -> MachineId {
        match event {
            Event::Arrive { to, .. } => *to,
            Event::Wake { machine, .. } => *machine,
        }
    }

    /// Processes one event that is due now, or, if its machine is paused, puts it off until the
    /// machine goes on (events put off keep their relative order).
    fn step(&mut self, event: Event) -> Result<(), HardwareError> {
        if let Some(resume_us) = self
            .network
            .paused_until(Self::machine_of(&event), self.now_us)
        {
            return self.schedule(resume_us, event);
        }
        if self.max_events.is_some_and(|max| self.events >= max) {
            return Err(HardwareError::Capacity(format!(
                "the run reached its limit of {} events at {:.3} ms",
                self.events,
                self.now_us.as_millis_f64()
            )));
        }
        self.events += 1;
        match event {
            Event::Arrive {
                from,
                to,
                envelope,
                cause,
                record,
            } => {
                self.trace.arrive(self.now_us, from, to, &envelope);
                if let Some(recorder) = &mut self.recorder {
                    let cause = (record != 0).then_some(record);
                    self.current =
                        Some(recorder.arrival(self.now_us.0, from, to, &envelope, cause));
                }
                // The hop that this delivery adds to the causal chain; built only if the delivery
                // has consequences (effects or a failure), which most deliveries do not.
                let delivery = match envelope.payload() {
                    Some(Envelope::Deliver {
                        from,
                        to: id,
                        message,
                    }) => Some((
                        *from,
                        NodeHandle {
                            id: *id,
                            machine: to,
                        },
                        message.clone(),
                    )),
                    _ => None,
                };
                let now_us = self.now_us;
                let extend = move |cause: Cause| match delivery {
                    Some((sender, receiver, message)) => {
                        Some(Hop::after(cause, now_us, sender, receiver, message))
                    }
                    None => cause,
                };
                if let Err(failure) = self.managers[to.index()].handle(self.now_us.0, envelope) {
                    return Err(self.failed(failure, extend(cause)));
                }
                if self.managers[to.index()].has_effects() {
                    self.carry_effects(to, &extend(cause))?;
                }
            }
            Event::Wake {
                machine,
                timer,
                cause,
            } => {
                self.trace.wake(self.now_us, machine, timer);
                if let Some(recorder) = &mut self.recorder {
                    self.current = Some(recorder.timer(self.now_us.0, machine, timer));
                }
                if let Err(failure) =
                    self.managers[machine.index()].fire_timer(self.now_us.0, timer)
                {
                    return Err(self.failed(failure, cause));
                }
                self.carry_effects(machine, &cause)?;
            }
        }
        Ok(())
    }

    fn schedule(&mut self, at_us: Micros, event: Event) -> Result<(), HardwareError> {
        schedule(&mut self.queue, at_us, event)
    }

    /// Turns what machine `machine` asked for into scheduled events, through the network's
    /// latency and faults.
    fn carry_effects(&mut self, machine: MachineId, cause: &Cause) -> Result<(), HardwareError> {
        let mut outbox = Outbox {
            network: &mut self.network,
            queue: &mut self.queue,
            now_us: self.now_us,
            machines: self.managers.len(),
            no_such_machine: &mut self.no_such_machine,
            cause,
            recorder: self.recorder.as_deref_mut(),
            current: self.current,
        };
        carrier::carry_effects(
            &mut self.managers[machine.index()],
            &mut self.scratch,
            &mut outbox,
        )
    }

    fn failed(&mut self, failure: NodeFailure, cause: Cause) -> HardwareError {
        if let Some(recorder) = &mut self.recorder {
            let error = failure.error.to_string();
            let (machine, node) = (failure.node.machine, failure.node.id);
            recorder.failure(self.now_us.0, machine, node, &error, self.current);
        }
        HardwareError::NodeFailed(Box::new(FailureReport::new(
            failure,
            self.now_us,
            self.seed,
            cause.as_ref(),
        )))
    }
}

/// Where one machine's effects go in the simulator: through the network's latency and faults
/// onto the agenda, each event carrying the causal history of what produced it.
struct Outbox<'a> {
    network: &'a mut Network,
    queue: &'a mut EventQueue<Event>,
    now_us: Micros,
    machines: usize,
    no_such_machine: &'a mut u64,
    cause: &'a Cause,
    /// The structured trace, if the run keeps one.
    recorder: Option<&'a mut Recorder>,
    /// The record of the event being handled (what caused these effects).
    current: Option<u64>,
}

impl Carrier for Outbox<'_> {
    type Error = HardwareError;

    fn transmit(
        &mut self,
        from: MachineId,
        to: MachineId,
        envelope: Envelope,
    ) -> Result<(), HardwareError> {
        if to.index() >= self.machines {
            *self.no_such_machine += 1;
            return Ok(());
        }
        let transit = self
            .network
            .transmit(self.now_us, from, to, envelope.kind());
        let [sent, copy] = match self.recorder.as_deref_mut() {
            Some(recorder) => recording::transmission(
                recorder,
                recording::Transmission {
                    at_us: self.now_us,
                    from,
                    to,
                    envelope: &envelope,
                    cause: self.current,
                },
                &transit,
            ),
            None => [0, 0],
        };
        let [first, second] = transit.arrivals;
        let cause = self.cause;
        let arrive = |envelope, record| Event::Arrive {
            from,
            to,
            envelope,
            cause: cause.clone(),
            record,
        };
        // A duplicate is scheduled first, then the original (the order is part of the trace, so
        // it never changes).
        let mut outcome = Ok(());
        if let Some(at_us) = second {
            outcome = schedule(self.queue, at_us, arrive(envelope.clone(), copy));
        }
        if let Some(at_us) = first {
            outcome = outcome.and(schedule(self.queue, at_us, arrive(envelope, sent)));
        }
        outcome
    }

    fn arm(
        &mut self,
        machine: MachineId,
        at_us: Micros,
        timer: TimerId,
    ) -> Result<(), HardwareError> {
        if let Some(recorder) = self.recorder.as_deref_mut() {
            recorder.timer_set(timer, self.current);
        }
        let event = Event::Wake {
            machine,
            timer,
            cause: self.cause.clone(),
        };
        schedule(self.queue, at_us.max(self.now_us), event)
    }
}

/// Puts `event` on the agenda at `at_us`.
fn schedule(
    queue: &mut EventQueue<Event>,
    at_us: Micros,
    event: Event,
) -> Result<(), HardwareError> {
    Ok(queue.push(at_us, event)?)
}

impl Hardware for SimulatedHardware {
    fn mode(&self) -> Mode {
        Mode::Simulated
    }

    fn machine_count(&self) -> usize {
        self.managers.len()
    }

    fn now_ms(&self) -> u64 {
        self.now_us.to_millis().0
    }

    fn spawn(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError> {
        let index = self.machine_index(machine)?;
        let handle = self.managers[index]
            .start_node(self.now_us.0, config)
            .map_err(|failure| self.failed(failure, None))?;
        self.trace
            .spawn(self.now_us, machine, handle.id, config.kind());
        self.current = self
            .recorder
            .as_mut()
            .map(|recorder| recorder.spawn(self.now_us.0, machine, handle.id, config.kind()));
        self.carry_effects(machine, &None)?;
        Ok(handle)
    }

    fn send(&mut self, to: NodeHandle, message: Message) -> Result<(), HardwareError> {
        self.machine_index(to.machine)?;
        let event = Event::Arrive {
            from: to.machine,
            to: to.machine,
            envelope: Envelope::Deliver {
                from: None,
                to: to.id,
                message,
            },
            cause: None,
            record: 0,
        };
        self.schedule(self.now_us, event)
    }

    fn run_until(&mut self, at_ms: u64) -> Result<(), HardwareError> {
        let limit_us = Millis(at_ms).to_micros_saturating();
        while let Some((at_us, event)) = self.queue.pop_due(limit_us) {
            self.now_us = at_us;
            self.step(event)?;
        }
        self.now_us = self.now_us.max(limit_us);
        Ok(())
    }

    fn node_states(&mut self) -> Result<Vec<NodeState>, HardwareError> {
        Ok(self
            .managers
            .iter()
            .flat_map(NodeManager::node_states)
            .collect())
    }
}
