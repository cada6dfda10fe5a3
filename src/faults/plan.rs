//! The fault plan a scenario declares under `"network"`: the latency model, the drop, duplicate
//! and reorder rules, and the windows of partitions, pauses and crashes. It is mode-neutral: the
//! simulator draws latencies from it, and every mode turns its windows into a [`Schedule`] of
//! the same fault verbs a test calls (see [`super::Fault`]).

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use super::{CompiledRule, FaultKind, FaultRule, Schedule};
use crate::time::{Micros, Millis, MAX_LATENCY};

/// The shape of the latency distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyDistribution {
    /// Normal with `mean` and `stddev` (negative draws count as zero).
    #[default]
    Normal,
    /// Uniform between `min` and `max`.
    Uniform,
    /// Always `mean`.
    Constant,
}

/// Message latency between two different machines, in milliseconds (fractions allowed, each
/// value finite, non-negative and at most [`MAX_LATENCY`]). Messages between nodes on the same
/// machine arrive at once (after everything already due).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// The distribution's shape (default normal).
    #[serde(default)]
    pub distribution: LatencyDistribution,
    /// Mean, for normal and constant (default 20).
    #[serde(default = "default_mean")]
    pub mean: f64,
    /// Standard deviation, for normal (default 3).
    #[serde(default = "default_stddev")]
    pub stddev: f64,
    /// Lower bound, for uniform.
    #[serde(default)]
    pub min: f64,
    /// Upper bound, for uniform.
    #[serde(default)]
    pub max: f64,
}

fn default_mean() -> f64 {
    20.0
}

fn default_stddev() -> f64 {
    3.0
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec {
            distribution: LatencyDistribution::Normal,
            mean: default_mean(),
            stddev: default_stddev(),
            min: 0.0,
            max: 0.0,
        }
    }
}

/// A window of time in which machines in different groups cannot reach each other. Machines in
/// no group are not affected. Transmissions sent during the window between groups are lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// When the partition starts.
    pub from_ms: Millis,
    /// When it heals.
    pub to_ms: Millis,
    /// Groups of machine indexes.
    pub groups: Vec<Vec<u32>>,
}

/// A window in which a machine processes nothing, as a stalled process or a long garbage
/// collection would; whatever arrives meanwhile waits for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// The machine.
    pub machine: u32,
    /// When it stops.
    pub from_ms: Millis,
    /// When it goes on.
    pub to_ms: Millis,
}

/// A machine that loses power at `at_ms`: everything in its memory is gone (nodes, timers,
/// link-layer buffers). At `restart_ms` it boots again at the same address with what its nodes
/// persisted; without `restart_ms` it stays down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    /// The machine.
    pub machine: u32,
    /// When it goes down.
    pub at_ms: Millis,
    /// When it comes back, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_ms: Option<Millis>,
}

/// The scenario's `"network"` object: latency and faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Latency between machines.
    #[serde(default)]
    pub latency_ms: LatencySpec,
    /// Transmissions lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<FaultRule>,
    /// Transmissions delivered twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<FaultRule>,
    /// Transmissions held back an extra 10–1200 ms, so later ones overtake them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<FaultRule>,
    /// Windows in which groups of machines cannot reach each other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<Partition>,
    /// Windows in which a machine stalls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Pause>,
    /// Machines that lose power at a moment, and come back later if the crash says when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crashes: Vec<Crash>,
}

