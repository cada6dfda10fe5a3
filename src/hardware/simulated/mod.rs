//! Simulated mode: every machine in this process, virtual time, a seeded network.
//!
//! Event-driven: a priority queue ordered by (time, sequence number) holds message arrivals and
//! timer wake-ups, so the cost of a run grows with the number of events, not with nodes × time.
//! Deterministic: one seed drives the network's latencies and every machine's random generator,
//! and nothing else (no clock, no thread, no hash-map order) reaches the event order.
//!
//! Faults are verbs ([`Fault`]) applied at one moment: a scenario's windows are put on the agenda
//! as verbs when the system is made, and a test calls [`Hardware::apply`] between steps.
//! A crash drops the machine's NodeManager and keeps its [`Disk`]; a restart boots a new
//! incarnation from the disk.

mod cause;
mod network;
mod recording;
mod trace;

pub use super::queue::{QueueFull, MAX_PENDING_EVENTS};
pub use cause::Hop;
pub use recording::fault_windows;
pub use trace::Trace;

use std::sync::Arc;

use super::carrier::{self, Carrier};
use super::queue::EventQueue;
use super::{FailureReport, Hardware, HardwareError, Mode};
use crate::counters::Counters;
use crate::faults::{Fault, NetworkConfig, NetworkConfigError};
use crate::manager::{Disk, Effect, Envelope, NodeFailure, NodeManager, NodeState};
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle, NodeId};
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
        /// The incarnation that set the timer: a timer does not outlive its machine's crash.
        incarnation: u32,
        timer: TimerId,
        cause: Cause,
    },
    /// A verb of the scenario's fault plan, due now.
    Fault(Fault),
}

impl Event {
    /// The receiver and the message of a message sent from outside the system (by a test or a
    /// scenario's input); any other event back as it was.
    fn from_outside(event: Event) -> Result<(NodeHandle, Message), Event> {
        match event {
            Event::Arrive {
                to,
                envelope:
                    Envelope::Deliver {
                        from: None,
                        to: id,
                        message,
                    },
                ..
            } => Ok((NodeHandle { id, machine: to }, message)),
            other => Err(other),
        }
    }
}

/// Whether a machine is up, with its NodeManager, or down, with only its disk.
#[expect(
    clippy::large_enum_variant,
    reason = "machines are up nearly always; a box would cost an indirection on every event"
)]
enum Power {
    Up(NodeManager),
    Down(Disk),
}

/// One machine of the system.
struct Machine {
    power: Power,
    /// How many pauses it is in.
    pauses: u32,
    /// What arrived or came due while it was paused, in order.
    stashed: Vec<Event>,
    /// Messages sent from outside while it was down, or that waited in it, paused, when it
    /// crashed: delivered when it is back (as a client that retries would).
    outside: Vec<(NodeHandle, Message)>,
    /// What its earlier incarnations counted.
    counted: Counters,
}

impl Machine {
    fn incarnation(&self) -> u32 {
        match &self.power {
            Power::Up(manager) => manager.incarnation(),
            Power::Down(disk) => disk.incarnation(),
        }
    }

    /// Its NodeManager, if it is up.
    fn manager(&self) -> Option<&NodeManager> {
        match &self.power {
            Power::Up(manager) => Some(manager),
            Power::Down(_) => None,
        }
    }

    /// Its NodeManager, if it is up.
    fn manager_mut(&mut self) -> Option<&mut NodeManager> {
        match &mut self.power {
            Power::Up(manager) => Some(manager),
            Power::Down(_) => None,
        }
    }
}

/// A transmission sent while its link was held, waiting for the release.
struct HeldTransmission {
    from: MachineId,
    to: MachineId,
    envelope: Envelope,
    cause: Cause,
}

/// Any number of machines in one process, on virtual time.
pub struct SimulatedHardware {
    machines: Vec<Machine>,
    registry: Arc<NodeRegistry>,
    /// Transmissions waiting for their link's release, in the order they were sent.
    held: Vec<HeldTransmission>,
    /// What the system counted besides its machines and network: crashes, restarts, losses.
    counted: Counters,
    /// Whether the machines run the reliable link layer.
    reliable: bool,
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
    /// Whether every event processed is described (for a check that must name the event that
    /// broke it).
    describe: bool,
    /// The event processed last, when events are described.
    last: Option<LastEvent>,
}

