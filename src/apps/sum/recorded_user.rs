//! A recorded user: a named list of timed actions that an input leaf plays back.

use serde::{Deserialize, Serialize};

use super::UserAction;
use crate::time::Millis;

/// Why a recording is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordedUserError {
    /// An action is timed before the one before it.
    #[error("user `{user}`: action {index} at {at_ms} comes before the previous action at {previous_ms}; times must be in order")]
    OutOfOrder {
        /// The user's name.
        user: String,
        /// The offending action's position.
        index: usize,
        /// Its time.
        at_ms: Millis,
        /// The previous action's time.
        previous_ms: Millis,
    },
}

/// A user's name and the actions it performs, each at a time after it joins.
/// Times are in order (checked on construction and when parsed from JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RecordingRepr", into = "RecordingRepr")]
pub struct RecordedUser {
    name: String,
    actions: Vec<(Millis, UserAction)>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingRepr {
    name: String,
    actions: Vec<(Millis, UserAction)>,
}

impl TryFrom<RecordingRepr> for RecordedUser {
    type Error = RecordedUserError;

    fn try_from(repr: RecordingRepr) -> Result<Self, Self::Error> {
        RecordedUser::new(repr.name, repr.actions)
    }
}

impl From<RecordedUser> for RecordingRepr {
    fn from(user: RecordedUser) -> Self {
        RecordingRepr {
            name: user.name,
            actions: user.actions,
        }
    }
}

impl RecordedUser {
    /// A recording, provided its action times never go backwards.
    pub fn new(
        name: impl Into<String>,
        actions: Vec<(Millis, UserAction)>,
    ) -> Result<Self, RecordedUserError> {
        let name = name.into();
        for (index, pair) in actions.windows(2).enumerate() {
            let (previous_ms, at_ms) = (pair[0].0, pair[1].0);
            if at_ms < previous_ms {
                return Err(RecordedUserError::OutOfOrder {
                    user: name,
                    index: index + 1,
                    at_ms,
                    previous_ms,
                });
            }
        }
        Ok(RecordedUser { name, actions })
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actions, in time order.
    pub fn actions(&self) -> &[(Millis, UserAction)] {
        &self.actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn increment(amount: i64) -> UserAction {
        UserAction::Increment { amount }
    }

    #[test]
    fn simulated_recorded_user_times_must_be_in_order() {
        let error = RecordedUser::new(
            "u",
            vec![(Millis(30), increment(1)), (Millis(10), increment(1))],
        )
        .expect_err("out of order");
        assert!(matches!(
            error,
            RecordedUserError::OutOfOrder {
                index: 1,
                at_ms: Millis(10),
                previous_ms: Millis(30),
                ..
            }
        ));
        assert!(RecordedUser::new(
            "u",
            vec![(Millis(10), increment(1)), (Millis(10), increment(2))]
        )
        .is_ok());
    }

    #[test]
    fn simulated_recorded_user_round_trips_through_json() {
        let user = RecordedUser::new(
            "user b",
            vec![(Millis(30), increment(2)), (Millis(60), increment(1))],
        )
        .expect("valid");
        let json = serde_json::to_value(&user).expect("serializes");
        assert_eq!(
            json,
            json!({"name": "user b", "actions": [[30, {"type": "increment", "amount": 2}], [60, {"type": "increment", "amount": 1}]]})
        );
        let back: RecordedUser = serde_json::from_value(json).expect("parses");
        assert_eq!(back, user);
    }

    #[test]
    fn simulated_recorded_user_json_with_unordered_times_is_rejected() {
        let json = json!({"name": "u", "actions": [[5, {"type": "increment", "amount": 1}], [4, {"type": "increment", "amount": 1}]]});
        let error = serde_json::from_value::<RecordedUser>(json).expect_err("unordered");
        assert!(
            error.to_string().contains("times must be in order"),
            "{error}"
        );
    }
}
