//! The broadcast workload as an application: its scenario section, its play and its checker.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::topology::{self, Shape};
use super::{BroadcastConfig, BroadcastMessage, BroadcastNode, DEFAULT_GOSSIP_MS};
use crate::app::{
    states_of, Application, Common, FieldError, Input, Invariant, PlayError, Verdict,
};
use crate::manager::NodeState;
use crate::messages::MachineId;
use crate::node::{Handle, NodeRegistry};
use crate::system::{Sim, States, Violation};
use crate::time::Millis;

/// The most nodes a broadcast scenario may have.
pub const MAX_NODES: u32 = 100_000;
/// The most edges a topology may have (a `full` topology over 1,415 nodes has more).
pub const MAX_EDGES: u64 = 1_000_000;
/// The longest gossip period a scenario may ask for: an hour (a node gossips what it learnt
/// once a period; a longer one would leave every run waiting on timers far past its end).
pub const MAX_GOSSIP_MS: u64 = 3_600_000;
/// How many lacking nodes the readable summary lists before it only counts them.
const LISTED_NODES: usize = 12;

/// A client's broadcast: at `at_ms`, `value` is handed to node `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastSpec {
    /// When.
    pub at_ms: Millis,
    /// To which node (by position).
    pub node: u32,
    /// The value; distinct among the scenario's broadcasts.
    pub value: i64,
}

/// The broadcast workload's section of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastSection {
    /// How many nodes; node `i` runs on machine `i % machines`.
    pub nodes: u32,
    /// A named topology (`ring`, the default; `line`, `star`, `tree`, `grid`, `full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Shape>,
    /// An explicit topology instead: node `i`'s neighbours (every edge goes both ways).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbours: Option<Vec<Vec<u32>>>,
    /// What clients broadcast, and when.
    #[serde(default)]
    pub broadcasts: Vec<BroadcastSpec>,
    /// How often nodes gossip, in milliseconds.
    #[serde(default = "default_gossip_ms")]
    pub gossip_ms: u64,
}

fn default_gossip_ms() -> u64 {
    DEFAULT_GOSSIP_MS
}

impl BroadcastSection {
    /// The named topology (a ring unless the section names another).
    pub fn shape(&self) -> Shape {
        self.topology.unwrap_or_default()
    }

    /// Each node's neighbours, every edge both ways.
    pub fn neighbours(&self) -> Vec<Vec<u32>> {
        match &self.neighbours {
            Some(lists) => topology::undirected(lists),
            None => topology::neighbours(self.shape(), self.nodes),
        }
    }

    /// Every value broadcast, in order.
    pub fn values(&self) -> BTreeSet<i64> {
        self.broadcasts.iter().map(|b| b.value).collect()
    }
}

/// What a broadcast run came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastOutcome {
    /// How many nodes.
    pub nodes: u32,
    /// How many values were broadcast.
    pub values: usize,
    /// How many nodes hold every value, each once.
    pub complete: u32,
    /// For each node that does not: how many values it lacks.
    pub missing: BTreeMap<u32, usize>,
    /// For each node that holds a value more than once, or one never broadcast: how many.
    pub extra: BTreeMap<u32, usize>,
}

/// Refuses a topology of more than [`MAX_EDGES`] edges before it is built: a `full` topology
/// over many nodes would not fit in memory.
fn check_size(section: &BroadcastSection) -> Result<(), FieldError> {
    let too_many = |field: &str, what: String| {
        FieldError::new(
            field,
            format!("{what}; a topology has at most {MAX_EDGES} edges"),
        )
    };
    match &section.neighbours {
        None => {
            let edges = topology::edge_bound(section.shape(), section.nodes);
            if edges > MAX_EDGES {
                return Err(too_many(
                    "topology",
                    format!("{} nodes make up to {edges} edges", section.nodes),
                ));
            }
        }
        Some(lists) => {
            // Each edge may be listed from both of its ends.
            let listed: u64 = lists.iter().map(|list| list.len() as u64).sum();
            if listed > 2 * MAX_EDGES {
                return Err(too_many(
                    "neighbours",
                    format!("the lists name {listed} neighbours"),
                ));
            }
            let edges: u64 = topology::undirected(lists)
                .iter()
                .map(|list| list.len() as u64)
                .sum::<u64>()
                / 2;
            if edges > MAX_EDGES {
                return Err(too_many(
                    "neighbours",
                    format!("the lists make {edges} edges"),
                ));
            }
        }
    }
    Ok(())
}

