//! Checks over the nodes' typed states: invariants after every event, and "eventually" checks
//! once the run has settled.

use std::any::Any;
use std::fmt;

use crate::manager::NodeState;
use crate::messages::{MachineId, NodeHandle};
use crate::node::{Handle, TypedNode};
use crate::time::Micros;

/// What a check found wrong: any type that can say so (the test's own error type, a string).
/// [`InvariantBroken::violation`] gives it back as its type.
pub trait Violation: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The violation, to be read back as its type.
    fn as_any(&self) -> &dyn Any;
}

impl<V: fmt::Debug + fmt::Display + Send + Sync + 'static> Violation for V {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A check over the states: `Ok`, or what is wrong.
pub(super) type CheckFn = Box<dyn Fn(&States) -> Result<(), Box<dyn Violation>> + Send>;

/// A named check.
pub(super) struct Check {
    pub(super) name: String,
    pub(super) check: CheckFn,
}

impl Check {
    /// A check whose violations are already boxed (an application's).
    pub(super) fn boxed(
        name: &str,
        check: impl Fn(&States) -> Result<(), Box<dyn Violation>> + Send + 'static,
    ) -> Self {
        Check {
            name: name.to_owned(),
            check: Box::new(check),
        }
    }

    pub(super) fn new<V: Violation>(
        name: &str,
        check: impl Fn(&States) -> Result<(), V> + Send + 'static,
    ) -> Self {
        Check {
            name: name.to_owned(),
            check: Box::new(move |states| {
                check(states).map_err(|violation| Box::new(violation) as Box<dyn Violation>)
            }),
        }
    }
}

/// A check that did not hold: which, when, on which event, why, and what led to it.
#[derive(Debug)]
pub struct InvariantBroken {
    /// The check's name.
    pub check: String,
    /// The seed of the run.
    pub seed: u64,
    /// When it was found broken (right after the event that broke it).
    pub at_us: Micros,
    /// The event that broke it, e.g. `m1 delivers n0.3@m0 --gossip--> n1.2@m1 {…}` (none for
    /// an "eventually" check, which runs once the run has settled).
    pub event: Option<String>,
    /// The messages that led to that event, oldest first.
    pub history: Vec<String>,
    /// What the check said.
    pub violation: Box<dyn Violation>,
}

impl InvariantBroken {
    /// The check's violation as its own type, if it is one.
    pub fn violation<V: 'static>(&self) -> Option<&V> {
        (*self.violation).as_any().downcast_ref::<V>()
    }
}

impl fmt::Display for InvariantBroken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant `{}` broken at {:.3} ms (seed {}): {}",
            self.check,
            self.at_us.as_millis_f64(),
            self.seed,
            self.violation
        )?;
        if let Some(event) = &self.event {
            write!(f, "\n  by the event: {event}")?;
        }
        if !self.history.is_empty() {
            write!(f, "\n  which the following messages led to, oldest first:")?;
            for line in &self.history {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for InvariantBroken {}

/// The states of every node of a system at one moment, as a check sees them. Every state here
/// was read back as its node type's `State` before the check ran: one that did not stopped the
/// run with an error instead.
///
/// On hardware on the real clock the machines are read one after another while they run, so the
/// states need not be a consistent cut: a node may show a message whose sender, read earlier,
/// had not sent it yet. A check that relates nodes on different machines judges only where
/// [`States::is_a_cut`] (see docs/guarantees.md).
#[derive(Debug)]
pub struct States {
    /// By machine, each machine's nodes in creation order.
    pub(super) machines: Vec<Vec<NodeState>>,
    /// Whether the states make a consistent cut.
    pub(super) cut: bool,
    /// The nodes whose states were read again since the checks last ran.
    pub(super) fresh: Vec<NodeHandle>,
}

impl Default for States {
    fn default() -> Self {
        States {
            machines: Vec::new(),
            cut: true,
            fresh: Vec::new(),
        }
    }
}

impl States {
    /// The states of `states`, grouped by the machine each node is on.
    pub fn new(states: Vec<NodeState>) -> Self {
        let mut machines: Vec<Vec<NodeState>> = Vec::new();
        let fresh = states.iter().map(|state| state.handle).collect();
        for state in states {
            let index = state.handle.machine.index();
            if machines.len() <= index {
                machines.resize_with(index + 1, Vec::new);
            }
            machines[index].push(state);
        }
        States {
            machines,
            cut: true,
            fresh,
        }
    }

    /// The same states, read machine by machine from machines that ran meanwhile: not a
    /// consistent cut.
    pub fn torn(mut self) -> Self {
        self.cut = false;
        self
    }

    /// Whether the states make a consistent cut (one moment of the whole system: always in
    /// simulation, and at rest), so that a check may relate nodes on different machines.
    pub fn is_a_cut(&self) -> bool {
        self.cut
    }

    /// Every node of type `N`, with its typed state, machine by machine.
    pub fn of<N: TypedNode>(&self) -> Vec<(Handle<N>, N::State)> {
        self.all()
            .filter(|state| state.node_type == N::TYPE)
            .filter_map(|state| {
                N::State::deserialize(&state.state)
                    .ok()
                    .map(|typed| (Handle::assume(state.handle), typed))
            })
            .collect()
    }

    /// The nodes of type `N` whose states were read again since the checks last ran, with
    /// their typed states: the nodes an event touched since then whose state (its counters
    /// aside) is not the same as before, the node a test spawned, every node of a machine read
    /// as a whole (after a fault, a test's fault verb, a pace on the real clock), and every node
    /// the first time. A check of what each node's state must be on its own, relating no
    /// two nodes, need look only at these: the others are as they were when it last held.
    pub fn changed<N: TypedNode>(&self) -> Vec<(Handle<N>, N::State)> {
        self.fresh
            .iter()
            .filter_map(|&handle| {
                let state = self
                    .machines
                    .get(handle.machine.index())?
                    .iter()
                    .find(|state| state.handle == handle)?;
                if state.node_type != N::TYPE {
                    return None;
                }
                N::State::deserialize(&state.state)
                    .ok()
                    .map(|typed| (Handle::assume(handle), typed))
            })
            .collect()
    }

    /// The typed state of one node, if the system has it.
    pub fn get<N: TypedNode>(&self, node: Handle<N>) -> Option<N::State> {
        let untyped = node.untyped();
        self.machines
            .get(untyped.machine.index())?
            .iter()
            .find(|state| state.handle == untyped)
            .and_then(|state| N::State::deserialize(&state.state).ok())
    }

    /// Every node's state, machine by machine.
    pub fn all(&self) -> impl Iterator<Item = &NodeState> {
        self.machines.iter().flatten()
    }

    /// The nodes on `machine` (none while it is down).
    pub fn on(&self, machine: MachineId) -> &[NodeState] {
        self.machines
            .get(machine.index())
            .map_or(&[], Vec::as_slice)
    }
}

use serde::Deserialize as _;
