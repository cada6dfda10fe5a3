//! The output list: a root that creates one leaf per user, and the leaves that hold each user's
//! view of the total.

use serde::{Deserialize, Serialize};

use super::chunked::Chunked;
use super::sum_node::{persist_by_default, SumNode};
use super::SumMessage;
use crate::messages::NodeHandle;
use crate::node::{Ctl, Handle, NoTimer, NodeError, TypedNode};

/// The output list's root config: the sum nodes its leaves receive from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The sum nodes every leaf is announced to.
    #[serde(default)]
    pub senders: Vec<Handle<SumNode>>,
    /// Whether the root and its leaves persist what they know (on by default).
    #[serde(default = "persist_by_default")]
    pub persist: bool,
}

/// The output list's root's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputState {
    /// Its leaves.
    pub kids: Vec<NodeHandle>,
    /// The sum nodes its leaves receive from.
    pub senders: Vec<NodeHandle>,
}

/// The root of the output list: creates an [`OutputLeafNode`] per user and announces each new
/// leaf to the senders, which then send it the running total and every later change.
///
/// It persists its leaves; after a crash it announces them all again (a sum node that already
/// has one ignores it).
#[derive(Debug)]
pub struct OutputNode {
    senders: Vec<Handle<SumNode>>,
    /// Its leaves (shared with what it persisted, see [`Chunked`]).
    kids: Chunked<Handle<OutputLeafNode>>,
    persist: bool,
}

impl TypedNode for OutputNode {
    const TYPE: &'static str = "OutputNode";
    type Config = OutputConfig;
    type Message = SumMessage;
    type State = OutputState;
    type Timer = NoTimer;
    /// Its leaves.
    type Durable = Chunked<Handle<OutputLeafNode>>;

    fn new(config: OutputConfig) -> Result<Self, NodeError> {
        Ok(OutputNode {
            senders: config.senders,
            kids: Chunked::default(),
            persist: config.persist,
        })
    }

    fn recover(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        kids: Chunked<Handle<OutputLeafNode>>,
    ) -> Result<(), NodeError> {
        for node in kids.iter() {
            ctl.broadcast(&self.senders, &SumMessage::AddReceiver { node: *node })?;
        }
        self.kids = kids;
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: SumMessage,
    ) -> Result<(), NodeError> {
        let SumMessage::AddOutputKid { machine, user } = message else {
            return Err(super::unexpected(Self::TYPE, &message));
        };
        let config = OutputLeafConfig {
            user,
            persist: self.persist,
        };
        let leaf = ctl.spawn::<OutputLeafNode>(machine, &config)?;
        self.kids.push(leaf);
        if self.persist {
            ctl.persist(self.kids.clone());
        }
        ctl.broadcast(&self.senders, &SumMessage::AddReceiver { node: leaf })
    }

    fn state(&self) -> OutputState {
        OutputState {
            kids: self.kids.iter().copied().map(NodeHandle::from).collect(),
            senders: self.senders.iter().copied().map(NodeHandle::from).collect(),
        }
    }
}

/// An output leaf's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputLeafConfig {
    /// The user whose output it is.
    pub user: String,
    /// Whether it persists its total (on by default).
    #[serde(default = "persist_by_default")]
    pub persist: bool,
}

/// An output leaf's observable state: the user's view of the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLeafState {
    /// The user.
    pub user: String,
    /// Everything received, added up.
    pub total: i64,
}

/// A user's output: holds the latest running total its sum node sent. It persists it, so it
/// survives a crash of its machine.
#[derive(Debug)]
pub struct OutputLeafNode {
    user: String,
    total: i64,
    persist: bool,
}

impl TypedNode for OutputLeafNode {
    const TYPE: &'static str = "OutputLeafNode";
    type Config = OutputLeafConfig;
    type Message = SumMessage;
    type State = OutputLeafState;
    type Timer = NoTimer;
    /// Its total.
    type Durable = i64;

    fn new(config: OutputLeafConfig) -> Result<Self, NodeError> {
        Ok(OutputLeafNode {
            user: config.user,
            total: 0,
            persist: config.persist,
        })
    }

    fn recover(&mut self, _ctl: &mut Ctl<'_, Self>, total: i64) -> Result<(), NodeError> {
        self.total = total;
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: SumMessage,
    ) -> Result<(), NodeError> {
        let SumMessage::Increment { total, .. } = message else {
            return Err(super::unexpected(Self::TYPE, &message));
        };
        self.total = total;
        if self.persist {
            ctl.persist(self.total);
        }
        Ok(())
    }

    fn state(&self) -> OutputLeafState {
        OutputLeafState {
            user: self.user.clone(),
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::MachineId;
    use crate::node::Harness;

    #[test]
    fn simulated_the_output_root_spawns_a_leaf_per_user_and_announces_it_to_the_senders() {
        let sum = Handle::<SumNode>::assume(Harness::<SumNode>::handle(0, 1));
        let mut root = Harness::<OutputNode>::new(OutputConfig {
            senders: vec![sum],
            persist: true,
        })
        .expect("builds");
        root.receive(
            None,
            SumMessage::AddOutputKid {
                machine: MachineId(1),
                user: "bob".into(),
            },
        )
        .expect("kid");
        let leaf = root.spawned()[0].handle;
        assert_eq!(
            root.spawned()[0].decode::<OutputLeafNode>().map(|c| c.user),
            Ok("bob".to_owned())
        );
        let sent = root.take_sent();
        assert_eq!(sent[0].to, sum.untyped());
        assert_eq!(
            sent[0].decode::<SumNode>(),
            Ok(SumMessage::AddReceiver {
                node: Handle::assume(leaf)
            })
        );
    }

    #[test]
    fn simulated_an_output_leaf_adds_up_what_it_receives_and_rejects_the_rest() {
        let mut leaf = Harness::<OutputLeafNode>::new(OutputLeafConfig {
            user: "bob".into(),
            persist: true,
        })
        .expect("builds");
        leaf.receive(
            None,
            SumMessage::Increment {
                amount: 5,
                total: 5,
            },
        )
        .expect("increment");
        leaf.receive(
            None,
            SumMessage::Increment {
                amount: -2,
                total: 3,
            },
        )
        .expect("increment");
        assert_eq!(leaf.state().total, 3);
        leaf.crash_and_restart().expect("recovers");
        assert_eq!(leaf.state().total, 3, "the total was persisted");
        let kid = SumMessage::AddOutputKid {
            machine: MachineId(0),
            user: "x".into(),
        };
        assert!(leaf.receive(None, kid).is_err());
        assert!(leaf.sent().is_empty());
    }
}
