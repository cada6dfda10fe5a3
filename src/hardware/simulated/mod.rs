//! Simulated mode: every machine in this process, virtual time, a seeded network.
//!
//! Event-driven: a priority queue ordered by (time, sequence number) holds message arrivals and
//! timer wake-ups, so the cost of a run grows with the number of events, not with nodes × time.
//! Deterministic: one seed drives the network's latencies and every machine's random generator,
//! and nothing else (no clock, no thread, no hash-map order) reaches the event order.

mod cause;
mod network;
mod queue;
mod trace;

pub use cause::{FailureReport, Hop};
pub use network::{LatencyDistribution, LatencySpec, NetworkConfig, NetworkConfigError};
pub use queue::{QueueFull, MAX_PENDING_EVENTS};
pub use trace::Trace;

use std::sync::Arc;

use super::{Hardware, HardwareError, Mode};
use crate::manager::{Effect, Envelope, Handled, NodeFailure, NodeManager, NodeState};
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};
use crate::node::{NodeRegistry, TimerId};
use cause::Cause;
use network::Network;
use queue::EventQueue;

/// Counters a simulated run keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimulationStats {
    /// Events processed (arrivals and timer wake-ups).
    pub events: u64,
    /// Messages handed to a node.
    pub messages_delivered: u64,
    /// Envelopes addressed to a node or machine that does not exist.
    pub undeliverable: u64,
}

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
}

enum Event {
    Arrive {
        from: MachineId,
        to: MachineId,
        envelope: Envelope,
        cause: Cause,
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
    now_us: u64,
    scratch: Vec<Effect>,
    trace: Trace,
    stats: SimulationStats,
    seed: u64,
}

impl SimulatedHardware {
    /// A system of `config.machines` machines whose nodes come from `registry`.
    pub fn new(
        config: SimulationConfig,
        registry: Arc<NodeRegistry>,
    ) -> Result<Self, NetworkConfigError> {
        let network = Network::new(&config.network, config.seed)?;
        let managers = (0..config.machines.max(1))
            .map(|index| NodeManager::new(MachineId(index), Arc::clone(&registry), config.seed))
            .collect();
        Ok(SimulatedHardware {
            managers,
            network,
            queue: EventQueue::new(),
            now_us: 0,
            scratch: Vec::new(),
            trace: Trace::new(config.keep_trace_text),
            stats: SimulationStats::default(),
            seed: config.seed,
        })
    }

    /// The seed this system runs on.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Counters so far.
    pub fn stats(&self) -> SimulationStats {
        self.stats
    }

    /// The event trace so far (its hash, and its text if it was kept).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Virtual microseconds since the system started.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Events scheduled and not yet processed.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// Runs for `ms` more virtual milliseconds.
    pub fn run_for(&mut self, ms: u64) -> Result<(), HardwareError> {
        self.run_until(self.now_ms() + ms)
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

    /// Processes one event that is due now.
    fn step(&mut self, event: Event) -> Result<(), HardwareError> {
        self.stats.events += 1;
        match event {
            Event::Arrive {
                from,
                to,
                envelope,
                cause,
            } => {
                self.trace.arrive(self.now_us, from, to, &envelope);
                // The hop that this delivery adds to the causal chain; built only if the delivery
                // has consequences (effects or a failure), which most deliveries do not.
                let delivery = match &envelope {
                    Envelope::Deliver {
                        from,
                        to: id,
                        message,
                    } => Some((
                        *from,
                        NodeHandle {
                            id: *id,
                            machine: to,
                        },
                        message.clone(),
                    )),
                    Envelope::Spawn { .. } | Envelope::Terminate { .. } => None,
                };
                let now_us = self.now_us;
                let extend = move |cause: Cause| match delivery {
                    Some((sender, receiver, message)) => {
                        Some(Hop::after(cause, now_us, sender, receiver, message))
                    }
                    None => cause,
                };
                let is_delivery = matches!(envelope, Envelope::Deliver { .. });
                match self.managers[to.index()].handle(self.now_us, envelope) {
                    Ok(Handled::Done) if is_delivery => self.stats.messages_delivered += 1,
                    Ok(Handled::Done) => {}
                    Ok(Handled::NoSuchNode(_)) => self.stats.undeliverable += 1,
                    Err(failure) => return Err(self.failed(failure, extend(cause))),
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
                if let Err(failure) = self.managers[machine.index()].fire_timer(self.now_us, timer)
                {
                    return Err(self.failed(failure, cause));
                }
                self.carry_effects(machine, &cause)?;
            }
        }
        Ok(())
    }

    /// Turns what machine `machine` asked for into scheduled events.
    fn carry_effects(&mut self, machine: MachineId, cause: &Cause) -> Result<(), HardwareError> {
        let mut effects = std::mem::take(&mut self.scratch);
        let mut outcome = Ok(());
        self.managers[machine.index()].drain_effects(&mut effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Transmit { to, envelope } => {
                    if to.index() >= self.managers.len() {
                        self.stats.undeliverable += 1;
                        continue;
                    }
                    let at_us = self.network.arrival_us(self.now_us, machine, to);
                    let event = Event::Arrive {
                        from: machine,
                        to,
                        envelope,
                        cause: cause.clone(),
                    };
                    outcome = outcome.and(self.queue.push(at_us, event));
                }
                Effect::Wake { at_us, timer } => {
                    let event = Event::Wake {
                        machine,
                        timer,
                        cause: cause.clone(),
                    };
                    outcome = outcome.and(self.queue.push(at_us.max(self.now_us), event));
                }
            }
        }
        self.scratch = effects;
        outcome.map_err(|full| HardwareError::Infrastructure(full.to_string()))
    }

    fn failed(&self, failure: NodeFailure, cause: Cause) -> HardwareError {
        HardwareError::NodeFailed(Box::new(FailureReport::new(
            failure,
            self.now_us,
            self.seed,
            cause.as_ref(),
        )))
    }
}

impl Hardware for SimulatedHardware {
    fn mode(&self) -> Mode {
        Mode::Simulated
    }

    fn machine_count(&self) -> usize {
        self.managers.len()
    }

    fn now_ms(&self) -> u64 {
        self.now_us / 1000
    }

    fn spawn(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError> {
        let index = self.machine_index(machine)?;
        let handle = self.managers[index]
            .start_node(self.now_us, config)
            .map_err(|failure| self.failed(failure, None))?;
        self.trace
            .spawn(self.now_us, machine, handle.id, config.kind());
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
        };
        self.queue
            .push(self.now_us, event)
            .map_err(|full| HardwareError::Infrastructure(full.to_string()))
    }

    fn run_until(&mut self, at_ms: u64) -> Result<(), HardwareError> {
        let limit_us = at_ms.saturating_mul(1000);
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
