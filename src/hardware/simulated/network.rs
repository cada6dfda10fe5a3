//! The simulated network: seeded latencies, first-in first-out per pair of machines.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;

use crate::counters::Counters;
use crate::faults::{
    CompiledRule, FaultRule, Latency, LinkFaults, NetworkConfig, NetworkConfigError, RuleKind,
    SenderFaults,
};
use crate::messages::MachineId;
use crate::time::{Micros, Millis};

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

/// Decides when each transmission arrives. Each ordered pair of machines is a first-in first-out
/// link, as a TCP connection would be: a message never overtakes an earlier one on the same link.
///
/// Partitions, holds and the fault rules change while the system runs (the fault verbs); the
/// network only answers for the moment it is asked about.
pub(super) struct Network {
    latency: Latency,
    rng: ChaCha8Rng,
    seed: u64,
    /// Arrival time of the latest message on each link; looked up only, never iterated.
    link_tail_us: FxHashMap<(MachineId, MachineId), Micros>,
    /// The drop and duplicate rules, if there ever were any: each sending machine's own faults
    /// are made from them on its first transmission, exactly as a real machine's are.
    faults: Option<SenderFaults>,
    /// Each machine's faults, by machine index.
    senders: Vec<Option<Box<SenderFaults>>>,
    reorder: Option<CompiledRule>,
    /// The partitions and holds in force.
    links: LinkFaults,
    counters: Counters,
}

impl Network {
    /// The network of a system of `machines` machines, with the plan's latency and rules (its
    /// windows are the simulator's to apply, as fault verbs).
    pub(super) fn new(
        config: &NetworkConfig,
        machines: u32,
        seed: u64,
    ) -> Result<Self, NetworkConfigError> {
        config.validate(machines)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
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
        Ok(Network {
            latency: Latency::from_spec(&config.latency_ms)?,
            rng,
            seed,
            link_tail_us: FxHashMap::default(),
            faults,
            senders: Vec::new(),
            reorder: config
                .reorder
                .as_ref()
                .map(|rule| CompiledRule::new("network.reorder", rule))
                .transpose()?,
            links: LinkFaults::default(),
            counters: Counters::default(),
        })
    }

    /// The partitions and holds in force, for the fault verbs to change.
    pub(super) fn links(&mut self) -> &mut LinkFaults {
        &mut self.links
    }

    /// Counts one transmission held.
    pub(super) fn count_held(&mut self) {
        self.counters.held += 1;
    }

    /// Whether what `from` sends `to` is held now.
    pub(super) fn is_held(&self, from: MachineId, to: MachineId) -> bool {
        self.links.is_held(from, to)
    }