impl NetworkConfig {
    /// Checks that the config can be simulated on a system of `machines` machines.
    pub fn validate(&self, machines: u32) -> Result<(), NetworkConfigError> {
        Latency::from_spec(&self.latency_ms)?;
        for (name, rule) in [
            ("drop", &self.drop),
            ("duplicate", &self.duplicate),
            ("reorder", &self.reorder),
        ] {
            if let Some(rule) = rule {
                CompiledRule::new(&format!("network.{name}"), rule)
                    .map_err(NetworkConfigError::from)?;
            }
        }
        for (index, partition) in self.partitions.iter().enumerate() {
            let at = format!("network.partitions[{index}]");
            check_window(&at, partition.from_ms, partition.to_ms)?;
            let mut seen = std::collections::BTreeSet::new();
            for (group, members) in partition.groups.iter().enumerate() {
                for (position, machine) in members.iter().enumerate() {
                    let field = format!("{at}.groups[{group}][{position}]");
                    check_machine(&field, *machine, machines)?;
                    if !seen.insert(*machine) {
                        return Err(NetworkConfigError::Invalid {
                            field,
                            reason: format!("machine {machine} is in more than one group"),
                        });
                    }
                }
            }
        }
        for (index, pause) in self.pauses.iter().enumerate() {
            let at = format!("network.pauses[{index}]");
            check_window(&at, pause.from_ms, pause.to_ms)?;
            check_machine(&format!("{at}.machine"), pause.machine, machines)?;
        }
        let mut downtimes: Vec<(u32, Millis, Option<Millis>, usize)> = Vec::new();
        for (index, crash) in self.crashes.iter().enumerate() {
            let at = format!("network.crashes[{index}]");
            check_machine(&format!("{at}.machine"), crash.machine, machines)?;
            match crash.restart_ms {
                Some(restart_ms) => {
                    check_window(&at, crash.at_ms, restart_ms)?;
                    if restart_ms == crash.at_ms {
                        return Err(NetworkConfigError::Invalid {
                            field: format!("{at}.restart_ms"),
                            reason: "a machine restarts after it crashes, not at the same moment"
                                .into(),
                        });
                    }
                }
                None => check_window(&at, crash.at_ms, crash.at_ms)?,
            }
            for (machine, from, to, other) in &downtimes {
                let overlaps = *machine == crash.machine
                    && to.is_none_or(|to| crash.at_ms < to)
                    && crash.restart_ms.is_none_or(|restart| *from < restart);
                if overlaps {
                    return Err(NetworkConfigError::Invalid {
                        field: at,
                        reason: format!(
                            "machine {machine} is already down then (network.crashes[{other}])"
                        ),
                    });
                }
            }
            downtimes.push((crash.machine, crash.at_ms, crash.restart_ms, index));
        }
        Ok(())
    }

    /// The plan's partitions, pauses and crashes as the fault verbs that start and end them, in
    /// time order.
    pub fn schedule(&self) -> Schedule {
        Schedule::of_plan(self)
    }

    /// The kinds of fault the plan asks for, in [`FaultKind`]'s order.
    pub fn kinds(&self) -> Vec<FaultKind> {
        let asked = [
            (
                FaultKind::Latency,
                self.latency_ms != LatencySpec::default(),
            ),
            (FaultKind::Drop, self.drop.is_some()),
            (FaultKind::Duplicate, self.duplicate.is_some()),
            (FaultKind::Reorder, self.reorder.is_some()),
            (FaultKind::Partition, !self.partitions.is_empty()),
            (FaultKind::Pause, !self.pauses.is_empty()),
            (FaultKind::Crash, !self.crashes.is_empty()),
        ];
        asked
            .into_iter()
            .filter_map(|(kind, asked)| asked.then_some(kind))
            .collect()
    }

    /// When the last partition, pause or crash ends (zero if there is none).
    pub fn last_fault_window_end_ms(&self) -> Millis {
        let partitions = self.partitions.iter().map(|p| p.to_ms);
        let pauses = self.pauses.iter().map(|p| p.to_ms);
        let crashes = self.crashes.iter().map(|c| c.restart_ms.unwrap_or(c.at_ms));
        partitions
            .chain(pauses)
            .chain(crashes)
            .max()
            .unwrap_or(Millis::ZERO)
    }
}

/// Checks that a window ends no earlier than it starts and that both ends are times a scenario
/// may name (within [`HORIZON`](crate::time::HORIZON)).
fn check_window(at: &str, from_ms: Millis, to_ms: Millis) -> Result<(), NetworkConfigError> {
    for (name, time) in [("from_ms", from_ms), ("to_ms", to_ms)] {
        time.within_horizon()
            .map_err(|beyond| NetworkConfigError::Invalid {
                field: format!("{at}.{name}"),
                reason: beyond.to_string(),
            })?;
    }
    if to_ms < from_ms {
        return Err(NetworkConfigError::Invalid {
            field: at.to_owned(),
            reason: format!(
                "the window ends (to_ms {}) before it starts (from_ms {})",
                to_ms.0, from_ms.0
            ),
        });
    }
    Ok(())
}

fn check_machine(field: &str, machine: u32, machines: u32) -> Result<(), NetworkConfigError> {
    if machine >= machines {
        return Err(NetworkConfigError::Invalid {
            field: field.to_owned(),
            reason: format!(
                "machine {machine} is out of range: the system has {machines} machines (0..={})",
                machines.saturating_sub(1)
            ),
        });
    }
    Ok(())
}

