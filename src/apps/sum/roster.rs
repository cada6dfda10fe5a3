//! A section's users, listed and by rule, one view: what the play, the check and the trees'
//! invariant read of a user, computed from its crowd's rule for a user of a crowd.

use std::borrow::Cow;

use super::crowd::{Crowd, CrowdContext};
use super::{RecordedUser, SumSection, UserAction, UserSpec};
use crate::app::FieldError;
use crate::messages::MachineId;
use crate::time::Millis;

/// One user of a section: listed in `users`, or user `index` of a crowd.
#[derive(Debug, Clone, Copy)]
pub enum User<'a> {
    /// A user written out in `users`.
    Listed(&'a UserSpec),
    /// User `index` of `crowd`.
    Crowd {
        /// Its crowd.
        crowd: &'a Crowd,
        /// Its number in the crowd.
        index: u32,
        /// What the crowd takes from the scenario.
        context: CrowdContext,
    },
}

impl<'a> User<'a> {
    /// Its name.
    pub fn name(&self) -> Cow<'a, str> {
        match self {
            User::Listed(user) => Cow::Borrowed(user.name.as_str()),
            User::Crowd { crowd, index, .. } => Cow::Owned(crowd.user_name(*index)),
        }
    }

    /// The machine its leaves run on.
    pub fn machine_id(&self) -> MachineId {
        match self {
            User::Listed(user) => user.machine_id(),
            User::Crowd {
                crowd,
                index,
                context,
            } => MachineId(crowd.machine_of(*index, *context)),
        }
    }

    /// When it joins, since the start.
    pub fn join_ms(&self) -> Millis {
        match self {
            User::Listed(user) => user.join_ms,
            User::Crowd { crowd, index, .. } => crowd.join_of(*index),
        }
    }

    /// When it leaves, since the start, if it does.
    pub fn leave_ms(&self) -> Option<Millis> {
        match self {
            User::Listed(user) => user.leave_ms,
            User::Crowd { crowd, index, .. } => crowd.leave_of(*index),
        }
    }

    /// Its recording: its actions, times relative to its join.
    pub fn recording(&self) -> Result<RecordedUser, FieldError> {
        match self {
            User::Listed(user) => user.recording(),
            User::Crowd {
                crowd,
                index,
                context,
            } => {
                let name = crowd.user_name(*index);
                let actions: Vec<(Millis, UserAction)> = crowd.actions_of(*index, *context);
                // A crowd's times grow with the step: always in order.
                RecordedUser::new(name.clone(), actions)
                    .map_err(|e| FieldError::new(format!("users.{name}"), e.to_string()))
            }
        }
    }

    /// The sum of its increments (held at the nearest 64-bit bound if it leaves them).
    pub fn total(&self) -> i64 {
        match self {
            User::Listed(user) => user.total(),
            User::Crowd {
                crowd,
                index,
                context,
            } => crowd.total_of(*index, *context),
        }
    }
}

impl SumSection {
    /// How many users: listed, and of every crowd.
    pub fn user_count(&self) -> usize {
        self.users.len()
            + self
                .crowds
                .iter()
                .map(|crowd| crowd.users as usize)
                .sum::<usize>()
    }

    /// Every user: the listed ones in order, then each crowd's, in order.
    pub fn each_user(&self) -> impl Iterator<Item = User<'_>> + '_ {
        let context = self.context;
        self.users
            .iter()
            .map(User::Listed)
            .chain(self.crowds.iter().flat_map(move |crowd| {
                (0..crowd.users).map(move |index| User::Crowd {
                    crowd,
                    index,
                    context,
                })
            }))
    }

    /// The user of a crowd called `name`, if a crowd gives that name.
    pub fn crowd_user(&self, name: &str) -> Option<User<'_>> {
        self.crowds.iter().find_map(|crowd| {
            crowd.index_of(name).map(|index| User::Crowd {
                crowd,
                index,
                context: self.context,
            })
        })
    }

    /// Every user in the order they join: by join time, and in [`SumSection::each_user`]'s
    /// order among those joining at once.
    pub fn joining_order(&self) -> Vec<User<'_>> {
        let mut joining: Vec<(Millis, u32, User<'_>)> = self
            .each_user()
            .enumerate()
            .map(|(place, user)| (user.join_ms(), place as u32, user))
            .collect();
        joining.sort_unstable_by_key(|(join, place, _)| (*join, *place));
        joining.into_iter().map(|(_, _, user)| user).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::sum::{Amount, MachineSet};

    #[test]
    fn simulated_a_sections_users_come_listed_first_then_by_crowd_and_join_in_time_order() {
        let listed = |name: &str, join_ms| UserSpec {
            name: name.into(),
            machine: 0,
            join_ms: Millis(join_ms),
            actions: vec![(Millis(1), UserAction::Increment { amount: 4 })],
            leave_ms: None,
        };
        let section = SumSection {
            users: vec![listed("late", 500), listed("early", 0)],
            crowds: vec![Crowd {
                name: "c".into(),
                users: 3,
                machines: MachineSet::All,
                join_ms: None,
                join_from_ms: Some(Millis(0)),
                join_to_ms: Some(Millis(900)),
                leave_ms: None,
                leave_from_ms: None,
                leave_to_ms: None,
                increments: 2,
                first_ms: Millis(0),
                every_ms: Millis(5),
                amount: Amount::Fixed(2),
            }],
            context: CrowdContext {
                machines: 2,
                seed: 0,
            },
            ..SumSection::default()
        };
        assert_eq!(section.user_count(), 5);
        let names: Vec<String> = section.each_user().map(|u| u.name().into_owned()).collect();
        assert_eq!(names, ["late", "early", "c 000000", "c 000001", "c 000002"]);
        let joining: Vec<String> = section
            .joining_order()
            .iter()
            .map(|u| u.name().into_owned())
            .collect();
        assert_eq!(
            joining,
            ["early", "c 000000", "c 000001", "late", "c 000002"]
        );
        let user = section.crowd_user("c 000002").expect("a crowd's user");
        assert_eq!(user.machine_id(), MachineId(0));
        assert_eq!(user.join_ms(), Millis(600));
        assert_eq!(user.total(), 4);
        assert_eq!(
            user.recording().expect("in order").actions(),
            [
                (Millis(0), UserAction::Increment { amount: 2 }),
                (Millis(5), UserAction::Increment { amount: 2 })
            ]
        );
        assert_eq!(section.expected_total(), 4 + 4 + 3 * 4);
    }
}
