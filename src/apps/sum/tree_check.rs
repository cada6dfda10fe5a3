//! What must hold of the trees: after every event (the sum application's invariant) and once the
//! run is at rest (part of its check).

use std::collections::{BTreeMap, BTreeSet};

use super::tree::{ClosedEdge, GoneLeaf, Role, TreeCentre, TreeLeaf, TreeLeafState, TreeNode};
use super::tree::{TreeCentreState, TreeNodeState};
use super::SumSection;
use crate::messages::NodeHandle;
use crate::system::States;

/// What the trees' invariant found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeViolation {
    /// A node has more kids than `max_kids`.
    #[error("node {node} has {kids} kids, more than {max_kids}")]
    TooManyKids {
        /// The node.
        node: NodeHandle,
        /// How many kids it lists.
        kids: usize,
        /// The limit.
        max_kids: usize,
    },
    /// Two nodes list one kid.
    #[error("{kid} is listed by two parents, {first} and {second}")]
    TwoParents {
        /// The kid.
        kid: NodeHandle,
        /// One parent.
        first: NodeHandle,
        /// The other.
        second: NodeHandle,
    },
    /// Applied at the centre, held unsent and in flight do not add up to what users added.
    #[error("conservation: users added {added}, but the centre applied {applied}, nodes hold {unsent} unsent and {in_flight} is in flight")]
    Conservation {
        /// Everything users added so far.
        added: i64,
        /// Applied at the centre.
        applied: i64,
        /// Held by input nodes and not yet reported upward.
        unsent: i64,
        /// Reported and not yet received.
        in_flight: i64,
    },
    /// An output node holds a version the centre never sent.
    #[error("output node {node} holds version {version}, beyond the centre's {centre}")]
    AheadOfCentre {
        /// The node.
        node: NodeHandle,
        /// Its version.
        version: u64,
        /// The centre's.
        centre: u64,
    },
}

/// The trees as one moment's states show them.
struct Trees {
    centre: Option<(NodeHandle, TreeCentreState)>,
    nodes: Vec<(NodeHandle, TreeNodeState)>,
    leaves: Vec<(NodeHandle, TreeLeafState)>,
}

impl Trees {
    fn read(states: &States) -> Self {
        Trees {
            centre: states
                .of::<TreeCentre>()
                .into_iter()
                .next()
                .map(|(handle, state)| (handle.untyped(), state)),
            nodes: states
                .of::<TreeNode>()
                .into_iter()
                .map(|(handle, state)| (handle.untyped(), state))
                .collect(),
            leaves: states
                .of::<TreeLeaf>()
                .into_iter()
                .map(|(handle, state)| (handle.untyped(), state))
                .collect(),
        }
    }

    /// Every kid's listing parents, in the order found.
    fn listings(&self) -> BTreeMap<NodeHandle, Vec<NodeHandle>> {
        let mut listed: BTreeMap<NodeHandle, Vec<NodeHandle>> = BTreeMap::new();
        for (handle, node) in &self.nodes {
            for kid in &node.kids {
                listed.entry(*kid).or_default().push(*handle);
            }
        }
        listed
    }

