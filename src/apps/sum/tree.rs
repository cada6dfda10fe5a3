//! The self-scaling sum network: an input tree that sums upward and an output tree that fans out
//! downward, joined at a [`TreeCentre`], each node with at most `max_kids` kids.
//!
//! Every operation that changes the shape is run by one node, one at a time per node:
//!
//! - **join**: a join walks down from its tree's root to a leaf parent (height 1) with room,
//!   preferring one on the user's own machine; a node at height 2 with room and no kid with room
//!   makes a new leaf parent on the user's machine;
//! - **split**: a node at height 3 or more with room and no kid with room asks a full kid to
//!   split: the kid spawns a sibling, where most of the moved kids are, and hands it the right
//!   half of its kids;
//! - **raise**: a full root moves all its kids under a new node, becomes its parent and (at
//!   height 3 or more) splits it; the root's identity never changes;
//! - **leave**: a user's leaf leaves after its last action and its `leave_ms`; its parent folds
//!   what it sent into what it holds and terminates it.
//!
//! A join that reaches a node that turns out to have no room goes back to the node's parent,
//! behind a summary that says so. Totals stay exact as the shape changes: upward, every amount
//! belongs to one node at a time (a kid that changes parent gives its old parent a final
//! `goodbye`, and reports on a new edge, numbered, to the new one); downward, the centre sends
//! its whole total with a version, and a node applies only a newer one. Every message says a
//! node's latest state, so a node that recovers from a crash says it all again.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::RecordedUser;
use crate::messages::{MachineId, NodeHandle};
use crate::node::{Ctl, Handle, NodeError, TypedNode};

/// The trees' batching interval (as the flat network's sum node).
pub const TREE_INTERVAL_MS: u64 = 30;

/// Which tree a node belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The input tree: users' increments, summed upward.
    Input,
    /// The output tree: the centre's total, fanned out downward.
    Output,
}

/// A user joining a tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The user's machine, where its leaf runs.
    pub machine: MachineId,
    /// The user's name.
    pub user: String,
    /// What the user does (input tree only).
    #[serde(default)]
    pub recording: Option<RecordedUser>,
    /// When the user leaves, since the start (none: it stays).
    #[serde(default)]
    pub leave_ms: Option<u64>,
}

/// A kid as its parent knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kid {
    /// The kid.
    pub node: NodeHandle,
    /// Its kids, at most (as last reported, with the joins routed to it since).
    pub kids: usize,
    /// Whether its subtree may take a join.
    pub open: bool,
    /// The machines of leaf parents with room in its subtree.
    #[serde(default)]
    pub open_on: BTreeSet<MachineId>,
    /// Joins this parent routed to it.
    #[serde(default)]
    pub routed: u64,
}

impl Kid {
    fn new(node: NodeHandle, kids: usize, open: bool) -> Self {
        Kid {
            node,
            kids,
            open,
            open_on: BTreeSet::new(),
            routed: 0,
        }
    }
}

/// A closed edge: the final amount a node gave a former parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedEdge {
    /// The former parent.
    pub parent: NodeHandle,
    /// The edge's number.
    pub epoch: u64,
    /// Everything given on it.
    pub total: i64,
    /// The adoption order it answered, if it closed for one.
    #[serde(default)]
    pub answers: Option<u64>,
}

/// What a parent received from one kid on one edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// The kid.
    pub kid: NodeHandle,
    /// The edge's number.
    pub epoch: u64,
    /// The latest total on that edge.
    pub total: i64,
    /// Whether the kid said goodbye on it.
    pub closed: bool,
}

/// A node that left the tree (a user's leaf, or a node merged away): what the invariant needs
/// of it once it is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoneLeaf {
    /// The node.
    pub leaf: NodeHandle,
    /// Its user, for a user's leaf.
    pub user: Option<String>,
    /// Every edge it reported on, the last included.
    pub edges: Vec<ClosedEdge>,
    /// What it had received.
    #[serde(default)]
    pub received: Vec<Received>,
}

/// A kid's upward edge: where it reports and what it reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// The current edge's number.
    pub epoch: u64,
    /// Everything given to former parents.
    pub base: i64,
    /// The latest total reported on the current edge.
    pub reported: i64,
    /// The former edges.
    pub closed: Vec<ClosedEdge>,
}

impl Edge {
    /// Every edge, the current one (to `parent`) last.
    pub fn all(&self, parent: Option<NodeHandle>) -> Vec<ClosedEdge> {
        let mut edges = self.closed.clone();
        if let Some(parent) = parent {
            edges.push(ClosedEdge {
                parent,
                epoch: self.epoch,
                total: self.reported,
                answers: None,
            });
        }
        edges
    }

    /// Closes the current edge with everything `held` beyond the base, and opens the next.
    fn close(&mut self, parent: NodeHandle, held: i64, answers: Option<u64>) -> ClosedEdge {
        let closed = ClosedEdge {
            parent,
            epoch: self.epoch,
            total: held - self.base,
            answers,
        };
        self.closed.push(closed);
        self.base = held;
        self.reported = 0;
        self.epoch += 1;
        closed
    }
}

/// The goodbye that closed `edge`.
fn goodbye_of(edge: &ClosedEdge, leaving: Vec<GoneLeaf>) -> TreeMessage {
    TreeMessage::Goodbye {
        epoch: edge.epoch,
        total: edge.total,
        answers: edge.answers,
        leaving,
    }
}

