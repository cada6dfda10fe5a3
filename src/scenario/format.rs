//! The scenario file format, parsed and then validated so that every later step can trust it.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::files::read_text;
use crate::hardware::simulated::{NetworkConfig, NetworkConfigError};
use crate::messages::{MachineId, Message};
use crate::sum_network::{RecordedUser, SumMessage};
use crate::time::Millis;

/// Why a scenario cannot be run. Each message names the file or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read, is too large, or is not UTF-8.
    #[error("cannot read scenario {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The text is not JSON, or a field is missing or of the wrong type.
    #[error("invalid scenario: {path}: {reason}")]
    Json {
        /// Where in the document (e.g. `users[0].machine`, or `.` for the whole document).
        path: String,
        /// What serde said.
        reason: String,
    },
    /// The network or fault settings are out of range.
    #[error("invalid scenario: {0}")]
    Network(#[from] NetworkConfigError),
    /// The JSON is well formed but its contents are not a runnable scenario.
    #[error("invalid scenario: {field}: {reason}")]
    Invalid {
        /// The offending field (e.g. `users[1].actions[2]`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

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
    /// `[ms, message]` pairs, times after the join and in order; only `increment` messages are
    /// meaningful to the sum network.
    #[serde(default)]
    pub actions: Vec<(Millis, Message)>,
}

/// A sum-network run: how many machines, for how long, on which seed and network, with whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// How many machines; machine 0 hosts the roots and the sum node.
    pub machines: u32,
    /// How long the run lasts.
    pub run_ms: Millis,
    /// The seed of every random choice (default 0).
    #[serde(default)]
    pub seed: u64,
    /// The network model: latency and faults.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Whether the runtime's reliable delivery (sequence numbers, acknowledgements,
    /// retransmission) runs between machines. On unless a run is to show what it is for.
    #[serde(default = "reliable_by_default")]
    pub reliable_delivery: bool,
    /// The users.
    #[serde(default)]
    pub users: Vec<UserSpec>,
}

/// The most machines a scenario may ask for.
pub const MAX_MACHINES: u32 = 100_000;

fn reliable_by_default() -> bool {
    true
}

