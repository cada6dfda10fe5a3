//! Messages that overtake the spawn of the node they are for.
//!
//! Node A on machine 0 spawns B on machine 2 and hands B's handle to C on machine 1; C's message
//! to B travels on the link 1→2 while the spawn travels on the link 0→2, so the message can arrive
//! first. The receiving machine must then hold it, not drop it: the spawn is on its way.
//!
//! A node id names the machine that allocated it (its origin) and a serial number that machine
//! never reuses, allocated in increasing order. The spawns an origin sends one machine travel on
//! one ordered link, so they arrive in serial order. A machine therefore knows, for each origin,
//! a serial below which every spawn meant for it has arrived; a message for a missing node below
//! it is undeliverable (the node never existed here, or was terminated), and a message at or above
//! it waits. To learn more without waiting for the next spawn, the machine asks the origin, whose
//! answer travels on the same link as its spawns and so arrives after every spawn sent before it.

use std::collections::{BTreeMap, BTreeSet};

use super::Envelope;
use crate::messages::{MachineId, NodeId};

/// What to do with an envelope for a node this machine does not have.
#[derive(Debug)]
pub(super) enum Missing {
    /// It is held until the node's spawn arrives; ask `ask` (if any) which spawns it has sent.
    Held {
        /// The origin machine to ask, if it has not been asked already.
        ask: Option<MachineId>,
    },
    /// The node will never exist here: the envelope is undeliverable.
    Undeliverable,
}

/// Envelopes waiting for their node's spawn, and what is known of each origin's spawns.
#[derive(Debug, Default)]
pub(super) struct SpawnOrder {
    /// Envelopes for nodes whose spawn may still arrive, by node, in arrival order.
    waiting: BTreeMap<NodeId, Vec<Envelope>>,
    /// Per origin machine: every spawn of a node with a serial below this one has arrived.
    spawned_below: BTreeMap<u32, u32>,
    /// Origins asked which spawns they have sent, not yet answered.
    asked: BTreeSet<u32>,
    /// How many envelopes are waiting.
    held: usize,
}

impl SpawnOrder {
    /// Decides about `envelope`, addressed to node `id`, which machine `me` does not have.
    pub(super) fn missing(&mut self, me: MachineId, id: NodeId, envelope: Envelope) -> Missing {
        // A machine creates the nodes it names for itself before their handles exist anywhere.
        let named_here = id.origin == me.0;
        if named_here || id.serial < self.spawned_below(id.origin) {
            return Missing::Undeliverable;
        }
        self.waiting.entry(id).or_default().push(envelope);
        self.held += 1;
        let ask = self.asked.insert(id.origin).then_some(MachineId(id.origin));
        Missing::Held { ask }
    }

    /// Node `id` has been spawned here: returns the envelopes that waited for it (to deliver now,
    /// in order), and those that waited for nodes of the same origin with lower serials, whose
    /// spawns would have arrived before this one (undeliverable).
    pub(super) fn spawned(&mut self, id: NodeId) -> (Vec<Envelope>, Vec<Envelope>) {
        self.raise(id.origin, id.serial.saturating_add(1));
        let released = self.waiting.remove(&id).unwrap_or_default();
        self.held -= released.len();
        let lost = self.take_below(id.origin, id.serial);
        (released, lost)
    }

    /// Origin `from` has sent every spawn below `below`: returns the envelopes that can now never
    /// be delivered, and whether to ask again (some still wait for later spawns).
    pub(super) fn answered(&mut self, from: MachineId, below: u32) -> (Vec<Envelope>, bool) {
        self.asked.remove(&from.0);
        self.raise(from.0, below);
        let lost = self.take_below(from.0, below);
        let again = self.waiting.keys().any(|id| id.origin == from.0);
        if again {
            self.asked.insert(from.0);
        }
        (lost, again)
    }

    /// How many envelopes wait for a spawn.
    pub(super) fn held(&self) -> usize {
        self.held
    }

    fn spawned_below(&self, origin: u32) -> u32 {
        self.spawned_below.get(&origin).copied().unwrap_or(0)
    }

    fn raise(&mut self, origin: u32, below: u32) {
        let known = self.spawned_below.entry(origin).or_insert(0);
        *known = (*known).max(below);
    }

    /// Removes and returns what waits for nodes of `origin` with serials below `below`.
    fn take_below(&mut self, origin: u32, below: u32) -> Vec<Envelope> {
        let first = NodeId { origin, serial: 0 };
        let end = NodeId {
            origin,
            serial: below,
        };
        let ids: Vec<NodeId> = self.waiting.range(first..end).map(|(id, _)| *id).collect();
        let mut lost = Vec::new();
        for id in ids {
            lost.extend(self.waiting.remove(&id).unwrap_or_default());
        }
        self.held -= lost.len();
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(origin: u32, serial: u32) -> NodeId {
        NodeId { origin, serial }
    }

    fn terminate(id: NodeId) -> Envelope {
        Envelope::Terminate { id }
    }

    #[test]
    fn simulated_a_message_for_a_node_named_elsewhere_waits_for_its_spawn() {
        let mut order = SpawnOrder::default();
        let me = MachineId(2);
        let b = node(0, 5);
        let Missing::Held { ask } = order.missing(me, b, terminate(b)) else {
            panic!("held");
        };
        assert_eq!(ask, Some(MachineId(0)), "the origin is asked once");
        assert!(matches!(
            order.missing(me, b, terminate(b)),
            Missing::Held { ask: None }
        ));
        assert_eq!(order.held(), 2);
        let (released, lost) = order.spawned(b);
        assert_eq!(released.len(), 2);
        assert!(lost.is_empty());
        assert_eq!(order.held(), 0);
    }

    #[test]
    fn simulated_a_message_for_a_node_named_here_or_below_the_horizon_is_undeliverable() {
        let mut order = SpawnOrder::default();
        let me = MachineId(2);
        assert!(matches!(
            order.missing(me, node(2, 0), terminate(node(2, 0))),
            Missing::Undeliverable
        ));
        order.spawned(node(0, 7));
        assert!(matches!(
            order.missing(me, node(0, 3), terminate(node(0, 3))),
            Missing::Undeliverable
        ));
    }

    #[test]
    fn simulated_an_answer_settles_what_waits_below_it_and_asks_again_for_the_rest() {
        let mut order = SpawnOrder::default();
        let me = MachineId(1);
        order.missing(me, node(0, 3), terminate(node(0, 3)));
        order.missing(me, node(0, 9), terminate(node(0, 9)));
        let (lost, again) = order.answered(MachineId(0), 5);
        assert_eq!(lost, vec![terminate(node(0, 3))]);
        assert!(again, "serial 9 may still come");
        let (released, lost) = order.spawned(node(0, 9));
        assert_eq!((released.len(), lost.len()), (1, 0));
        assert_eq!(order.held(), 0);
    }

    #[test]
    fn simulated_a_later_spawn_means_earlier_ones_are_not_coming() {
        let mut order = SpawnOrder::default();
        let me = MachineId(1);
        order.missing(me, node(0, 3), terminate(node(0, 3)));
        let (released, lost) = order.spawned(node(0, 4));
        assert!(released.is_empty());
        assert_eq!(lost, vec![terminate(node(0, 3))]);
    }
}
