//! How a system under test is made.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::checks::{Check, States, Violation};
use super::client::Client;
use super::sim::{Checks, Sim};
use super::SystemError;
use crate::faults::{FaultRule, LatencySpec, NetworkConfig};
use crate::hardware::{start, HardwareError, Started, SystemSpec, Target};
use crate::node::{NodeRegistry, TypedNode};

/// Makes a [`Sim`]: machines, seed, network, node types and checks. Defaults: 3 machines, seed
/// 0, the default network (20 ± 3 ms, no faults), reliable delivery, checks after every event.
pub struct Builder {
    machines: u32,
    seed: u64,
    network: NetworkConfig,
    registry: NodeRegistry,
    reliable: bool,
    keep_trace_text: bool,
    invariants: Vec<Check>,
    eventually: Vec<Check>,
    check_every: u64,
    target: Target,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Builder {
            machines: 3,
            seed: 0,
            network: NetworkConfig::default(),
            registry: NodeRegistry::new(),
            reliable: true,
            keep_trace_text: false,
            invariants: Vec::new(),
            eventually: Vec::new(),
            check_every: 1,
            target: Target::Simulated,
        }
    }

    /// The hardware to run on (default: simulated). The same test body then runs in
    /// containers or on instances: the fault plan goes on that hardware's schedule (see
    /// [`Sim::not_applied`] for what it could not apply) and every verb a test calls strikes
    /// its machines. Outside the simulator time is the real clock and the trace is not kept.
    pub fn on(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// How many machines (at least one).
    pub fn machines(mut self, machines: u32) -> Self {
        self.machines = machines.max(1);
        self
    }

    /// The seed every random choice derives from.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The whole network model and fault plan (its windows are applied as fault verbs).
    pub fn network(mut self, network: NetworkConfig) -> Self {
        self.network = network;
        self
    }

    /// The latency between machines.
    pub fn latency(mut self, latency: LatencySpec) -> Self {
        self.network.latency_ms = latency;
        self
    }

    /// Drops from the start (see [`Sim::drop_rule`] to change them during the run).
    pub fn drops(mut self, rule: FaultRule) -> Self {
        self.network.drop = Some(rule);
        self
    }

    /// Duplicates from the start.
    pub fn duplicates(mut self, rule: FaultRule) -> Self {
        self.network.duplicate = Some(rule);
        self
    }

    /// Reordering from the start.
    pub fn reordering(mut self, rule: FaultRule) -> Self {
        self.network.reorder = Some(rule);
        self
    }

    /// Registers node type `N`.
    pub fn node<N: TypedNode>(mut self) -> Self {
        self.registry.add::<N>();
        self
    }

    /// Registers every node type of `registry` (e.g. an application's: [`crate::app::AnyApplication::register`]).
    pub fn registry(mut self, registry: NodeRegistry) -> Self {
        self.registry.extend(registry);
        self
    }

    /// Registers the [`Client`] node with replies of type `R`, for [`Sim::client`].
    pub fn client<R>(self) -> Self
    where
        R: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.node::<Client<R>>()
    }

    /// Turns the runtime's reliable delivery off (to show what it is for).
    pub fn unreliable(mut self) -> Self {
        self.reliable = false;
        self
    }

    /// Keeps the full text of the event trace (see [`Sim::trace_text`]).
    pub fn keep_trace_text(mut self) -> Self {
        self.keep_trace_text = true;
        self
    }

    /// Adds an invariant: a check over the nodes' states that must hold after every event (or
    /// every [`Builder::check_every`] events). The first violation stops the run with
    /// [`SystemError::Invariant`].
    pub fn invariant<V: Violation>(
        mut self,
        name: &str,
        check: impl Fn(&States) -> Result<(), V> + Send + 'static,
    ) -> Self {
        self.invariants.push(Check::new(name, check));
        self
    }

    /// Adds a check that must hold once the run has settled (see [`Sim::settle`]).
    pub fn eventually<V: Violation>(
        mut self,
        name: &str,
        check: impl Fn(&States) -> Result<(), V> + Send + 'static,
    ) -> Self {
        self.eventually.push(Check::new(name, check));
        self
    }

    /// Checks the invariants after every `events`th event instead of after every one (at least
    /// 1): cheaper, but a violation that lasts fewer events may go unseen.
    pub fn check_every(mut self, events: u64) -> Self {
        self.check_every = events.max(1);
        self
    }

    /// Makes the system: the machines are up, nothing runs yet. A node type's name registered
    /// twice, by two types, is refused here.
    pub fn build(self) -> Result<Sim<'static>, SystemError> {
        self.registry.check()?;
        let spec = SystemSpec {
            machines: self.machines,
            seed: self.seed,
            network: self.network,
            keep_trace_text: self.keep_trace_text,
            reliable: self.reliable,
            observe: false,
            max_events: None,
        };
        let plan_cuts = u32::try_from(spec.network.partitions.len()).unwrap_or(u32::MAX);
        let registry = Arc::new(self.registry);
        let Started {
            hardware,
            not_applied,
            ..
        } = start(&self.target, &spec, Arc::clone(&registry)).map_err(|error| match error {
            HardwareError::Network(invalid) => SystemError::Network(invalid),
            other => other.into(),
        })?;
        let checks = Checks {
            invariants: self.invariants,
            eventually: self.eventually,
            check_every: self.check_every,
        };
        let mut sim = Sim::over(hardware, self.seed, registry, checks, plan_cuts);
        sim.set_not_applied(not_applied);
        Ok(sim)
    }
}