/// The event the simulator processed last: when, where, what, and the causal history that led
/// to it (kept while [`Hardware::describe_events`] is on).
#[derive(Debug, Clone)]
pub struct LastEvent {
    /// When it happened.
    pub at_us: Micros,
    /// The machine it happened on (none for a fault verb).
    pub machine: Option<MachineId>,
    what: What,
    /// The nodes of [`LastEvent::machine`] whose state it may have changed (created, handed a
    /// message or a timer, terminated); empty for the link layer's own events, and for a fault
    /// verb (which may change any machine).
    pub touched: Vec<NodeId>,
    cause: Cause,
}

/// What an event was, kept as it came and written out only if asked.
#[derive(Debug, Clone)]
enum What {
    /// A message handed to a node.
    Delivery {
        sender: Option<NodeHandle>,
        receiver: NodeHandle,
        message: Message,
    },
    /// Anything else a machine received (a spawn, an acknowledgement, …).
    Receipt {
        from: MachineId,
        to: MachineId,
        kind: String,
    },
    /// A timer.
    Timer { machine: MachineId, timer: u64 },
    /// A fault verb.
    Fault(Fault),
}

impl LastEvent {
    /// What it was, e.g. `m1 delivers n0.3 --gossip--> n1.2 {…}`.
    pub fn description(&self) -> String {
        match &self.what {
            What::Delivery {
                sender,
                receiver,
                message,
            } => {
                let sender = sender.map_or_else(|| "outside".to_owned(), |h| h.to_string());
                format!(
                    "{} delivers {sender} --{}--> {receiver} {}",
                    receiver.machine,
                    message.kind(),
                    message.as_json()
                )
            }
            What::Receipt { from, to, kind } => format!("{to} receives `{kind}` from {from}"),
            What::Timer { machine, timer } => format!("{machine} fires timer {timer}"),
            What::Fault(fault) => format!("fault: {fault}"),
        }
    }

    /// The messages that led to this event, oldest first, one line each.
    pub fn history(&self) -> Vec<String> {
        cause::history(self.cause.as_ref())
    }
}

impl SimulatedHardware {
    /// A system of `config.machines` machines whose nodes come from `registry`.
    pub fn new(
        config: SimulationConfig,
        registry: Arc<NodeRegistry>,
    ) -> Result<Self, NetworkConfigError> {
        let machines = config.machines.max(1);
        let network = Network::new(&config.network, machines, config.seed)?;
        let machines = (0..machines)
            .map(|index| {
                let mut manager =
                    NodeManager::new(MachineId(index), Arc::clone(&registry), config.seed);
                manager.set_reliable(config.reliable);
                Machine {
                    power: Power::Up(manager),
                    pauses: 0,
                    stashed: Vec::new(),
                    outside: Vec::new(),
                    counted: Counters::default(),
                }
            })
            .collect();
        let mut queue = EventQueue::new();
        for timed in config.network.schedule().verbs() {
            queue
                .push(
                    timed.at.to_micros_saturating(),
                    Event::Fault(timed.fault.clone()),
                )
                .map_err(|_| NetworkConfigError::Invalid {
                    field: "network".into(),
                    reason: "more fault windows than the agenda holds".into(),
                })?;
        }
        Ok(SimulatedHardware {
            machines,
            registry,
            held: Vec::new(),
            counted: Counters::default(),
            reliable: config.reliable,
            network,
            queue,
            now_us: Micros::ZERO,
            scratch: Vec::new(),
            trace: Trace::new(config.keep_trace_text),
            events: 0,
            max_events: None,
            no_such_machine: 0,
            seed: config.seed,
            recorder: None,
            current: None,
            describe: false,
            last: None,
        })
    }

