//! The broadcast workload as an application: its scenario section, its play and its checker.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::topology::{self, Shape};
use super::{BroadcastConfig, BroadcastMessage, BroadcastNode, DEFAULT_GOSSIP_MS};
use crate::app::{states_of, Application, Common, FieldError, Stage, Verdict};
use crate::manager::NodeState;
use crate::messages::MachineId;
use crate::node::{Handle, NodeRegistry};
use crate::scenario::RunError;
use crate::time::Millis;

/// The most nodes a broadcast scenario may have.
pub const MAX_NODES: u32 = 100_000;
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
    #[serde(default)]
    pub topology: Shape,
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
    /// Each node's neighbours, every edge both ways.
    pub fn neighbours(&self) -> Vec<Vec<u32>> {
        match &self.neighbours {
            Some(lists) => topology::undirected(lists),
            None => topology::neighbours(self.topology, self.nodes),
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

    fn validate(&self, section: &BroadcastSection, common: &Common) -> Result<(), FieldError> {
        if section.nodes == 0 || section.nodes > MAX_NODES {
            return Err(FieldError::new(
                "nodes",
                format!(
                    "{} nodes: a workload has from 1 to {MAX_NODES}",
                    section.nodes
                ),
            ));
        }
        if section.gossip_ms == 0 {
            return Err(FieldError::new("gossip_ms", "must be positive"));
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
            if broadcast.at_ms > common.run_ms {
                return Err(FieldError::new(
                    at("at_ms"),
                    format!(
                        "{} is after the run ends (run_ms {})",
                        broadcast.at_ms, common.run_ms
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
    fn play(&self, section: &BroadcastSection, stage: &mut Stage<'_>) -> Result<(), RunError> {
        let machines = stage.machines().max(1);
        let mut nodes: Vec<Handle<BroadcastNode>> = Vec::new();
        for index in 0..section.nodes {
            let config = BroadcastConfig {
                index,
                gossip_ms: section.gossip_ms,
            };
            nodes.push(stage.spawn::<BroadcastNode>(MachineId(index % machines), &config)?);
        }
        for (node, list) in nodes.iter().zip(section.neighbours()) {
            let neighbours = list.iter().map(|j| nodes[*j as usize]).collect();
            stage.send(*node, &BroadcastMessage::Topology { neighbours })?;
        }
        let mut broadcasts = section.broadcasts.clone();
        broadcasts.sort_by_key(|broadcast| broadcast.at_ms);
        for broadcast in broadcasts {
            stage.wait_until(broadcast.at_ms)?;
            let value = broadcast.value;
            stage.send(
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

    /// No node ever holds a value twice, or one that was not broadcast.
    fn invariant(&self, section: &BroadcastSection, states: &[NodeState]) -> Result<(), String> {
        let expected = section.values();
        for (_, state) in states_of::<BroadcastNode>(states) {
            let mut seen = BTreeSet::new();
            for value in &state.values {
                if !expected.contains(value) {
                    return Err(format!(
                        "node {} holds {value}, never broadcast",
                        state.index
                    ));
                }
                if !seen.insert(*value) {
                    return Err(format!("node {} holds {value} twice", state.index));
                }
            }
        }
        Ok(())
    }

    fn has_invariant(&self) -> bool {
        true
    }
}
