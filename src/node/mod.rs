//! Nodes: state machines that see the world only through a [`MachineController`].
//!
//! A node never reads a clock, a socket, a thread, an environment variable or a global random
//! generator. Everything it does — send, spawn, set a timer, draw a random number, terminate —
//! goes through the controller it is handed, which is what lets the same node run in the
//! simulator, in a container and in the cloud.

mod config;
mod controller;
mod error;
mod harness;
mod persisted;
mod registry;
mod typed;

pub use controller::{MachineController, TimerId};
pub use error::{NodeError, NodeErrorKind};
pub use harness::{Harness, Sent, Spawned};
pub use persisted::Persisted;
pub use registry::{DuplicateNodeType, NodeFactory, NodeRegistry};
pub use typed::{
    config_of, message_for, Ctl, Handle, NoConfig, NoTimer, ReplyTo, TypedNode, Volatile,
};

use crate::messages::{Message, NodeHandle};

/// A node: a state machine driven by messages and timers.
///
/// `Send` so that a machine's nodes can live on a runtime thread in the real-time modes.
pub trait Node: Send {
    /// Called once, right after the node is created on its machine.
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        let _ = ctl;
        Ok(())
    }

    /// Called instead of [`Node::start`] when the node is built again after its machine
    /// crashed and rebooted, with what it last persisted through
    /// [`MachineController::persist`] (`None` if it never did). By default it starts afresh.
    fn recover(
        &mut self,
        ctl: &mut dyn MachineController,
        persisted: Option<&serde_json::Value>,
    ) -> Result<(), NodeError> {
        let _ = persisted;
        self.start(ctl)
    }

    /// Handles one message. `sender` is `None` for messages from outside the system (a
    /// scenario, a test, a control request).
    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError>;

    /// Handles a timer set with [`MachineController::set_timer`]; `tag` is the value given then.
    fn timer(&mut self, ctl: &mut dyn MachineController, tag: u64) -> Result<(), NodeError> {
        let _ = (ctl, tag);
        Ok(())
    }

    /// The node's observable state as JSON, for tests, reports and control requests.
    fn state(&self) -> serde_json::Value;
}
