//! Fault rules shared by every mode: which transmissions a drop or duplicate rule strikes, and
//! [`SenderFaults`], the one place drops and duplicates are injected and counted. Every sending
//! machine has its own, on a random stream of its own: the simulated network asks the sender's
//! before it carries a transmission, and a real machine asks its own before it sends one.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::messages::MachineId;

/// A fault applied to a share of the transmissions between machines, optionally only to those
/// whose type matches a regular expression (the node message's `"type"`, or `spawn`,
/// `terminate`, `ack` for the runtime's own traffic), e.g. `{"rate": 0.1, "types": "increment|add_.*"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The probability, in [0, 1], that a matching transmission is affected.
    pub rate: f64,
    /// A regular expression the whole type must match; every type if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<String>,
}

/// A fault rule that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FaultRuleError {
    /// The offending field, e.g. `network.drop.rate`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A fault rule ready to apply: its rate checked, its type pattern compiled (anchored, so it
/// must match the whole type).
#[derive(Debug, Clone)]
pub struct CompiledRule {
    rate: f64,
    types: Option<Regex>,
}

impl CompiledRule {
    /// Checks and compiles `rule`; `at` names it in errors (e.g. `network.drop`).
    pub fn new(at: &str, rule: &FaultRule) -> Result<Self, FaultRuleError> {
        if !(0.0..=1.0).contains(&rule.rate) {
            return Err(FaultRuleError {
                field: format!("{at}.rate"),
                reason: format!("{} is outside [0, 1]", rule.rate),
            });
        }
        let types = rule
            .types
            .as_deref()
            .map(|pattern| {
                Regex::new(&format!("^(?:{pattern})$")).map_err(|e| FaultRuleError {
                    field: format!("{at}.types"),
                    reason: format!(
                        "`{pattern}` is not a valid regular expression: {}",
                        regex_problem(&e)
                    ),
                })
            })
            .transpose()?;
        Ok(CompiledRule {
            rate: rule.rate,
            types,
        })
    }

    /// Whether a transmission of type `kind` is struck. Draws from `rng` only for matching
    /// types, so a rule limited to some types leaves every other transmission's draws unchanged.
    pub fn strikes(&self, kind: &str, rng: &mut ChaCha8Rng) -> bool {
        if self.rate <= 0.0
            || self
                .types
                .as_ref()
                .is_some_and(|types| !types.is_match(kind))
        {
            return false;
        }
        rng.random_bool(self.rate)
    }
}

/// The one-line heart of a regular-expression error (the library's own message spans several
/// lines and shows the pattern with the anchors added here).
fn regex_problem(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or(&text);
    last.trim().trim_start_matches("error:").trim().to_owned()
}

/// Stream numbers of the fault draws start here, apart from the simulated network's own stream
/// (0) of the same generator; nodes draw from generators keyed with the incarnation too (see
/// [`NodeManager::new`](crate::manager::NodeManager::new)), so faults and nodes never share
/// draws.
const FAULT_STREAMS: u64 = 1 << 32;

/// Drops and duplicates applied to what one machine sends to other machines, in every mode.
#[derive(Debug, Clone)]
pub struct SenderFaults {
    drop: Option<CompiledRule>,
    duplicate: Option<CompiledRule>,
    seed: u64,
    rng: ChaCha8Rng,
    counters: Counters,
}

impl SenderFaults {
    /// Machine `machine`'s faults of `drop` and `duplicate` in a run on `seed`, drawn from stream
    /// 2^32 + `machine` of ChaCha8 seeded with `seed`, apart from the machine's nodes' stream.
    pub fn new(
        drop: Option<&FaultRule>,
        duplicate: Option<&FaultRule>,
        seed: u64,
        machine: MachineId,
    ) -> Result<Self, FaultRuleError> {
        Ok(SenderFaults {
            drop: drop
                .map(|rule| CompiledRule::new("network.drop", rule))
                .transpose()?,
            duplicate: duplicate
                .map(|rule| CompiledRule::new("network.duplicate", rule))
                .transpose()?,
            seed,
            rng: fault_stream(seed, machine),
            counters: Counters::default(),
        })
    }

    /// Machine `machine`'s faults with no rule yet (see [`SenderFaults::set_drop`]).
    pub fn without_rules(seed: u64, machine: MachineId) -> Self {
        SenderFaults {
            drop: None,
            duplicate: None,
            seed,
            rng: fault_stream(seed, machine),
            counters: Counters::default(),
        }
    }

    /// The same rules, for machine `machine` (its own stream, nothing counted yet).
    pub fn for_machine(&self, machine: MachineId) -> Self {
        SenderFaults {
            drop: self.drop.clone(),
            duplicate: self.duplicate.clone(),
            seed: self.seed,
            rng: fault_stream(self.seed, machine),
            counters: Counters::default(),
        }
    }

    /// How many copies of a transmission of type `kind` to send: 0 (dropped), 1, or 2
    /// (duplicated).
    pub fn copies(&mut self, kind: &str) -> usize {
        if self
            .drop
            .as_ref()
            .is_some_and(|rule| rule.strikes(kind, &mut self.rng))
        {
            self.counters.dropped += 1;
            return 0;
        }
        if self
            .duplicate
            .as_ref()
            .is_some_and(|rule| rule.strikes(kind, &mut self.rng))
        {
            self.counters.duplicated += 1;
            return 2;
        }
        1
    }

    /// Replaces the drop rule (`None` switches drops off); the draws go on from where they are.
    pub fn set_drop(&mut self, rule: Option<CompiledRule>) {
        self.drop = rule;
    }

    /// Replaces the duplicate rule (`None` switches duplicates off).
    pub fn set_duplicate(&mut self, rule: Option<CompiledRule>) {
        self.duplicate = rule;
    }

    /// What the faults have done so far (`dropped`, `duplicated`).
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

/// The generator of machine `machine`'s fault draws in a run on `seed`.
fn fault_stream(seed: u64, machine: MachineId) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(FAULT_STREAMS + u64::from(machine.0));
    rng
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_sender_faults_drop_and_duplicate_at_their_rates() {
        let always = FaultRule {
            rate: 1.0,
            types: Some("increment".into()),
        };
        let mut faults = SenderFaults::new(Some(&always), None, 1, MachineId(9)).expect("valid");
        assert_eq!(faults.copies("increment"), 0);
        assert_eq!(faults.copies("ack"), 1);
        let mut twice = SenderFaults::new(
            None,
            Some(&FaultRule {
                rate: 1.0,
                types: None,
            }),
            1,
            MachineId(9),
        )
        .expect("valid");
        assert_eq!(twice.copies("anything"), 2);
        assert_eq!(faults.counters().dropped, 1);
        assert_eq!(twice.counters().duplicated, 1);
    }

    #[test]
    fn simulated_bad_rules_name_their_field() {
        let error = CompiledRule::new(
            "network.drop",
            &FaultRule {
                rate: -0.5,
                types: None,
            },
        )
        .expect_err("rate");
        assert_eq!(error.field, "network.drop.rate");
        let error = CompiledRule::new(
            "network.duplicate",
            &FaultRule {
                rate: 0.5,
                types: Some("(".into()),
            },
        )
        .expect_err("regex");
        assert_eq!(error.field, "network.duplicate.types");
        assert_eq!(
            error.to_string(),
            "network.duplicate.types: `(` is not a valid regular expression: unclosed group"
        );
    }
}
