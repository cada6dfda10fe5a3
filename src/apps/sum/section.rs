//! The sum network's part of a scenario: its users.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{RecordedUser, UserAction};
use crate::app::{Common, FieldError, Input};
use crate::messages::MachineId;
use crate::time::Millis;

/// One user: where it sits, when it joins, and what it does (times relative to its join).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Unique among the scenario's users; the key of its output in the report.
    pub name: String,
    /// The machine its input and output leaves run on.
    pub machine: u32,
    /// When it joins, since the start; no later than the end of the run.
    #[serde(default)]
    pub join_ms: Millis,
    /// `[ms, action]` pairs, times after the join and in order.
    #[serde(default)]
    pub actions: Vec<(Millis, UserAction)>,
    /// When the user leaves, since the start (trees only; absent: it stays). Its leaves leave
    /// once it has played every action and this time has come; its increments stay in the
    /// total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_ms: Option<Millis>,
}

impl UserSpec {
    /// The user's machine as a handle.
    pub fn machine_id(&self) -> MachineId {
        MachineId(self.machine)
    }

    /// The user's recording: its actions, with their times relative to its join.
    pub fn recording(&self) -> Result<RecordedUser, FieldError> {
        RecordedUser::new(self.name.clone(), self.actions.clone())
            .map_err(|e| FieldError::new(format!("users.{}", self.name), e.to_string()))
    }
}

/// The sum network's section of a scenario: `users`, and `persist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumSection {
    /// The users.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// Whether the nodes persist what they know, so that the totals survive crashes (on by
    /// default; `false` shows what persisting is for).
    #[serde(default = "persist_by_default", skip_serializing_if = "is_true")]
    pub persist: bool,
    /// The self-scaling trees instead of the flat network (absent: flat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<TreeSpec>,
}

/// The `tree` key of a sum section: the network is an input tree and an output tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeSpec {
    /// The most kids a node of either tree has (at least 2).
    pub max_kids: usize,
}

/// The most kids a tree's node may be given: more would make every node a flat list.
pub const MAX_TREE_KIDS: usize = 10_000;

impl Default for SumSection {
    fn default() -> Self {
        SumSection {
            users: Vec::new(),
            persist: true,
            tree: None,
        }
    }
}

fn persist_by_default() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl SumSection {
    /// Checks what JSON types alone cannot: unique names, machines in range, actions in order
    /// and within the time horizon (that every input comes before the run ends is the generic
    /// rule, [`validate_section`](crate::app::validate_section)), each user's total within 64 bits (the
    /// sum over users that leaves 64 bits is the sum node's error, during the run).
    pub fn validate(&self, common: &Common) -> Result<(), FieldError> {
        if let Some(tree) = self.tree {
            if !(2..=MAX_TREE_KIDS).contains(&tree.max_kids) {
                return Err(FieldError::new(
                    "tree.max_kids",
                    format!(
                        "{} is out of range: a tree node has from 2 to {MAX_TREE_KIDS} kids",
                        tree.max_kids
                    ),
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (index, user) in self.users.iter().enumerate() {
            let mut magnitude: u64 = 0;
            let at = |field: &str| format!("users[{index}].{field}");
            if !names.insert(user.name.as_str()) {
                return Err(FieldError::new(
                    at("name"),
                    format!("user name `{}` is used twice", user.name),
                ));
            }
            if user.machine >= common.machines {
                return Err(FieldError::new(
                    at("machine"),
                    format!(
                        "machine {} is out of range: the scenario has {} machines (0..={})",
                        user.machine,
                        common.machines,
                        common.machines - 1
                    ),
                ));
            }
            if let Some(leave_ms) = user.leave_ms {
                if self.tree.is_none() {
                    return Err(FieldError::new(
                        at("leave_ms"),
                        "users leave only a tree network: add `\"tree\": {\"max_kids\": …}` to the section",
                    ));
                }
                if leave_ms <= user.join_ms {
                    return Err(FieldError::new(
                        at("leave_ms"),
                        format!(
                            "{leave_ms} is not after the join at {}: a user leaves after it joins",
                            user.join_ms
                        ),
                    ));
                }
            }
            let mut previous = Millis::ZERO;
            for (step, (at_ms, action)) in user.actions.iter().enumerate() {
                let field = at(&format!("actions[{step}]"));
                if *at_ms < previous {
                    return Err(FieldError::new(
                        field,
                        format!("time {at_ms} comes before the previous action at {previous}; times must be in order"),
                    ));
                }
                previous = *at_ms;
                let absolute = user.join_ms.saturating_add(*at_ms);
                if let Err(beyond) = absolute.within_horizon() {
                    return Err(FieldError::new(
                        field,
                        format!("time {at_ms} after a join at {}: {beyond}", user.join_ms),
                    ));
                }
                let UserAction::Increment { amount } = action;
                magnitude = magnitude.saturating_add(amount.unsigned_abs());
                if magnitude > i64::MAX as u64 {
                    return Err(FieldError::new(
                        field,
                        "the user's increments add up beyond what a 64-bit total can hold",
                    ));
                }
            }
        }
        Ok(())
    }

    /// When each user joins and plays each action, since the start, with the field that sets it.
    pub fn inputs(&self) -> Vec<Input> {
        let mut inputs = Vec::new();
        for (index, user) in self.users.iter().enumerate() {
            inputs.push(Input::new(format!("users[{index}].join_ms"), user.join_ms));
            if let Some(leave_ms) = user.leave_ms {
                inputs.push(Input::new(format!("users[{index}].leave_ms"), leave_ms));
            }
            for (step, (at_ms, _)) in user.actions.iter().enumerate() {
                inputs.push(Input::new(
                    format!("users[{index}].actions[{step}]"),
                    user.join_ms.saturating_add(*at_ms),
                ));
            }
        }
        inputs
    }

    /// The sum of every increment every user makes: what each output must converge to (held
    /// at the nearest 64-bit bound if it leaves them; such a run stops with the sum node's
    /// error before it is judged).
    pub fn expected_total(&self) -> i64 {
        self.users
            .iter()
            .flat_map(|user| &user.actions)
            .fold(0i64, |total, (_, UserAction::Increment { amount })| {
                total.saturating_add(*amount)
            })
    }
}

impl UserSpec {
    /// The sum of the user's increments (held at the nearest 64-bit bound if it leaves them).
    pub fn total(&self) -> i64 {
        self.actions
            .iter()
            .fold(0i64, |total, (_, UserAction::Increment { amount })| {
                total.saturating_add(*amount)
            })
    }
}
