//! The input list: a root that creates one leaf per user, and the leaves that play back what
//! their user does.

use serde::{Deserialize, Serialize};

use super::chunked::Chunked;
use super::sum_node::{persist_by_default, SumNode};
use super::{RecordedUser, SumMessage};
use crate::messages::NodeHandle;
use crate::node::{Ctl, Handle, NoTimer, NodeError, TypedNode};

/// The input list's root config: the sum nodes its leaves send to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Where every leaf's increments go.
    #[serde(default)]
    pub receivers: Vec<Handle<SumNode>>,
    /// Whether the root and its leaves persist what they know (on by default).
    #[serde(default = "persist_by_default")]
    pub persist: bool,
}

/// The input list's root's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputState {
    /// Its leaves.
    pub kids: Vec<NodeHandle>,
    /// Where its leaves send.
    pub receivers: Vec<NodeHandle>,
}

/// The root of the input list: creates an [`InputLeafNode`] per user and announces each new
/// leaf to the receivers. It persists its leaves; after a crash it announces them all again (a
/// sum node that already has one ignores it).
#[derive(Debug)]
pub struct InputNode {
    receivers: Vec<Handle<SumNode>>,
    /// Its leaves (shared with what it persisted, see [`Chunked`]).
    kids: Chunked<Handle<InputLeafNode>>,
    persist: bool,
}

impl TypedNode for InputNode {
    const TYPE: &'static str = "InputNode";
    type Config = InputConfig;
    type Message = SumMessage;
    type State = InputState;
    type Timer = NoTimer;
    /// Its leaves.
    type Durable = Chunked<Handle<InputLeafNode>>;

    fn new(config: InputConfig) -> Result<Self, NodeError> {
        Ok(InputNode {
            receivers: config.receivers,
            kids: Chunked::default(),
            persist: config.persist,
        })
    }

    fn recover(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        kids: Chunked<Handle<InputLeafNode>>,
    ) -> Result<(), NodeError> {
        for node in kids.iter() {
            ctl.broadcast(&self.receivers, &SumMessage::AddSender { node: *node })?;
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
        let SumMessage::AddInputKid { machine, recording } = message else {
            return Err(super::unexpected(Self::TYPE, &message));
        };
        let config = LeafConfig {
            user: recording.name().to_owned(),
            receivers: self.receivers.clone(),
            recording: Some(recording),
            persist: self.persist,
        };
        let leaf = ctl.spawn::<InputLeafNode>(machine, &config)?;
        self.kids.push(leaf);
        if self.persist {
            ctl.persist(self.kids.clone());
        }
        ctl.broadcast(&self.receivers, &SumMessage::AddSender { node: leaf })
    }

    fn state(&self) -> InputState {
        InputState {
            kids: self.kids.iter().copied().map(NodeHandle::from).collect(),
            receivers: self
                .receivers
                .iter()
                .copied()
                .map(NodeHandle::from)
                .collect(),
        }
    }
}

/// An input leaf's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafConfig {
    /// The user it stands for.
    pub user: String,
    /// Where its increments go.
    #[serde(default)]
    pub receivers: Vec<Handle<SumNode>>,
    /// What it plays back, if anything.
    #[serde(default)]
    pub recording: Option<RecordedUser>,
    /// Whether it persists how far it has played (on by default).
    #[serde(default = "persist_by_default")]
    pub persist: bool,
}

/// An input leaf's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLeafState {
    /// The user.
    pub user: String,
    /// Every increment it sent, added up.
    pub sent_total: i64,
    /// How many recorded actions it has played back.
    pub actions_played: usize,
}

/// What an input leaf writes to its machine's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputLeafDurable {
    /// When it started, on the system's clock (its recording's times count from there).
    pub started_ms: u64,
    /// How many recorded actions it has played.
    pub actions_played: usize,
    /// Everything it sent, added up.
    pub sent_total: i64,
}

/// A user's input: plays back the user's recorded actions at their times (relative to when the
/// leaf started) and reports its running total to every receiver after each.
///
/// It persists how far it has played before each report leaves; after a crash it reports its
/// total again (the report it had sent may have been lost with its machine) and plays the rest
/// of the recording at the times it was due, or at once if they have passed.
#[derive(Debug)]
pub struct InputLeafNode {
    user: String,
    receivers: Vec<Handle<SumNode>>,
    recording: Option<RecordedUser>,
    persist: bool,
    started_ms: u64,
    sent_total: i64,
    actions_played: usize,
}

impl InputLeafNode {
    /// Arms the timer for recorded action `index`, due at its time after the start.
    fn arm(&self, ctl: &mut Ctl<'_, Self>, index: usize) {
        let actions = self
            .recording
            .as_ref()
            .map(RecordedUser::actions)
            .unwrap_or_default();
        if let Some((at_ms, _)) = actions.get(index) {
            let due_ms = self.started_ms.saturating_add(at_ms.0);
            ctl.set_timer(due_ms.saturating_sub(ctl.now_ms()), index);
        }
    }

