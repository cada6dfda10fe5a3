//! Users by rule: a crowd is many users described in a few lines — how many, on which machines,
//! when they join and leave, how many increments at what pace, and the amounts. A crowd's user
//! is its index: its name, machine, times and actions are computed from the rule when they are
//! needed, so a million users take the memory of one rule.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::UserAction;
use crate::app::FieldError;
use crate::time::Millis;

/// The fewest digits of a crowd's user's number in its name (`crowd 000042`).
const NAME_DIGITS: usize = 6;

/// A crowd of users, all alike but for what the rule spreads among them.
///
/// User `i` of `n` sits on the `i`-th of [`Crowd::machines`] (round-robin), joins at
/// `join_from_ms + i × (join_to_ms − join_from_ms) / n` (rounded down: the first at
/// `join_from_ms`, the rest evenly until just before `join_to_ms`), or at `join_ms` with all the
/// others, leaves likewise (trees only), and makes `increments` increments, the `k`-th
/// `first_ms + k × every_ms` after its join, of [`Crowd::amount`] each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crowd {
    /// The crowd's name: user `i` is called `"<name> <i>"`, `i` written with at least six digits
    /// (`"visitor 000042"`).
    pub name: String,
    /// How many users (at least 1).
    pub users: u32,
    /// Where they sit (default: every machine).
    #[serde(default)]
    pub machines: MachineSet,
    /// When they all join (absent, with no window: at the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_ms: Option<Millis>,
    /// The start of the window they join over, evenly spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_from_ms: Option<Millis>,
    /// The end of the join window (excluded: the last joins just before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_to_ms: Option<Millis>,
    /// When they all leave (trees only; absent, with no window: they stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_ms: Option<Millis>,
    /// The start of the window they leave over, evenly spread, in the order they joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_from_ms: Option<Millis>,
    /// The end of the leave window (excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_to_ms: Option<Millis>,
    /// How many increments each user makes (default 0).
    #[serde(default)]
    pub increments: u32,
    /// When its first increment comes, after its join (default 0).
    #[serde(default)]
    pub first_ms: Millis,
    /// The time between one increment and the next (default 0: all at once).
    #[serde(default)]
    pub every_ms: Millis,
    /// The amount of each increment (default 1).
    #[serde(default)]
    pub amount: Amount,
}

/// The machines a crowd's users are spread over, round-robin: `"all"`, `{"from": a, "to": b}`
/// (both included) or a list `[1, 4, 9]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MachineSet {
    /// Every machine of the scenario, from 0.
    #[default]
    All,
    /// Machines `from` to `to`, both included.
    Range {
        /// The first.
        from: u32,
        /// The last.
        to: u32,
    },
    /// These machines, in this order.
    List(Vec<u32>),
}

/// What each increment of a crowd adds: a fixed amount (`3`), or one drawn evenly from a range
/// (`{"from": -2, "to": 5}`, both included) with the scenario's seed, the same on every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Always this much.
    Fixed(i64),
    /// Drawn from `from..=to`.
    Drawn {
        /// The least.
        from: i64,
        /// The most.
        to: i64,
    },
}

impl Default for Amount {
    fn default() -> Self {
        Amount::Fixed(1)
    }
}

/// What a section's crowds take from the rest of the scenario: its machine count (for
/// `"all"`) and its seed (for drawn amounts). Set when the scenario is read or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrowdContext {
    /// The scenario's machines.
    pub machines: u32,
    /// The scenario's `seed` key (not a run's `--seed`: a sweep varies the run, not the users).
    pub seed: u64,
}

/// A time window of a crowd (`join` or `leave`), resolved: everyone at `from` if `from == to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    from: u64,
    to: u64,
}

impl Window {
    /// When user `index` of `users` comes.
    fn at(self, index: u32, users: u32) -> Millis {
        let span = u128::from(self.to - self.from);
        let offset = span * u128::from(index) / u128::from(users.max(1));
        // `offset` < `span`, which fits in a u64.
        Millis(self.from + u64::try_from(offset).unwrap_or(u64::MAX))
    }
}