impl Scenario {
    /// Reads and validates a scenario file (at most [`MAX_INPUT_BYTES`](crate::files::MAX_INPUT_BYTES)
    /// of it).
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = read_text(path).map_err(|e| ScenarioError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// Parses and validates scenario JSON: one object, with nothing but white space after it.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let scenario: Scenario =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                ScenarioError::Json {
                    path: e.path().to_string(),
                    reason: e.into_inner().to_string(),
                }
            })?;
        deserializer.end().map_err(|e| ScenarioError::Json {
            path: ".".into(),
            reason: format!("{e} after the scenario object; a file holds one scenario"),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks what JSON types alone cannot: ranges, order, uniqueness, message shapes.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |field: String, reason: String| Err(ScenarioError::Invalid { field, reason });
        if self.machines == 0 || self.machines > MAX_MACHINES {
            return invalid(
                "machines".into(),
                format!(
                    "{} machines: a system has from 1 to {MAX_MACHINES} machines",
                    self.machines
                ),
            );
        }
        if let Err(beyond) = self.run_ms.within_horizon() {
            return invalid("run_ms".into(), beyond.to_string());
        }
        let mut magnitude: u64 = 0;
        let mut names = BTreeSet::new();
        for (index, user) in self.users.iter().enumerate() {
            let at = |field: &str| format!("users[{index}].{field}");
            if !names.insert(user.name.as_str()) {
                return invalid(
                    at("name"),
                    format!("user name `{}` is used twice", user.name),
                );
            }
            if user.machine >= self.machines {
                return invalid(
                    at("machine"),
                    format!(
                        "machine {} is out of range: the scenario has {} machines (0..={})",
                        user.machine,
                        self.machines,
                        self.machines - 1
                    ),
                );
            }
            if user.join_ms > self.run_ms {
                return invalid(
                    at("join_ms"),
                    format!(
                        "the user joins at {}, after the run ends (run_ms {})",
                        user.join_ms, self.run_ms
                    ),
                );
            }
            let mut previous = Millis::ZERO;
            for (step, (at_ms, message)) in user.actions.iter().enumerate() {
                let field = at(&format!("actions[{step}]"));
                if *at_ms < previous {
                    return invalid(
                        field,
                        format!("time {at_ms} comes before the previous action at {previous}; times must be in order"),
                    );
                }
                previous = *at_ms;
                let absolute = user.join_ms.saturating_add(*at_ms);
                if let Err(beyond) = absolute.within_horizon() {
                    return invalid(
                        field,
                        format!("time {at_ms} after a join at {}: {beyond}", user.join_ms),
                    );
                }
                match SumMessage::read(message) {
                    Ok(SumMessage::Increment { amount }) => {
                        magnitude = magnitude.saturating_add(amount.unsigned_abs());
                        if magnitude > i64::MAX as u64 {
                            return invalid(
                                field,
                                "the increments' amounts add up beyond what a 64-bit total can hold".into(),
                            );
                        }
                    }
                    Ok(_) => {
                        return invalid(
                            field,
                            format!(
                                "`{}` is not a user action; users send `increment` messages",
                                message.kind()
                            ),
                        )
                    }
                    Err(e) => return invalid(field, e.to_string()),
                }
            }
        }
        Ok(self.network.validate(self.machines)?)
    }

    /// The sum of every increment every user makes: what each output must converge to.
    pub fn expected_total(&self) -> i64 {
        self.users
            .iter()
            .flat_map(|user| &user.actions)
            .filter_map(|(_, message)| match SumMessage::read(message) {
                Ok(SumMessage::Increment { amount }) => Some(amount),
                _ => None,
            })
            .sum()
    }

    /// A user's machine as a handle.
    pub fn machine_of(user: &UserSpec) -> MachineId {
        MachineId(user.machine)
    }

    /// A user's recording: its actions, with their times relative to its join.
    pub fn recording_of(user: &UserSpec) -> Result<RecordedUser, ScenarioError> {
        RecordedUser::new(user.name.clone(), user.actions.clone()).map_err(|e| {
            ScenarioError::Invalid {
                field: format!("users.{}", user.name),
                reason: e.to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "machines": 3, "run_ms": 700, "seed": 1,
      "network": {"latency_ms": {"mean": 20.0, "stddev": 3.0}},
      "users": [
        {"name": "user b", "machine": 1, "join_ms": 30,
         "actions": [[30, {"type": "increment", "amount": 2}], [60, {"type": "increment", "amount": 1}]]},
        {"name": "user c", "machine": 2, "join_ms": 30,
         "actions": [[110, {"type": "increment", "amount": 1}]]}
      ]
    }"#;

    fn error_of(text: &str) -> String {
        Scenario::parse(text)
            .expect_err("should be rejected")
            .to_string()
    }

    #[test]
    fn simulated_the_issue_example_parses_with_total_four() {
        let scenario = Scenario::parse(EXAMPLE).expect("valid");
        assert_eq!(scenario.expected_total(), 4);
        assert_eq!(scenario.users.len(), 2);
    }

    #[test]
    fn simulated_missing_and_mistyped_fields_are_named() {
        assert!(error_of(r#"{"run_ms": 5}"#).contains("machines"));
        let mistyped =
            error_of(r#"{"machines": 2, "run_ms": 5, "users": [{"name": "a", "machine": "one"}]}"#);
        assert!(mistyped.contains("users[0].machine"), "{mistyped}");
        assert!(error_of("{").contains("EOF"), "{}", error_of("{"));
        let unknown = error_of(r#"{"machines": 2, "run_ms": 5, "colour": 1}"#);
        assert!(unknown.contains("colour"), "{unknown}");
    }

    #[test]
    fn simulated_out_of_range_machine_is_rejected() {
        let text =
            error_of(r#"{"machines": 2, "run_ms": 5, "users": [{"name": "a", "machine": 2}]}"#);
        assert!(
            text.contains("users[0].machine") && text.contains("out of range"),
            "{text}"
        );
    }

    #[test]
    fn simulated_negative_and_unordered_times_are_rejected() {
        let negative = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "actions": [[-5, {"type": "increment", "amount": 1}]]}]}"#,
        );
        assert!(
            negative.contains("users[0].actions[0]") && negative.contains("negative"),
            "{negative}"
        );
        let join = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "join_ms": -1}]}"#,
        );
        assert!(join.contains("users[0].join_ms"), "{join}");
        let unordered = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "actions": [[9, {"type": "increment", "amount": 1}], [3, {"type": "increment", "amount": 1}]]}]}"#,
        );
        assert!(
            unordered.contains("users[0].actions[1]") && unordered.contains("in order"),
            "{unordered}"
        );
    }

    #[test]
    fn simulated_trailing_text_and_late_or_far_times_are_rejected() {
        let twice = error_of(&format!("{EXAMPLE} {EXAMPLE}"));
        assert!(twice.contains("trailing characters"), "{twice}");
        assert!(error_of(&format!("{EXAMPLE}x")).contains("trailing"));
        assert!(Scenario::parse(&format!("{EXAMPLE} \n\t")).is_ok());
        let late = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "join_ms": 6}]}"#,
        );
        assert!(
            late.contains("users[0].join_ms") && late.contains("after the run ends"),
            "{late}"
        );
        let far = error_of(&format!(r#"{{"machines": 1, "run_ms": {}}}"#, u64::MAX));
        assert!(far.contains("run_ms") && far.contains("beyond"), "{far}");
        let fraction = error_of(r#"{"machines": 1, "run_ms": 5.5}"#);
        assert!(
            fraction.contains("run_ms") && fraction.contains("whole"),
            "{fraction}"
        );
    }

    #[test]
    fn simulated_bad_actions_and_duplicate_names_are_rejected() {
        let bad_amount = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "actions": [[1, {"type": "increment", "amount": "x"}]]}]}"#,
        );
        assert!(bad_amount.contains("users[0].actions[0]"), "{bad_amount}");
        let untyped = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "actions": [[1, {"amount": 1}]]}]}"#,
        );
        assert!(untyped.contains("type"), "{untyped}");
        let twice = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0}, {"name": "a", "machine": 0}]}"#,
        );
        assert!(twice.contains("users[1].name"), "{twice}");
    }
}
