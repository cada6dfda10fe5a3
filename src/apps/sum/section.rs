//! The sum network's part of a scenario: its users, listed one by one and by rule (crowds).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::crowd::{Crowd, CrowdContext};
use super::{RecordedUser, UserAction};
use crate::app::{late_input, Common, FieldError, Input};
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

/// The sum network's section of a scenario: `users`, `crowds`, `persist` and `tree`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumSection {
    /// The users written out one by one.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// The users by rule: each crowd many users in a few lines, computed when needed (see
    /// [`Crowd`]); they come after the listed users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crowds: Vec<Crowd>,
    /// Whether the nodes persist what they know, so that the totals survive crashes (on by
    /// default; `false` shows what persisting is for).
    #[serde(default = "persist_by_default", skip_serializing_if = "is_true")]
    pub persist: bool,
    /// The self-scaling trees instead of the flat network (absent: flat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<TreeSpec>,
    /// What the crowds take from the rest of the scenario (its machines and seed): set when
    /// the scenario is read or built, not written in the section.
    #[serde(skip)]
    pub context: CrowdContext,
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

/// The most users a section may have, listed and by rule together.
pub const MAX_USERS: u64 = 10_000_000;

impl Default for SumSection {
    fn default() -> Self {
        SumSection {
            users: Vec::new(),
            crowds: Vec::new(),
            persist: true,
            tree: None,
            context: CrowdContext::default(),
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
    /// Checks what JSON types alone cannot: unique names (a listed user's never one a crowd
    /// gives), machines in range, actions in order, within the time horizon and before the run
    /// ends (the generic rule of [`validate_section`](crate::app::validate_section), checked
    /// here for each listed action so that the first late one is named), each user's total
    /// within 64 bits (the sum over users that leaves 64 bits is the sum node's error, during the
    /// run), each crowd's rule ([`Crowd::validate`]), and at most [`MAX_USERS`] users.
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
        self.validate_crowds(common)?;
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
            if let Some((crowd, _)) = self.crowd_of(&user.name) {
                return Err(FieldError::new(
                    at("name"),
                    format!(
                        "user name `{}` is one that crowds[{crowd}] gives its users",
                        user.name
                    ),
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
                let field = || at(&format!("actions[{step}]"));
                if *at_ms < previous {
                    return Err(FieldError::new(
                        field(),
                        format!("time {at_ms} comes before the previous action at {previous}; times must be in order"),
                    ));
                }
                previous = *at_ms;
                let absolute = user.join_ms.saturating_add(*at_ms);
                if let Err(beyond) = absolute.within_horizon() {
                    return Err(FieldError::new(
                        field(),
                        format!("time {at_ms} after a join at {}: {beyond}", user.join_ms),
                    ));
                }
                let UserAction::Increment { amount } = action;
                magnitude = magnitude.saturating_add(amount.unsigned_abs());
                if magnitude > i64::MAX as u64 {
                    return Err(FieldError::new(
                        field(),
                        "the user's increments add up beyond what a 64-bit total can hold",
                    ));
                }
            }
        }
        self.validate_listed_times(common.run_ms)
    }

    /// The generic rule that every input comes before the run ends, for the listed users: the
    /// first late join, leave or action, in the order they are written, is named.
    fn validate_listed_times(&self, run_ms: Millis) -> Result<(), FieldError> {
        for (index, user) in self.users.iter().enumerate() {
            if user.join_ms >= run_ms {
                return Err(late_input(
                    format!("users[{index}].join_ms"),
                    user.join_ms,
                    run_ms,
                ));
            }
            if let Some(leave_ms) = user.leave_ms.filter(|leave_ms| *leave_ms >= run_ms) {
                return Err(late_input(
                    format!("users[{index}].leave_ms"),
                    leave_ms,
                    run_ms,
                ));
            }
            for (step, (at_ms, _)) in user.actions.iter().enumerate() {
                let absolute = user.join_ms.saturating_add(*at_ms);
                if absolute >= run_ms {
                    let field = format!("users[{index}].actions[{step}]");
                    return Err(late_input(field, absolute, run_ms));
                }
            }
        }
        Ok(())
    }

    /// The crowds' rules, their names unique, and the count of users within [`MAX_USERS`].
    fn validate_crowds(&self, common: &Common) -> Result<(), FieldError> {
        let context = CrowdContext {
            machines: common.machines,
            ..self.context
        };
        let mut names = BTreeSet::new();
        let mut users = self.users.len() as u64;
        for (index, crowd) in self.crowds.iter().enumerate() {
            if !names.insert(crowd.name.as_str()) {
                return Err(FieldError::new(
                    format!("crowds[{index}].name"),
                    format!("crowd name `{}` is used twice", crowd.name),
                ));
            }
            users += u64::from(crowd.users);
            if users > MAX_USERS {
                return Err(FieldError::new(
                    format!("crowds[{index}].users"),
                    format!("{users} users so far: a section has at most {MAX_USERS}"),
                ));
            }
            crowd.validate(index, context, self.tree.is_some())?;
        }
        Ok(())
    }

    /// The crowd (its place in `crowds`) and the number in it of the user called `name`, if a
    /// crowd gives that name.
    pub fn crowd_of(&self, name: &str) -> Option<(usize, u32)> {
        self.crowds
            .iter()
            .enumerate()
            .find_map(|(place, crowd)| crowd.index_of(name).map(|index| (place, index)))
    }

    /// When users join, leave and act, since the start, with the field that sets it: for each
    /// listed user its join, its leave and its last action (its actions are in order, each
    /// checked against the end of the run by [`SumSection::validate`]); for each crowd the latest
    /// of each (its last user's).
    pub fn inputs(&self) -> Vec<Input> {
        let mut inputs = Vec::new();
        for (index, user) in self.users.iter().enumerate() {
            inputs.push(Input::new(format!("users[{index}].join_ms"), user.join_ms));
            if let Some(leave_ms) = user.leave_ms {
                inputs.push(Input::new(format!("users[{index}].leave_ms"), leave_ms));
            }
            if let Some((at_ms, _)) = user.actions.last() {
                inputs.push(Input::new(
                    format!("users[{index}].actions[{}]", user.actions.len() - 1),
                    user.join_ms.saturating_add(*at_ms),
                ));
            }
        }
        for (index, crowd) in self.crowds.iter().enumerate() {
            for (field, at) in crowd.latest(index) {
                inputs.push(Input::new(field, at));
            }
        }
        inputs
    }

    /// The sum of every increment every user makes: what each output must converge to (held
    /// at the nearest 64-bit bound if it leaves them; such a run stops with the sum node's
    /// error before it is judged). A crowd of a fixed amount counts without going through its
    /// users.
    pub fn expected_total(&self) -> i64 {
        let listed = self
            .users
            .iter()
            .fold(0i64, |total, user| total.saturating_add(user.total()));
        self.crowds.iter().fold(listed, |total, crowd| {
            total.saturating_add(crowd.total(self.context))
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