impl Crowd {
    /// The name of user `index`.
    pub fn user_name(&self, index: u32) -> String {
        format!("{} {index:0width$}", self.name, width = self.digits())
    }

    /// How many digits the crowd's users' numbers have in their names.
    fn digits(&self) -> usize {
        let last = self.users.saturating_sub(1);
        (last.checked_ilog10().unwrap_or(0) as usize + 1).max(NAME_DIGITS)
    }

    /// The index of the user called `name`, if it is one of this crowd's.
    pub fn index_of(&self, name: &str) -> Option<u32> {
        let number = name.strip_prefix(self.name.as_str())?.strip_prefix(' ')?;
        if number.len() != self.digits() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        number.parse().ok().filter(|index| *index < self.users)
    }

    /// The machine user `index` sits on.
    pub fn machine_of(&self, index: u32, context: CrowdContext) -> u32 {
        match &self.machines {
            MachineSet::All => index % context.machines.max(1),
            MachineSet::Range { from, to } => {
                from + index % (to.saturating_sub(*from).saturating_add(1))
            }
            MachineSet::List(list) => match list.len() {
                0 => 0,
                len => list[index as usize % len],
            },
        }
    }

    /// When user `index` joins.
    pub fn join_of(&self, index: u32) -> Millis {
        self.join_window().at(index, self.users)
    }

    /// When user `index` leaves, if the crowd leaves.
    pub fn leave_of(&self, index: u32) -> Option<Millis> {
        self.leave_window()
            .map(|window| window.at(index, self.users))
    }

    /// When the `step`-th increment comes, after the join.
    fn step_ms(&self, step: u32) -> Millis {
        Millis(
            self.first_ms
                .0
                .saturating_add(self.every_ms.0.saturating_mul(u64::from(step))),
        )
    }

    /// User `index`'s actions, times after its join.
    pub fn actions_of(&self, index: u32, context: CrowdContext) -> Vec<(Millis, UserAction)> {
        let mut amounts = self.amounts(index, context);
        (0..self.increments)
            .map(|step| {
                let amount = amounts.next_amount();
                (self.step_ms(step), UserAction::Increment { amount })
            })
            .collect()
    }

    /// The sum of user `index`'s increments.
    pub fn total_of(&self, index: u32, context: CrowdContext) -> i64 {
        let mut amounts = self.amounts(index, context);
        (0..self.increments).fold(0i64, |total, _| total.saturating_add(amounts.next_amount()))
    }

    /// The sum of every increment of every user of the crowd (held at the nearest 64-bit bound
    /// if it leaves them): without drawing anything for a fixed amount.
    pub fn total(&self, context: CrowdContext) -> i64 {
        match self.amount {
            Amount::Fixed(amount) => {
                let total =
                    i128::from(self.users) * i128::from(self.increments) * i128::from(amount);
                i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
            }
            Amount::Drawn { .. } => (0..self.users).fold(0i64, |total, index| {
                total.saturating_add(self.total_of(index, context))
            }),
        }
    }

    /// The amounts of user `index`'s increments, in order.
    fn amounts(&self, index: u32, context: CrowdContext) -> Amounts {
        match self.amount {
            Amount::Fixed(amount) => Amounts::Fixed(amount),
            Amount::Drawn { from, to } => {
                // One stream per user of a generator keyed by the seed and the crowd's name:
                // any user's draws without the others', the same whatever other crowds exist.
                let key = context.seed ^ xxhash_rust::xxh3::xxh3_64(self.name.as_bytes());
                let mut rng = ChaCha8Rng::seed_from_u64(key);
                rng.set_stream(u64::from(index));
                Amounts::Drawn { rng, from, to }
            }
        }
    }

    fn join_window(&self) -> Window {
        match (self.join_from_ms, self.join_to_ms) {
            (Some(from), Some(to)) if from <= to => Window {
                from: from.0,
                to: to.0,
            },
            _ => {
                let at = self.join_ms.unwrap_or(Millis::ZERO).0;
                Window { from: at, to: at }
            }
        }
    }

