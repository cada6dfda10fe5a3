//! The store's two node types: a sequencer that puts every write in one order, and replicas that
//! apply the writes in that order.

use std::collections::BTreeMap;

use dist_zero::messages::NodeHandle;
use dist_zero::node::{Ctl, Handle, NoConfig, NoTimer, NodeError, TypedNode, Volatile};
use serde::{Deserialize, Serialize};

/// A client's write: set `key` to `value`. `id` names the write (its place in the scenario).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// Which write it is.
    pub id: u32,
    /// The key it sets.
    pub key: String,
    /// The value it sets the key to.
    pub value: i64,
}

/// What the sequencer receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToSequencer {
    /// From a replica as it starts: send me every write, from the first. The replica names
    /// itself with its typed handle, so the sequencer answers it without a cast.
    Join {
        /// The replica that joins.
        replica: Handle<Replica>,
    },
    /// From a replica: give this write its place in the order.
    Submit {
        /// The write.
        write: Write,
    },
}

/// What a replica receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToReplica {
    /// From a client: a write to make.
    Put {
        /// The write.
        write: Write,
    },
    /// From the sequencer: the writes at places `first`, `first + 1`, … of the order.
    Apply {
        /// The place of the first write.
        first: u64,
        /// The writes, in order.
        writes: Vec<Write>,
    },
}

/// The sequencer's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencerState {
    /// How many replicas have joined.
    pub replicas: usize,
    /// The order: the ids of the writes, in the order every replica must apply them.
    pub order: Vec<u32>,
}

/// Gives every write submitted to it the next place in one order, and sends it to every
/// replica; a replica that joins late (or again, after its machine rebooted) is first sent every
/// write so far.
#[derive(Debug, Default)]
pub struct Sequencer {
    replicas: Vec<Handle<Replica>>,
    log: Vec<Write>,
}

impl TypedNode for Sequencer {
    const TYPE: &'static str = "KvSequencer";
    type Config = NoConfig;
    type Message = ToSequencer;
    type State = SequencerState;
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(_: NoConfig) -> Result<Self, NodeError> {
        Ok(Sequencer::default())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: ToSequencer,
    ) -> Result<(), NodeError> {
        match message {
            ToSequencer::Join { replica } => {
                // A replica that joins again has rebooted with nothing: it gets every write
                // again (and ignores what it has).
                if !self.log.is_empty() {
                    let writes = self.log.clone();
                    ctl.send(replica, &ToReplica::Apply { first: 0, writes })?;
                }
                if !self.replicas.contains(&replica) {
                    self.replicas.push(replica);
                }
            }
            ToSequencer::Submit { write } => {
                let first = self.log.len() as u64;
                let apply = ToReplica::Apply {
                    first,
                    writes: vec![write.clone()],
                };
                ctl.broadcast(&self.replicas, &apply)?;
                self.log.push(write);
            }
        }
        Ok(())
    }

    fn state(&self) -> SequencerState {
        SequencerState {
            replicas: self.replicas.len(),
            order: self.log.iter().map(|write| write.id).collect(),
        }
    }
}

/// A replica's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaConfig {
    /// Its place among the replicas (reported in its state).
    pub index: u32,
    /// The sequencer it forwards writes to.
    pub sequencer: Handle<Sequencer>,
}

/// A replica's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaState {
    /// Its place among the replicas.
    pub index: u32,
    /// The ids of the writes it has applied, in the order it applied them.
    pub applied: Vec<u32>,
    /// Its copy of the store.
    pub store: BTreeMap<String, i64>,
}

/// Holds a copy of the store: forwards the writes clients make to the sequencer, and applies
/// the writes the sequencer sends in their order, holding back any that arrive ahead of their
/// place and ignoring any it has already applied.
#[derive(Debug)]
pub struct Replica {
    index: u32,
    sequencer: Handle<Sequencer>,
    applied: Vec<u32>,
    store: BTreeMap<String, i64>,
    /// Writes that arrived ahead of their place, by place.
    early: BTreeMap<u64, Write>,
}

impl TypedNode for Replica {
    const TYPE: &'static str = "KvReplica";
    type Config = ReplicaConfig;
    type Message = ToReplica;
    type State = ReplicaState;
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(config: ReplicaConfig) -> Result<Self, NodeError> {
        Ok(Replica {
            index: config.index,
            sequencer: config.sequencer,
            applied: Vec::new(),
            store: BTreeMap::new(),
            early: BTreeMap::new(),
        })
    }