/// Every message of the trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TreeMessage {
    /// A user joins the tree below the receiver. A node that forwards a join keeps it until
    /// the receiver says it took it, and sends it again after a crash (what a crashed machine had
    /// sent and not had acknowledged is lost with it); the receiver takes each `id` of a sender
    /// once.
    Join {
        /// Who.
        join: JoinRequest,
        /// The sender's number for this forwarding (none from outside the system).
        #[serde(default)]
        id: Option<u64>,
    },
    /// The receiver of join `id` took it.
    JoinTaken {
        /// The sender's number for it.
        id: u64,
    },
    /// A kid's size, to its parent.
    Summary {
        /// Its kids.
        kids: usize,
        /// Whether its subtree may take a join.
        open: bool,
        /// Machines with a leaf parent with room in its subtree.
        open_on: BTreeSet<MachineId>,
        /// The joins it received from this parent.
        joins: u64,
    },
    /// To a full kid: spawn a sibling and give it the right half of your kids.
    Split {
        /// The parent's operation number.
        id: u64,
    },
    /// The answer to [`TreeMessage::Split`]: the sibling, if there was anything to give.
    SplitDone {
        /// The operation number.
        id: u64,
        /// The new sibling.
        sibling: Option<Kid>,
    },
    /// To a kid: hand all your kids to `into` (a sibling, or this parent itself), then leave.
    MergeInto {
        /// The parent's operation number.
        id: u64,
        /// Who takes the kids.
        into: NodeHandle,
    },
    /// From a node merging away: these kids, of height `height - 1`, are yours now.
    TakeKids {
        /// The kids.
        kids: Vec<Kid>,
        /// The height of the node that had them.
        height: u32,
    },
    /// From a node's parent: your parent is now `parent`.
    Adopt {
        /// The new parent.
        parent: NodeHandle,
        /// The order's number, which the goodbye answering it names.
        id: u64,
    },
    /// Input tree: everything a kid gave on edge `epoch`, upward.
    Up {
        /// The edge.
        epoch: u64,
        /// Its total.
        total: i64,
    },
    /// The final total of edge `epoch` (input tree: the kid changed parent, or left); a node
    /// that leaves the tree sends one naming itself (first) and the nodes that left from under
    /// it in `leaving`.
    Goodbye {
        /// The edge.
        epoch: u64,
        /// Its final total.
        total: i64,
        /// The adoption order it answers.
        answers: Option<u64>,
        /// The sender and what left under it, if the sender leaves the tree.
        leaving: Vec<GoneLeaf>,
    },
    /// Output tree: the centre's total as of its `version`.
    Down {
        /// The centre's version.
        version: u64,
        /// The total.
        total: i64,
    },
}

/// Sends `message` to `to`, whichever of the trees' node types it is (they read one message
/// type).
fn tell<N: TypedNode>(
    ctl: &mut Ctl<'_, N>,
    to: NodeHandle,
    message: &TreeMessage,
) -> Result<(), NodeError> {
    ctl.send(Handle::<TreeNode>::assume(to), message)
}

fn unexpected(node_type: &'static str, message: &TreeMessage) -> NodeError {
    let kind = serde_json::to_value(message)
        .ok()
        .and_then(|value| {
            value
                .get("type")
                .and_then(|t| t.as_str().map(str::to_owned))
        })
        .unwrap_or_default();
    NodeError::UnexpectedMessage { node_type, kind }
}

fn checked_sum(values: impl IntoIterator<Item = i64>) -> Result<i64, NodeError> {
    values.into_iter().try_fold(0i64, super::add_to_total)
}

/// Records `total` from `kid` on edge `epoch` (a closed edge keeps its final total).
fn record(received: &mut Vec<Received>, kid: NodeHandle, epoch: u64, total: i64, closed: bool) {
    match received
        .iter_mut()
        .find(|entry| entry.kid == kid && entry.epoch == epoch)
    {
        Some(entry) if entry.closed => {}
        Some(entry) => {
            entry.total = total;
            entry.closed = closed;
        }
        None => received.push(Received {
            kid,
            epoch,
            total,
            closed,
        }),
    }
}

/// Adds what left to `gone`, once each (the record with the most edges wins).
fn remember(gone: &mut Vec<GoneLeaf>, leaving: Vec<GoneLeaf>) {
    for left in leaving {
        match gone.iter_mut().find(|known| known.leaf == left.leaf) {
            Some(known) if known.edges.len() < left.edges.len() => *known = left,
            Some(_) => {}
            None => gone.push(left),
        }
    }
}

/// `kids` as their new parent takes them: it has routed them no joins (a kid counts the joins of
/// its current parent only; the count of kids already includes what the old parent routed).
fn handed_over(kids: Vec<Kid>) -> Vec<Kid> {
    kids.into_iter()
        .map(|kid| Kid { routed: 0, ..kid })
        .collect()
}

/// The machine most of `kids` are on (the lowest of a tie), or `fallback`.
fn majority(kids: &[Kid], fallback: MachineId) -> MachineId {
    let mut counts = std::collections::BTreeMap::<MachineId, usize>::new();
    for kid in kids {
        *counts.entry(kid.node.machine).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map_or(fallback, |(machine, _)| machine)
}

/// How long a merge or a removal waits with its condition holding, in milliseconds.
pub const MERGE_AFTER_MS: u64 = 2_000;
/// How long a root waits with one kid before it absorbs it, in milliseconds.
pub const ABSORB_AFTER_MS: u64 = 4_000;

/// A tree node's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeNodeConfig {
    /// Its tree.
    pub role: Role,
    /// The most kids a node has.
    pub max_kids: usize,
    /// Whether it persists what it knows.
    pub persist: bool,
    /// Whether it is its tree's root.
    pub root: bool,
    /// Its height (its kids are one lower; users' leaves are 0).
    pub height: u32,
    /// Its parent (the centre for the input tree's root; none for the output tree's).
    pub parent: Option<NodeHandle>,
    /// Kids it starts with.
    #[serde(default)]
    pub kids: Vec<Kid>,
    /// Output tree: the centre's version it starts from.
    #[serde(default)]
    pub version: u64,
    /// Output tree: the total at that version.
    #[serde(default)]
    pub total: i64,
}

/// The operation a node runs on its kids, one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `kid` splits.
    Split {
        /// The operation's number.
        id: u64,
        /// The kid.
        kid: NodeHandle,
    },
    /// `from` hands its kids to `into` and leaves.
    Merge {
        /// The operation's number.
        id: u64,
        /// The kid that leaves.
        from: NodeHandle,
        /// Who takes its kids (a sibling, or this node).
        into: NodeHandle,
    },
}

/// What a tree node knows, persisted whole after every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeData {
    config: TreeNodeConfig,
    kids: Vec<Kid>,
    height: u32,
    parent: Option<NodeHandle>,
    /// The operation it waits for.
    op: Option<Op>,
    /// Joins waiting for that operation.
    queued: Vec<JoinRequest>,
    next_op: u64,
    /// Joins received from the current parent.
    joins_seen: u64,
    /// Joins it forwarded that the receiver has not said it took: number, receiver, join.
    forwarded: Vec<(u64, NodeHandle, JoinRequest)>,
    next_join: u64,
    /// The joins it took, by sender and the sender's number.
    taken: BTreeSet<(NodeHandle, u64)>,
    /// The last split it ran for its parent: the parent, the number, the sibling.
    served: Option<(NodeHandle, u64, Option<Kid>)>,
    /// Every adoption it ordered: the number, the new parent and the kids.
    moves: Vec<(u64, NodeHandle, Vec<NodeHandle>)>,
    /// Input tree: adoptions ordered whose goodbye has not come (kid, order).
    awaiting: Vec<(NodeHandle, u64)>,
    /// The kids it handed over when it merged away: to whom, which, its height then.
    handed: Option<(NodeHandle, Vec<Kid>, u32)>,
    /// Nodes whose kids it took (each hands them once).
    taken_from: Vec<NodeHandle>,
    /// Whether it merges away, and whether its farewell left.
    retiring: bool,
    farewell: bool,
    edge: Edge,
    received: Vec<Received>,
    gone: Vec<GoneLeaf>,
    version: u64,
    total: i64,
    summary: Option<(usize, bool, BTreeSet<MachineId>, u64)>,
    /// Since when a merge, removal or absorption has been possible.
    tidy_since: Option<u64>,
}