    /// Replaces one of the rules (`None` switches it off).
    pub(super) fn set_rule(
        &mut self,
        kind: RuleKind,
        rule: Option<&FaultRule>,
    ) -> Result<(), NetworkConfigError> {
        let name = match kind {
            RuleKind::Drop => "drop",
            RuleKind::Duplicate => "duplicate",
            RuleKind::Reorder => "reorder",
        };
        let compiled = rule.map(|rule| CompiledRule::new(name, rule)).transpose()?;
        if kind == RuleKind::Reorder {
            self.reorder = compiled;
            return Ok(());
        }
        let seed = self.seed;
        let template = self
            .faults
            .get_or_insert_with(|| SenderFaults::without_rules(seed, MachineId(0)));
        let senders = self
            .senders
            .iter_mut()
            .flatten()
            .map(|faults| &mut **faults);
        for faults in std::iter::once(template).chain(senders) {
            match kind {
                RuleKind::Drop => faults.set_drop(compiled.clone()),
                _ => faults.set_duplicate(compiled.clone()),
            }
        }
        Ok(())
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
    #[cfg(test)]
    pub(super) fn transmit(
        &mut self,
        now_us: Micros,
        from: MachineId,
        to: MachineId,
        kind: &str,
    ) -> Transit {
        self.transmit_with(now_us, from, to, || kind)
    }

    /// [`Network::transmit`], asking for the transmission's type only if a fault rule needs it
    /// (reading it touches the message; most runs have no rule).
    pub(super) fn transmit_with<'k>(
        &mut self,
        now_us: Micros,
        from: MachineId,
        to: MachineId,
        kind: impl Fn() -> &'k str,
    ) -> Transit {
        if from == to {
            return Transit::carried([Some(now_us), None]);
        }
        if self.links.is_cut(from, to) {
            self.counters.partitioned += 1;
            return Transit::lost(Loss::Partition);
        }
        let copies = match self.faults {
            Some(_) => self.copies(from, kind()),
            None => 1,
        };
        if copies == 0 {
            return Transit::lost(Loss::Drop);
        }
        let first = if self
            .reorder
            .as_ref()
            .is_some_and(|rule| rule.strikes(kind(), &mut self.rng))
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
    use crate::faults::{CutId, LatencySpec};
    use crate::time::MAX_LATENCY;

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
    fn simulated_partitions_cut_only_across_groups_until_repaired() {
        let mut network = Network::new(&NetworkConfig::default(), 4, 1).expect("valid");
        let (m0, m1, m2, m3) = (MachineId(0), MachineId(1), MachineId(2), MachineId(3));
        let now = Micros(100_000);
        assert!(network.transmit(now, m0, m1, "x").arrivals[0].is_some());
        network
            .links()
            .partition(CutId(0), &[vec![m0], vec![m1, m2]]);
        assert!(
            network.transmit(now, m0, m1, "x").arrivals[0].is_none(),
            "across groups"
        );
        assert!(
            network.transmit(now, m1, m2, "x").arrivals[0].is_some(),
            "within a group"
        );
        assert!(
            network.transmit(now, m0, m3, "x").arrivals[0].is_some(),
            "ungrouped"
        );
        network.links().partition(CutId(1), &[vec![m2], vec![m3]]);
        network.links().repair(CutId(0));
        assert!(
            network.transmit(now, m1, m0, "x").arrivals[0].is_some(),
            "repaired"
        );
        assert!(
            network.transmit(now, m2, m3, "x").arrivals[0].is_none(),
            "the other cut"
        );
        network.links().repair(CutId(1));
        assert!(network.transmit(now, m2, m3, "x").arrivals[0].is_some());
        assert_eq!(network.counters().partitioned, 2);
    }

    #[test]
    fn simulated_holds_nest_and_cover_both_directions() {
        let mut network = Network::new(&NetworkConfig::default(), 3, 1).expect("valid");
        let (m0, m1, m2) = (MachineId(0), MachineId(1), MachineId(2));
        network.links().hold(m1, m0);
        network.links().hold(m0, m1);
        assert!(network.is_held(m0, m1) && network.is_held(m1, m0));
        assert!(!network.is_held(m0, m2));
        assert!(!network.links().release(m0, m1), "held twice");
        assert!(network.links().release(m1, m0));
        assert!(!network.is_held(m0, m1));
    }

    #[test]
    fn simulated_rules_switch_on_and_off_while_the_network_runs() {
        let mut network = Network::new(&NetworkConfig::default(), 2, 1).expect("valid");
        let (m0, m1) = (MachineId(0), MachineId(1));
        let always = FaultRule {
            rate: 1.0,
            types: None,
        };
        network
            .set_rule(RuleKind::Drop, Some(&always))
            .expect("valid");
        assert!(network.transmit(Micros(0), m0, m1, "x").arrivals[0].is_none());
        network.set_rule(RuleKind::Drop, None).expect("valid");
        assert!(network.transmit(Micros(0), m0, m1, "x").arrivals[0].is_some());
        let bad = FaultRule {
            rate: 2.0,
            types: None,
        };
        assert!(network.set_rule(RuleKind::Duplicate, Some(&bad)).is_err());
    }
}