    /// The seed this system runs on.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Counters so far, summed over every machine, with what the network's faults did and what
    /// is in flight now (see [`Counters::in_flight`]).
    pub fn stats(&self) -> Counters {
        let mut stats: Counters = self
            .machines
            .iter()
            .map(|machine| {
                machine
                    .manager()
                    .map(NodeManager::stats)
                    .unwrap_or_default()
                    + machine.counted
            })
            .sum();
        stats += self.network.counters();
        stats += self.counted;
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
        self.managers().map(NodeManager::unacknowledged).sum()
    }

    /// The machines that are up.
    fn managers(&self) -> impl Iterator<Item = &NodeManager> {
        self.machines.iter().filter_map(Machine::manager)
    }

    /// Messages and terminations that reached their machine before their node's spawn and still
    /// wait for it, over every machine.
    pub fn waiting_for_spawn(&self) -> usize {
        self.managers().map(NodeManager::waiting_for_spawn).sum()
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
                Event::Wake { .. } | Event::Fault(_) => false,
            })
            .count() as u64
            + self.held.len() as u64
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
        if machine.index() < self.machines.len() {
            Ok(machine.index())
        } else {
            Err(HardwareError::NoSuchMachine {
                machine,
                machines: self.machines.len(),
            })
        }
    }

    /// The NodeManager of `machine`, which must be up.
    fn manager(&mut self, machine: MachineId) -> Result<&mut NodeManager, HardwareError> {
        let index = self.machine_index(machine)?;
        self.machines[index]
            .manager_mut()
            .ok_or(HardwareError::MachineDown { machine })
    }

    /// The machine an event happens on (none for a fault verb).
    fn machine_of(event: &Event) -> Option<MachineId> {
        match event {
            Event::Arrive { to, .. } => Some(*to),
            Event::Wake { machine, .. } => Some(*machine),
            Event::Fault(_) => None,
        }
    }

    /// Cuts `machine`'s power: its NodeManager and everything in its memory are gone; its disk
    /// stays. A machine that is down already stays down.
    fn crash(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        let slot = &mut self.machines[machine.index()];
        let manager = match std::mem::replace(&mut slot.power, Power::Down(Disk::default())) {
            Power::Up(manager) => manager,
            down => {
                slot.power = down;
                return Err(HardwareError::FaultRefused {
                    fault: format!("crash {machine}"),
                    reason: format!("{machine} is down already"),
                });
            }
        };
        slot.counted += Counters {
            in_flight: 0,
            ..manager.stats()
        };
        slot.power = Power::Down(manager.crash());
        slot.pauses = 0;
        // What waited in a paused machine is lost with it, but for messages from outside: those
        // wait for the restart, as messages sent from outside to a machine that is down do.
        let mut lost = 0;
        for event in std::mem::take(&mut slot.stashed) {
            match Event::from_outside(event) {
                Ok(message) => slot.outside.push(message),
                Err(Event::Arrive { .. }) => lost += 1,
                Err(_) => {}
            }
        }
        self.counted.lost_in_crash += lost;
        self.counted.crashes += 1;
        Ok(())
    }

    /// Boots `machine` again from its disk, as a new incarnation whose nodes recover what they
    /// persisted.
    fn restart(&mut self, machine: MachineId) -> Result<(), HardwareError> {
        let slot = &mut self.machines[machine.index()];
        let disk = match std::mem::replace(&mut slot.power, Power::Down(Disk::default())) {
            Power::Down(disk) => disk,
            up => {
                slot.power = up;
                return Err(HardwareError::FaultRefused {
                    fault: format!("restart {machine}"),
                    reason: format!("{machine} is up"),
                });
            }
        };
        let manager = NodeManager::restart(
            machine,
            Arc::clone(&self.registry),
            self.seed,
            self.reliable,
            disk,
            self.now_us.0,
        );
        let mut manager = match manager {
            Ok(manager) => manager,
            Err(failure) => return Err(self.failed(failure, None)),
        };
        if self.describe {
            manager.track_touched();
        }
        self.machines[machine.index()].power = Power::Up(manager);
        self.counted.restarts += 1;
        self.carry_effects(machine, &None)?;
        for (to, message) in std::mem::take(&mut self.machines[machine.index()].outside) {
            self.send(to, message)?;
        }
        Ok(())
    }

    /// Sends on what waited for the link between `a` and `b`, in the order it was sent.
    fn release_held(&mut self, a: MachineId, b: MachineId) -> Result<(), HardwareError> {
        let (now, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|held| (held.from, held.to) == (a, b) || (held.from, held.to) == (b, a));
        self.held = kept;
        for held in now {
            let mut outbox = self.outbox(&held.cause);
            outbox.transmit(held.from, held.to, held.envelope)?;
        }
        Ok(())
    }

    /// Processes one event that is due now, or, if its machine is paused, puts it off until the
    /// machine goes on (events put off keep their relative order).
    fn step(&mut self, event: Event) -> Result<(), HardwareError> {
        if let Some(machine) = Self::machine_of(&event) {
            let slot = &mut self.machines[machine.index()];
            if slot.manager().is_none() {
                // A machine that is down hears nothing, and its timers died with it; a message
                // from outside waits for its restart.
                match Event::from_outside(event) {
                    Ok(message) => slot.outside.push(message),
                    Err(Event::Arrive { .. }) => self.counted.lost_in_crash += 1,
                    Err(_) => {}
                }
                return Ok(());
            }
            if let Event::Wake { incarnation, .. } = &event {
                if *incarnation != slot.incarnation() {
                    return Ok(());
                }
            }
            if slot.pauses > 0 {
                slot.stashed.push(event);
                return Ok(());
            }
        }
        if self.describe {
            self.last = Some(self.describe_event(&event));
        }
        if self.max_events.is_some_and(|max| self.events >= max) {
            return Err(HardwareError::Capacity(format!(
                "the run reached its limit of {} events at {:.3} ms",
                self.events,
                self.now_us.as_millis_f64()
            )));
        }
        self.events += 1;
        let machine = Self::machine_of(&event);
        let result = self.process(event);
        if self.describe {
            self.note_touched(machine);
        }
        result
    }

    /// Processes one event that is due now on a machine that is up and going.
    fn process(&mut self, event: Event) -> Result<(), HardwareError> {
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
                let now_us = self.now_us.0;
                let manager = self.manager(to)?;
                if let Err(failure) = manager.handle(now_us, envelope) {
                    return Err(self.failed(failure, extend(cause)));
                }
                if manager.has_effects() {
                    self.carry_effects(to, &extend(cause))?;
                }
            }
            Event::Wake {
                machine,
                timer,
                cause,
                ..
            } => {
                self.trace.wake(self.now_us, machine, timer);
                if let Some(recorder) = &mut self.recorder {
                    self.current = Some(recorder.timer(self.now_us.0, machine, timer));
                }
                let now_us = self.now_us.0;
                if let Err(failure) = self.manager(machine)?.fire_timer(now_us, timer) {
                    return Err(self.failed(failure, cause));
                }
                self.carry_effects(machine, &cause)?;
            }
            Event::Fault(fault) => self.apply(&fault)?,
        }
        Ok(())
    }

    /// Notes in the last event the nodes of `machine` it touched.
    fn note_touched(&mut self, machine: Option<MachineId>) {
        let Some(machine) = machine else { return };
        let Some(last) = &mut self.last else { return };
        let Some(manager) = self.machines[machine.index()].manager_mut() else {
            return;
        };
        last.touched.clear();
        manager.take_touched(&mut last.touched);
    }

    /// What `event` is, for [`Hardware::last_event`].
    fn describe_event(&self, event: &Event) -> LastEvent {
        let (machine, what, cause) = match event {
            Event::Arrive {
                from,
                to,
                envelope,
                cause,
                ..
            } => {
                let what = match envelope.payload() {
                    Some(Envelope::Deliver {
                        from: sender,
                        to: id,
                        message,
                    }) => What::Delivery {
                        sender: *sender,
                        receiver: NodeHandle {
                            id: *id,
                            machine: *to,
                        },
                        message: message.clone(),
                    },
                    _ => What::Receipt {
                        from: *from,
                        to: *to,
                        kind: envelope.kind().to_owned(),
                    },
                };
                (Some(*to), what, cause.clone())
            }
            Event::Wake {
                machine,
                timer,
                cause,
                ..
            } => (
                Some(*machine),
                What::Timer {
                    machine: *machine,
                    timer: timer.0,
                },
                cause.clone(),
            ),
            Event::Fault(fault) => (None, What::Fault(fault.clone()), None),
        };
        LastEvent {
            at_us: self.now_us,
            machine,
            what,
            touched: Vec::new(),
            cause,
        }
    }

    fn schedule(&mut self, at_us: Micros, event: Event) -> Result<(), HardwareError> {
        schedule(&mut self.queue, at_us, event)
    }

    /// Turns what machine `machine` asked for into scheduled events, through the network's
    /// latency and faults.
    fn carry_effects(&mut self, machine: MachineId, cause: &Cause) -> Result<(), HardwareError> {
        let index = self.machine_index(machine)?;
        let machines = self.machines.len();
        let Some(manager) = self.machines[index].manager_mut() else {
            return Ok(());
        };
        let incarnation = manager.incarnation();
        let mut outbox = Outbox {
            network: &mut self.network,
            queue: &mut self.queue,
            held: &mut self.held,
            now_us: self.now_us,
            machines,
            incarnation,
            no_such_machine: &mut self.no_such_machine,
            cause,
            recorder: self.recorder.as_deref_mut(),
            current: self.current,
        };
        carrier::carry_effects(manager, &mut self.scratch, &mut outbox)
    }

    /// Where transmissions go for a cause that no machine's effects carry (a released hold).
    fn outbox<'a>(&'a mut self, cause: &'a Cause) -> Outbox<'a> {
        Outbox {
            network: &mut self.network,
            queue: &mut self.queue,
            held: &mut self.held,
            now_us: self.now_us,
            machines: self.machines.len(),
            incarnation: 0,
            no_such_machine: &mut self.no_such_machine,
            cause,
            recorder: self.recorder.as_deref_mut(),
            current: self.current,
        }
    }

    fn failed(&mut self, failure: NodeFailure, cause: Cause) -> HardwareError {
        if let Some(recorder) = &mut self.recorder {
            let (machine, node) = (failure.node.machine, failure.node.id);
            recorder.failure(self.now_us.0, machine, node, &failure.message, self.current);
        }
        HardwareError::NodeFailed(Box::new(FailureReport {
            failure,
            seed: self.seed,
            trace: cause::history(cause.as_ref()),
        }))
    }
}