/// A tree node's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNodeState {
    /// Its tree.
    pub role: Role,
    /// Whether it is its tree's root.
    pub root: bool,
    /// Its height.
    pub height: u32,
    /// The most kids it may have.
    pub max_kids: usize,
    /// Its parent.
    pub parent: Option<NodeHandle>,
    /// Its kids.
    pub kids: Vec<NodeHandle>,
    /// Whether an operation or joins wait.
    pub busy: bool,
    /// Whether it is merging away.
    pub retiring: bool,
    /// Input tree: held and not yet reported upward.
    pub unsent: i64,
    /// Input tree: every edge it reported on, the current one last.
    pub edges: Vec<ClosedEdge>,
    /// Input tree: what it received, by kid and edge.
    pub received: Vec<Received>,
    /// Nodes that left from under it.
    pub gone: Vec<GoneLeaf>,
    /// Output tree: the version it holds.
    pub version: u64,
    /// Output tree: the total it holds.
    pub total: i64,
}

/// A tree node's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeTimer {
    /// Report upward what was gathered.
    Flush,
    /// See whether kids should merge, go, or be absorbed.
    Tidy,
}

/// The centre's timer: send the total down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeFlush;

/// What a node would tidy: merge `from` into `into`, after `wait_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tidy {
    from: NodeHandle,
    into: NodeHandle,
    wait_ms: u64,
}

/// An internal node of the input or the output tree: joins, splits, raises, merges and
/// absorptions as `docs/applications.md` (Self-scaling trees) describes.
#[derive(Debug)]
pub struct TreeNode {
    d: TreeData,
    flush_pending: bool,
    tidy_pending: bool,
}

impl TreeNode {
    fn max(&self) -> usize {
        self.d.config.max_kids
    }

    fn input(&self) -> bool {
        self.d.config.role == Role::Input
    }

    fn held(&self) -> Result<i64, NodeError> {
        checked_sum(self.d.received.iter().map(|entry| entry.total))
    }

    fn summary(&self, me: MachineId) -> (usize, bool, BTreeSet<MachineId>, u64) {
        let joins = self.d.joins_seen;
        if self.d.retiring {
            return (self.d.kids.len(), false, BTreeSet::new(), joins);
        }
        let room = self.d.kids.len() < self.max();
        if self.d.height == 1 {
            let on = if room { [me].into() } else { BTreeSet::new() };
            return (self.d.kids.len(), room, on, joins);
        }
        let open = room || self.d.kids.iter().any(|kid| kid.open);
        let on = self
            .d
            .kids
            .iter()
            .flat_map(|kid| kid.open_on.iter().copied())
            .collect();
        (self.d.kids.len(), open, on, joins)
    }

    /// Tells the parent the node's size if it changed (always with `force`).
    fn report_summary(&mut self, ctl: &mut Ctl<'_, Self>, force: bool) -> Result<(), NodeError> {
        if self.d.config.root || self.d.farewell {
            return Ok(());
        }
        let Some(parent) = self.d.parent else {
            return Ok(());
        };
        let now = self.summary(ctl.machine());
        if force || self.d.summary.as_ref() != Some(&now) {
            self.d.summary = Some(now.clone());
            let (kids, open, open_on, joins) = now;
            let summary = TreeMessage::Summary {
                kids,
                open,
                open_on,
                joins,
            };
            tell(ctl, parent, &summary)?;
        }
        Ok(())
    }

    fn save(&self, ctl: &mut Ctl<'_, Self>) {
        if self.d.config.persist {
            ctl.persist(self.d.clone());
        }
    }

    fn arm(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        if self.input()
            && !self.d.farewell
            && !self.flush_pending
            && self.held()? - self.d.edge.base != self.d.edge.reported
        {
            self.flush_pending = true;
            ctl.set_timer(crate::apps::sum::TREE_INTERVAL_MS, TreeTimer::Flush);
        }
        Ok(())
    }

    /// A new node of this tree's role at `height`, with `kids`.
    fn child_config(&self, height: u32, kids: Vec<Kid>, parent: NodeHandle) -> TreeNodeConfig {
        let kids = handed_over(kids);
        TreeNodeConfig {
            role: self.d.config.role,
            max_kids: self.max(),
            persist: self.d.config.persist,
            root: false,
            height,
            parent: Some(parent),
            kids,
            version: self.d.version,
            total: self.d.total,
        }
    }

    /// Orders `kids` to take `parent` as their parent (said again after a crash).
    fn adopt(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        parent: NodeHandle,
        kids: Vec<NodeHandle>,
    ) -> Result<(), NodeError> {
        let id = self.d.next_op;
        self.d.next_op += 1;
        for kid in &kids {
            tell(ctl, *kid, &TreeMessage::Adopt { parent, id })?;
            if self.input() {
                self.d.awaiting.push((*kid, id));
            }
        }
        self.d.moves.push((id, parent, kids));
        Ok(())
    }