    fn leave_window(&self) -> Option<Window> {
        match (self.leave_ms, self.leave_from_ms, self.leave_to_ms) {
            (_, Some(from), Some(to)) if from <= to => Some(Window {
                from: from.0,
                to: to.0,
            }),
            (Some(at), _, _) => Some(Window {
                from: at.0,
                to: at.0,
            }),
            _ => None,
        }
    }

    /// The latest of the crowd's joins, leaves and increments, each with the field that sets
    /// it: its last user's (the rule's times grow with the index).
    pub fn latest(&self, index_in_section: usize) -> Vec<(String, Millis)> {
        let at = |field: &str| format!("crowds[{index_in_section}].{field}");
        let last = self.users.saturating_sub(1);
        let join = self.join_of(last);
        let join_field = if self.join_to_ms.is_some() {
            "join_to_ms"
        } else {
            "join_ms"
        };
        let mut latest = vec![(at(join_field), join)];
        if let Some(leave) = self.leave_of(last) {
            let field = if self.leave_to_ms.is_some() {
                "leave_to_ms"
            } else {
                "leave_ms"
            };
            latest.push((at(field), leave));
        }
        if self.increments > 0 {
            let step = self.step_ms(self.increments - 1);
            latest.push((at("increments"), join.saturating_add(step)));
        }
        latest
    }

    /// Checks the rule against the scenario (`index` is the crowd's place in `crowds`): a
    /// name, at least one user, machines that exist, one way to join and at most one to leave
    /// (trees only), each user leaving after it joins, times within the horizon, and each
    /// user's increments within 64 bits.
    pub fn validate(
        &self,
        index: usize,
        context: CrowdContext,
        tree: bool,
    ) -> Result<(), FieldError> {
        let at = |field: &str| format!("crowds[{index}].{field}");
        if self.name.is_empty() {
            return Err(FieldError::new(
                at("name"),
                "a crowd needs a name: its users' names start with it",
            ));
        }
        if self.users == 0 {
            return Err(FieldError::new(
                at("users"),
                "a crowd has at least one user",
            ));
        }
        self.validate_machines(&at, context.machines)?;
        window(
            &at,
            ("join_ms", self.join_ms),
            ("join_from_ms", self.join_from_ms),
            ("join_to_ms", self.join_to_ms),
        )?;
        let leaves = window(
            &at,
            ("leave_ms", self.leave_ms),
            ("leave_from_ms", self.leave_from_ms),
            ("leave_to_ms", self.leave_to_ms),
        )?;
        if let Some(field) = leaves {
            if !tree {
                return Err(FieldError::new(
                    at(field),
                    "users leave only a tree network: add `\"tree\": {\"max_kids\": …}` to the section",
                ));
            }
            if let Some(user) = (0..self.users).find(|user| {
                self.leave_of(*user)
                    .is_some_and(|leave| leave <= self.join_of(*user))
            }) {
                return Err(FieldError::new(
                    at(field),
                    format!(
                        "user `{}` would leave at {}, not after its join at {}: a user leaves after it joins",
                        self.user_name(user),
                        self.leave_of(user).unwrap_or(Millis::ZERO),
                        self.join_of(user)
                    ),
                ));
            }
        }
        if self.increments > 0 {
            let last = u128::from(self.join_of(self.users - 1).0)
                + u128::from(self.first_ms.0)
                + u128::from(self.every_ms.0) * u128::from(self.increments - 1);
            let last = Millis(u64::try_from(last).unwrap_or(u64::MAX));
            if let Err(beyond) = last.within_horizon() {
                return Err(FieldError::new(
                    at("increments"),
                    format!("the last user's last increment: {beyond}"),
                ));
            }
        }
        self.validate_amount(&at)
    }

