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

use std::collections::BTreeMap;

use super::Envelope;
use crate::messages::{MachineId, NodeId};

/// What to do with an envelope for a node this machine does not have.
#[derive(Debug)]
pub(super) enum Missing {
    /// It is held until the node's spawn arrives; ask `ask` (if any) which spawns it has sent.
    Held {
        /// The origin machine to ask, if no question to it is outstanding.
        ask: Option<MachineId>,
    },
    /// The node will never exist here: the envelope is undeliverable.
    Undeliverable,
}

/// An envelope waiting for its node's spawn.
#[derive(Debug)]
struct Waiting {
    envelope: Envelope,
    /// The question to the origin whose answer settles it: one asked after it arrived.
    question: u64,
}

/// What is known of the spawns from one origin machine.
#[derive(Debug, Default)]
struct Origin {
    /// Every spawn of a node with a serial below this one has arrived.
    spawned_below: u32,
    /// Questions asked so far; the last is outstanding if `outstanding`.
    asked: u64,
    outstanding: bool,
}

/// Envelopes waiting for their node's spawn, and what is known of each origin's spawns.
#[derive(Debug, Default)]
pub(super) struct SpawnOrder {
    /// Envelopes for nodes whose spawn may still arrive, by node, in arrival order.
    waiting: BTreeMap<NodeId, Vec<Waiting>>,
    origins: BTreeMap<u32, Origin>,
    /// How many envelopes are waiting.
    held: usize,
}

impl SpawnOrder {
    /// Decides about `envelope`, addressed to node `id`, which machine `me` does not have.
    pub(super) fn missing(&mut self, me: MachineId, id: NodeId, envelope: Envelope) -> Missing {
        // A machine creates the nodes it names for itself before their handles exist anywhere.
        let origin = self.origins.entry(id.origin).or_default();
        if id.origin == me.0 || id.serial < origin.spawned_below {
            return Missing::Undeliverable;
        }
        // A question already on its way may have been answered before this node was named: the
        // envelope is settled by the next one.
        let ask = !origin.outstanding;
        let question = origin.asked + 1;
        if ask {
            origin.asked = question;
            origin.outstanding = true;
        }
        self.waiting
            .entry(id)
            .or_default()
            .push(Waiting { envelope, question });
        self.held += 1;
        Missing::Held {
            ask: ask.then_some(MachineId(id.origin)),
        }
    }

    /// Node `id` has been spawned here: returns the envelopes that waited for it (to deliver now,
    /// in order), and how many waited for nodes of the same origin with lower serials, whose
    /// spawns would have arrived before this one (undeliverable, dropped).
    pub(super) fn spawned(&mut self, id: NodeId) -> (Vec<Envelope>, usize) {
        let origin = self.origins.entry(id.origin).or_default();
        origin.spawned_below = origin.spawned_below.max(id.serial.saturating_add(1));
        let released: Vec<Envelope> = self
            .waiting
            .remove(&id)
            .unwrap_or_default()
            .into_iter()
            .map(|waiting| waiting.envelope)
            .collect();
        self.held -= released.len();
        let lost = self.drop_settled(id.origin, id.serial, 0);
        (released, lost)
    }

    /// Origin `from` answers the outstanding question: it has sent every spawn below `below`.
    /// Returns how many envelopes can now never be delivered (dropped), and whether to ask again
    /// (some arrived after the question was asked, for nodes named since).
    pub(super) fn answered(&mut self, from: MachineId, below: u32) -> (usize, bool) {
        let origin = self.origins.entry(from.0).or_default();
        origin.spawned_below = origin.spawned_below.max(below);
        origin.outstanding = false;
        let question = origin.asked;
        // Below the answer: spawned and gone. At or above it: never named for this machine when
        // the question was answered, so an envelope that arrived before the question was asked
        // is for a node that does not exist.
        let lost = self.drop_settled(from.0, below, question);
        let again = self
            .waiting
            .range(first_of(from.0)..)
            .take_while(|(id, _)| id.origin == from.0)
            .next()
            .is_some();
        if again {
            let origin = self.origins.entry(from.0).or_default();
            origin.asked += 1;
            origin.outstanding = true;
        }
        (lost, again)
    }

    /// How many envelopes wait for a spawn.
    pub(super) fn held(&self) -> usize {
        self.held
    }

    /// Drops what waits for nodes of `origin` with serials below `below`, and what waits for
    /// any node of `origin` to be settled by question `question` or an earlier one.
    fn drop_settled(&mut self, origin: u32, below: u32, question: u64) -> usize {
        let ids: Vec<NodeId> = self
            .waiting
            .range(first_of(origin)..)
            .take_while(|(id, _)| id.origin == origin)
            .map(|(id, _)| *id)
            .collect();
        let mut lost = 0;
        for id in ids {
            let Some(list) = self.waiting.get_mut(&id) else {
                continue;
            };
            let before = list.len();
            list.retain(|waiting| id.serial >= below && waiting.question > question);
            lost += before - list.len();
            if list.is_empty() {
                self.waiting.remove(&id);
            }
        }
        self.held -= lost;
        lost
    }
}

/// The lowest node id of `origin`.
fn first_of(origin: u32) -> NodeId {
    NodeId { origin, serial: 0 }
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
        assert_eq!(lost, 0);
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
    fn simulated_an_answer_settles_what_arrived_before_the_question() {
        let mut order = SpawnOrder::default();
        let me = MachineId(1);
        order.missing(me, node(0, 9), terminate(node(0, 9)));
        let (lost, again) = order.answered(MachineId(0), 5);
        assert_eq!(lost, 1, "9 was not named when the origin answered");
        assert!(!again);
        assert_eq!(order.held(), 0);
    }

    #[test]
    fn simulated_what_arrives_while_a_question_is_out_waits_for_the_next_answer() {
        let mut order = SpawnOrder::default();
        let me = MachineId(1);
        order.missing(me, node(0, 3), terminate(node(0, 3)));
        // Node 9 may have been named after the origin answered the first question.
        let Missing::Held { ask } = order.missing(me, node(0, 9), terminate(node(0, 9))) else {
            panic!("held");
        };
        assert_eq!(ask, None, "one question at a time");
        let (lost, again) = order.answered(MachineId(0), 5);
        assert_eq!(lost, 1);
        assert!(again, "serial 9 may still come");
        let (released, lost) = order.spawned(node(0, 9));
        assert_eq!((released.len(), lost), (1, 0));
        assert_eq!(order.held(), 0);
    }

    #[test]
    fn simulated_a_later_spawn_means_earlier_ones_are_not_coming() {
        let mut order = SpawnOrder::default();
        let me = MachineId(1);
        order.missing(me, node(0, 3), terminate(node(0, 3)));
        let (released, lost) = order.spawned(node(0, 4));
        assert!(released.is_empty());
        assert_eq!(lost, 1);
    }
}