    /// Places a join below this node, or sends it back up if nothing below has room.
    fn join(&mut self, ctl: &mut Ctl<'_, Self>, join: JoinRequest) -> Result<(), NodeError> {
        if self.d.retiring {
            return self.send_up(ctl, join);
        }
        if self.d.op.is_some() {
            self.d.queued.push(join);
            return Ok(());
        }
        let max = self.max();
        let me = ctl.me().untyped();
        if self.d.height == 1 {
            if self.d.kids.len() < max {
                let config = TreeLeafConfig {
                    role: self.d.config.role,
                    user: join.user,
                    recording: join.recording,
                    leave_ms: join.leave_ms,
                    parent: me,
                    persist: self.d.config.persist,
                    version: self.d.version,
                    total: self.d.total,
                };
                let leaf = ctl.spawn::<TreeLeaf>(join.machine, &config)?;
                self.d.kids.push(Kid::new(leaf.untyped(), 0, false));
                return Ok(());
            }
            return self.no_room(ctl, join);
        }
        let leaf_parents = self.d.height == 2;
        let pick = self
            .d
            .kids
            .iter()
            .enumerate()
            .filter(|(_, kid)| kid.open)
            .min_by_key(|(_, kid)| (!kid.open_on.contains(&join.machine), kid.kids))
            .map(|(index, _)| index);
        if let Some(index) = pick {
            let kid = &mut self.d.kids[index];
            kid.routed += 1;
            if leaf_parents {
                kid.kids += 1;
                kid.open = kid.kids < max;
                if !kid.open {
                    kid.open_on.clear();
                }
            }
            let to = kid.node;
            return self.forward(ctl, to, join);
        }
        if self.d.kids.len() >= max {
            return self.no_room(ctl, join);
        }
        let full = self
            .d
            .kids
            .iter()
            .find(|kid| kid.kids >= max)
            .map(|kid| kid.node);
        match full {
            Some(kid) if !leaf_parents => {
                let id = self.d.next_op;
                self.d.next_op += 1;
                self.d.op = Some(Op::Split { id, kid });
                self.d.queued.push(join);
                tell(ctl, kid, &TreeMessage::Split { id })
            }
            _ => {
                let config = self.child_config(self.d.height - 1, Vec::new(), me);
                let made = ctl.spawn::<TreeNode>(join.machine, &config)?.untyped();
                // At most one kid, which the join makes.
                let mut kid = Kid::new(made, 1, true);
                kid.routed = 1;
                if leaf_parents {
                    kid.open = 1 < max;
                }
                self.d.kids.push(kid);
                self.forward(ctl, made, join)
            }
        }
    }

    fn send_up(&mut self, ctl: &mut Ctl<'_, Self>, join: JoinRequest) -> Result<(), NodeError> {
        self.report_summary(ctl, true)?;
        let parent = self
            .d
            .parent
            .ok_or_else(|| NodeError::Protocol("a tree node without a parent".into()))?;
        self.forward(ctl, parent, join)
    }

    /// Hands `join` to `to`, keeping it until `to` says it took it.
    fn forward(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        to: NodeHandle,
        join: JoinRequest,
    ) -> Result<(), NodeError> {
        let id = self.d.next_join;
        self.d.next_join += 1;
        let message = TreeMessage::Join {
            join: join.clone(),
            id: Some(id),
        };
        self.d.forwarded.push((id, to, join));
        tell(ctl, to, &message)
    }

    /// A join this node has no room for: back to the parent (behind the summary that says so),
    /// or, at the root, raise the height.
    fn no_room(&mut self, ctl: &mut Ctl<'_, Self>, join: JoinRequest) -> Result<(), NodeError> {
        if !self.d.config.root {
            return self.send_up(ctl, join);
        }
        let me = ctl.me().untyped();
        let kids = std::mem::take(&mut self.d.kids);
        let machine = majority(&kids, ctl.machine());
        let handles: Vec<NodeHandle> = kids.iter().map(|kid| kid.node).collect();
        let count = kids.len();
        let config = self.child_config(self.d.height, kids, me);
        let below = ctl.spawn::<TreeNode>(machine, &config)?.untyped();
        self.adopt(ctl, below, handles)?;
        self.d.kids.push(Kid::new(below, count, false));
        self.d.height += 1;
        self.join(ctl, join)
    }

    /// Runs a split its parent asked for.
    fn split(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: NodeHandle,
        id: u64,
    ) -> Result<(), NodeError> {
        if let Some((parent, served, sibling)) = &self.d.served {
            if *parent == from && *served == id {
                let message = TreeMessage::SplitDone {
                    id,
                    sibling: sibling.clone(),
                };
                return tell(ctl, from, &message);
            }
        }
        let count = self.d.kids.len();
        let sibling = if count >= 2 && !self.d.retiring {
            let moved = self.d.kids.split_off(count - count / 2);
            let machine = majority(&moved, ctl.machine());
            let handles: Vec<NodeHandle> = moved.iter().map(|kid| kid.node).collect();
            let config = self.child_config(self.d.height, moved.clone(), from);
            let node = ctl.spawn::<TreeNode>(machine, &config)?.untyped();
            self.adopt(ctl, node, handles)?;
            let room = moved.len() < self.max();
            let mut kid = Kid::new(node, moved.len(), room || moved.iter().any(|kid| kid.open));
            kid.open_on = if self.d.height == 1 {
                if room {
                    [machine].into()
                } else {
                    BTreeSet::new()
                }
            } else {
                moved
                    .iter()
                    .flat_map(|kid| kid.open_on.iter().copied())
                    .collect()
            };
            Some(kid)
        } else {
            None
        };
        self.d.served = Some((from, id, sibling.clone()));
        self.report_summary(ctl, false)?;
        tell(ctl, from, &TreeMessage::SplitDone { id, sibling })
    }

    /// Runs a merge its parent asked for: hands every kid to `into`, then leaves.
    fn merge_away(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: NodeHandle,
        into: NodeHandle,
    ) -> Result<(), NodeError> {
        if self.d.retiring || self.d.parent != Some(from) {
            return Ok(());
        }
        self.d.retiring = true;
        let kids = std::mem::take(&mut self.d.kids);
        let handles: Vec<NodeHandle> = kids.iter().map(|kid| kid.node).collect();
        self.adopt(ctl, into, handles)?;
        let kids = handed_over(kids);
        let take = TreeMessage::TakeKids {
            kids: kids.clone(),
            height: self.d.height,
        };
        tell(ctl, into, &take)?;
        self.d.handed = Some((into, kids, self.d.height));
        for join in std::mem::take(&mut self.d.queued) {
            self.send_up(ctl, join)?;
        }
        Ok(())
    }

    /// What this node says when it leaves the tree: itself, then what left under it.
    fn leaving(&self, me: NodeHandle) -> Vec<GoneLeaf> {
        let mut leaving = vec![GoneLeaf {
            leaf: me,
            user: None,
            edges: if self.input() {
                self.d.edge.closed.clone()
            } else {
                Vec::new()
            },
            received: self.d.received.clone(),
        }];
        leaving.extend(self.d.gone.iter().cloned());
        leaving
    }

