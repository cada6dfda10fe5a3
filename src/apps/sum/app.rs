//! The sum network as an application: how a scenario sets it up and what "correct" means.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tree::{
    JoinRequest, Role, TreeCentre, TreeCentreConfig, TreeLeaf, TreeMessage, TreeNode,
    TreeNodeConfig,
};
use super::{
    CrowdContext, InputConfig, InputLeafNode, InputNode, OutputConfig, OutputLeafNode, OutputNode,
    SumConfig, SumMessage, SumNode, SumSection, TreeSpec, User,
};
use crate::app::{
    states_of, Application, Common, FieldError, Input, Invariant, PlayError, Verdict,
};
use crate::manager::NodeState;
use crate::messages::MachineId;
use crate::node::NodeRegistry;
use crate::system::{Sends, Sim};
use crate::system::{States, Violation};

/// How many outputs the readable summary lists before it only counts them.
const LISTED_OUTPUTS: usize = 12;
/// The widest a user's name pads the summary's columns: a longer name is shown whole, without
/// widening every other line to its length.
const NAME_COLUMN: usize = 24;
/// Runs with at least this many users are large enough for a progress bar.
const LARGE_RUN_USERS: usize = 500;

/// The most messages the runner sends at once when it is behind its users (see
/// [`play_joins`]): a control request of this many joins stays far below the frame limit.
const JOIN_GROUP: usize = 512;

/// The sum network: the default application of scenarios that name none.
#[derive(Debug, Clone, Copy, Default)]
pub struct SumApp;

/// What a sum-network run came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SumOutcome {
    /// How many users.
    pub users: usize,
    /// The sum of every increment.
    pub expected_total: i64,
    /// User name → that user's output total (`null` if it has none); a user who left has none
    /// and is not listed.
    pub outputs: BTreeMap<String, Option<i64>>,
    /// The trees' heights at the end (trees only): users' leaves are at height 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heights: Option<TreeHeights>,
}

/// The heights of the input and the output tree's roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHeights {
    /// The input tree's root's height.
    pub input: u32,
    /// The output tree's root's height.
    pub output: u32,
}

impl Application for SumApp {
    const NAME: &'static str = "sum";
    const TITLE: &'static str = "sum network";
    type Section = SumSection;
    type Outcome = SumOutcome;

    fn register(&self, registry: &mut NodeRegistry) {
        registry.add::<InputNode>();
        registry.add::<InputLeafNode>();
        registry.add::<OutputNode>();
        registry.add::<OutputLeafNode>();
        registry.add::<SumNode>();
        registry.add::<TreeNode>();
        registry.add::<TreeLeaf>();
        registry.add::<TreeCentre>();
    }

    /// The crowds take the scenario's machine count and seed.
    fn prepare(&self, section: &mut SumSection, common: &Common, seed: u64) {
        section.context = CrowdContext {
            machines: common.machines,
            seed,
        };
    }

    fn validate(&self, section: &SumSection, common: &Common) -> Result<(), FieldError> {
        section.validate(common)
    }

    fn inputs(&self, section: &SumSection) -> Vec<Input> {
        section.inputs()
    }

    fn size(&self, section: &SumSection) -> String {
        format!("{} users", section.user_count())
    }

    fn is_large(&self, section: &SumSection) -> bool {
        section.user_count() >= LARGE_RUN_USERS
    }

    /// Builds the sum network on machine 0 and lets every user join at its time.
    fn play(&self, section: &SumSection, sim: &mut Sim<'_>) -> Result<(), PlayError> {
        if let Some(tree) = section.tree {
            return play_trees(section, tree, sim);
        }
        let root = MachineId(0);
        let persist = section.persist;
        let sum_config = SumConfig {
            persist,
            ..SumConfig::default()
        };
        let sum = sim.spawn::<SumNode>(root, &sum_config)?;
        let input = sim.spawn::<InputNode>(
            root,
            &InputConfig {
                receivers: vec![sum],
                persist,
            },
        )?;
        let output = sim.spawn::<OutputNode>(
            root,
            &OutputConfig {
                senders: vec![sum],
                persist,
            },
        )?;
        play_joins(section, sim, |user, sends| {
            let recording = user.recording()?;
            let machine = user.machine_id();
            sends.push(input, &SumMessage::AddInputKid { machine, recording })?;
            let user = user.name().into_owned();
            sends.push(output, &SumMessage::AddOutputKid { machine, user })?;
            Ok(())
        })
    }

