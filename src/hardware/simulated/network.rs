//! The simulated network: seeded latencies, first-in first-out per pair of machines.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::messages::MachineId;

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

/// Message latency between two different machines, in milliseconds. Messages between nodes on
/// the same machine arrive at once (after everything already due).
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

/// The scenario's `"network"` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Latency between machines.
    #[serde(default)]
    pub latency_ms: LatencySpec,
}

impl NetworkConfig {
    /// Checks that the config can be simulated.
    pub fn validate(&self) -> Result<(), NetworkConfigError> {
        Latency::from_spec(&self.latency_ms).map(|_| ())
    }
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
}

enum Latency {
    Normal(Normal<f64>),
    Uniform(Uniform<f64>),
    Constant(f64),
}

impl Latency {
    fn from_spec(spec: &LatencySpec) -> Result<Self, NetworkConfigError> {
        let check = |field: &'static str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(value)
            } else {
                Err(NetworkConfigError::Latency {
                    field,
                    reason: format!("{value} is not a finite, non-negative number of milliseconds"),
                })
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

    fn sample_us(&self, rng: &mut ChaCha8Rng) -> u64 {
        let ms = match self {
            Latency::Normal(normal) => normal.sample(rng),
            Latency::Uniform(uniform) => uniform.sample(rng),
            Latency::Constant(ms) => *ms,
        };
        (ms.max(0.0) * 1000.0).round() as u64
    }
}

/// Decides when each transmission arrives. Each ordered pair of machines is a first-in first-out
/// link, as a TCP connection would be: a message never overtakes an earlier one on the same link.
pub(super) struct Network {
    latency: Latency,
    rng: ChaCha8Rng,
    /// Arrival time of the latest message on each link; looked up only, never iterated.
    link_tail_us: FxHashMap<(MachineId, MachineId), u64>,
}

impl Network {
    pub(super) fn new(config: &NetworkConfig, seed: u64) -> Result<Self, NetworkConfigError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        Ok(Network {
            latency: Latency::from_spec(&config.latency_ms)?,
            rng,
            link_tail_us: FxHashMap::default(),
        })
    }

    /// When a transmission sent at `now_us` from `from` to `to` arrives.
    pub(super) fn arrival_us(&mut self, now_us: u64, from: MachineId, to: MachineId) -> u64 {
        if from == to {
            return now_us;
        }
        let drawn = now_us + self.latency.sample_us(&mut self.rng);
        let tail = self.link_tail_us.entry((from, to)).or_insert(0);
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
        };
        let mut network = Network::new(&config, 7).expect("valid");
        let mut last = 0;
        for now in 0..500 {
            let at = network.arrival_us(now * 100, MachineId(0), MachineId(1));
            assert!(at >= last);
            last = at;
        }
    }
}