/// Maelstrom's broadcast workload: every node must end up holding every value broadcast, each
/// exactly once.
#[derive(Debug, Clone, Copy, Default)]
pub struct BroadcastApp;

impl Application for BroadcastApp {
    const NAME: &'static str = "broadcast";
    const TITLE: &'static str = "broadcast workload";
    type Section = BroadcastSection;
    type Outcome = BroadcastOutcome;

    fn register(&self, registry: &mut NodeRegistry) {
        registry.add::<BroadcastNode>();
    }

    fn validate(&self, section: &BroadcastSection, _common: &Common) -> Result<(), FieldError> {
        if section.nodes == 0 || section.nodes > MAX_NODES {
            return Err(FieldError::new(
                "nodes",
                format!(
                    "{} nodes: a workload has from 1 to {MAX_NODES}",
                    section.nodes
                ),
            ));
        }
        if section.gossip_ms == 0 || section.gossip_ms > MAX_GOSSIP_MS {
            return Err(FieldError::new(
                "gossip_ms",
                format!(
                    "{}: from 1 to at most {MAX_GOSSIP_MS} (an hour)",
                    section.gossip_ms
                ),
            ));
        }
        if section.topology.is_some() && section.neighbours.is_some() {
            return Err(FieldError::new(
                "neighbours",
                "give either a named topology or explicit neighbours, not both",
            ));
        }
        if let Some(lists) = &section.neighbours {
            if lists.len() != section.nodes as usize {
                return Err(FieldError::new(
                    "neighbours",
                    format!(
                        "{} lists for {} nodes: give one list per node",
                        lists.len(),
                        section.nodes
                    ),
                ));
            }
            for (i, list) in lists.iter().enumerate() {
                if let Some(bad) = list.iter().find(|j| **j >= section.nodes) {
                    return Err(FieldError::new(
                        format!("neighbours[{i}]"),
                        format!("node {bad} is out of range (0..={})", section.nodes - 1),
                    ));
                }
            }
        }
        check_size(section)?;
        let unreachable = topology::unreachable(&section.neighbours());
        if let Some(node) = unreachable.first() {
            return Err(FieldError::new(
                if section.neighbours.is_some() {
                    "neighbours"
                } else {
                    "topology"
                },
                format!(
                    "node {node} cannot be reached from node 0 ({} nodes cut off): a value could never reach them",
                    unreachable.len()
                ),
            ));
        }
        let mut values = BTreeSet::new();
        for (index, broadcast) in section.broadcasts.iter().enumerate() {
            let at = |field: &str| format!("broadcasts[{index}].{field}");
            if broadcast.node >= section.nodes {
                return Err(FieldError::new(
                    at("node"),
                    format!(
                        "node {} is out of range (0..={})",
                        broadcast.node,
                        section.nodes - 1
                    ),
                ));
            }
            if !values.insert(broadcast.value) {
                return Err(FieldError::new(
                    at("value"),
                    format!(
                        "{} is broadcast twice; values are distinct",
                        broadcast.value
                    ),
                ));
            }
        }
        Ok(())
    }

    fn inputs(&self, section: &BroadcastSection) -> Vec<Input> {
        section
            .broadcasts
            .iter()
            .enumerate()
            .map(|(index, broadcast)| {
                Input::new(format!("broadcasts[{index}].at_ms"), broadcast.at_ms)
            })
            .collect()
    }

    fn size(&self, section: &BroadcastSection) -> String {
        format!(
            "{} nodes, {} values",
            section.nodes,
            section.broadcasts.len()
        )
    }