    /// Users added, applied, unsent and in flight; `None` if a node the sum needs is not
    /// visible (its machine is down, or its spawn is on the way).
    fn conservation(&self, section: &SumSection) -> Option<(i64, i64, i64, i64)> {
        let (centre_handle, centre) = self.centre.as_ref()?;
        let input_nodes: Vec<_> = self
            .nodes
            .iter()
            .filter(|(_, node)| node.role == Role::Input)
            .collect();
        let input_leaves: Vec<_> = self
            .leaves
            .iter()
            .filter(|(_, leaf)| leaf.role == Role::Input)
            .collect();
        let mut present: BTreeSet<NodeHandle> = BTreeSet::from([*centre_handle]);
        present.extend(input_nodes.iter().map(|(handle, _)| *handle));
        present.extend(input_leaves.iter().map(|(handle, _)| *handle));
        for (_, node) in &input_nodes {
            if node.parent.is_some_and(|parent| !present.contains(&parent))
                || node.kids.iter().any(|kid| !present.contains(kid))
            {
                return None;
            }
        }
        if input_leaves
            .iter()
            .any(|(_, leaf)| !present.contains(&leaf.parent))
        {
            return None;
        }
        let mut gone: BTreeMap<NodeHandle, &GoneLeaf> = BTreeMap::new();
        for (_, node) in &input_nodes {
            for leaf in &node.gone {
                let known = gone.entry(leaf.leaf).or_insert(leaf);
                if leaf.edges.len() > known.edges.len() {
                    *known = leaf;
                }
            }
        }
        let mut received: BTreeMap<(NodeHandle, NodeHandle, u64), i64> = BTreeMap::new();
        let mut receivers = present.clone();
        for (handle, left) in &gone {
            if !present.contains(handle) {
                receivers.insert(*handle);
                for entry in &left.received {
                    received.insert((*handle, entry.kid, entry.epoch), entry.total);
                }
            }
        }
        for entry in &centre.received {
            received.insert((*centre_handle, entry.kid, entry.epoch), entry.total);
        }
        for (handle, node) in &input_nodes {
            for entry in &node.received {
                received.insert((*handle, entry.kid, entry.epoch), entry.total);
            }
        }
        let mut edges: Vec<(NodeHandle, ClosedEdge)> = Vec::new();
        for (handle, node) in &input_nodes {
            edges.extend(node.edges.iter().map(|edge| (*handle, *edge)));
        }
        for (handle, leaf) in &input_leaves {
            edges.extend(leaf.edges.iter().map(|edge| (*handle, *edge)));
        }
        let mut added: i64 = input_leaves.iter().map(|(_, leaf)| leaf.sent_total).sum();
        let mut listed: Option<BTreeMap<&str, i64>> = None;
        for (handle, leaf) in &gone {
            if !present.contains(handle) {
                edges.extend(leaf.edges.iter().map(|edge| (*handle, *edge)));
                if let Some(user) = &leaf.user {
                    added += match section.crowd_user(user) {
                        Some(user) => user.total(),
                        None => listed
                            .get_or_insert_with(|| {
                                section
                                    .users
                                    .iter()
                                    .map(|user| (user.name.as_str(), user.total()))
                                    .collect()
                            })
                            .get(user.as_str())
                            .copied()
                            .unwrap_or(0),
                    };
                }
            }
        }
        let mut in_flight = 0i64;
        for (sender, edge) in edges {
            if !receivers.contains(&edge.parent) {
                return None;
            }
            let got = received
                .get(&(edge.parent, sender, edge.epoch))
                .copied()
                .unwrap_or(0);
            in_flight += edge.total - got;
        }
        let unsent = input_nodes.iter().map(|(_, node)| node.unsent).sum();
        Some((added, centre.applied, unsent, in_flight))
    }
}