    /// A node merging away leaves once every kid it moved said goodbye.
    fn farewell(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        if !self.d.retiring || self.d.farewell || !self.d.awaiting.is_empty() {
            return Ok(());
        }
        let Some(parent) = self.d.parent else {
            return Ok(());
        };
        self.d.farewell = true;
        let me = ctl.me().untyped();
        if self.input() {
            let held = self.held()?;
            let closed = self.d.edge.close(parent, held, None);
            tell(ctl, parent, &goodbye_of(&closed, self.leaving(me)))
        } else {
            let goodbye = TreeMessage::Goodbye {
                epoch: 0,
                total: 0,
                answers: None,
                leaving: self.leaving(me),
            };
            tell(ctl, parent, &goodbye)
        }
    }

    /// Takes `parent` as its parent, if the order comes from its parent.
    fn adopted(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: NodeHandle,
        parent: NodeHandle,
        id: u64,
    ) -> Result<(), NodeError> {
        if self.d.parent != Some(from) || self.d.farewell {
            return Ok(());
        }
        if self.input() {
            let held = self.held()?;
            let closed = self.d.edge.close(from, held, Some(id));
            tell(ctl, from, &goodbye_of(&closed, Vec::new()))?;
        }
        self.d.parent = Some(parent);
        self.d.joins_seen = 0;
        self.report_summary(ctl, true)
    }

    /// Sends every kid the output total.
    fn fan_out(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        if self.d.version == 0 {
            return Ok(());
        }
        let down = TreeMessage::Down {
            version: self.d.version,
            total: self.d.total,
        };
        for kid in self.d.kids.clone() {
            tell(ctl, kid.node, &down)?;
        }
        Ok(())
    }

    /// What could be tidied now: an empty kid removed, two small leaf parents merged, a root's
    /// only kid absorbed.
    fn tidy_candidate(&self) -> Option<Tidy> {
        if self.d.op.is_some() || self.d.retiring || self.d.height < 2 {
            return None;
        }
        let kids = &self.d.kids;
        if self.d.config.root && kids.len() == 1 {
            // `into` the node itself: the root takes its only kid's kids.
            return Some(Tidy {
                from: kids[0].node,
                into: kids[0].node,
                wait_ms: ABSORB_AFTER_MS,
            });
        }
        if let Some(empty) = kids.iter().find(|kid| kid.kids == 0) {
            return Some(Tidy {
                from: empty.node,
                into: empty.node,
                wait_ms: MERGE_AFTER_MS,
            });
        }
        if self.d.height == 2 {
            let limit = self.max().div_ceil(2);
            let mut small: Vec<&Kid> = kids.iter().collect();
            small.sort_by_key(|kid| kid.kids);
            if let [a, b, ..] = small[..] {
                if a.kids + b.kids <= limit {
                    return Some(Tidy {
                        from: a.node,
                        into: b.node,
                        wait_ms: MERGE_AFTER_MS,
                    });
                }
            }
        }
        None
    }

    /// Notes when tidying became possible and arms the tidy timer.
    fn plan_tidy(&mut self, ctl: &mut Ctl<'_, Self>) {
        if self.d.config.root && self.d.kids.is_empty() && self.d.height > 1 && self.d.op.is_none()
        {
            self.d.height = 1;
        }
        match self.tidy_candidate() {
            None => self.d.tidy_since = None,
            Some(tidy) => {
                let now = ctl.now_ms();
                let since = *self.d.tidy_since.get_or_insert(now);
                if !self.tidy_pending {
                    self.tidy_pending = true;
                    let due = since.saturating_add(tidy.wait_ms);
                    ctl.set_timer(due.saturating_sub(now).max(1), TreeTimer::Tidy);
                }
            }
        }
    }

    /// Runs the tidying that has waited long enough.
    fn tidy(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        let Some(tidy) = self.tidy_candidate() else {
            return Ok(());
        };
        let since = self.d.tidy_since.unwrap_or(u64::MAX);
        if ctl.now_ms() < since.saturating_add(tidy.wait_ms) {
            return Ok(());
        }
        self.d.tidy_since = None;
        let me = ctl.me().untyped();
        let into = if tidy.into == tidy.from {
            me
        } else {
            tidy.into
        };
        let Some(index) = self.d.kids.iter().position(|kid| kid.node == tidy.from) else {
            return Ok(());
        };
        let leaving = self.d.kids.remove(index);
        if let Some(target) = self.d.kids.iter_mut().find(|kid| kid.node == into) {
            target.kids += leaving.kids;
            target.open = false;
            target.open_on.clear();
        }
        let id = self.d.next_op;
        self.d.next_op += 1;
        self.d.op = Some(Op::Merge {
            id,
            from: tidy.from,
            into,
        });
        tell(ctl, tidy.from, &TreeMessage::MergeInto { id, into })
    }

    /// A kid left the tree: what it says is remembered, it is terminated, and the merge that
    /// sent it away is done.
    fn kid_left(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: NodeHandle,
        leaving: Vec<GoneLeaf>,
    ) -> Result<(), NodeError> {
        let listed = self.d.kids.len();
        self.d.kids.retain(|kid| kid.node != from);
        let merged = matches!(self.d.op, Some(Op::Merge { from: node, .. }) if node == from);
        remember(&mut self.d.gone, leaving);
        if listed != self.d.kids.len() || merged {
            ctl.terminate(from);
        }
        if merged {
            self.d.op = None;
            for join in std::mem::take(&mut self.d.queued) {
                self.join(ctl, join)?;
            }
        }
        Ok(())
    }
}

impl TypedNode for TreeNode {
    const TYPE: &'static str = "TreeNode";
    type Config = TreeNodeConfig;
    type Message = TreeMessage;
    type State = TreeNodeState;
    type Timer = TreeTimer;
    type Durable = TreeData;

    fn new(config: TreeNodeConfig) -> Result<Self, NodeError> {
        if config.max_kids < 2 {
            return Err(NodeError::Protocol(
                "a tree node's max_kids must be at least 2".into(),
            ));
        }
        if config.height == 0 {
            return Err(NodeError::Protocol(
                "a tree node's height is at least 1".into(),
            ));
        }
        Ok(TreeNode {
            d: TreeData {
                kids: config.kids.clone(),
                height: config.height,
                parent: config.parent,
                op: None,
                queued: Vec::new(),
                next_op: 0,
                joins_seen: 0,
                forwarded: Vec::new(),
                next_join: 0,
                taken: BTreeSet::new(),
                served: None,
                moves: Vec::new(),
                awaiting: Vec::new(),
                handed: None,
                taken_from: Vec::new(),
                retiring: false,
                farewell: false,
                edge: Edge::default(),
                received: Vec::new(),
                gone: Vec::new(),
                version: config.version,
                total: config.total,
                summary: None,
                tidy_since: None,
                config,
            },
            flush_pending: false,
            tidy_pending: false,
        })
    }

