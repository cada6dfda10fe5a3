//! Generated workloads: the demo's and the benchmarks' sum-network scenarios.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::apps::sum::{SumApp, SumSection, UserAction, UserSpec};
use crate::scenario::{Scenario, ScenarioError, MAX_MACHINES};
use crate::time::Millis;

/// How long before the end of a run its last action may come, so that every output has
/// surely converged: two network hops of latency and a sum node's batching interval, plus room
/// for the reliable link layer to retransmit what a lossy network loses on both hops. With 10%
/// loss and ~10^6 transmissions a run, some packet is lost six times running; 2 s leaves room for
/// a dozen attempts. Short runs (demos, which are fault-free) keep 40% of their length, at least
/// 300 ms.
fn settle_ms(run_ms: Millis) -> u64 {
    (run_ms.0.saturating_mul(2) / 5).clamp(300, 2_000)
}

/// The most users a generated workload may have.
pub const MAX_GENERATED_USERS: u32 = 10_000_000;
/// The most actions (users × increments) a generated workload may have.
pub const MAX_GENERATED_ACTIONS: u64 = 100_000_000;

/// A workload that cannot be generated, naming the command-line flag at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {reason}")]
pub struct WorkloadError {
    /// The flag, e.g. `--run-ms`.
    pub flag: &'static str,
    /// What is wrong with its value.
    pub reason: String,
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
    /// Length of the run.
    pub run_ms: Millis,
    /// Seed of the generator and of the run.
    pub seed: u64,
}

impl Workload {
    /// Checks that the workload can be generated and run, before anything is built: a machine
    /// count a scenario may have, a run length within the [`HORIZON`](crate::time::HORIZON),
    /// and no more users and actions than fit in memory.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.machines == 0 || self.machines > MAX_MACHINES {
            return Err(WorkloadError {
                flag: "--machines",
                reason: format!(
                    "{} machines: a system has from 1 to {MAX_MACHINES} machines",
                    self.machines
                ),
            });
        }
        if let Err(beyond) = self.run_ms.within_horizon() {
            return Err(WorkloadError {
                flag: "--run-ms",
                reason: beyond.to_string(),
            });
        }
        if self.users > MAX_GENERATED_USERS {
            return Err(WorkloadError {
                flag: "--users",
                reason: format!(
                    "{} users: a generated workload has at most {MAX_GENERATED_USERS}",
                    self.users
                ),
            });
        }
        let actions = u64::from(self.users) * u64::from(self.increments);
        if actions > MAX_GENERATED_ACTIONS {
            return Err(WorkloadError {
                flag: "--increments",
                reason: format!(
                    "{} users with {} increments each make {actions} actions: a generated workload has at most {MAX_GENERATED_ACTIONS}",
                    self.users, self.increments
                ),
            });
        }
        Ok(())
    }

    /// The scenario: [`Workload::section`] on the workload's machines, for its run time, on its
    /// seed.
    pub fn scenario(&self) -> Result<Scenario, ScenarioError> {
        Scenario::new(
            SumApp,
            self.section(),
            self.machines.max(1),
            self.run_ms,
            self.seed,
        )
    }

    /// The users: they join during the first tenth of the run, on machines drawn at random, and
    /// make increments of 1 to 5 at random times, all early enough to settle before the end.
    pub fn section(&self) -> SumSection {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let machines = self.machines.max(1);
        let run_ms = self.run_ms.0;
        let join_window = (run_ms / 10).max(1);
        let users = (0..self.users)
            .map(|index| {
                let join_ms = rng.random_range(0..join_window);
                let active_ms = run_ms
                    .saturating_sub(join_ms.saturating_add(settle_ms(self.run_ms)))
                    .max(1);
                let mut times: Vec<u64> = (0..self.increments)
                    .map(|_| rng.random_range(0..active_ms))
                    .collect();
                times.sort_unstable();
                let actions = times
                    .into_iter()
                    .map(|at_ms| {
                        let amount: i64 = rng.random_range(1..=5);
                        (Millis(at_ms), UserAction::Increment { amount })
                    })
                    .collect();
                UserSpec {
                    name: format!("user {index}"),
                    machine: rng.random_range(0..machines),
                    join_ms: Millis(join_ms),
                    actions,
                    leave_ms: None,
                }
            })
            .collect();
        SumSection {
            users,
            ..SumSection::default()
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
            run_ms: Millis(4000),
            seed: 9,
        };
        let scenario = workload.scenario().expect("valid");
        assert_eq!(scenario, workload.scenario().expect("valid"));
        let section = scenario.section_of::<SumApp>().expect("a sum scenario");
        assert_eq!(section.users.len(), 30);
        for user in &section.users {
            let last = user.actions.last().map_or(Millis::ZERO, |(at, _)| *at);
            assert!(user.join_ms.0 + last.0 + settle_ms(Millis(4000)) <= 4000);
        }
    }

    #[test]
    fn simulated_workloads_out_of_range_name_their_flag() {
        let workload = Workload {
            machines: 3,
            users: 6,
            increments: 4,
            run_ms: Millis(u64::MAX),
            seed: 0,
        };
        let error = workload.validate().expect_err("too long");
        assert_eq!(error.flag, "--run-ms");
        let none = Workload {
            machines: 0,
            run_ms: Millis(1000),
            ..workload.clone()
        };
        assert_eq!(none.validate().map_err(|e| e.flag), Err("--machines"));
        let crowd = Workload {
            users: 1_000_000,
            increments: 1_000,
            run_ms: Millis(1000),
            ..workload
        };
        assert_eq!(crowd.validate().map_err(|e| e.flag), Err("--increments"));
    }
}