/// The trees' invariant: no node over `max_kids`; and, on states that make a consistent cut
/// ([`States::is_a_cut`]), no kid listed by two parents, conservation (whenever every node it
/// sums is visible), no output ahead of the centre.
pub fn tree_invariant(section: &SumSection, states: &States) -> Result<(), TreeViolation> {
    let trees = Trees::read(states);
    for (handle, node) in &trees.nodes {
        if node.kids.len() > node.max_kids {
            return Err(TreeViolation::TooManyKids {
                node: *handle,
                kids: node.kids.len(),
                max_kids: node.max_kids,
            });
        }
    }
    // What follows relates nodes on different machines: judged only on a consistent cut.
    if !states.is_a_cut() {
        return Ok(());
    }
    for (kid, parents) in trees.listings() {
        if let [first, second, ..] = parents[..] {
            return Err(TreeViolation::TwoParents { kid, first, second });
        }
    }
    if let Some((added, applied, unsent, in_flight)) = trees.conservation(section) {
        if applied + unsent + in_flight != added {
            return Err(TreeViolation::Conservation {
                added,
                applied,
                unsent,
                in_flight,
            });
        }
    }
    if let Some((_, centre)) = &trees.centre {
        let outputs = trees
            .nodes
            .iter()
            .filter(|(_, node)| node.role == Role::Output)
            .map(|(handle, node)| (*handle, node.version))
            .chain(
                trees
                    .leaves
                    .iter()
                    .filter(|(_, leaf)| leaf.role == Role::Output)
                    .map(|(handle, leaf)| (*handle, leaf.version)),
            );
        for (node, version) in outputs {
            if version > centre.version {
                return Err(TreeViolation::AheadOfCentre {
                    node,
                    version,
                    centre: centre.version,
                });
            }
        }
    }
    Ok(())
}

/// What is wrong with the trees at rest: a node orphaned (listed by no parent, or by one it does
/// not name), anything unsent, in flight or waiting, a leaf that left still there, a node over
/// `max_kids`, or the centre short of the total. Empty when all is well.
pub fn at_rest_problems(section: &SumSection, states: &States) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(violation) = tree_invariant(section, states) {
        problems.push(violation.to_string());
    }
    let trees = Trees::read(states);
    let listings = trees.listings();
    let parents = trees
        .nodes
        .iter()
        .filter(|(_, node)| !node.root)
        .map(|(handle, node)| (*handle, node.parent))
        .chain(
            trees
                .leaves
                .iter()
                .map(|(handle, leaf)| (*handle, Some(leaf.parent))),
        );
    for (node, parent) in parents {
        match listings.get(&node).map(Vec::as_slice) {
            Some([listed]) if Some(*listed) == parent => {}
            Some([listed]) => problems.push(format!(
                "{node} is listed by {listed} but names {parent:?} its parent"
            )),
            _ => problems.push(format!("{node} is orphaned: no parent lists it")),
        }
    }
    for (handle, node) in &trees.nodes {
        if node.unsent != 0 {
            problems.push(format!("{handle} holds {} unsent", node.unsent));
        }
        if node.busy {
            problems.push(format!("{handle} still waits for a split"));
        }
    }
    for (handle, leaf) in &trees.leaves {
        if leaf.left {
            problems.push(format!("{handle} ({}) left but is still there", leaf.user));
        }
    }
    for (handle, node) in &trees.nodes {
        if node.retiring {
            problems.push(format!("{handle} is merging away still"));
        }
    }
    for role in [Role::Input, Role::Output] {
        let here: BTreeSet<&str> = trees
            .leaves
            .iter()
            .filter(|(_, leaf)| leaf.role == role)
            .map(|(_, leaf)| leaf.user.as_str())
            .collect();
        let left: BTreeSet<&str> = trees
            .nodes
            .iter()
            .filter(|(_, node)| node.role == role)
            .flat_map(|(_, node)| &node.gone)
            .filter_map(|gone| gone.user.as_deref())
            .collect();
        for user in section.each_user() {
            let name = user.name();
            let (found, wanted) = if user.leave_ms().is_some() {
                (left.contains(name.as_ref()), "left")
            } else {
                (here.contains(name.as_ref()), "a leaf")
            };
            if !found {
                problems.push(format!(
                    "{name} in the {role:?} tree: not {wanted} as it should be"
                ));
            }
        }
    }
    match trees.conservation(section) {
        Some((_, _, _, in_flight)) if in_flight != 0 => {
            problems.push(format!("{in_flight} is still in flight"));
        }
        Some((_, applied, _, _)) if applied != section.expected_total() => problems.push(format!(
            "the centre applied {applied}, not {}",
            section.expected_total()
        )),
        Some(_) => {}
        None => problems.push("a node of the input tree is missing".into()),
    }
    problems
}