    fn is_large(&self, section: &BroadcastSection) -> bool {
        section.nodes >= 500
    }

    /// Spawns the nodes round-robin over the machines, tells each its neighbours, then hands
    /// each value to its node at its time.
    fn play(&self, section: &BroadcastSection, sim: &mut Sim<'_>) -> Result<(), PlayError> {
        let machines = sim.machines().max(1);
        let mut nodes: Vec<Handle<BroadcastNode>> = Vec::new();
        for index in 0..section.nodes {
            let config = BroadcastConfig {
                index,
                gossip_ms: section.gossip_ms,
            };
            nodes.push(sim.spawn::<BroadcastNode>(MachineId(index % machines), &config)?);
        }
        for (node, list) in nodes.iter().zip(section.neighbours()) {
            let neighbours = list.iter().map(|j| nodes[*j as usize]).collect();
            sim.send(*node, &BroadcastMessage::Topology { neighbours })?;
        }
        let mut broadcasts = section.broadcasts.clone();
        broadcasts.sort_by_key(|broadcast| broadcast.at_ms);
        for broadcast in broadcasts {
            sim.run_until(broadcast.at_ms.0)?;
            let value = broadcast.value;
            sim.send(
                nodes[broadcast.node as usize],
                &BroadcastMessage::Broadcast { value },
            )?;
        }
        Ok(())
    }

    /// Correct when every node holds every value broadcast, each exactly once, and nothing else.
    fn check(&self, section: &BroadcastSection, states: &[NodeState]) -> Verdict<BroadcastOutcome> {
        let expected = section.values();
        let mut held: BTreeMap<u32, Vec<i64>> =
            (0..section.nodes).map(|i| (i, Vec::new())).collect();
        for (_, state) in states_of::<BroadcastNode>(states) {
            held.insert(state.index, state.values);
        }
        let mut missing = BTreeMap::new();
        let mut extra = BTreeMap::new();
        for (node, values) in &held {
            let distinct: BTreeSet<i64> = values.iter().copied().collect();
            let lacking = expected.difference(&distinct).count();
            let surplus = (values.len() - distinct.len()) + distinct.difference(&expected).count();
            if lacking > 0 {
                missing.insert(*node, lacking);
            }
            if surplus > 0 {
                extra.insert(*node, surplus);
            }
        }
        let wrong: BTreeSet<u32> = missing.keys().chain(extra.keys()).copied().collect();
        let complete = section.nodes - u32::try_from(wrong.len()).unwrap_or(section.nodes);
        let summary = if wrong.is_empty() {
            format!(
                "all {} nodes hold all {} values, each once",
                section.nodes,
                expected.len()
            )
        } else {
            format!(
                "{} of {} nodes do not hold all {} values exactly once",
                wrong.len(),
                section.nodes,
                expected.len()
            )
        };
        let mut lines = vec![format!(
            "values broadcast: {}; nodes holding each exactly once: {complete} of {}",
            expected.len(),
            section.nodes
        )];
        for node in wrong.iter().take(LISTED_NODES) {
            lines.push(format!(
                "  node {node}: {} missing, {} extra",
                missing.get(node).copied().unwrap_or(0),
                extra.get(node).copied().unwrap_or(0)
            ));
        }
        if wrong.len() > LISTED_NODES {
            lines.push(format!(
                "  ... and {} more nodes",
                wrong.len() - LISTED_NODES
            ));
        }
        Verdict {
            correct: wrong.is_empty(),
            summary,
            lines,
            outcome: BroadcastOutcome {
                nodes: section.nodes,
                values: expected.len(),
                complete,
                missing,
                extra,
            },
        }
    }

    fn invariant(&self) -> Option<Invariant<Self>> {
        Some(Self::no_value_twice_or_unbroadcast)
    }

