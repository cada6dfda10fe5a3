//! Generated workloads: the demo's and the benchmarks' scenarios.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Scenario, UserSpec};
use crate::hardware::simulated::NetworkConfig;
use crate::messages::Message;

/// How long before the end of a run its last action may come, so that every output has
/// surely converged: two network hops of latency and a sum node's batching interval, plus room
/// for the reliable link layer to retransmit what a lossy network loses on both hops. With 10%
/// loss and ~10^6 transmissions a run, some packet is lost six times running; 2 s leaves room for
/// a dozen attempts. Short runs (demos, which are fault-free) keep 40% of their length, at least
/// 300 ms.
fn settle_ms(run_ms: u64) -> u64 {
    (run_ms * 2 / 5).clamp(300, 2_000)
}

/// The shape of a generated sum-network scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Machines in the system.
    pub machines: u32,
    /// Users, spread over the machines.
    pub users: u32,
    /// Increments each user makes.
    pub increments: u32,
    /// Length of the run in milliseconds.
    pub run_ms: u64,
    /// Seed of the generator and of the run.
    pub seed: u64,
}

impl Workload {
    /// The scenario: users join during the first tenth of the run, on machines drawn at random,
    /// and make increments of 1 to 5 at random times, all early enough to settle before the end.
    pub fn scenario(&self) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let machines = self.machines.max(1);
        let join_window = (self.run_ms / 10).max(1);
        let users = (0..self.users)
            .map(|index| {
                let join_ms = rng.random_range(0..join_window);
                let active_ms = self
                    .run_ms
                    .saturating_sub(join_ms + settle_ms(self.run_ms))
                    .max(1);
                let mut times: Vec<u64> = (0..self.increments)
                    .map(|_| rng.random_range(0..active_ms))
                    .collect();
                times.sort_unstable();
                let actions = times
                    .into_iter()
                    .map(|at_ms| {
                        let amount: i64 = rng.random_range(1..=5);
                        let mut fields = serde_json::Map::new();
                        fields.insert("amount".into(), amount.into());
                        (at_ms as i64, Message::tagged("increment", fields))
                    })
                    .collect();
                UserSpec {
                    name: format!("user {index}"),
                    machine: rng.random_range(0..machines),
                    join_ms: join_ms as i64,
                    actions,
                }
            })
            .collect();
        Scenario {
            machines,
            run_ms: self.run_ms,
            seed: self.seed,
            network: NetworkConfig::default(),
            reliable_delivery: true,
            users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_generated_scenarios_are_valid_and_reproducible() {
        let workload = Workload {
            machines: 4,
            users: 30,
            increments: 5,
            run_ms: 4000,
            seed: 9,
        };
        let scenario = workload.scenario();
        scenario.validate().expect("valid");
        assert_eq!(scenario.users.len(), 30);
        assert_eq!(scenario, workload.scenario());
        for user in &scenario.users {
            let last = user.actions.last().map_or(0, |(at, _)| *at);
            assert!(user.join_ms + last + settle_ms(4000) as i64 <= 4000);
        }
    }
}