/// The height of `role`'s tree (users' leaves are at height 0, so a root of height 1 has the
/// leaves as its kids), if its root is visible.
pub fn tree_height(states: &States, role: Role) -> Option<u32> {
    states
        .of::<TreeNode>()
        .into_iter()
        .find(|(_, node)| node.root && node.role == role)
        .map(|(_, node)| node.height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::sum::tree::{ClosedEdge, Received, TreeCentreState, TreeLeafState};
    use crate::apps::sum::{TreeSpec, UserAction, UserSpec};
    use crate::counters::Counters;
    use crate::manager::NodeState;
    use crate::messages::{MachineId, NodeId};
    use crate::node::TypedNode;
    use crate::time::Millis;

    fn handle(serial: u32) -> NodeHandle {
        NodeHandle {
            id: NodeId { origin: 0, serial },
            machine: MachineId(0),
        }
    }

    fn state<N: TypedNode>(serial: u32, typed: &N::State) -> NodeState {
        NodeState {
            handle: handle(serial),
            node_type: N::TYPE.to_owned(),
            state: serde_json::to_value(typed).expect("encodes"),
            counters: Counters::default(),
        }
    }

    fn node(kids: &[u32], parent: u32, root: bool) -> TreeNodeState {
        TreeNodeState {
            role: Role::Input,
            root,
            height: 1,
            max_kids: 3,
            parent: Some(handle(parent)),
            kids: kids.iter().copied().map(handle).collect(),
            busy: false,
            retiring: false,
            unsent: 0,
            edges: Vec::new(),
            received: Vec::new(),
            gone: Vec::new(),
            version: 0,
            total: 0,
        }
    }

    fn leaf(parent: u32, sent: i64, reported: i64) -> TreeLeafState {
        TreeLeafState {
            role: Role::Input,
            user: "ann".into(),
            parent: handle(parent),
            sent_total: sent,
            edges: vec![ClosedEdge {
                parent: handle(parent),
                epoch: 0,
                total: reported,
                answers: None,
            }],
            left: false,
            version: 0,
            total: 0,
        }
    }

    fn centre(applied: i64) -> TreeCentreState {
        TreeCentreState {
            received: vec![Received {
                kid: handle(2),
                epoch: 0,
                total: applied,
                closed: false,
            }],
            applied,
            version: 0,
            total: 0,
        }
    }

    fn section() -> SumSection {
        SumSection {
            users: vec![UserSpec {
                name: "ann".into(),
                machine: 0,
                join_ms: Millis(0),
                actions: vec![(Millis(5), UserAction::Increment { amount: 4 })],
                leave_ms: None,
            }],
            tree: Some(TreeSpec { max_kids: 3 }),
            ..SumSection::default()
        }
    }

    /// The centre (1), the input root (2) and a leaf (3): the leaf added 4 and reported it, the
    /// root holds it.
    /// With the output tree: its root (5) and ann's output leaf (4).
    fn trees(root: TreeNodeState, applied: i64) -> States {
        let mut output_root = node(&[4], 1, true);
        output_root.role = Role::Output;
        output_root.parent = None;
        let mut output_leaf = leaf(5, 0, 0);
        output_leaf.role = Role::Output;
        output_leaf.edges.clear();
        States::new(vec![
            state::<TreeCentre>(1, &centre(applied)),
            state::<TreeNode>(2, &root),
            state::<TreeLeaf>(3, &leaf(2, 4, 4)),
            state::<TreeLeaf>(4, &output_leaf),
            state::<TreeNode>(5, &output_root),
        ])
    }

    fn root_holding(unsent: i64, edge_total: i64) -> TreeNodeState {
        let mut root = node(&[3], 1, true);
        root.received = vec![Received {
            kid: handle(3),
            epoch: 0,
            total: 4,
            closed: false,
        }];
        root.unsent = unsent;
        root.edges = vec![ClosedEdge {
            parent: handle(1),
            epoch: 0,
            total: edge_total,
            answers: None,
        }];
        root
    }

    #[test]
    fn simulated_conservation_holds_wherever_the_amount_is_and_fails_when_it_is_lost() {
        // Held unsent at the root.
        assert_eq!(
            tree_invariant(&section(), &trees(root_holding(4, 0), 0)),
            Ok(())
        );
        // Reported by the root, in flight to the centre.
        assert_eq!(
            tree_invariant(&section(), &trees(root_holding(0, 4), 0)),
            Ok(())
        );
        // Applied at the centre.
        assert_eq!(
            tree_invariant(&section(), &trees(root_holding(0, 4), 4)),
            Ok(())
        );
        assert!(at_rest_problems(&section(), &trees(root_holding(0, 4), 4)).is_empty());
        // The root forgot it had it: lost.
        assert_eq!(
            tree_invariant(&section(), &trees(root_holding(0, 0), 0)),
            Err(TreeViolation::Conservation {
                added: 4,
                applied: 0,
                unsent: 0,
                in_flight: 0
            })
        );
        // Counted twice.
        assert!(tree_invariant(&section(), &trees(root_holding(4, 4), 4)).is_err());
        // At rest, something unsent is a problem even though it is conserved.
        assert!(!at_rest_problems(&section(), &trees(root_holding(4, 0), 0)).is_empty());
    }

    #[test]
    fn simulated_too_many_kids_and_two_parents_are_violations() {
        let crowded = node(&[3, 4, 5, 6], 1, true);
        let states = States::new(vec![state::<TreeNode>(2, &crowded)]);
        assert!(matches!(
            tree_invariant(&section(), &states),
            Err(TreeViolation::TooManyKids { kids: 4, .. })
        ));
        let states = States::new(vec![
            state::<TreeNode>(2, &node(&[4, 5], 1, true)),
            state::<TreeNode>(3, &node(&[5], 2, false)),
        ]);
        assert_eq!(
            tree_invariant(&section(), &states),
            Err(TreeViolation::TwoParents {
                kid: handle(5),
                first: handle(2),
                second: handle(3)
            })
        );
    }

    #[test]
    fn simulated_torn_states_are_judged_only_node_by_node() {
        // Read machine by machine while they run, a kid that moved may show under both parents,
        // and an amount may be neither sent nor received: only a node's own kids are judged.
        let states = || {
            States::new(vec![
                state::<TreeNode>(2, &node(&[4, 5], 1, true)),
                state::<TreeNode>(3, &node(&[5], 2, false)),
            ])
        };
        assert!(tree_invariant(&section(), &states()).is_err());
        assert_eq!(tree_invariant(&section(), &states().torn()), Ok(()));
        assert_eq!(
            tree_invariant(&section(), &trees(root_holding(0, 0), 0).torn()),
            Ok(()),
            "conservation is not judged on a torn read"
        );
        let crowded = States::new(vec![state::<TreeNode>(2, &node(&[3, 4, 5, 6], 1, true))]);
        assert!(matches!(
            tree_invariant(&section(), &crowded.torn()),
            Err(TreeViolation::TooManyKids { kids: 4, .. })
        ));
    }

    #[test]
    fn simulated_an_orphan_at_rest_is_a_problem() {
        let states = States::new(vec![
            state::<TreeCentre>(1, &centre(0)),
            state::<TreeNode>(2, &node(&[], 1, true)),
            state::<TreeNode>(4, &node(&[], 2, false)),
        ]);
        let problems = at_rest_problems(&section(), &states);
        assert!(
            problems.iter().any(|problem| problem.contains("orphaned")),
            "{problems:?}"
        );
        // ann, who stays, has no leaf in either tree: her join was lost.
        assert!(
            problems
                .iter()
                .any(|problem| problem.contains("ann in the Input tree")),
            "{problems:?}"
        );
    }
}