    /// Correct when every user's output equals the sum of every increment.
    fn check(&self, section: &SumSection, states: &[NodeState]) -> Verdict<SumOutcome> {
        let expected_total = section.expected_total();
        let mut outputs: BTreeMap<String, Option<i64>> = section
            .each_user()
            .filter(|user| user.leave_ms().is_none())
            .map(|user| (user.name().into_owned(), None))
            .collect();
        if section.tree.is_some() {
            for (_, leaf) in states_of::<TreeLeaf>(states) {
                if leaf.role == Role::Output {
                    if let Some(slot) = outputs.get_mut(&leaf.user) {
                        *slot = Some(leaf.total);
                    }
                }
            }
        } else {
            for (_, leaf) in states_of::<OutputLeafNode>(states) {
                if let Some(slot) = outputs.get_mut(&leaf.user) {
                    *slot = Some(leaf.total);
                }
            }
        }
        let wrong = outputs
            .values()
            .filter(|total| **total != Some(expected_total))
            .count();
        let mut lines = lines(expected_total, &outputs);
        let (problems, heights) = if section.tree.is_some() {
            let states = States::new(states.to_vec());
            let heights = match (
                super::tree_height(&states, Role::Input),
                super::tree_height(&states, Role::Output),
            ) {
                (Some(input), Some(output)) => Some(TreeHeights { input, output }),
                _ => None,
            };
            (super::at_rest_problems(section, &states), heights)
        } else {
            (Vec::new(), None)
        };
        let summary = if wrong == 0 && problems.is_empty() {
            format!("all {} outputs equal {expected_total}", outputs.len())
        } else if wrong == 0 {
            format!(
                "all {} outputs equal {expected_total}, but the trees are not at rest: {}",
                outputs.len(),
                problems[0]
            )
        } else {
            format!(
                "{wrong} of {} outputs differ from {expected_total}",
                outputs.len()
            )
        };
        for problem in problems.iter().take(LISTED_OUTPUTS) {
            lines.push(format!("  trees: {problem}"));
        }
        Verdict {
            correct: wrong == 0 && problems.is_empty(),
            summary,
            lines,
            outcome: SumOutcome {
                users: section.user_count(),
                expected_total,
                outputs,
                heights,
            },
        }
    }

    /// The trees' invariant (see [`super::tree_invariant`]); the flat network has none.
    fn invariant(&self) -> Option<Invariant<Self>> {
        Some(Self::trees_hold)
    }

    fn invariant_applies(&self, section: &SumSection) -> bool {
        section.tree.is_some()
    }

    /// Each output's total (an output appears once its user has joined).
    fn series(&self, _section: &SumSection, states: &[NodeState]) -> Vec<(String, f64)> {
        let mut totals: Vec<(String, f64)> = states_of::<OutputLeafNode>(states)
            .into_iter()
            .map(|(_, leaf)| (leaf.user, leaf.total as f64))
            .chain(
                states_of::<TreeLeaf>(states)
                    .into_iter()
                    .filter(|(_, leaf)| leaf.role == Role::Output)
                    .map(|(_, leaf)| (leaf.user, leaf.total as f64)),
            )
            .collect();
        totals.sort_by(|a, b| a.0.cmp(&b.0));
        totals
    }

    fn series_title(&self) -> &'static str {
        "each output's total"
    }

    fn series_goal(&self, section: &SumSection) -> Option<(String, f64)> {
        Some(("expected total".into(), section.expected_total() as f64))
    }
}

impl SumApp {
    /// The trees' invariant, for a tree section (nothing for a flat one).
    fn trees_hold(&self, section: &SumSection, states: &States) -> Result<(), Box<dyn Violation>> {
        if section.tree.is_none() {
            return Ok(());
        }
        super::tree_invariant(section, states).map_err(|violation| Box::new(violation) as _)
    }
}

