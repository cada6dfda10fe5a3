//! The running system a test drives.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::checks::{Check, InvariantBroken, States};
use super::client::{Client, Reply};
use super::SystemError;
use crate::counters::Counters;
use crate::faults::{CutId, Fault, FaultRule, RuleKind};
use crate::hardware::{Hardware, LastEvent};
use crate::manager::NodeState;
use crate::messages::{MachineId, NodeHandle};
use crate::node::{config_of, message_for, Handle, NodeRegistry, TypedNode};
use crate::time::{Micros, Millis};

/// Nodes of type `N` with their typed states.
pub type Typed<N> = Vec<(Handle<N>, <N as TypedNode>::State)>;

/// How often [`Sim::settle`] looks whether anything is still in flight.
const SETTLE_STEP_MS: u64 = 10;

/// How long [`Sim::settle`] waits with nothing in flight and no message delivered before it
/// calls the system settled, in simulated milliseconds: longer than the batching and gossip
/// intervals of the nodes that ship with DistZero (30 ms and 20 ms by default).
pub const SETTLE_QUIET_MS: u64 = 1_000;

/// A system under test or under a scenario (see the [module](super) documentation): made by
/// [`Builder`](super::Builder) over simulated hardware, or by the scenario runner over the
/// hardware of any mode ([`Sim::over`]). On hardware that runs on the real clock, time passes
/// as it will and the invariants are checked when a run pauses for its pace.
pub struct Sim<'a> {
    hardware: Box<dyn Hardware + 'a>,
    seed: u64,
    registry: Arc<NodeRegistry>,
    /// What a scenario run does as time passes (a progress bar, sampling), if anything.
    pacer: Option<Pacer<'a>>,
    invariants: Vec<Check>,
    eventually: Vec<Check>,
    check_every: u64,
    since_check: u64,
    /// The states the checks see, machine by machine, refreshed where an event happened.
    states: States,
    /// Machines whose states changed since they were last read.
    stale: Vec<bool>,
    /// Nodes whose states changed since they were last read, on machines not stale as a whole.
    stale_nodes: Vec<NodeHandle>,
    /// The next partition id a test's `partition` gets (the plan's partitions have the first).
    next_cut: u32,
    /// The partitions a test made that are in force.
    cuts: Vec<CutId>,
    /// How many replies each client has handed out already.
    taken: BTreeMap<NodeHandle, usize>,
    /// The kinds of fault of the fault plan the hardware could not apply.
    not_applied: Vec<crate::faults::FaultKind>,
}

/// Messages to send from outside the system at one instant, to nodes of any types (see
/// [`Sim::send_all`]).
#[derive(Debug, Default)]
pub struct Sends(Vec<(NodeHandle, crate::messages::Message)>);

impl Sends {
    /// Adds `message` for `to`, after those already added.
    pub fn push<N: TypedNode>(
        &mut self,
        to: Handle<N>,
        message: &N::Message,
    ) -> Result<(), SystemError> {
        self.0.push((to.untyped(), message_for::<N>(message)?));
        Ok(())
    }

    /// How many messages there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a [`Pacer`] calls at each stop.
pub type Observer<'a> = Box<dyn FnMut(&mut dyn Hardware) -> Result<(), SystemError> + 'a>;

/// What a scenario run does as time passes: at most `steps` stops on the way to a time, at
/// least `min_step` apart, calling `observe` at each.
pub struct Pacer<'a> {
    /// The most stops on the way to a time.
    pub steps: u64,
    /// The shortest step.
    pub min_step: Millis,
    /// Called at each stop, with the hardware.
    pub observe: Observer<'a>,
}

/// The checks a system runs.
pub struct Checks {
    /// Invariants, after every event (or every `check_every`).
    pub(super) invariants: Vec<Check>,
    /// "Eventually" checks, once settled.
    pub(super) eventually: Vec<Check>,
    /// How many events between two looks of the invariants.
    pub(super) check_every: u64,
}

impl Checks {
    /// No checks.
    pub fn none() -> Self {
        Checks {
            invariants: Vec::new(),
            eventually: Vec::new(),
            check_every: 1,
        }
    }

