//! The controller a node is handed for one callback.

use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use super::{Core, Effect, Envelope, TimerTarget};
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle};
use crate::node::{MachineController, NodeError, Persisted, TimerId};

/// Borrows the manager's shared parts for the duration of one node callback.
pub(super) struct Context<'a> {
    core: &'a mut Core,
    me: NodeHandle,
    /// The node's random stream, if it has drawn before.
    random: &'a mut Option<Box<ChaCha8Rng>>,
}

impl<'a> Context<'a> {
    pub(super) fn new(
        core: &'a mut Core,
        me: NodeHandle,
        random: &'a mut Option<Box<ChaCha8Rng>>,
    ) -> Self {
        Context { core, me, random }
    }
}

impl MachineController for Context<'_> {
    fn me(&self) -> NodeHandle {
        self.me
    }

    fn machine(&self) -> MachineId {
        self.core.machine
    }

    fn now_ms(&self) -> u64 {
        self.core.now_us / 1000
    }

    fn send(&mut self, to: NodeHandle, message: Message) {
        self.core.effects.push(Effect::Transmit {
            to: to.machine,
            envelope: Envelope::Deliver {
                from: Some(self.me),
                to: to.id,
                message,
            },
        });
    }

    fn spawn(&mut self, machine: MachineId, config: NodeConfig) -> Result<NodeHandle, NodeError> {
        // Only the type is checked here: a config that does not fit its type fails when the
        // target machine builds it, as a failure of the new node (building it here as well would
        // copy every config one more time).
        if !self.core.registry.knows(config.kind()) {
            return Err(NodeError::UnknownNodeType(config.kind().to_owned()));
        }
        let id = self.core.allocate_id();
        self.core.effects.push(Effect::Transmit {
            to: machine,
            envelope: Envelope::Spawn { id, config },
        });
        Ok(NodeHandle { id, machine })
    }

    fn set_timer(&mut self, after_ms: u64, tag: u64) -> TimerId {
        self.core.set_timer(
            after_ms.saturating_mul(1000),
            TimerTarget::Node(self.me.id, tag),
        )
    }

    fn cancel_timer(&mut self, timer: TimerId) {
        // A node may cancel only its own timers: the runtime's (retransmission, acknowledgement)
        // and other nodes' share the id space but are out of its reach.
        let own = matches!(
            self.core.timers.get(&timer),
            Some(TimerTarget::Node(owner, _)) if *owner == self.me.id
        );
        if own {
            self.core.timers.remove(&timer);
        }
    }

    fn random(&mut self) -> &mut dyn RngCore {
        let (core, me) = (&*self.core, self.me.id);
        self.random
            .get_or_insert_with(|| Box::new(core.random_of(me)))
            .as_mut()
    }

    fn persist(&mut self, state: Persisted) {
        self.core.persisted.insert(self.me.id, state);
    }

    fn terminate(&mut self, node: NodeHandle) {
        self.core.effects.push(Effect::Transmit {
            to: node.machine,
            envelope: Envelope::Terminate { id: node.id },
        });
    }
}
