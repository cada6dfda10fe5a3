//! The store as a DistZero application: its scenario section, its play, its check and its
//! invariant.

use std::collections::{BTreeMap, BTreeSet};

use dist_zero::app::{
    states_of, Application, Common, FieldError, Input, Invariant, PlayError, Verdict,
};
use dist_zero::manager::NodeState;
use dist_zero::messages::MachineId;
use dist_zero::node::{NoConfig, NodeRegistry};
use dist_zero::system::{Sim, States, Violation};
use dist_zero::time::Millis;
use serde::{Deserialize, Serialize};

use crate::nodes::{Replica, ReplicaConfig, Sequencer, ToReplica, Write};

/// The most replicas a scenario may have.
pub const MAX_REPLICAS: u32 = 1_000;
/// The most writes a scenario may make.
pub const MAX_WRITES: usize = 100_000;

/// A client's write in a scenario: at `at_ms`, replica `replica` is asked to set `key` to
/// `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteSpec {
    /// When.
    pub at_ms: Millis,
    /// To which replica (by place).
    pub replica: u32,
    /// The key.
    pub key: String,
    /// The value.
    pub value: i64,
}

/// The store's section of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvSection {
    /// How many replicas; replica `i` runs on machine `i % machines`, the sequencer on machine 0.
    pub replicas: u32,
    /// What clients write, and when.
    #[serde(default)]
    pub writes: Vec<WriteSpec>,
}

impl KvSection {
    /// The writes in the order they are made (by time; in the file's order at equal times),
    /// each with its id (its place in the file).
    fn in_time_order(&self) -> Vec<(u32, &WriteSpec)> {
        let mut writes: Vec<(u32, &WriteSpec)> = (0..).zip(&self.writes).collect();
        writes.sort_by_key(|(id, write)| (write.at_ms, *id));
        writes
    }
}

/// What a run of the store came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOutcome {
    /// How many replicas.
    pub replicas: u32,
    /// How many writes were made.
    pub writes: usize,
    /// The sequencer's order: write ids.
    pub order: Vec<u32>,
    /// The store the order makes: each key's last value.
    pub store: BTreeMap<String, i64>,
    /// How many replicas applied exactly the order.
    pub in_step: u32,
    /// For each replica that did not: how many writes it applied.
    pub astray: BTreeMap<u32, usize>,
}

/// A replicated key-value store: clients write to any replica, a sequencer orders the writes,
/// and every replica must apply every write, once, in that one order.
#[derive(Debug, Clone, Copy, Default)]
pub struct KvApp;

impl Application for KvApp {
    const NAME: &'static str = "kv";
    const TITLE: &'static str = "replicated key-value store";
    type Section = KvSection;
    type Outcome = KvOutcome;

    fn register(&self, registry: &mut NodeRegistry) {
        registry.add::<Sequencer>();
        registry.add::<Replica>();
    }

    fn validate(&self, section: &KvSection, _common: &Common) -> Result<(), FieldError> {
        if section.replicas == 0 || section.replicas > MAX_REPLICAS {
            return Err(FieldError::new(
                "replicas",
                format!("{}: from 1 to {MAX_REPLICAS}", section.replicas),
            ));
        }
        if section.writes.len() > MAX_WRITES {
            return Err(FieldError::new(
                "writes",
                format!("{} writes: at most {MAX_WRITES}", section.writes.len()),
            ));
        }
        for (index, write) in section.writes.iter().enumerate() {
            let at = |field: &str| format!("writes[{index}].{field}");
            if write.replica >= section.replicas {
                return Err(FieldError::new(
                    at("replica"),
                    format!(
                        "replica {} is out of range (0..={})",
                        write.replica,
                        section.replicas - 1
                    ),
                ));
            }
            if write.key.is_empty() {
                return Err(FieldError::new(at("key"), "must not be empty"));
            }
        }
        Ok(())
    }

    /// Each write's time: DistZero refuses one at or after the end of the run, naming it.
    fn inputs(&self, section: &KvSection) -> Vec<Input> {
        let at = |(index, write): (usize, &WriteSpec)| {
            Input::new(format!("writes[{index}].at_ms"), write.at_ms)
        };
        section.writes.iter().enumerate().map(at).collect()
    }

    fn size(&self, section: &KvSection) -> String {
        format!(
            "{} replicas, {} writes",
            section.replicas,
            section.writes.len()
        )
    }

