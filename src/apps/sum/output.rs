//! The output list: a root that creates one leaf per user, and the leaves that hold each user's
//! view of the total.

use serde::{Deserialize, Serialize};

use super::sum_node::SumNode;
use super::SumMessage;
use crate::messages::NodeHandle;
use crate::node::{Ctl, Handle, NoTimer, NodeError, TypedNode, Volatile};

/// The output list's root config: the sum nodes its leaves receive from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The sum nodes every leaf is announced to.
    #[serde(default)]
    pub senders: Vec<Handle<SumNode>>,
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
#[derive(Debug)]
pub struct OutputNode {
    senders: Vec<Handle<SumNode>>,
    kids: Vec<Handle<OutputLeafNode>>,
}

impl TypedNode for OutputNode {
    const TYPE: &'static str = "OutputNode";
    type Config = OutputConfig;
    type Message = SumMessage;
    type State = OutputState;
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(config: OutputConfig) -> Result<Self, NodeError> {
        Ok(OutputNode {
            senders: config.senders,
            kids: Vec::new(),
        })
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
        let leaf = ctl.spawn::<OutputLeafNode>(machine, &OutputLeafConfig { user })?;
        self.kids.push(leaf);
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
}

/// An output leaf's observable state: the user's view of the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLeafState {
    /// The user.
    pub user: String,
    /// Everything received, added up.
    pub total: i64,
}

/// A user's output: adds up the increments it receives.
#[derive(Debug)]
pub struct OutputLeafNode {
    user: String,
    total: i64,
}

impl TypedNode for OutputLeafNode {
    const TYPE: &'static str = "OutputLeafNode";
    type Config = OutputLeafConfig;
    type Message = SumMessage;
    type State = OutputLeafState;
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(config: OutputLeafConfig) -> Result<Self, NodeError> {
        Ok(OutputLeafNode {
            user: config.user,
            total: 0,
        })
    }

    fn receive(
        &mut self,
        _ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: SumMessage,
    ) -> Result<(), NodeError> {
        let SumMessage::Increment { amount } = message else {
            return Err(super::unexpected(Self::TYPE, &message));
        };
        self.total = super::add_to_total(self.total, amount)?;
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
        let mut root =
            Harness::<OutputNode>::new(OutputConfig { senders: vec![sum] }).expect("builds");
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
        let mut leaf = Harness::<OutputLeafNode>::new(OutputLeafConfig { user: "bob".into() })
            .expect("builds");
        leaf.receive(None, SumMessage::Increment { amount: 5 })
            .expect("increment");
        leaf.receive(None, SumMessage::Increment { amount: -2 })
            .expect("increment");
        assert_eq!(leaf.state().total, 3);
        let kid = SumMessage::AddOutputKid {
            machine: MachineId(0),
            user: "x".into(),
        };
        assert!(leaf.receive(None, kid).is_err());
        assert!(leaf.sent().is_empty());
    }
}