    fn start(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        self.fan_out(ctl)?;
        self.report_summary(ctl, true)?;
        self.plan_tidy(ctl);
        self.save(ctl);
        Ok(())
    }

    fn recover(&mut self, ctl: &mut Ctl<'_, Self>, data: TreeData) -> Result<(), NodeError> {
        self.d = data;
        let me = ctl.me().untyped();
        match self.d.op {
            Some(Op::Split { id, kid }) => tell(ctl, kid, &TreeMessage::Split { id })?,
            Some(Op::Merge { id, from, into }) => {
                tell(ctl, from, &TreeMessage::MergeInto { id, into })?
            }
            None => {}
        }
        if let Some((parent, id, sibling)) = self.d.served.clone() {
            tell(ctl, parent, &TreeMessage::SplitDone { id, sibling })?;
        }
        for (id, to, join) in self.d.forwarded.clone() {
            tell(ctl, to, &TreeMessage::Join { join, id: Some(id) })?;
        }
        for (id, parent, kids) in self.d.moves.clone() {
            for kid in kids {
                tell(ctl, kid, &TreeMessage::Adopt { parent, id })?;
            }
        }
        if let Some((into, kids, height)) = self.d.handed.clone() {
            tell(ctl, into, &TreeMessage::TakeKids { kids, height })?;
        }
        if self.input() {
            let last = self.d.edge.closed.len();
            for (index, closed) in self.d.edge.closed.clone().into_iter().enumerate() {
                let leaving = if self.d.farewell && index + 1 == last {
                    self.leaving(me)
                } else {
                    Vec::new()
                };
                tell(ctl, closed.parent, &goodbye_of(&closed, leaving))?;
            }
            if let (Some(parent), false) = (self.d.parent, self.d.farewell) {
                let up = TreeMessage::Up {
                    epoch: self.d.edge.epoch,
                    total: self.d.edge.reported,
                };
                tell(ctl, parent, &up)?;
            }
        } else if let (true, Some(parent)) = (self.d.farewell, self.d.parent) {
            let goodbye = TreeMessage::Goodbye {
                epoch: 0,
                total: 0,
                answers: None,
                leaving: self.leaving(me),
            };
            tell(ctl, parent, &goodbye)?;
        }
        self.fan_out(ctl)?;
        self.report_summary(ctl, true)?;
        self.flush_pending = false;
        self.tidy_pending = false;
        self.arm(ctl)?;
        self.plan_tidy(ctl);
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: Option<NodeHandle>,
        message: TreeMessage,
    ) -> Result<(), NodeError> {
        let input = self.input();
        match (message, from) {
            (TreeMessage::Join { join, id }, from) => {
                let first = match (from, id) {
                    (Some(from), Some(id)) => {
                        tell(ctl, from, &TreeMessage::JoinTaken { id })?;
                        self.d.taken.insert((from, id))
                    }
                    _ => true,
                };
                if first {
                    if from.is_some() && from == self.d.parent {
                        self.d.joins_seen += 1;
                    }
                    self.join(ctl, join)?;
                }
            }
            (TreeMessage::JoinTaken { id }, Some(from)) => {
                self.d
                    .forwarded
                    .retain(|(forwarded, to, _)| (*forwarded, *to) != (id, from));
            }
            (
                TreeMessage::Summary {
                    kids,
                    open,
                    open_on,
                    joins,
                },
                Some(from),
            ) => {
                let max = self.max();
                let leaf_parents = self.d.height == 2;
                if let Some(kid) = self.d.kids.iter_mut().find(|kid| kid.node == from) {
                    let unseen = usize::try_from(kid.routed.saturating_sub(joins)).unwrap_or(0);
                    kid.kids = kids + unseen;
                    kid.open = open && (!leaf_parents || kid.kids < max);
                    kid.open_on = if kid.open { open_on } else { BTreeSet::new() };
                }
            }
            (TreeMessage::Split { id }, Some(from)) => self.split(ctl, from, id)?,
            (TreeMessage::SplitDone { id, sibling }, Some(_)) => {
                if matches!(self.d.op, Some(Op::Split { id: op, .. }) if op == id) {
                    self.d.op = None;
                    if let Some(sibling) = sibling {
                        let node = sibling.node;
                        self.d.kids.push(sibling);
                        if self.d.version > 0 {
                            let down = TreeMessage::Down {
                                version: self.d.version,
                                total: self.d.total,
                            };
                            tell(ctl, node, &down)?;
                        }
                    }
                    for join in std::mem::take(&mut self.d.queued) {
                        self.join(ctl, join)?;
                    }
                }
            }
            (TreeMessage::MergeInto { into, .. }, Some(from)) => {
                self.merge_away(ctl, from, into)?
            }
            (TreeMessage::TakeKids { kids, height }, Some(from)) => {
                if !self.d.taken_from.contains(&from) {
                    self.d.taken_from.push(from);
                    let taken: BTreeSet<NodeHandle> = kids.iter().map(|kid| kid.node).collect();
                    for (_, _, moved) in &mut self.d.moves {
                        moved.retain(|kid| !taken.contains(kid));
                    }
                    if self.d.config.root && self.d.kids.is_empty() {
                        self.d.height = height;
                    }
                    let down = TreeMessage::Down {
                        version: self.d.version,
                        total: self.d.total,
                    };
                    for kid in kids {
                        if self.d.version > 0 {
                            tell(ctl, kid.node, &down)?;
                        }
                        self.d.kids.push(kid);
                    }
                }
            }
            (TreeMessage::Adopt { parent, id }, Some(from)) => {
                self.adopted(ctl, from, parent, id)?
            }
            (TreeMessage::Up { epoch, total }, Some(from)) if input => {
                record(&mut self.d.received, from, epoch, total, false);
            }
            (
                TreeMessage::Goodbye {
                    epoch,
                    total,
                    answers,
                    leaving,
                },
                Some(from),
            ) => {
                if input {
                    record(&mut self.d.received, from, epoch, total, true);
                    if let Some(order) = answers {
                        self.d.awaiting.retain(|awaited| *awaited != (from, order));
                    }
                }
                if !leaving.is_empty() {
                    self.kid_left(ctl, from, leaving)?;
                }
            }
            (TreeMessage::Down { version, total }, _) if !input => {
                if version > self.d.version {
                    self.d.version = version;
                    self.d.total = total;
                    self.fan_out(ctl)?;
                }
            }
            (message, _) => return Err(unexpected(Self::TYPE, &message)),
        }
        self.farewell(ctl)?;
        self.report_summary(ctl, false)?;
        self.arm(ctl)?;
        self.plan_tidy(ctl);
        self.save(ctl);
        Ok(())
    }

    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, timer: TreeTimer) -> Result<(), NodeError> {
        match timer {
            TreeTimer::Flush => {
                self.flush_pending = false;
                let Some(parent) = self.d.parent else {
                    return Ok(());
                };
                if self.d.farewell {
                    return Ok(());
                }
                let value = self.held()? - self.d.edge.base;
                if value == self.d.edge.reported {
                    return Ok(());
                }
                self.d.edge.reported = value;
                let up = TreeMessage::Up {
                    epoch: self.d.edge.epoch,
                    total: value,
                };
                tell(ctl, parent, &up)?;
            }
            TreeTimer::Tidy => {
                self.tidy_pending = false;
                self.tidy(ctl)?;
                self.plan_tidy(ctl);
            }
        }
        self.save(ctl);
        Ok(())
    }

    fn state(&self) -> TreeNodeState {
        let input = self.input();
        TreeNodeState {
            role: self.d.config.role,
            root: self.d.config.root,
            height: self.d.height,
            max_kids: self.max(),
            parent: self.d.parent,
            kids: self.d.kids.iter().map(|kid| kid.node).collect(),
            busy: self.d.op.is_some() || !self.d.queued.is_empty(),
            retiring: self.d.retiring,
            unsent: if input && !self.d.farewell {
                self.held().unwrap_or(0) - self.d.edge.base - self.d.edge.reported
            } else {
                0
            },
            edges: if !input {
                Vec::new()
            } else if self.d.farewell {
                self.d.edge.closed.clone()
            } else {
                self.d.edge.all(self.d.parent)
            },
            received: self.d.received.clone(),
            gone: self.d.gone.clone(),
            version: self.d.version,
            total: self.d.total,
        }
    }
}