    /// Spawns the sequencer on machine 0 and the replicas round-robin, then makes each write
    /// at its time.
    fn play(&self, section: &KvSection, sim: &mut Sim<'_>) -> Result<(), PlayError> {
        let machines = sim.machines().max(1);
        let sequencer = sim.spawn::<Sequencer>(MachineId(0), &NoConfig {})?;
        let mut replicas = Vec::new();
        for index in 0..section.replicas {
            let config = ReplicaConfig { index, sequencer };
            replicas.push(sim.spawn::<Replica>(MachineId(index % machines), &config)?);
        }
        for (id, spec) in section.in_time_order() {
            sim.run_until(spec.at_ms.0)?;
            let write = Write {
                id,
                key: spec.key.clone(),
                value: spec.value,
            };
            sim.send(replicas[spec.replica as usize], &ToReplica::Put { write })?;
        }
        Ok(())
    }

    /// Correct when the order holds every write exactly once, keeps the order in which each
    /// replica was written to, and every replica applied exactly that order.
    fn check(&self, section: &KvSection, states: &[NodeState]) -> Verdict<KvOutcome> {
        let order = states_of::<Sequencer>(states)
            .into_iter()
            .next()
            .map(|(_, state)| state.order)
            .unwrap_or_default();
        let mut applied: BTreeMap<u32, Vec<u32>> =
            (0..section.replicas).map(|i| (i, Vec::new())).collect();
        for (_, state) in states_of::<Replica>(states) {
            applied.insert(state.index, state.applied);
        }
        let astray: BTreeMap<u32, usize> = applied
            .iter()
            .filter(|(_, applied)| **applied != order)
            .map(|(replica, applied)| (*replica, applied.len()))
            .collect();
        let in_step = section.replicas - u32::try_from(astray.len()).unwrap_or(section.replicas);
        let mut store = BTreeMap::new();
        for id in &order {
            if let Some(write) = section.writes.get(*id as usize) {
                store.insert(write.key.clone(), write.value);
            }
        }
        let fault = order_fault(section, &order);
        let summary = match (&fault, astray.len()) {
            (Some(fault), _) => fault.clone(),
            (None, 0) => format!(
                "all {} replicas applied all {} writes in one order",
                section.replicas,
                order.len()
            ),
            (None, astray) => format!(
                "{astray} of {} replicas did not apply the {} writes in the sequencer's order",
                section.replicas,
                order.len()
            ),
        };
        let mut lines = vec![format!(
            "writes: {}; replicas in step with the order: {in_step} of {}",
            section.writes.len(),
            section.replicas
        )];
        let shown: Vec<String> = store.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        lines.push(format!("store: {}", shown.join(", ")));
        for (replica, count) in astray.iter().take(12) {
            lines.push(format!("  replica {replica}: applied {count} writes"));
        }
        Verdict {
            correct: fault.is_none() && astray.is_empty(),
            summary,
            lines,
            outcome: KvOutcome {
                replicas: section.replicas,
                writes: section.writes.len(),
                order,
                store,
                in_step,
                astray,
            },
        }
    }

    fn invariant(&self) -> Option<Invariant<Self>> {
        Some(Self::logs_agree)
    }

    /// How many writes each replica has applied, for the report's plot.
    fn series(&self, _section: &KvSection, states: &[NodeState]) -> Vec<(String, f64)> {
        let mut applied: Vec<(String, f64)> = states_of::<Replica>(states)
            .into_iter()
            .map(|(_, state)| {
                (
                    format!("replica {}", state.index),
                    state.applied.len() as f64,
                )
            })
            .collect();
        applied.sort_by(|a, b| a.0.cmp(&b.0));
        applied
    }

    fn series_title(&self) -> &'static str {
        "writes each replica applied"
    }

    fn series_goal(&self, section: &KvSection) -> Option<(String, f64)> {
        Some(("every write".into(), section.writes.len() as f64))
    }
}