    fn validate_machines(
        &self,
        at: &dyn Fn(&str) -> String,
        machines: u32,
    ) -> Result<(), FieldError> {
        let out_of_range = |field: String, machine: u32| {
            FieldError::new(
                field,
                format!(
                    "machine {machine} is out of range: the scenario has {machines} machines (0..={})",
                    machines.saturating_sub(1)
                ),
            )
        };
        match &self.machines {
            MachineSet::All => Ok(()),
            MachineSet::Range { from, to } => {
                if from > to {
                    return Err(FieldError::new(
                        at("machines.to"),
                        format!("{to} is before the first machine {from}"),
                    ));
                }
                if *to >= machines {
                    return Err(out_of_range(at("machines.to"), *to));
                }
                Ok(())
            }
            MachineSet::List(list) => {
                if list.is_empty() {
                    return Err(FieldError::new(
                        at("machines"),
                        "the list names no machine: give at least one, or \"all\"",
                    ));
                }
                match list.iter().position(|machine| *machine >= machines) {
                    Some(place) => {
                        Err(out_of_range(at(&format!("machines[{place}]")), list[place]))
                    }
                    None => Ok(()),
                }
            }
        }
    }

    fn validate_amount(&self, at: &dyn Fn(&str) -> String) -> Result<(), FieldError> {
        let largest = match self.amount {
            Amount::Fixed(amount) => amount.unsigned_abs(),
            Amount::Drawn { from, to } => {
                if from > to {
                    return Err(FieldError::new(
                        at("amount.to"),
                        format!("{to} is less than the least amount {from}"),
                    ));
                }
                from.unsigned_abs().max(to.unsigned_abs())
            }
        };
        if u128::from(largest) * u128::from(self.increments) > i64::MAX as u128 {
            return Err(FieldError::new(
                at("amount"),
                "a user's increments could add up beyond what a 64-bit total can hold",
            ));
        }
        Ok(())
    }
}