    fn save(&self, ctl: &mut Ctl<'_, Self>) {
        if self.persist {
            ctl.persist(InputLeafDurable {
                started_ms: self.started_ms,
                actions_played: self.actions_played,
                sent_total: self.sent_total,
            });
        }
    }
}

impl TypedNode for InputLeafNode {
    const TYPE: &'static str = "InputLeafNode";
    type Config = LeafConfig;
    type Message = SumMessage;
    type State = InputLeafState;
    /// The index of the recorded action to play.
    type Timer = usize;
    type Durable = InputLeafDurable;

    fn new(config: LeafConfig) -> Result<Self, NodeError> {
        Ok(InputLeafNode {
            user: config.user,
            receivers: config.receivers,
            recording: config.recording,
            persist: config.persist,
            started_ms: 0,
            sent_total: 0,
            actions_played: 0,
        })
    }

    fn start(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        self.started_ms = ctl.now_ms();
        self.save(ctl);
        self.arm(ctl, 0);
        Ok(())
    }

    fn recover(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        durable: InputLeafDurable,
    ) -> Result<(), NodeError> {
        self.started_ms = durable.started_ms;
        self.actions_played = durable.actions_played;
        self.sent_total = durable.sent_total;
        if self.actions_played > 0 {
            let again = SumMessage::Increment {
                amount: 0,
                total: self.sent_total,
            };
            ctl.broadcast(&self.receivers, &again)?;
        }
        self.arm(ctl, self.actions_played);
        Ok(())
    }

    fn receive(
        &mut self,
        _ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: SumMessage,
    ) -> Result<(), NodeError> {
        Err(super::unexpected(Self::TYPE, &message))
    }

    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, index: usize) -> Result<(), NodeError> {
        let actions = self
            .recording
            .as_ref()
            .map(RecordedUser::actions)
            .unwrap_or_default();
        let (_, action) = actions
            .get(index)
            .copied()
            .ok_or_else(|| NodeError::Protocol(format!("no recorded action {index}")))?;
        self.actions_played = index + 1;
        let amount = action.amount();
        self.sent_total = super::add_to_total(self.sent_total, amount)?;
        self.save(ctl);
        self.arm(ctl, index + 1);
        let report = SumMessage::Increment {
            amount,
            total: self.sent_total,
        };
        ctl.broadcast(&self.receivers, &report)
    }

    fn state(&self) -> InputLeafState {
        InputLeafState {
            user: self.user.clone(),
            sent_total: self.sent_total,
            actions_played: self.actions_played,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::sum::UserAction;
    use crate::messages::MachineId;
    use crate::node::Harness;
    use crate::time::Millis;

    fn sum_node() -> Handle<SumNode> {
        Handle::assume(Harness::<SumNode>::handle(0, 1))
    }

    #[test]
    fn simulated_the_input_root_spawns_a_leaf_per_user_and_announces_it() {
        let mut root = Harness::<InputNode>::new(InputConfig {
            receivers: vec![sum_node()],
            persist: true,
        })
        .expect("builds");
        let recording = RecordedUser::new("ann", vec![]).expect("empty");
        root.receive(
            None,
            SumMessage::AddInputKid {
                machine: MachineId(2),
                recording,
            },
        )
        .expect("kid");
        let spawned = root.spawned().to_vec();
        assert_eq!(spawned.len(), 1);
        assert_eq!(spawned[0].machine, MachineId(2));
        assert_eq!(spawned[0].node_type(), InputLeafNode::TYPE);
        let sent = root.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, sum_node().untyped());
        assert_eq!(
            sent[0].decode::<SumNode>(),
            Ok(SumMessage::AddSender {
                node: Handle::assume(spawned[0].handle)
            })
        );
        assert_eq!(root.state().kids, vec![spawned[0].handle]);
    }

    #[test]
    fn simulated_an_input_leaf_plays_its_recording_back_at_its_times() {
        let increment = |amount| UserAction::Increment { amount };
        let recording = RecordedUser::new(
            "ann",
            vec![(Millis(10), increment(2)), (Millis(25), increment(-1))],
        )
        .expect("ordered");
        let mut leaf = Harness::<InputLeafNode>::new(LeafConfig {
            user: "ann".into(),
            receivers: vec![sum_node()],
            recording: Some(recording),
            persist: true,
        })
        .expect("builds");
        assert_eq!(leaf.pending_timers(), vec![10]);
        leaf.advance(10).expect("first action");
        assert_eq!(leaf.pending_timers(), vec![25]);
        leaf.advance(15).expect("second action");
        let amounts: Vec<SumMessage> = leaf
            .take_sent()
            .iter()
            .map(|sent| sent.decode::<SumNode>().expect("a sum message"))
            .collect();
        assert_eq!(
            amounts,
            vec![
                SumMessage::Increment {
                    amount: 2,
                    total: 2
                },
                SumMessage::Increment {
                    amount: -1,
                    total: 1
                }
            ]
        );
        assert_eq!(leaf.state().sent_total, 1);
        assert_eq!(leaf.state().actions_played, 2);
        assert!(leaf.pending_timers().is_empty());
    }
}