    /// For each value broadcast, how many nodes hold it (a value not handed to a node yet is
    /// held by none).
    fn series(&self, section: &BroadcastSection, states: &[NodeState]) -> Vec<(String, f64)> {
        let mut holders: BTreeMap<i64, f64> = section
            .values()
            .into_iter()
            .map(|value| (value, 0.0))
            .collect();
        for (_, state) in states_of::<BroadcastNode>(states) {
            let distinct: BTreeSet<i64> = state.values.into_iter().collect();
            for value in distinct {
                if let Some(count) = holders.get_mut(&value) {
                    *count += 1.0;
                }
            }
        }
        holders
            .into_iter()
            .map(|(value, count)| (format!("value {value}"), count))
            .collect()
    }

    fn series_title(&self) -> &'static str {
        "nodes holding each value"
    }

    fn series_goal(&self, section: &BroadcastSection) -> Option<(String, f64)> {
        Some(("every node".into(), f64::from(section.nodes)))
    }
}

/// What the broadcast workload's invariant found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastViolation {
    /// A node holds a value that was never broadcast.
    #[error("node {node} holds {value}, never broadcast")]
    NeverBroadcast {
        /// The node's index.
        node: u32,
        /// The value.
        value: i64,
    },
    /// A node holds a value twice.
    #[error("node {node} holds {value} twice")]
    HeldTwice {
        /// The node's index.
        node: u32,
        /// The value.
        value: i64,
    },
}