/// Checks one of a crowd's time rules — all at `single`, or spread over `from`..`to` — and
/// says which field set it, if any did.
fn window(
    at: &dyn Fn(&str) -> String,
    single: (&'static str, Option<Millis>),
    from: (&'static str, Option<Millis>),
    to: (&'static str, Option<Millis>),
) -> Result<Option<&'static str>, FieldError> {
    for (field, time) in [single, from, to] {
        if let Some(Err(beyond)) = time.map(Millis::within_horizon) {
            return Err(FieldError::new(at(field), beyond.to_string()));
        }
    }
    match (single.1, from.1, to.1) {
        (Some(_), None, None) => Ok(Some(single.0)),
        (None, None, None) => Ok(None),
        (Some(_), _, _) => Err(FieldError::new(
            at(single.0),
            format!(
                "give either `{}` (all at once) or `{}` and `{}` (spread), not both",
                single.0, from.0, to.0
            ),
        )),
        (None, Some(_), None) => Err(FieldError::new(
            at(to.0),
            format!("missing: a window has `{}` and `{}`", from.0, to.0),
        )),
        (None, None, Some(_)) => Err(FieldError::new(
            at(from.0),
            format!("missing: a window has `{}` and `{}`", from.0, to.0),
        )),
        (None, Some(start), Some(end)) => {
            if end <= start {
                Err(FieldError::new(
                    at(to.0),
                    format!(
                        "{end} is not after `{}` {start}: a window ends after it starts",
                        from.0
                    ),
                ))
            } else {
                Ok(Some(from.0))
            }
        }
    }
}

/// The amounts of one user's increments, one after another.
// One lives on the stack while one user's amounts are drawn: its size costs nothing, a box would
// cost an allocation a user.
#[allow(clippy::large_enum_variant)]
enum Amounts {
    Fixed(i64),
    Drawn { rng: ChaCha8Rng, from: i64, to: i64 },
}

impl Amounts {
    fn next_amount(&mut self) -> i64 {
        match self {
            Amounts::Fixed(amount) => *amount,
            Amounts::Drawn { rng, from, to } => rng.random_range(*from..=*to),
        }
    }
}

impl Serialize for MachineSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Range {
            from: u32,
            to: u32,
        }
        match self {
            MachineSet::All => serializer.serialize_str("all"),
            MachineSet::Range { from, to } => Range {
                from: *from,
                to: *to,
            }
            .serialize(serializer),
            MachineSet::List(list) => list.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for MachineSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MachinesVisitor;
        impl<'de> Visitor<'de> for MachinesVisitor {
            type Value = MachineSet;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""all", a list of machines, or {"from": a, "to": b}"#)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<MachineSet, E> {
                match text {
                    "all" => Ok(MachineSet::All),
                    _ => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MachineSet, A::Error> {
                let mut list = Vec::new();
                while let Some(machine) = seq.next_element()? {
                    list.push(machine);
                }
                Ok(MachineSet::List(list))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MachineSet, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Range {
                    from: u32,
                    to: u32,
                }
                let Range { from, to } =
                    Range::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(MachineSet::Range { from, to })
            }
        }
        deserializer.deserialize_any(MachinesVisitor)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Drawn {
            from: i64,
            to: i64,
        }
        match self {
            Amount::Fixed(amount) => serializer.serialize_i64(*amount),
            Amount::Drawn { from, to } => Drawn {
                from: *from,
                to: *to,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl<'de> Visitor<'de> for AmountVisitor {
            type Value = Amount;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"an integer amount, or a range {"from": a, "to": b}"#)
            }

            fn visit_i64<E: de::Error>(self, amount: i64) -> Result<Amount, E> {
                Ok(Amount::Fixed(amount))
            }

            fn visit_u64<E: de::Error>(self, amount: u64) -> Result<Amount, E> {
                i64::try_from(amount)
                    .map(Amount::Fixed)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(amount), &self))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Amount, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Drawn {
                    from: i64,
                    to: i64,
                }
                let Drawn { from, to } =
                    Drawn::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Amount::Drawn { from, to })
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crowd(users: u32) -> Crowd {
        Crowd {
            name: "visitor".into(),
            users,
            machines: MachineSet::All,
            join_ms: None,
            join_from_ms: Some(Millis(1_000)),
            join_to_ms: Some(Millis(2_000)),
            leave_ms: None,
            leave_from_ms: None,
            leave_to_ms: None,
            increments: 3,
            first_ms: Millis(10),
            every_ms: Millis(100),
            amount: Amount::Drawn { from: -2, to: 5 },
        }
    }

    const CONTEXT: CrowdContext = CrowdContext {
        machines: 3,
        seed: 7,
    };

    #[test]
    fn simulated_a_crowds_users_are_spread_by_the_rule() {
        let crowd = crowd(4);
        assert_eq!(crowd.user_name(3), "visitor 000003");
        assert_eq!(crowd.index_of("visitor 000003"), Some(3));
        assert_eq!(crowd.index_of("visitor 000004"), None, "only 4 users");
        assert_eq!(crowd.index_of("visitor 03"), None, "not a name it gives");
        assert_eq!(crowd.index_of("visitors 000003"), None);
        let joins: Vec<u64> = (0..4).map(|user| crowd.join_of(user).0).collect();
        assert_eq!(joins, [1_000, 1_250, 1_500, 1_750]);
        let machines: Vec<u32> = (0..4).map(|user| crowd.machine_of(user, CONTEXT)).collect();
        assert_eq!(machines, [0, 1, 2, 0]);
        let times: Vec<u64> = crowd
            .actions_of(2, CONTEXT)
            .iter()
            .map(|(at, _)| at.0)
            .collect();
        assert_eq!(times, [10, 110, 210]);
        let listed = Crowd {
            machines: MachineSet::List(vec![5, 2]),
            ..crowd.clone()
        };
        assert_eq!(listed.machine_of(3, CONTEXT), 2);
        let range = Crowd {
            machines: MachineSet::Range { from: 4, to: 6 },
            ..crowd.clone()
        };
        assert_eq!(range.machine_of(4, CONTEXT), 5);
        let big = Crowd {
            users: 12_345_678,
            ..crowd
        };
        assert_eq!(big.user_name(42), "visitor 00000042");
    }

    #[test]
    fn simulated_drawn_amounts_are_the_same_for_the_same_seed_and_in_range() {
        let crowd = crowd(50);
        let draws = |seed| -> Vec<Vec<(Millis, UserAction)>> {
            let context = CrowdContext { seed, ..CONTEXT };
            (0..50)
                .map(|user| crowd.actions_of(user, context))
                .collect()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        for actions in draws(7) {
            for (_, UserAction::Increment { amount }) in actions {
                assert!((-2..=5).contains(&amount), "{amount}");
            }
        }
        let sum: i64 = (0..50).map(|user| crowd.total_of(user, CONTEXT)).sum();
        assert_eq!(crowd.total(CONTEXT), sum);
        let fixed = Crowd {
            amount: Amount::Fixed(-3),
            ..crowd
        };
        assert_eq!(fixed.total(CONTEXT), -3 * 3 * 50);
    }

    #[test]
    fn simulated_crowd_rules_are_checked_naming_the_field() {
        let field =
            |crowd: Crowd, tree: bool| crowd.validate(2, CONTEXT, tree).expect_err("invalid").field;
        assert_eq!(crowd(3).validate(2, CONTEXT, false), Ok(()));
        assert_eq!(
            field(
                Crowd {
                    users: 0,
                    ..crowd(3)
                },
                false
            ),
            "crowds[2].users"
        );
        assert_eq!(
            field(
                Crowd {
                    machines: MachineSet::List(vec![0, 3]),
                    ..crowd(3)
                },
                false
            ),
            "crowds[2].machines[1]"
        );
        assert_eq!(
            field(
                Crowd {
                    machines: MachineSet::Range { from: 0, to: 3 },
                    ..crowd(3)
                },
                false
            ),
            "crowds[2].machines.to"
        );
        assert_eq!(
            field(
                Crowd {
                    join_ms: Some(Millis(5)),
                    ..crowd(3)
                },
                false
            ),
            "crowds[2].join_ms"
        );
        assert_eq!(
            field(
                Crowd {
                    join_to_ms: None,
                    ..crowd(3)
                },
                false
            ),
            "crowds[2].join_to_ms"
        );
        let leaving = Crowd {
            leave_ms: Some(Millis(1_500)),
            ..crowd(3)
        };
        assert_eq!(field(leaving.clone(), false), "crowds[2].leave_ms");
        let error = leaving
            .validate(2, CONTEXT, true)
            .expect_err("leaves early");
        assert!(error.reason.contains("visitor 000002"), "{error}");
        assert_eq!(
            field(
                Crowd {
                    amount: Amount::Drawn { from: 3, to: 1 },
                    ..crowd(3)
                },
                false
            ),
            "crowds[2].amount.to"
        );
        assert_eq!(
            field(
                Crowd {
                    amount: Amount::Fixed(i64::MAX),
                    ..crowd(3)
                },
                false
            ),
            "crowds[2].amount"
        );
        assert_eq!(
            field(
                Crowd {
                    every_ms: Millis(crate::time::HORIZON.0),
                    ..crowd(3)
                },
                false
            ),
            "crowds[2].increments"
        );
    }

    #[test]
    fn simulated_crowds_round_trip_through_json() {
        let text = r#"{"name": "v", "users": 2, "machines": {"from": 1, "to": 2}, "join_ms": 3, "amount": {"from": 1, "to": 5}}"#;
        let crowd: Crowd = serde_json::from_str(text).expect("valid");
        assert_eq!(crowd.machines, MachineSet::Range { from: 1, to: 2 });
        assert_eq!(crowd.amount, Amount::Drawn { from: 1, to: 5 });
        let back: Crowd = serde_json::from_value(serde_json::to_value(&crowd).expect("serializes"))
            .expect("parses");
        assert_eq!(back, crowd);
        for machines in [r#""all""#, "[0, 2]"] {
            let text =
                format!(r#"{{"name": "v", "users": 1, "machines": {machines}, "amount": -4}}"#);
            let crowd: Crowd = serde_json::from_str(&text).expect("valid");
            assert_eq!(crowd.amount, Amount::Fixed(-4));
            let again = serde_json::to_string(&crowd.machines).expect("serializes");
            assert_eq!(again.replace(' ', ""), machines.replace(' ', ""));
        }
        let wrong =
            serde_json::from_str::<Crowd>(r#"{"name": "v", "users": 1, "machines": "some"}"#)
                .expect_err("not a machine set");
        assert!(wrong.to_string().contains(r#""all", a list"#), "{wrong}");
    }
}