/// A network config that cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkConfigError {
    /// A latency parameter is negative, not finite, or the bounds are reversed.
    #[error("network.latency_ms.{field}: {reason}")]
    Latency {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A fault rule's rate is out of range or its types do not compile.
    #[error(transparent)]
    Rule(#[from] super::FaultRuleError),
    /// A fault setting is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field, e.g. `network.drop.rate`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// [`MAX_LATENCY`] as a number of milliseconds, the bound of every latency parameter.
const MAX_LATENCY_MS: f64 = MAX_LATENCY.0 as f64;

/// A latency model ready to draw from.
pub(crate) enum Latency {
    Normal(Normal<f64>),
    Uniform(Uniform<f64>),
    Constant(f64),
}

impl Latency {
    /// Checks `spec` and builds the model.
    pub(crate) fn from_spec(spec: &LatencySpec) -> Result<Self, NetworkConfigError> {
        let check = |field: &'static str, value: f64| {
            if !(value.is_finite() && value >= 0.0) {
                Err(NetworkConfigError::Latency {
                    field,
                    reason: format!(
                        "{} is not a finite, non-negative number of milliseconds",
                        shown(value)
                    ),
                })
            } else if value > MAX_LATENCY_MS {
                Err(NetworkConfigError::Latency {
                    field,
                    reason: format!(
                        "{} ms is more than the longest latency a network may have ({MAX_LATENCY}, a year)",
                        shown(value)
                    ),
                })
            } else {
                Ok(value)
            }
        };
        Ok(match spec.distribution {
            LatencyDistribution::Normal => {
                let normal = Normal::new(check("mean", spec.mean)?, check("stddev", spec.stddev)?)
                    .map_err(|e| NetworkConfigError::Latency {
                        field: "stddev",
                        reason: e.to_string(),
                    })?;
                Latency::Normal(normal)
            }
            LatencyDistribution::Uniform => {
                let (min, max) = (check("min", spec.min)?, check("max", spec.max)?);
                let uniform =
                    Uniform::new_inclusive(min, max).map_err(|_| NetworkConfigError::Latency {
                        field: "max",
                        reason: format!("max {max} is below min {min}"),
                    })?;
                Latency::Uniform(uniform)
            }
            LatencyDistribution::Constant => Latency::Constant(check("mean", spec.mean)?),
        })
    }

    /// A latency drawn from the distribution, clamped to [0, [`MAX_LATENCY`]].
    pub(crate) fn sample_us(&self, rng: &mut ChaCha8Rng) -> Micros {
        let ms = match self {
            Latency::Normal(normal) => normal.sample(rng),
            Latency::Uniform(uniform) => uniform.sample(rng),
            Latency::Constant(ms) => *ms,
        };
        Micros::from_millis_f64(ms.clamp(0.0, MAX_LATENCY_MS))
            .unwrap_or(MAX_LATENCY.to_micros_saturating())
    }
}

/// `value` as a user would write it: `1e308`, not 309 digits.
fn shown(value: f64) -> String {
    if value.abs() >= 1e15 {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> NetworkConfig {
        serde_json::from_value(json).expect("well-formed")
    }

    fn rejection(json: serde_json::Value) -> String {
        config(json).validate(3).expect_err("invalid").to_string()
    }

    #[test]
    fn simulated_negative_or_reversed_latency_is_rejected() {
        let mut spec = LatencySpec {
            stddev: -1.0,
            ..LatencySpec::default()
        };
        assert!(Latency::from_spec(&spec).is_err());
        spec = LatencySpec {
            distribution: LatencyDistribution::Uniform,
            min: 5.0,
            max: 1.0,
            ..LatencySpec::default()
        };
        assert!(Latency::from_spec(&spec).is_err());
    }

    #[test]
    fn simulated_bad_fault_configs_are_rejected_with_the_field_named() {
        let rate = rejection(serde_json::json!({"drop": {"rate": 1.5}}));
        assert!(
            rate.contains("network.drop.rate") && rate.contains("[0, 1]"),
            "{rate}"
        );
        let regex = rejection(serde_json::json!({"reorder": {"rate": 0.1, "types": "add_(.*"}}));
        assert!(regex.contains("network.reorder.types"), "{regex}");
        let machine = rejection(
            serde_json::json!({"partitions": [{"from_ms": 1, "to_ms": 2, "groups": [[0], [5]]}]}),
        );
        assert!(
            machine.contains("network.partitions[0].groups[1][0]")
                && machine.contains("out of range"),
            "{machine}"
        );
        let window = rejection(
            serde_json::json!({"pauses": [{"machine": 1, "from_ms": 300, "to_ms": 100}]}),
        );
        assert!(
            window.contains("network.pauses[0]") && window.contains("before it starts"),
            "{window}"
        );
        let twice = rejection(
            serde_json::json!({"partitions": [{"from_ms": 1, "to_ms": 2, "groups": [[0, 1], [1]]}]}),
        );
        assert!(twice.contains("more than one group"), "{twice}");
        let pause_machine =
            rejection(serde_json::json!({"pauses": [{"machine": 3, "from_ms": 1, "to_ms": 2}]}));
        assert!(
            pause_machine.contains("network.pauses[0].machine"),
            "{pause_machine}"
        );
    }

    #[test]
    fn simulated_times_and_latencies_beyond_what_a_run_can_represent_are_rejected() {
        // 584,000 years: in microseconds, beyond 64 bits.
        let far = u64::MAX / 1000 + 1;
        let partition = rejection(serde_json::json!({"partitions": [
            {"from_ms": 1, "to_ms": far, "groups": [[0], [1]]}
        ]}));
        assert!(
            partition.contains("network.partitions[0].to_ms") && partition.contains("beyond"),
            "{partition}"
        );
        let pause = rejection(
            serde_json::json!({"pauses": [{"machine": 1, "from_ms": far, "to_ms": far}]}),
        );
        assert!(pause.contains("network.pauses[0].from_ms"), "{pause}");
        for (latency, field) in [
            (
                serde_json::json!({"distribution": "constant", "mean": 1e308}),
                "network.latency_ms.mean",
            ),
            (
                serde_json::json!({"distribution": "uniform", "min": 1.0, "max": 4e10}),
                "network.latency_ms.max",
            ),
            (
                serde_json::json!({"distribution": "normal", "mean": 1.0, "stddev": 4e10}),
                "network.latency_ms.stddev",
            ),
        ] {
            let error = rejection(serde_json::json!({"latency_ms": latency}));
            assert!(
                error.contains(field) && error.contains("a year") && error.len() < 200,
                "{field}: {error}"
            );
        }
    }

    #[test]
    fn simulated_bad_crashes_are_rejected_with_the_field_named() {
        let out_of_range = rejection(serde_json::json!({"crashes": [{"machine": 3, "at_ms": 1}]}));
        assert!(
            out_of_range.starts_with("network.crashes[0].machine"),
            "{out_of_range}"
        );
        let backwards = rejection(
            serde_json::json!({"crashes": [{"machine": 1, "at_ms": 500, "restart_ms": 100}]}),
        );
        assert!(backwards.starts_with("network.crashes[0]:"), "{backwards}");
        let same = rejection(
            serde_json::json!({"crashes": [{"machine": 1, "at_ms": 500, "restart_ms": 500}]}),
        );
        assert!(same.starts_with("network.crashes[0].restart_ms"), "{same}");
        let overlap = rejection(serde_json::json!({"crashes": [
            {"machine": 1, "at_ms": 100, "restart_ms": 400},
            {"machine": 1, "at_ms": 300, "restart_ms": 900}
        ]}));
        assert!(
            overlap.starts_with("network.crashes[1]:") && overlap.contains("crashes[0]"),
            "{overlap}"
        );
        let after_for_good = rejection(serde_json::json!({"crashes": [
            {"machine": 2, "at_ms": 100},
            {"machine": 2, "at_ms": 300, "restart_ms": 900}
        ]}));
        assert!(
            after_for_good.starts_with("network.crashes[1]:"),
            "{after_for_good}"
        );
        let fine: NetworkConfig = config(serde_json::json!({"crashes": [
            {"machine": 1, "at_ms": 100, "restart_ms": 400},
            {"machine": 1, "at_ms": 400, "restart_ms": 900},
            {"machine": 2, "at_ms": 50}
        ]}));
        assert_eq!(fine.validate(3), Ok(()));
        assert_eq!(fine.last_fault_window_end_ms(), Millis(900));
    }
}