impl BroadcastApp {
    /// No node ever holds a value twice, or one that was not broadcast. A property of each
    /// node's state on its own, so only the states that changed since it last held are read.
    fn no_value_twice_or_unbroadcast(
        &self,
        section: &BroadcastSection,
        states: &States,
    ) -> Result<(), Box<dyn Violation>> {
        let changed = states.changed::<BroadcastNode>();
        if changed.is_empty() {
            return Ok(());
        }
        let mut expected: Vec<i64> = section.broadcasts.iter().map(|b| b.value).collect();
        expected.sort_unstable();
        let mut seen = vec![false; expected.len()];
        for (_, state) in changed {
            seen.fill(false);
            let node = state.index;
            for &value in &state.values {
                let Ok(at) = expected.binary_search(&value) else {
                    return Err(Box::new(BroadcastViolation::NeverBroadcast { node, value }));
                };
                if std::mem::replace(&mut seen[at], true) {
                    return Err(Box::new(BroadcastViolation::HeldTwice { node, value }));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Harness, TypedNode};

    fn workload(nodes: u32, values: &[i64]) -> BroadcastSection {
        BroadcastSection {
            nodes,
            topology: None,
            neighbours: None,
            broadcasts: values
                .iter()
                .map(|value| BroadcastSpec {
                    at_ms: Millis(0),
                    node: 0,
                    value: *value,
                })
                .collect(),
            gossip_ms: DEFAULT_GOSSIP_MS,
        }
    }

    /// The states of nodes holding `held[i]`, as the hardware reports them.
    fn states(held: &[&[i64]]) -> Vec<NodeState> {
        held.iter()
            .zip(0u32..)
            .map(|(values, index)| NodeState {
                handle: Harness::<BroadcastNode>::handle(index, index + 1),
                node_type: BroadcastNode::TYPE.into(),
                state: serde_json::json!({"index": index, "values": values, "neighbours": 2}),
                counters: Default::default(),
            })
            .collect()
    }

    fn common() -> Common {
        Common {
            machines: 2,
            run_ms: Millis(1_000),
        }
    }

    #[test]
    fn simulated_check_counts_missing_duplicate_and_unknown_values_per_node() {
        let section = workload(4, &[1, 2, 3]);
        let verdict = BroadcastApp.check(
            &section,
            &states(&[&[1, 2, 3], &[3, 1], &[1, 2, 3, 2], &[1, 2, 3, 9]]),
        );
        assert!(!verdict.correct);
        assert_eq!(
            verdict.outcome,
            BroadcastOutcome {
                nodes: 4,
                values: 3,
                complete: 1,
                missing: BTreeMap::from([(1, 1)]),
                extra: BTreeMap::from([(2, 1), (3, 1)]),
            }
        );
        assert_eq!(
            verdict.summary,
            "3 of 4 nodes do not hold all 3 values exactly once"
        );
        assert!(verdict
            .lines
            .contains(&"  node 2: 0 missing, 1 extra".into()));

        let all = BroadcastApp.check(&section, &states(&[&[3, 2, 1], &[1, 2, 3]]));
        assert!(
            !all.correct,
            "node 2 and 3 have no state: they lack everything"
        );
        assert_eq!(all.outcome.missing, BTreeMap::from([(2, 3), (3, 3)]));
        let exact =
            BroadcastApp.check(&workload(2, &[1, 2, 3]), &states(&[&[3, 2, 1], &[1, 2, 3]]));
        assert!(exact.correct, "{exact:?}");
        assert_eq!(exact.summary, "all 2 nodes hold all 3 values, each once");
    }

    #[test]
    fn simulated_invariant_refuses_a_value_held_twice_or_never_broadcast() {
        let section = workload(2, &[1, 2]);
        let invariant = BroadcastApp
            .invariant()
            .expect("the workload has an invariant");
        let check = |held: &[&[i64]]| {
            invariant(&BroadcastApp, &section, &States::new(states(held)))
                .err()
                .and_then(|violation| {
                    (*violation)
                        .as_any()
                        .downcast_ref::<BroadcastViolation>()
                        .cloned()
                })
        };
        assert_eq!(check(&[&[1], &[]]), None);
        let twice = check(&[&[1, 2, 1], &[]]);
        assert_eq!(
            twice,
            Some(BroadcastViolation::HeldTwice { node: 0, value: 1 })
        );
        let unknown = check(&[&[1], &[5]]);
        assert_eq!(
            unknown,
            Some(BroadcastViolation::NeverBroadcast { node: 1, value: 5 })
        );
    }

    #[test]
    fn simulated_a_named_topology_and_explicit_neighbours_together_are_refused() {
        let mut both = workload(2, &[1]);
        both.neighbours = Some(vec![vec![1], vec![0]]);
        assert!(BroadcastApp.validate(&both, &common()).is_ok());
        both.topology = Some(Shape::Line);
        let error = BroadcastApp
            .validate(&both, &common())
            .expect_err("which one?");
        assert_eq!(error.field, "neighbours");
        assert!(error.reason.contains("not both"), "{error}");
    }

    #[test]
    fn simulated_a_topology_too_large_to_build_is_refused_before_it_is_built() {
        let mut full = workload(100_000, &[]);
        full.topology = Some(Shape::Full);
        let error = BroadcastApp
            .validate(&full, &common())
            .expect_err("five billion edges");
        assert_eq!(error.field, "topology");
        assert!(error.reason.contains("4999950000 edges"), "{error}");
        assert!(topology::edge_bound(Shape::Full, 1_414) <= MAX_EDGES);
        assert!(topology::edge_bound(Shape::Full, 1_415) > MAX_EDGES);
        let mut ring = workload(MAX_NODES, &[]);
        assert!(BroadcastApp.validate(&ring, &common()).is_ok());
        ring.topology = Some(Shape::Grid);
        assert!(BroadcastApp.validate(&ring, &common()).is_ok());

        let mut explicit = workload(1_500, &[]);
        explicit.neighbours = Some((0..1_500).map(|i| (0..i).collect()).collect());
        let error = BroadcastApp
            .validate(&explicit, &common())
            .expect_err("1,124,250 edges");
        assert_eq!(error.field, "neighbours");
        assert!(error.reason.contains("1124250 edges"), "{error}");
        explicit.nodes = 2;
        explicit.neighbours = Some(vec![vec![1; 2_000_001], vec![]]);
        let error = BroadcastApp
            .validate(&explicit, &common())
            .expect_err("refused before the edges are built");
        assert_eq!(error.field, "neighbours");
        assert!(error.reason.contains("2000001 neighbours"), "{error}");
    }
}