/// Builds the trees on machine 0 — the output tree's root, the centre, the input tree's root —
/// and lets every user join both trees at its time, at their roots.
fn play_trees(section: &SumSection, tree: TreeSpec, sim: &mut Sim<'_>) -> Result<(), PlayError> {
    let machine = MachineId(0);
    let root = |role, parent| TreeNodeConfig {
        role,
        max_kids: tree.max_kids,
        persist: section.persist,
        root: true,
        height: 1,
        parent,
        kids: Vec::new(),
        version: 0,
        total: 0,
    };
    let output = sim.spawn::<TreeNode>(machine, &root(Role::Output, None))?;
    let centre = sim.spawn::<TreeCentre>(
        machine,
        &TreeCentreConfig {
            output: output.untyped(),
            persist: section.persist,
        },
    )?;
    let input = sim.spawn::<TreeNode>(machine, &root(Role::Input, Some(centre.untyped())))?;
    play_joins(section, sim, |user, sends| {
        let join = JoinRequest {
            machine: user.machine_id(),
            user: user.name().into_owned(),
            recording: Some(user.recording()?),
            leave_ms: user.leave_ms().map(|at| at.0),
        };
        let output_join = JoinRequest {
            recording: None,
            ..join.clone()
        };
        sends.push(input, &TreeMessage::Join { join, id: None })?;
        let join = output_join;
        sends.push(output, &TreeMessage::Join { join, id: None })?;
        Ok(())
    })
}

/// Lets every user join at its time: `join` adds what the user's joining sends. The users go in
/// joining order, in groups sent at once: a group is the first user whose time has not come
/// yet, run to, and every next user whose time had already passed by then (at most
/// [`JOIN_GROUP`]). In simulation time stops at each user's moment, so every group is one user
/// and the trace is that of one send after another; on the real clock a runner behind its
/// users catches up with one round trip per machine, not one per message.
fn play_joins(
    section: &SumSection,
    sim: &mut Sim<'_>,
    mut join: impl FnMut(&User<'_>, &mut Sends) -> Result<(), PlayError>,
) -> Result<(), PlayError> {
    let users = section.joining_order();
    let mut next = 0;
    while let Some(first) = users.get(next) {
        sim.run_until(first.join_ms().0)?;
        let now = sim.now_ms();
        let mut sends = Sends::default();
        join(first, &mut sends)?;
        next += 1;
        while let Some(user) = users.get(next) {
            if user.join_ms().0 >= now || sends.len() >= JOIN_GROUP {
                break;
            }
            join(user, &mut sends)?;
            next += 1;
        }
        sim.send_all(sends)?;
    }
    Ok(())
}

/// The readable summary's lines: the expected total and the first outputs, marked.
fn lines(expected_total: i64, outputs: &BTreeMap<String, Option<i64>>) -> Vec<String> {
    let mut lines = vec![format!("expected total: {expected_total}")];
    let width = outputs
        .keys()
        .take(LISTED_OUTPUTS)
        .map(|user| user.chars().count())
        .filter(|width| *width <= NAME_COLUMN)
        .max()
        .unwrap_or(0);
    for (user, total) in outputs.iter().take(LISTED_OUTPUTS) {
        let (shown, mark) = match total {
            Some(total) if *total == expected_total => (total.to_string(), "ok"),
            Some(total) => (total.to_string(), "WRONG"),
            None => (String::from("no output"), "WRONG"),
        };
        lines.push(format!("  {user:<width$}  {shown:>8}  {mark}"));
    }
    if outputs.len() > LISTED_OUTPUTS {
        lines.push(format!(
            "  ... and {} more users",
            outputs.len() - LISTED_OUTPUTS
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_one_long_user_name_does_not_pad_every_summary_line() {
        let long = "x".repeat(300);
        let outputs: BTreeMap<String, Option<i64>> =
            [("ann".to_owned(), Some(4)), (long.clone(), Some(4))]
                .into_iter()
                .collect();
        let lines = lines(4, &outputs);
        let ann = lines
            .iter()
            .find(|line| line.contains("ann"))
            .expect("ann's line");
        assert_eq!(ann, "  ann         4  ok");
        assert!(
            lines.iter().any(|line| line.contains(&long)),
            "the long name is shown whole"
        );
    }
}