impl KvApp {
    /// At every moment, what any two replicas (and the sequencer) have applied agree: the
    /// shorter is a prefix of the longer. (States are read machine by machine, at slightly
    /// different moments, and each only grows: so this, not "a prefix of the sequencer's".)
    fn logs_agree(&self, _section: &KvSection, states: &States) -> Result<(), Box<dyn Violation>> {
        let mut logs: Vec<(String, Vec<u32>)> = states
            .of::<Replica>()
            .into_iter()
            .map(|(_, state)| (format!("replica {}", state.index), state.applied))
            .collect();
        logs.extend(
            states
                .of::<Sequencer>()
                .into_iter()
                .map(|(_, state)| ("the sequencer".to_owned(), state.order)),
        );
        let Some((longest, reference)) = logs.iter().max_by_key(|(_, log)| log.len()) else {
            return Ok(());
        };
        for (who, log) in &logs {
            if let Some(place) = log.iter().zip(reference).position(|(a, b)| a != b) {
                return Err(Box::new(LogsDisagree {
                    who: who.clone(),
                    place,
                    write: log[place],
                    longest: longest.clone(),
                    theirs: reference[place],
                }));
            }
        }
        Ok(())
    }
}

/// Two logs that disagree: the store's invariant broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsDisagree {
    /// The replica (or the sequencer) whose log differs.
    pub who: String,
    /// Where.
    pub place: usize,
    /// What it applied there.
    pub write: u32,
    /// The longest log's owner.
    pub longest: String,
    /// What the longest log has there.
    pub theirs: u32,
}

impl std::fmt::Display for LogsDisagree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} applied write {} at place {}, where {} has write {}",
            self.who, self.write, self.place, self.longest, self.theirs
        )
    }
}

/// What is wrong with the sequencer's order, if anything: a write missing or twice, or two
/// writes to one replica in the wrong order.
fn order_fault(section: &KvSection, order: &[u32]) -> Option<String> {
    let mut seen = BTreeSet::new();
    for id in order {
        if *id as usize >= section.writes.len() {
            return Some(format!("the order holds write {id}, never made"));
        }
        if !seen.insert(*id) {
            return Some(format!("the order holds write {id} twice"));
        }
    }
    if let Some(missing) = (0..)
        .take(section.writes.len())
        .find(|id| !seen.contains(id))
    {
        return Some(format!("the order lacks write {missing}"));
    }
    let place: BTreeMap<u32, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut last: BTreeMap<u32, u32> = BTreeMap::new();
    for (id, spec) in section.in_time_order() {
        if let Some(before) = last.insert(spec.replica, id) {
            if place.get(&before) > place.get(&id) {
                return Some(format!(
                    "replica {} was written write {before}, then write {id}, but the order has them the other way round",
                    spec.replica
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use dist_zero::app::validate_section;

    fn section() -> KvSection {
        let spec = |at_ms, replica, key: &str, value| WriteSpec {
            at_ms: Millis(at_ms),
            replica,
            key: key.into(),
            value,
        };
        KvSection {
            replicas: 2,
            writes: vec![
                spec(10, 0, "x", 1),
                spec(20, 0, "x", 2),
                spec(15, 1, "y", 3),
            ],
        }
    }

    #[test]
    fn simulated_an_order_that_loses_repeats_or_swaps_writes_is_wrong() {
        let section = section();
        assert_eq!(order_fault(&section, &[0, 2, 1]), None);
        assert_eq!(
            order_fault(&section, &[2, 0, 1]),
            None,
            "other replicas may interleave"
        );
        assert!(order_fault(&section, &[0, 2]).is_some_and(|f| f.contains("lacks write 1")));
        assert!(order_fault(&section, &[0, 0, 1, 2]).is_some_and(|f| f.contains("twice")));
        assert!(order_fault(&section, &[1, 0, 2]).is_some_and(|f| f.contains("other way round")));
        assert!(order_fault(&section, &[0, 1, 2, 9]).is_some_and(|f| f.contains("never made")));
    }

    #[test]
    fn simulated_a_section_is_checked_naming_the_field() {
        let common = Common {
            machines: 3,
            run_ms: Millis(100),
        };
        assert_eq!(KvApp.validate(&section(), &common), Ok(()));
        let mut bad = section();
        bad.writes[2].replica = 2;
        let error = KvApp.validate(&bad, &common).expect_err("out of range");
        assert_eq!(error.field, "writes[2].replica");
        let mut late = section();
        late.writes[1].at_ms = Millis(100);
        let error = validate_section(&KvApp, &late, &common).expect_err("too late");
        assert_eq!(error.field, "writes[1].at_ms");
    }
}