    fn start(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        let replica = ctl.me();
        ctl.send(self.sequencer, &ToSequencer::Join { replica })
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: ToReplica,
    ) -> Result<(), NodeError> {
        match message {
            ToReplica::Put { write } => ctl.send(self.sequencer, &ToSequencer::Submit { write }),
            ToReplica::Apply { first, writes } => {
                let next = self.applied.len() as u64;
                for (place, write) in (first..).zip(writes) {
                    if place >= next {
                        self.early.entry(place).or_insert(write);
                    }
                }
                while let Some(write) = self.early.remove(&(self.applied.len() as u64)) {
                    self.applied.push(write.id);
                    self.store.insert(write.key, write.value);
                }
                Ok(())
            }
        }
    }

    fn state(&self) -> ReplicaState {
        ReplicaState {
            index: self.index,
            applied: self.applied.clone(),
            store: self.store.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dist_zero::node::Harness;

    fn write(id: u32, key: &str, value: i64) -> Write {
        Write {
            id,
            key: key.into(),
            value,
        }
    }

    fn sequencer_handle() -> Handle<Sequencer> {
        Handle::assume(Harness::<Sequencer>::handle(0, 1))
    }

    fn replica() -> Harness<Replica> {
        let config = ReplicaConfig {
            index: 0,
            sequencer: sequencer_handle(),
        };
        Harness::at(Harness::<Replica>::handle(1, 1), config, 0).expect("builds")
    }

    #[test]
    fn simulated_a_replica_joins_and_forwards_what_clients_write() {
        let mut replica = replica();
        let sent = replica.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, sequencer_handle().untyped());
        assert_eq!(
            sent[0].decode::<Sequencer>(),
            Ok(ToSequencer::Join {
                replica: Handle::assume(replica.me())
            })
        );
        let put = write(0, "x", 1);
        replica
            .receive(None, ToReplica::Put { write: put.clone() })
            .expect("put");
        let sent = replica.take_sent();
        assert_eq!(
            sent[0].decode::<Sequencer>(),
            Ok(ToSequencer::Submit { write: put })
        );
        assert!(
            replica.state().applied.is_empty(),
            "applied only when sequenced"
        );
    }

    #[test]
    fn simulated_a_replica_applies_in_order_holding_back_early_writes_and_ignoring_repeats() {
        let mut replica = replica();
        let from = Some(sequencer_handle().untyped());
        let second = ToReplica::Apply {
            first: 1,
            writes: vec![write(7, "x", 2)],
        };
        replica.receive(from, second.clone()).expect("early");
        assert!(replica.state().applied.is_empty(), "held back");
        let first = ToReplica::Apply {
            first: 0,
            writes: vec![write(3, "x", 1), write(7, "x", 2)],
        };
        replica.receive(from, first.clone()).expect("in order");
        replica.receive(from, first).expect("again");
        replica.receive(from, second).expect("again");
        let state = replica.state();
        assert_eq!(state.applied, vec![3, 7], "each write once, in order");
        assert_eq!(state.store, BTreeMap::from([("x".to_owned(), 2)]));
    }

    #[test]
    fn simulated_the_sequencer_orders_writes_and_catches_up_a_late_replica() {
        let mut sequencer = Harness::<Sequencer>::new(NoConfig {}).expect("builds");
        let (a, b) = (
            Harness::<Replica>::handle(1, 1),
            Harness::<Replica>::handle(2, 1),
        );
        let join = |replica| ToSequencer::Join {
            replica: Handle::assume(replica),
        };
        sequencer.receive(Some(a), join(a)).expect("join");
        for (id, value) in [(4, 10), (2, 20)] {
            let submit = ToSequencer::Submit {
                write: write(id, "k", value),
            };
            sequencer.receive(Some(a), submit).expect("submit");
        }
        let sent = sequencer.take_sent();
        let places: Vec<(NodeHandle, u64)> = sent
            .iter()
            .map(|sent| match sent.decode::<Replica>() {
                Ok(ToReplica::Apply { first, .. }) => (sent.to, first),
                other => panic!("not an apply: {other:?}"),
            })
            .collect();
        assert_eq!(places, vec![(a, 0), (a, 1)]);
        sequencer.receive(Some(b), join(b)).expect("late join");
        sequencer
            .receive(Some(b), join(b))
            .expect("again, as after a reboot");
        let sent = sequencer.take_sent();
        assert_eq!(sent.len(), 2, "a catch-up for every join");
        assert_eq!(sent[0], sent[1]);
        assert_eq!(sent[0].to, b);
        assert_eq!(
            sent[0].decode::<Replica>(),
            Ok(ToReplica::Apply {
                first: 0,
                writes: vec![write(4, "k", 10), write(2, "k", 20)],
            })
        );
        assert_eq!(
            sequencer.state(),
            SequencerState {
                replicas: 2,
                order: vec![4, 2],
            }
        );
    }
}