/// A user's leaf's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeLeafConfig {
    /// Its tree.
    pub role: Role,
    /// Its user.
    pub user: String,
    /// Input tree: what the user does, times after the leaf starts.
    #[serde(default)]
    pub recording: Option<RecordedUser>,
    /// When the user leaves, since the start.
    #[serde(default)]
    pub leave_ms: Option<u64>,
    /// Its leaf parent.
    pub parent: NodeHandle,
    /// Whether it persists what it knows.
    pub persist: bool,
    /// Output tree: the version it starts from.
    #[serde(default)]
    pub version: u64,
    /// Output tree: the total at that version.
    #[serde(default)]
    pub total: i64,
}

/// What a leaf knows, persisted whole after every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeLeafData {
    config: TreeLeafConfig,
    parent: NodeHandle,
    started_ms: u64,
    played: usize,
    sent_total: i64,
    edge: Edge,
    left: bool,
    version: u64,
    total: i64,
}

/// A leaf's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeLeafState {
    /// Its tree.
    pub role: Role,
    /// Its user.
    pub user: String,
    /// Its parent.
    pub parent: NodeHandle,
    /// Input: everything the user added so far.
    pub sent_total: i64,
    /// Input: every edge it reported on, the current one last.
    pub edges: Vec<ClosedEdge>,
    /// Whether it has left (its parent terminates it).
    pub left: bool,
    /// Output: the centre's version it holds.
    pub version: u64,
    /// Output: the user's view of the total.
    pub total: i64,
}

/// A leaf's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafTimer {
    /// Play recorded action `index`.
    Action(usize),
    /// Leave, if everything is played.
    Leave,
}

/// A user's leaf in the input tree (plays the user's recording, reports its running total) or in
/// the output tree (holds the user's view of the total).
#[derive(Debug)]
pub struct TreeLeaf {
    d: TreeLeafData,
}

impl TreeLeaf {
    fn actions(&self) -> &[(crate::time::Millis, super::UserAction)] {
        self.d
            .config
            .recording
            .as_ref()
            .map(RecordedUser::actions)
            .unwrap_or_default()
    }

    fn save(&self, ctl: &mut Ctl<'_, Self>) {
        if self.d.config.persist {
            ctl.persist(self.d.clone());
        }
    }

    fn arm(&self, ctl: &mut Ctl<'_, Self>) {
        if self.d.left {
            return;
        }
        if let Some((at_ms, _)) = self.actions().get(self.d.played) {
            let due = self.d.started_ms.saturating_add(at_ms.0);
            ctl.set_timer(
                due.saturating_sub(ctl.now_ms()),
                LeafTimer::Action(self.d.played),
            );
        } else if let Some(leave_ms) = self.d.config.leave_ms {
            ctl.set_timer(leave_ms.saturating_sub(ctl.now_ms()), LeafTimer::Leave);
        }
    }

    fn say_goodbye(&self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        let edges = self.d.edge.all(Some(self.d.parent));
        let last = edges.last().copied();
        let message = TreeMessage::Goodbye {
            epoch: last.map_or(0, |edge| edge.epoch),
            total: last.map_or(0, |edge| edge.total),
            answers: None,
            leaving: vec![GoneLeaf {
                leaf: ctl.me().untyped(),
                user: Some(self.d.config.user.clone()),
                edges: if self.d.config.role == Role::Input {
                    edges
                } else {
                    Vec::new()
                },
                received: Vec::new(),
            }],
        };
        tell(ctl, self.d.parent, &message)
    }
}

impl TypedNode for TreeLeaf {
    const TYPE: &'static str = "TreeLeaf";
    type Config = TreeLeafConfig;
    type Message = TreeMessage;
    type State = TreeLeafState;
    type Timer = LeafTimer;
    type Durable = TreeLeafData;

    fn new(config: TreeLeafConfig) -> Result<Self, NodeError> {
        Ok(TreeLeaf {
            d: TreeLeafData {
                parent: config.parent,
                started_ms: 0,
                played: 0,
                sent_total: 0,
                edge: Edge::default(),
                left: false,
                version: config.version,
                total: config.total,
                config,
            },
        })
    }

    fn start(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        self.d.started_ms = ctl.now_ms();
        self.save(ctl);
        self.arm(ctl);
        Ok(())
    }