    /// Adds an invariant (see [`Builder::invariant`](super::Builder::invariant)).
    pub fn invariant<V: super::checks::Violation>(
        mut self,
        name: &str,
        check: impl Fn(&States) -> Result<(), V> + Send + 'static,
    ) -> Self {
        self.invariants.push(Check::new(name, check));
        self
    }

    /// Adds an invariant whose violations are boxed already (an application's).
    pub fn boxed_invariant(
        mut self,
        name: &str,
        check: impl Fn(&States) -> Result<(), Box<dyn super::checks::Violation>> + Send + 'static,
    ) -> Self {
        self.invariants.push(Check::boxed(name, check));
        self
    }
}

impl<'a> Sim<'a> {
    /// A system over `hardware` (of any mode) whose nodes come from `registry`, running on
    /// `seed`, with `checks`, and with `plan_cuts` partitions in its fault plan (a test's own get
    /// the next ids).
    pub fn over(
        mut hardware: Box<dyn Hardware + 'a>,
        seed: u64,
        registry: Arc<NodeRegistry>,
        checks: Checks,
        plan_cuts: u32,
    ) -> Self {
        let Checks {
            invariants,
            eventually,
            check_every,
        } = checks;
        if !invariants.is_empty() {
            hardware.describe_events();
        }
        let machines = hardware.machine_count();
        let cut = hardware.states_are_a_cut();
        Sim {
            hardware,
            seed,
            registry,
            pacer: None,
            invariants,
            eventually,
            check_every,
            since_check: 0,
            states: States {
                machines: vec![Vec::new(); machines],
                cut,
            },
            stale: vec![true; machines],
            stale_nodes: Vec::new(),
            next_cut: plan_cuts,
            cuts: Vec::new(),
            taken: BTreeMap::new(),
            not_applied: Vec::new(),
        }
    }

    /// Notes the kinds of fault of the fault plan that the hardware could not apply (see
    /// [`Sim::not_applied`]).
    pub fn set_not_applied(&mut self, kinds: Vec<crate::faults::FaultKind>) {
        self.not_applied = kinds;
    }

    /// The kinds of fault of the system's fault plan that its hardware could not apply (none in
    /// simulation; the latency model and reordering elsewhere, and whatever verbs that mode
    /// refuses). A verb a test calls that the hardware cannot apply fails at the call instead.
    pub fn not_applied(&self) -> &[crate::faults::FaultKind] {
        &self.not_applied
    }

    /// Paces the run: every wait is cut into steps, and `pacer` observes each.
    pub fn pace(&mut self, pacer: Pacer<'a>) {
        self.pacer = Some(pacer);
    }

    /// How many machines the system has.
    pub fn machines(&self) -> u32 {
        u32::try_from(self.hardware.machine_count()).unwrap_or(u32::MAX)
    }

    /// The system's time, in milliseconds since it started.
    pub fn now_ms(&self) -> u64 {
        self.hardware.now_ms()
    }

    /// The seed the system runs on.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The hash of the event trace so far: the same seed and the same test give the same hash
    /// (simulated hardware; none elsewhere).
    pub fn trace_hash(&self) -> Option<String> {
        self.hardware.trace_hash()
    }

    /// The full text of the event trace so far, if the builder kept it.
    pub fn trace_text(&self) -> Option<&str> {
        self.hardware.trace_text()
    }

    /// What the runtime counted so far, over every machine (simulated hardware).
    pub fn counters(&self) -> Counters {
        self.hardware.counters()
    }

    /// The hardware beneath (for what the system's own methods do not show).
    pub fn hardware(&mut self) -> &mut dyn Hardware {
        &mut *self.hardware
    }

    /// Whether `machine` is up.
    pub fn is_up(&self, machine: impl Into<MachineId>) -> bool {
        !self.hardware.down().contains(&machine.into())
    }