/// Where one machine's effects go in the simulator: through the network's latency and faults
/// onto the agenda, each event carrying the causal history of what produced it.
struct Outbox<'a> {
    network: &'a mut Network,
    queue: &'a mut EventQueue<Event>,
    held: &'a mut Vec<HeldTransmission>,
    now_us: Micros,
    machines: usize,
    /// The incarnation of the machine whose effects these are (its timers die with it).
    incarnation: u32,
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
        if self.network.is_held(from, to) {
            self.network.count_held();
            self.held.push(HeldTransmission {
                from,
                to,
                envelope,
                cause: self.cause.clone(),
            });
            return Ok(());
        }
        let transit = self
            .network
            .transmit_with(self.now_us, from, to, || envelope.kind());
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
            incarnation: self.incarnation,
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
        self.machines.len()
    }

    fn now_ms(&self) -> u64 {
        self.now_us.to_millis().0
    }

    fn spawn(
        &mut self,
        machine: MachineId,
        config: &NodeConfig,
    ) -> Result<NodeHandle, HardwareError> {
        let now_us = self.now_us.0;
        let started = self.manager(machine)?.start_node(now_us, config);
        let handle = started.map_err(|failure| self.failed(failure, None))?;
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
        let index = self.machine_index(to.machine)?;
        if self.machines[index].manager().is_none() {
            self.machines[index].outside.push((to, message));
            return Ok(());
        }
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
        Ok(self.managers().flat_map(NodeManager::node_states).collect())
    }

    fn machine_states(&mut self, machine: MachineId) -> Result<Vec<NodeState>, HardwareError> {
        let index = self.machine_index(machine)?;
        Ok(self.machines[index]
            .manager()
            .map(NodeManager::node_states)
            .unwrap_or_default())
    }

    fn node_state(&mut self, node: NodeHandle) -> Result<Option<NodeState>, HardwareError> {
        let index = self.machine_index(node.machine)?;
        Ok(self.machines[index]
            .manager()
            .and_then(|manager| manager.node_state(node.id)))
    }

    fn now_us(&self) -> Micros {
        self.now_us
    }

    fn step_until(&mut self, limit_us: Micros) -> Result<bool, HardwareError> {
        let Some((at_us, event)) = self.queue.pop_due(limit_us) else {
            return Ok(false);
        };
        self.now_us = at_us;
        self.step(event)?;
        Ok(true)
    }

    fn next_event_us(&self) -> Option<Micros> {
        self.queue.next_at()
    }

    fn advance_to(&mut self, at_us: Micros) {
        self.now_us = self.now_us.max(at_us);
    }

    fn describe_events(&mut self) {
        self.describe = true;
        for machine in &mut self.machines {
            if let Some(manager) = machine.manager_mut() {
                manager.track_touched();
            }
        }
    }

    fn last_event(&self) -> Option<&LastEvent> {
        self.last.as_ref()
    }

    fn states_are_a_cut(&self) -> bool {
        true
    }

    fn send_from(
        &mut self,
        from: NodeHandle,
        to: NodeHandle,
        message: Message,
    ) -> Result<(), HardwareError> {
        let now_us = self.now_us.0;
        if !self
            .manager(from.machine)?
            .send_as(now_us, from.id, to, message)
        {
            return Err(HardwareError::NoSuchNode { node: from });
        }
        self.carry_effects(from.machine, &None)
    }

    /// The one implementation of every fault, for a test's verbs and the scenario's windows
    /// alike.
    fn apply(&mut self, fault: &Fault) -> Result<(), HardwareError> {
        for machine in fault.machines() {
            self.machine_index(machine)?;
        }
        self.trace.fault(self.now_us, fault);
        match fault {
            Fault::Partition { cut, groups } => self.network.links().partition(*cut, groups),
            Fault::Repair { cut } => self.network.links().repair(*cut),
            Fault::Hold { a, b } => self.network.links().hold(*a, *b),
            Fault::Release { a, b } => {
                if self.network.links().release(*a, *b) {
                    self.release_held(*a, *b)?;
                }
            }
            Fault::Pause { machine } => {
                let machine = &mut self.machines[machine.index()];
                if machine.manager().is_some() {
                    machine.pauses += 1;
                    self.counted.pauses += 1;
                }
            }
            Fault::Resume { machine } => {
                let slot = &mut self.machines[machine.index()];
                if slot.pauses > 0 {
                    slot.pauses -= 1;
                    if slot.pauses == 0 {
                        // What waited goes on in the order it came, after what is due now.
                        for event in std::mem::take(&mut slot.stashed) {
                            schedule(&mut self.queue, self.now_us, event)?;
                        }
                    }
                }
            }
            Fault::Crash { machine } => self.crash(*machine)?,
            Fault::Restart { machine } => self.restart(*machine)?,
            Fault::Rule { kind, rule } => {
                self.network
                    .set_rule(*kind, rule.as_ref())
                    .map_err(|error| HardwareError::FaultRefused {
                        fault: fault.to_string(),
                        reason: error.to_string(),
                    })?
            }
        }
        Ok(())
    }

    fn schedule(&mut self, at_us: Micros, fault: Fault) -> Result<(), HardwareError> {
        for machine in fault.machines() {
            self.machine_index(machine)?;
        }
        let at_us = at_us.max(self.now_us);
        schedule(&mut self.queue, at_us, Event::Fault(fault))
    }

    fn counters(&self) -> Counters {
        self.stats()
    }

    fn trace_hash(&self) -> Option<String> {
        Some(self.trace.hash())
    }

    fn trace_text(&self) -> Option<&str> {
        self.trace.text()
    }

    fn down(&self) -> Vec<MachineId> {
        (0..self.machines.len())
            .filter(|index| self.machines[*index].manager().is_none())
            .map(|index| MachineId(index as u32))
            .collect()
    }
}