    fn recover(&mut self, ctl: &mut Ctl<'_, Self>, data: TreeLeafData) -> Result<(), NodeError> {
        self.d = data;
        if self.d.config.role == Role::Input {
            for closed in self.d.edge.closed.clone() {
                tell(ctl, closed.parent, &goodbye_of(&closed, Vec::new()))?;
            }
            if !self.d.left {
                let up = TreeMessage::Up {
                    epoch: self.d.edge.epoch,
                    total: self.d.edge.reported,
                };
                tell(ctl, self.d.parent, &up)?;
            }
        }
        if self.d.left {
            self.say_goodbye(ctl)?;
        }
        self.arm(ctl);
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: Option<NodeHandle>,
        message: TreeMessage,
    ) -> Result<(), NodeError> {
        match (message, from) {
            (TreeMessage::Adopt { parent, id }, Some(from)) => {
                if from != self.d.parent {
                    return Ok(());
                }
                // Closes the edge to the old parent, answering its order.
                let closed = self.d.edge.close(from, self.d.sent_total, Some(id));
                if self.d.config.role == Role::Input {
                    tell(ctl, from, &goodbye_of(&closed, Vec::new()))?;
                }
                self.d.parent = parent;
                self.save(ctl);
                if self.d.left {
                    // The leaf left as its parent moved it: the new parent hears it too, on
                    // an edge of its own with nothing on it.
                    return self.say_goodbye(ctl);
                }
                Ok(())
            }
            (TreeMessage::Down { version, total }, _) if self.d.config.role == Role::Output => {
                if version > self.d.version {
                    self.d.version = version;
                    self.d.total = total;
                    self.save(ctl);
                }
                Ok(())
            }
            (message, _) => Err(unexpected(Self::TYPE, &message)),
        }
    }

    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, timer: LeafTimer) -> Result<(), NodeError> {
        if self.d.left {
            return Ok(());
        }
        match timer {
            LeafTimer::Action(index) => {
                let Some((_, action)) = self.actions().get(index).copied() else {
                    return Ok(());
                };
                if index != self.d.played {
                    return Ok(());
                }
                self.d.played = index + 1;
                self.d.sent_total = super::add_to_total(self.d.sent_total, action.amount())?;
                self.d.edge.reported = self.d.sent_total - self.d.edge.base;
                self.save(ctl);
                self.arm(ctl);
                let up = TreeMessage::Up {
                    epoch: self.d.edge.epoch,
                    total: self.d.edge.reported,
                };
                tell(ctl, self.d.parent, &up)
            }
            LeafTimer::Leave => {
                if self.d.played < self.actions().len() {
                    return Ok(());
                }
                self.d.left = true;
                self.save(ctl);
                self.say_goodbye(ctl)
            }
        }
    }

    fn state(&self) -> TreeLeafState {
        TreeLeafState {
            role: self.d.config.role,
            user: self.d.config.user.clone(),
            parent: self.d.parent,
            sent_total: self.d.sent_total,
            edges: if self.d.config.role == Role::Input {
                self.d.edge.all(Some(self.d.parent))
            } else {
                Vec::new()
            },
            left: self.d.left,
            version: self.d.version,
            total: self.d.total,
        }
    }
}

/// The centre's config: the output tree's root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeCentreConfig {
    /// The output tree's root.
    pub output: NodeHandle,
    /// Whether it persists what it knows.
    pub persist: bool,
}

/// What the centre knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeCentreData {
    received: Vec<Received>,
    version: u64,
    total: i64,
}

/// The centre's observable state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeCentreState {
    /// What the input tree's root reported.
    pub received: Vec<Received>,
    /// Everything applied at the centre.
    pub applied: i64,
    /// The version of the last total sent down.
    pub version: u64,
    /// The total sent down at that version.
    pub total: i64,
}

/// Where the trees meet: applies the input tree's total and sends it down the output tree,
/// every [`TREE_INTERVAL_MS`], with a new version each time.
#[derive(Debug)]
pub struct TreeCentre {
    output: NodeHandle,
    persist: bool,
    d: TreeCentreData,
    flush_pending: bool,
}

impl TreeCentre {
    fn applied(&self) -> Result<i64, NodeError> {
        checked_sum(self.d.received.iter().map(|entry| entry.total))
    }

    fn down(&self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        let down = TreeMessage::Down {
            version: self.d.version,
            total: self.d.total,
        };
        tell(ctl, self.output, &down)
    }
}

impl TypedNode for TreeCentre {
    const TYPE: &'static str = "TreeCentre";
    type Config = TreeCentreConfig;
    type Message = TreeMessage;
    type State = TreeCentreState;
    type Timer = TreeFlush;
    type Durable = TreeCentreData;

    fn new(config: TreeCentreConfig) -> Result<Self, NodeError> {
        Ok(TreeCentre {
            output: config.output,
            persist: config.persist,
            d: TreeCentreData::default(),
            flush_pending: false,
        })
    }

    fn recover(&mut self, ctl: &mut Ctl<'_, Self>, data: TreeCentreData) -> Result<(), NodeError> {
        self.d = data;
        if self.d.version > 0 {
            self.down(ctl)?;
        }
        if self.applied()? != self.d.total {
            self.flush_pending = true;
            ctl.set_timer(TREE_INTERVAL_MS, TreeFlush);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        from: Option<NodeHandle>,
        message: TreeMessage,
    ) -> Result<(), NodeError> {
        match (message, from) {
            (TreeMessage::Up { epoch, total }, Some(from)) => {
                record(&mut self.d.received, from, epoch, total, false);
            }
            (TreeMessage::Goodbye { epoch, total, .. }, Some(from)) => {
                record(&mut self.d.received, from, epoch, total, true);
            }
            (message, _) => return Err(unexpected(Self::TYPE, &message)),
        }
        if !self.flush_pending && self.applied()? != self.d.total {
            self.flush_pending = true;
            ctl.set_timer(TREE_INTERVAL_MS, TreeFlush);
        }
        if self.persist {
            ctl.persist(self.d.clone());
        }
        Ok(())
    }

    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, _: TreeFlush) -> Result<(), NodeError> {
        self.flush_pending = false;
        let applied = self.applied()?;
        if applied == self.d.total && self.d.version > 0 {
            return Ok(());
        }
        self.d.version += 1;
        self.d.total = applied;
        if self.persist {
            ctl.persist(self.d.clone());
        }
        self.down(ctl)
    }

    fn state(&self) -> TreeCentreState {
        TreeCentreState {
            received: self.d.received.clone(),
            applied: self.applied().unwrap_or(0),
            version: self.d.version,
            total: self.d.total,
        }
    }
}