    /// Creates a node of type `N` on `machine`, now.
    pub fn spawn<N: TypedNode>(
        &mut self,
        machine: impl Into<MachineId>,
        config: &N::Config,
    ) -> Result<Handle<N>, SystemError> {
        let machine = self.machine(machine.into().0)?;
        let config = config_of::<N>(config)?;
        let handle = self.hardware.spawn(machine, &config)?;
        self.changed(Some(machine), || {
            format!("a test spawns {handle} on {machine}")
        })?;
        Ok(Handle::assume(handle))
    }

    /// Sends `message` to `to` from outside the system (it arrives at once, after what is due
    /// now). A message for a machine that is down waits until the machine is back.
    pub fn send<N: TypedNode>(
        &mut self,
        to: Handle<N>,
        message: &N::Message,
    ) -> Result<(), SystemError> {
        let message = message_for::<N>(message)?;
        self.hardware.send(to.untyped(), message)?;
        Ok(())
    }

    /// Sends every message of `sends` to its node from outside the system, in order, as
    /// [`Sim::send`] one after another would at this instant; hardware on the real clock hands
    /// each machine its share in one round trip.
    pub fn send_all(&mut self, sends: Sends) -> Result<(), SystemError> {
        self.hardware.send_all(sends.0)?;
        Ok(())
    }

