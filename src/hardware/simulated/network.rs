//! The simulated network: seeded latencies, first-in first-out per pair of machines.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::hardware::faults::{CompiledRule, FaultRule, SenderFaults};
use crate::messages::MachineId;
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
        Ok(())
    }

    /// When the last partition or pause ends (zero if there is none).
    pub fn last_fault_window_end_ms(&self) -> Millis {
        let partitions = self.partitions.iter().map(|p| p.to_ms);
        let pauses = self.pauses.iter().map(|p| p.to_ms);
        partitions.chain(pauses).max().unwrap_or(Millis::ZERO)
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

/// Both ends of a window checked by [`check_window`], in microseconds.
fn window_micros(from_ms: Millis, to_ms: Millis) -> (Micros, Micros) {
    (from_ms.to_micros_saturating(), to_ms.to_micros_saturating())
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
    Rule(#[from] crate::hardware::faults::FaultRuleError),
    /// A fault setting is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field, e.g. `network.drop.rate`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

struct CompiledPartition {
    from_us: Micros,
    to_us: Micros,
    /// Each machine's group, if it has one.
    group_of: FxHashMap<MachineId, usize>,
}

impl CompiledPartition {
    fn separates(&self, now_us: Micros, a: MachineId, b: MachineId) -> bool {
        if now_us < self.from_us || now_us >= self.to_us {
            return false;
        }
        match (self.group_of.get(&a), self.group_of.get(&b)) {
            (Some(x), Some(y)) => x != y,
            _ => false,
        }
    }
}

/// Where a transmission ends up: up to two arrival times (two when duplicated).
pub(super) type Arrivals = [Option<Micros>; 2];

/// Why a transmission arrives nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loss {
    /// A partition separated its machines.
    Partition,
    /// Its sender's faults dropped it.
    Drop,
}

/// What the network did with one transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Transit {
    /// When it arrives, and its duplicate if there is one (neither when it is lost).
    pub(super) arrivals: Arrivals,
    /// Why it is lost, if it is.
    pub(super) lost: Option<Loss>,
}

impl Transit {
    fn lost(loss: Loss) -> Self {
        Transit {
            arrivals: [None, None],
            lost: Some(loss),
        }
    }

    fn carried(arrivals: Arrivals) -> Self {
        Transit {
            arrivals,
            lost: None,
        }
    }
}

/// The extra hold-back of a reordered transmission, in milliseconds.
const REORDER_DELAY_MS: std::ops::RangeInclusive<u64> = 10..=1200;

/// [`MAX_LATENCY`] as a number of milliseconds, the bound of every latency parameter.
const MAX_LATENCY_MS: f64 = MAX_LATENCY.0 as f64;

enum Latency {
    Normal(Normal<f64>),
    Uniform(Uniform<f64>),
    Constant(f64),
}

impl Latency {
    fn from_spec(spec: &LatencySpec) -> Result<Self, NetworkConfigError> {
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
    fn sample_us(&self, rng: &mut ChaCha8Rng) -> Micros {
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

/// Decides when each transmission arrives. Each ordered pair of machines is a first-in first-out
/// link, as a TCP connection would be: a message never overtakes an earlier one on the same link.
pub(super) struct Network {
    latency: Latency,
    rng: ChaCha8Rng,
    /// Arrival time of the latest message on each link; looked up only, never iterated.
    link_tail_us: FxHashMap<(MachineId, MachineId), Micros>,
    /// The drop and duplicate rules, if there are any: each sending machine's own faults are
    /// made from them on its first transmission, exactly as a real machine's are.
    faults: Option<SenderFaults>,
    /// Each machine's faults, by machine index.
    senders: Vec<Option<Box<SenderFaults>>>,
    reorder: Option<CompiledRule>,
    partitions: Vec<CompiledPartition>,
    /// Pause windows by machine.
    pauses: FxHashMap<MachineId, Vec<(Micros, Micros)>>,
    counters: Counters,
}

impl Network {
    /// The network of a system of `machines` machines.
    pub(super) fn new(
        config: &NetworkConfig,
        machines: u32,
        seed: u64,
    ) -> Result<Self, NetworkConfigError> {
        config.validate(machines)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        let rule = |name: &str, rule: &Option<FaultRule>| {
            rule.as_ref()
                .map(|r| CompiledRule::new(name, r))
                .transpose()
        };
        let partitions = config
            .partitions
            .iter()
            .map(|p| {
                let (from_us, to_us) = window_micros(p.from_ms, p.to_ms);
                CompiledPartition {
                    from_us,
                    to_us,
                    group_of: p
                        .groups
                        .iter()
                        .enumerate()
                        .flat_map(|(group, members)| {
                            members.iter().map(move |m| (MachineId(*m), group))
                        })
                        .collect(),
                }
            })
            .collect();
        let faults = (config.drop.is_some() || config.duplicate.is_some())
            .then(|| {
                SenderFaults::new(
                    config.drop.as_ref(),
                    config.duplicate.as_ref(),
                    seed,
                    MachineId(0),
                )
            })
            .transpose()?;
        let mut pauses: FxHashMap<MachineId, Vec<(Micros, Micros)>> = FxHashMap::default();
        for pause in &config.pauses {
            pauses
                .entry(MachineId(pause.machine))
                .or_default()
                .push(window_micros(pause.from_ms, pause.to_ms));
        }
        Ok(Network {
            latency: Latency::from_spec(&config.latency_ms)?,
            rng,
            link_tail_us: FxHashMap::default(),
            faults,
            senders: Vec::new(),
            reorder: rule("reorder", &config.reorder)?,
            partitions,
            pauses,
            counters: Counters::default(),
        })
    }

    /// What the faults have done so far, over every sending machine.
    pub(super) fn counters(&self) -> Counters {
        self.senders
            .iter()
            .flatten()
            .map(|faults| faults.counters())
            .sum::<Counters>()
            + self.counters
    }

    /// How many copies of a transmission of type `kind` machine `from` sends: 0 (dropped), 1, or
    /// 2 (duplicated), as its own [`SenderFaults`] decide.
    fn copies(&mut self, from: MachineId, kind: &str) -> usize {
        let Some(template) = &self.faults else {
            return 1;
        };
        if self.senders.len() <= from.index() {
            self.senders.resize_with(from.index() + 1, || None);
        }
        self.senders[from.index()]
            .get_or_insert_with(|| Box::new(template.for_machine(from)))
            .copies(kind)
    }

    /// When (if ever) a transmission of type `kind` sent at `now_us` from `from` to `to`
    /// arrives: never if dropped or cut off by a partition, twice if duplicated. A machine's
    /// transmissions to itself are neither delayed nor faulted.
    pub(super) fn transmit(
        &mut self,
        now_us: Micros,
        from: MachineId,
        to: MachineId,
        kind: &str,
    ) -> Transit {
        if from == to {
            return Transit::carried([Some(now_us), None]);
        }
        if self
            .partitions
            .iter()
            .any(|p| p.separates(now_us, from, to))
        {
            self.counters.partitioned += 1;
            return Transit::lost(Loss::Partition);
        }
        let copies = self.copies(from, kind);
        if copies == 0 {
            return Transit::lost(Loss::Drop);
        }
        let first = if self
            .reorder
            .as_ref()
            .is_some_and(|rule| rule.strikes(kind, &mut self.rng))
        {
            self.counters.reordered += 1;
            let hold = Millis(self.rng.random_range(REORDER_DELAY_MS)).to_micros_saturating();
            now_us
                .saturating_add(self.latency.sample_us(&mut self.rng))
                .saturating_add(hold)
        } else {
            self.in_order_arrival(now_us, from, to)
        };
        let second = (copies == 2).then(|| self.in_order_arrival(now_us, from, to));
        Transit::carried([Some(first), second])
    }

    /// If `machine` is paused at `at_us`, when it goes on.
    pub(super) fn paused_until(&self, machine: MachineId, at_us: Micros) -> Option<Micros> {
        self.pauses
            .get(&machine)?
            .iter()
            .filter(|(from, to)| *from <= at_us && at_us < *to)
            .map(|(_, to)| *to)
            .max()
    }

    /// A first-in first-out arrival on the link `from → to`: never before the previous one.
    fn in_order_arrival(&mut self, now_us: Micros, from: MachineId, to: MachineId) -> Micros {
        let drawn = now_us.saturating_add(self.latency.sample_us(&mut self.rng));
        let tail = self.link_tail_us.entry((from, to)).or_insert(Micros::ZERO);
        *tail = (*tail).max(drawn);
        *tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn simulated_links_are_first_in_first_out() {
        let config = NetworkConfig {
            latency_ms: LatencySpec {
                stddev: 15.0,
                ..LatencySpec::default()
            },
            ..NetworkConfig::default()
        };
        let mut network = Network::new(&config, 2, 7).expect("valid");
        let mut last = Micros::ZERO;
        for now in 0..500 {
            let [Some(at), None] = network
                .transmit(Micros(now * 100), MachineId(0), MachineId(1), "x")
                .arrivals
            else {
                panic!("a fault-free network delivers exactly once");
            };
            assert!(at >= last);
            last = at;
        }
    }

    fn config(json: serde_json::Value) -> NetworkConfig {
        serde_json::from_value(json).expect("well-formed")
    }

    fn rejection(json: serde_json::Value) -> String {
        config(json).validate(3).expect_err("invalid").to_string()
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
    fn simulated_latency_draws_stay_within_a_year() {
        let widest = config(serde_json::json!({"latency_ms":
            {"distribution": "normal", "mean": MAX_LATENCY.0, "stddev": MAX_LATENCY.0}}));
        let mut network = Network::new(&widest, 2, 3).expect("valid");
        for _ in 0..200 {
            let [Some(at), None] = network
                .transmit(Micros::ZERO, MachineId(0), MachineId(1), "x")
                .arrivals
            else {
                panic!("a fault-free network delivers exactly once");
            };
            assert!(at <= MAX_LATENCY.to_micros_saturating(), "{at}");
        }
    }

    #[test]
    fn simulated_type_limited_faults_only_strike_matching_types() {
        let mut network = Network::new(
            &config(serde_json::json!({"drop": {"rate": 1.0, "types": "increment|add_.*"}})),
            2,
            1,
        )
        .expect("valid");
        for (kind, lost) in [
            ("increment", true),
            ("add_kid", true),
            ("ack", false),
            ("incremental", false),
        ] {
            let arrivals = network
                .transmit(Micros(0), MachineId(0), MachineId(1), kind)
                .arrivals;
            assert_eq!(arrivals[0].is_none(), lost, "{kind}");
        }
        assert_eq!(network.counters().dropped, 2);
    }

    #[test]
    fn simulated_partitions_cut_only_across_groups_and_only_in_their_window() {
        let json = serde_json::json!({"partitions": [{"from_ms": 200, "to_ms": 900, "groups": [[0], [1, 2]]}]});
        let mut network = Network::new(&config(json), 4, 1).expect("valid");
        let (m0, m1, m2, m3) = (MachineId(0), MachineId(1), MachineId(2), MachineId(3));
        assert!(
            network.transmit(Micros(100_000), m0, m1, "x").arrivals[0].is_some(),
            "before the window"
        );
        assert!(
            network.transmit(Micros(200_000), m0, m1, "x").arrivals[0].is_none(),
            "across groups"
        );
        assert!(
            network.transmit(Micros(500_000), m1, m2, "x").arrivals[0].is_some(),
            "within a group"
        );
        assert!(
            network.transmit(Micros(500_000), m0, m3, "x").arrivals[0].is_some(),
            "an ungrouped machine"
        );
        assert!(
            network.transmit(Micros(900_000), m1, m0, "x").arrivals[0].is_some(),
            "healed"
        );
        assert_eq!(network.counters().partitioned, 1);
    }

    #[test]
    fn simulated_pauses_hold_a_machine_until_their_end() {
        let json = serde_json::json!({"pauses": [{"machine": 1, "from_ms": 300, "to_ms": 800}]});
        let network = Network::new(&config(json), 2, 1).expect("valid");
        assert_eq!(network.paused_until(MachineId(1), Micros(299_999)), None);
        assert_eq!(
            network.paused_until(MachineId(1), Micros(300_000)),
            Some(Micros(800_000))
        );
        assert_eq!(network.paused_until(MachineId(1), Micros(800_000)), None);
        assert_eq!(network.paused_until(MachineId(0), Micros(500_000)), None);
    }
}