    /// A client on `machine` whose replies are `R`s (the builder must have registered it with
    /// [`Builder::client`](super::Builder::client)).
    pub fn client<R>(
        &mut self,
        machine: impl Into<MachineId>,
    ) -> Result<Handle<Client<R>>, SystemError>
    where
        R: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.spawn::<Client<R>>(machine, &crate::node::NoConfig {})
    }

    /// Has `client` send `message` to `to`: it leaves from the client's machine, through the
    /// network and the link layer, and the receiver sees the client as its sender.
    pub fn request<R, N: TypedNode>(
        &mut self,
        client: Handle<Client<R>>,
        to: Handle<N>,
        message: &N::Message,
    ) -> Result<(), SystemError>
    where
        R: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let message = message_for::<N>(message)?;
        self.hardware
            .send_from(client.untyped(), to.untyped(), message)?;
        Ok(())
    }

    /// The replies `client` received since the last call, in the order they arrived.
    pub fn replies<R>(&mut self, client: Handle<Client<R>>) -> Result<Vec<Reply<R>>, SystemError>
    where
        R: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let all = self.state(client)?;
        let taken = self.taken.entry(client.untyped()).or_default();
        let new = all.into_iter().skip(*taken).collect::<Vec<_>>();
        *taken += new.len();
        Ok(new)
    }

    /// The typed state of `node`.
    pub fn state<N: TypedNode>(&mut self, node: Handle<N>) -> Result<N::State, SystemError> {
        let untyped = node.untyped();
        let state = self
            .hardware
            .machine_states(untyped.machine)?
            .into_iter()
            .find(|state| state.handle == untyped)
            .ok_or_else(|| SystemError::NoSuchNode(untyped.to_string()))?;
        serde_json::from_value(state.state).map_err(|error| SystemError::UnreadableState {
            node: untyped.to_string(),
            node_type: N::TYPE.to_owned(),
            reason: error.to_string(),
        })
    }

    /// Every node of type `N` with its typed state, machine by machine. A state that does not
    /// read back as `N::State` is an error, never left out.
    pub fn states<N: TypedNode>(&mut self) -> Result<Typed<N>, SystemError> {
        let mut typed = Vec::new();
        for state in self.hardware.node_states()? {
            if state.node_type != N::TYPE {
                continue;
            }
            let read = serde_json::from_value(state.state).map_err(|error| {
                SystemError::UnreadableState {
                    node: state.handle.to_string(),
                    node_type: state.node_type.clone(),
                    reason: error.to_string(),
                }
            })?;
            typed.push((Handle::assume(state.handle), read));
        }
        Ok(typed)
    }

    /// Runs for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) -> Result<(), SystemError> {
        self.run_until(self.now_ms().saturating_add(ms))
    }

    /// Runs until the time is `at_ms` (nothing happens if that is past).
    pub fn run_until(&mut self, at_ms: u64) -> Result<(), SystemError> {
        let Some(pacer) = &self.pacer else {
            return self.run_events_until(at_ms);
        };
        let mut now = self.now_ms();
        let step = (at_ms.saturating_sub(now) / pacer.steps.max(1)).max(pacer.min_step.0);
        while now < at_ms {
            now = now.saturating_add(step).min(at_ms);
            self.run_events_until(now)?;
            if let Some(pacer) = &mut self.pacer {
                (pacer.observe)(&mut *self.hardware)?;
            }
            if self.hardware.next_event_us().is_none() && !self.invariants.is_empty() {
                // Hardware on the real clock is not stepped event by event: look at its pace.
                self.changed(None, || format!("the system at {now} ms"))?;
            }
        }
        Ok(())
    }

    /// Runs every event due by `at_ms`, checking the invariants after each.
    fn run_events_until(&mut self, at_ms: u64) -> Result<(), SystemError> {
        if self.invariants.is_empty() {
            self.hardware.run_until(at_ms)?;
            return Ok(());
        }
        let limit = Millis(at_ms).to_micros_saturating();
        while self.hardware.step_until(limit)? {
            self.after_event()?;
        }
        self.hardware.advance_to(limit);
        Ok(())
    }

    /// Runs until `holds` is true of the states (looked at after every event), for at most
    /// `within_ms` more milliseconds; whether it came true.
    pub fn run_until_true(
        &mut self,
        within_ms: u64,
        mut holds: impl FnMut(&States) -> bool,
    ) -> Result<bool, SystemError> {
        let limit = Millis(self.now_ms().saturating_add(within_ms)).to_micros_saturating();
        // Each event's machine is known from its description: only that machine's states are
        // read again.
        self.hardware.describe_events();
        self.refresh()?;
        if holds(&self.states) {
            return Ok(true);
        }
        while self.hardware.step_until(limit)? {
            self.after_event()?;
            self.refresh()?;
            if holds(&self.states) {
                return Ok(true);
            }
        }
        self.hardware.advance_to(limit);
        Ok(false)
    }

    /// Processes the next event, whenever it is due; whether there was one.
    pub fn step(&mut self) -> Result<bool, SystemError> {
        let Some(at_us) = self.hardware.next_event_us() else {
            return Ok(false);
        };
        self.hardware.step_until(at_us)?;
        self.after_event()?;
        Ok(true)
    }

    /// Runs until the system is quiet — nothing in flight (every message delivered and
    /// acknowledged) and no message delivered for [`SETTLE_QUIET_MS`] of simulated time, so that
    /// what a node's timer sends a moment after its last message (a batch, a gossip round) is
    /// seen — for at most `within_ms` plus that quiet window; then runs the "eventually" checks.
    /// It looks every 10 ms. A machine that stays down keeps its peers retrying, so the run does
    /// not settle, and the error says so; nor does a protocol that talks forever (heartbeats):
    /// run such a system with [`Sim::run_until_true`] instead.
    pub fn settle(&mut self, within_ms: u64) -> Result<(), SystemError> {
        let start = self.now_ms();
        let mut quiet_since = start;
        let mut delivered = self.hardware.counters().messages_delivered;
        loop {
            let counters = self.hardware.counters();
            let now = self.now_ms();
            let lately = counters.messages_delivered - delivered;
            delivered = counters.messages_delivered;
            if counters.in_flight > 0 || lately > 0 {
                quiet_since = now;
                let waited_ms = now.saturating_sub(start);
                if waited_ms >= within_ms {
                    return Err(SystemError::NotSettled {
                        waited_ms,
                        in_flight: counters.in_flight,
                        delivered_lately: lately,
                        down: self.hardware.down().iter().map(|m| m.0).collect(),
                    });
                }
            } else if now.saturating_sub(quiet_since) >= SETTLE_QUIET_MS {
                break;
            }
            self.run_for(SETTLE_STEP_MS)?;
        }
        self.stale.iter_mut().for_each(|stale| *stale = true);
        self.refresh()?;
        for check in &self.eventually {
            if let Err(violation) = (check.check)(&self.states) {
                return Err(InvariantBroken {
                    check: check.name.clone(),
                    seed: self.seed,
                    at_us: self.hardware.now_us(),
                    event: None,
                    history: Vec::new(),
                    violation,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Cuts the machines of different `groups` off from each other until [`Sim::repair`];
    /// machines in no group are not affected. Returns the partition's id.
    pub fn partition(&mut self, groups: &[&[u32]]) -> Result<CutId, SystemError> {
        let cut = CutId(self.next_cut);
        let groups = groups
            .iter()
            .map(|group| group.iter().map(|m| self.machine(*m)).collect())
            .collect::<Result<Vec<Vec<MachineId>>, _>>()?;
        self.apply(&Fault::Partition { cut, groups })?;
        self.next_cut += 1;
        self.cuts.push(cut);
        Ok(cut)
    }

    /// Ends partition `cut`.
    pub fn repair(&mut self, cut: CutId) -> Result<(), SystemError> {
        self.cuts.retain(|c| *c != cut);
        self.apply(&Fault::Repair { cut })
    }

    /// Ends every partition a test made.
    pub fn repair_all(&mut self) -> Result<(), SystemError> {
        for cut in std::mem::take(&mut self.cuts) {
            self.apply(&Fault::Repair { cut })?;
        }
        Ok(())
    }

    /// Holds everything sent between `a` and `b` (both ways) until [`Sim::release`].
    pub fn hold(&mut self, a: u32, b: u32) -> Result<(), SystemError> {
        let (a, b) = (self.machine(a)?, self.machine(b)?);
        self.apply(&Fault::Hold { a, b })
    }

    /// Lets what the link between `a` and `b` held go, in the order it was sent.
    pub fn release(&mut self, a: u32, b: u32) -> Result<(), SystemError> {
        let (a, b) = (self.machine(a)?, self.machine(b)?);
        self.apply(&Fault::Release { a, b })
    }

    /// Freezes `machine`: it processes nothing until [`Sim::resume`]; what arrives waits.
    pub fn pause(&mut self, machine: u32) -> Result<(), SystemError> {
        let machine = self.machine(machine)?;
        self.apply(&Fault::Pause { machine })
    }

    /// Lets a paused machine go on.
    pub fn resume(&mut self, machine: u32) -> Result<(), SystemError> {
        let machine = self.machine(machine)?;
        self.apply(&Fault::Resume { machine })
    }

    /// Cuts `machine`'s power: its nodes, timers and link-layer buffers are gone; what its nodes
    /// persisted stays on its disk.
    pub fn crash(&mut self, machine: u32) -> Result<(), SystemError> {
        let machine = self.machine(machine)?;
        self.apply(&Fault::Crash { machine })
    }

    /// Boots a crashed machine again: its nodes recover from what they persisted.
    pub fn restart(&mut self, machine: u32) -> Result<(), SystemError> {
        let machine = self.machine(machine)?;
        self.apply(&Fault::Restart { machine })
    }

    /// Replaces the drop rule (`None` switches drops off).
    pub fn drop_rule(&mut self, rule: Option<FaultRule>) -> Result<(), SystemError> {
        self.apply(&Fault::Rule {
            kind: RuleKind::Drop,
            rule,
        })
    }

    /// Replaces the duplicate rule.
    pub fn duplicate_rule(&mut self, rule: Option<FaultRule>) -> Result<(), SystemError> {
        self.apply(&Fault::Rule {
            kind: RuleKind::Duplicate,
            rule,
        })
    }

    /// Replaces the reorder rule.
    pub fn reorder_rule(&mut self, rule: Option<FaultRule>) -> Result<(), SystemError> {
        self.apply(&Fault::Rule {
            kind: RuleKind::Reorder,
            rule,
        })
    }

    /// Applies `fault` at `at_ms` (now, if that is past): the verb waits on the agenda among the
    /// events of that time, as a scenario's fault windows do (simulated hardware).
    pub fn schedule(&mut self, at_ms: u64, fault: Fault) -> Result<(), SystemError> {
        self.hardware
            .schedule(Millis(at_ms).to_micros_saturating(), fault)?;
        Ok(())
    }

    /// Applies any fault verb now (what every verb method does).
    pub fn apply(&mut self, fault: &Fault) -> Result<(), SystemError> {
        self.hardware.apply(fault)?;
        self.changed(None, || format!("a test applies the fault: {fault}"))
    }

    fn machine(&self, machine: u32) -> Result<MachineId, SystemError> {
        if machine < self.machines() {
            Ok(MachineId(machine))
        } else {
            Err(SystemError::NoSuchMachine {
                machine,
                machines: self.machines(),
            })
        }
    }

    /// Marks what the event just processed changed: the nodes it touched, or, for a fault
    /// verb or on hardware that does not say, every machine.
    fn mark_last_event(&mut self) {
        match self.hardware.last_event() {
            Some(LastEvent {
                machine: Some(machine),
                touched,
                ..
            }) => {
                let nodes = touched.iter().map(|&id| NodeHandle {
                    id,
                    machine: *machine,
                });
                self.stale_nodes.extend(nodes);
            }
            _ => self.stale.iter_mut().for_each(|stale| *stale = true),
        }
    }

    /// After one event: the invariants, if they are due.
    fn after_event(&mut self) -> Result<(), SystemError> {
        self.mark_last_event();
        if self.invariants.is_empty() {
            return Ok(());
        }
        self.since_check += 1;
        if self.since_check < self.check_every {
            return Ok(());
        }
        self.since_check = 0;
        self.check_invariants(|hardware| match hardware.last_event() {
            Some(event) => (Some(event.description()), event.history()),
            None => (None, Vec::new()),
        })
    }

    /// After something a test did: the invariants, at once.
    fn changed(
        &mut self,
        machine: Option<MachineId>,
        what: impl FnOnce() -> String,
    ) -> Result<(), SystemError> {
        match machine {
            Some(machine) => self.stale[machine.index()] = true,
            None => self.stale.iter_mut().for_each(|stale| *stale = true),
        }
        if self.invariants.is_empty() {
            return Ok(());
        }
        self.check_invariants(|_| (Some(what()), Vec::new()))
    }

    /// Runs every invariant over the states as they are now; the first that fails stops the
    /// run, with what `event` says of the event that broke it (asked only then).
    fn check_invariants(
        &mut self,
        event: impl FnOnce(&dyn Hardware) -> (Option<String>, Vec<String>),
    ) -> Result<(), SystemError> {
        self.refresh()?;
        for check in &self.invariants {
            if let Err(violation) = (check.check)(&self.states) {
                let (event, history) = event(&*self.hardware);
                return Err(InvariantBroken {
                    check: check.name.clone(),
                    seed: self.seed,
                    at_us: self.hardware.now_us(),
                    event,
                    history,
                    violation,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Reads again the states of every machine that changed, each checked to read back as its
    /// node type's `State`.
    fn refresh(&mut self) -> Result<(), SystemError> {
        for node in std::mem::take(&mut self.stale_nodes) {
            let index = node.machine.index();
            if self.stale[index] {
                continue; // read below, with its whole machine
            }
            let state = self.hardware.node_state(node)?;
            if let Some(state) = &state {
                self.check_state(state)?;
            }
            let machine = &mut self.states.machines[index];
            let at = machine.iter().position(|known| known.handle == node);
            match (at, state) {
                (Some(at), Some(state)) => machine[at] = state,
                (Some(at), None) => {
                    machine.remove(at);
                }
                (None, Some(state)) => machine.push(state),
                (None, None) => {}
            }
        }
        for index in 0..self.stale.len() {
            if !std::mem::take(&mut self.stale[index]) {
                continue;
            }
            let states = self.hardware.machine_states(MachineId(index as u32))?;
            for state in &states {
                self.check_state(state)?;
            }
            self.states.machines[index] = states;
        }
        Ok(())
    }

    /// Whether `state` reads back as its node type's `State`.
    fn check_state(&self, state: &NodeState) -> Result<(), SystemError> {
        self.registry
            .check_state(&state.node_type, &state.state)
            .map_err(|reason| SystemError::UnreadableState {
                node: state.handle.to_string(),
                node_type: state.node_type.clone(),
                reason,
            })
    }

    /// The time, in microseconds.
    pub fn now_us(&self) -> Micros {
        self.hardware.now_us()
    }
}
