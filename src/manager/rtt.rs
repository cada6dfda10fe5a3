//! The round-trip time of one link, estimated as TCP does (RFC 6298), and the retransmission
//! timeout derived from it.

/// The retransmission timeout before the first round trip has been measured. RFC 6298 (2.1) says
/// 1 s for the internet; machines of one system are closer, and a longer round trip is reached
/// by the exponential backoff in `log2(rtt / 200 ms)` timeouts, one packet each.
pub const INITIAL_RTO_MS: u64 = 200;
/// The shortest retransmission timeout, however fast the link.
pub const MIN_RTO_MS: u64 = 100;
/// The longest wait between two retransmissions while the round trip is still unknown (RFC 6298,
/// 2.5, asks for at least 60 s; an hour lets a link whose round trip is minutes long back off far
/// enough to measure it).
pub const MAX_UNMEASURED_BACKOFF_MS: u64 = 3_600_000;
/// Once the round trip is known, a link whose packets keep timing out is probed at least this
/// often, or every two shortest round trips if that is longer, so that it recovers soon after a
/// partition heals instead of waiting out an exponential backoff (or a timeout inflated by one
/// copy that the network held back).
pub const PROBE_FLOOR_MS: u64 = 200;
/// The clock granularity term of RFC 6298 (2.3).
const GRANULARITY_US: u64 = 1_000;

/// Smoothed round-trip time and its variation for one link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RttEstimator {
    /// The smoothed round trip, once one has been measured.
    srtt_us: Option<u64>,
    /// Its mean deviation.
    rttvar_us: u64,
    /// The shortest round trip measured.
    min_rtt_us: Option<u64>,
    /// The shortest round trip this machine measured on any link, used until this one has a
    /// measurement of its own (machines of one system are usually about as far from each other).
    prior_us: Option<u64>,
}

impl RttEstimator {
    /// Takes in one measured round trip (of a packet that was sent once: Karn's rule).
    pub(super) fn sample(&mut self, rtt_us: u64) {
        match self.srtt_us {
            None => {
                self.srtt_us = Some(rtt_us);
                self.rttvar_us = rtt_us / 2;
            }
            Some(srtt) => {
                self.rttvar_us = (3 * self.rttvar_us + srtt.abs_diff(rtt_us)) / 4;
                self.srtt_us = Some((7 * srtt + rtt_us) / 8);
            }
        }
        self.min_rtt_us = Some(self.min_rtt_us.map_or(rtt_us, |min| min.min(rtt_us)));
    }

    /// Sets the shortest round trip measured on any of the machine's links.
    pub(super) fn set_prior(&mut self, prior_us: u64) {
        self.prior_us = Some(prior_us);
    }

    /// The smoothed round trip, if one has been measured.
    pub(super) fn srtt_us(&self) -> Option<u64> {
        self.srtt_us
    }

    /// The shortest round trip measured, if any.
    pub(super) fn min_rtt_us(&self) -> Option<u64> {
        self.min_rtt_us
    }

    /// The retransmission timeout: `srtt + max(G, 4 * rttvar)`, at least [`MIN_RTO_MS`]. Until
    /// the first measurement, what a first measurement equal to the prior would give, or
    /// [`INITIAL_RTO_MS`] without a prior.
    pub(super) fn rto_us(&self) -> u64 {
        let (srtt, rttvar) = match (self.srtt_us, self.prior_us) {
            (Some(srtt), _) => (srtt, self.rttvar_us),
            (None, Some(prior)) => (prior, prior / 2),
            (None, None) => return INITIAL_RTO_MS * 1000,
        };
        srtt.saturating_add(GRANULARITY_US.max(rttvar.saturating_mul(4)))
            .max(MIN_RTO_MS * 1000)
    }

    /// The timeout after `backoffs` consecutive timeouts: the timeout doubled that many times.
    /// While no round trip is known (of this link or, as a prior, of the machine's others) it
    /// grows up to [`MAX_UNMEASURED_BACKOFF_MS`]; once one is, up to the probe interval
    /// `max(PROBE_FLOOR_MS, 2 * min_rtt)`.
    pub(super) fn backed_off_us(&self, backoffs: u32) -> u64 {
        let doubled = self.rto_us().saturating_mul(1 << backoffs.min(30));
        let cap = match self.min_rtt_us.or(self.prior_us) {
            None => MAX_UNMEASURED_BACKOFF_MS * 1000,
            Some(min_rtt) => (PROBE_FLOOR_MS * 1000).max(min_rtt.saturating_mul(2)),
        };
        doubled.min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_first_sample_sets_the_timeout_to_three_round_trips() {
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.rto_us(), INITIAL_RTO_MS * 1000);
        rtt.sample(2_000_000);
        assert_eq!(rtt.rto_us(), 2_000_000 + 4 * 1_000_000);
    }

    #[test]
    fn simulated_steady_samples_shrink_the_variation() {
        let mut rtt = RttEstimator::default();
        for _ in 0..50 {
            rtt.sample(40_000);
        }
        assert_eq!(rtt.rto_us(), MIN_RTO_MS * 1000, "clamped to the minimum");
        assert_eq!(rtt.min_rtt_us(), Some(40_000));
    }

    #[test]
    fn simulated_a_prior_from_other_links_stands_in_until_the_first_measurement() {
        let mut rtt = RttEstimator::default();
        rtt.set_prior(40_000);
        assert_eq!(rtt.rto_us(), 120_000, "as if 40 ms had been measured");
        assert_eq!(rtt.backed_off_us(4), PROBE_FLOOR_MS * 1000);
        rtt.sample(2_000_000);
        assert_eq!(
            rtt.rto_us(),
            2_000_000 + 4 * 1_000_000,
            "its own measurement wins"
        );
    }

    #[test]
    fn simulated_backoff_doubles_and_is_capped() {
        let unknown = RttEstimator::default();
        assert_eq!(unknown.backed_off_us(1), 2 * INITIAL_RTO_MS * 1000);
        assert_eq!(unknown.backed_off_us(30), MAX_UNMEASURED_BACKOFF_MS * 1000);
        let mut fast = RttEstimator::default();
        for _ in 0..50 {
            fast.sample(40_000);
        }
        assert_eq!(fast.backed_off_us(0), 100_000);
        assert_eq!(fast.backed_off_us(5), PROBE_FLOOR_MS * 1000);
        let mut slow = RttEstimator::default();
        slow.sample(120_000_000);
        assert_eq!(slow.rto_us(), 360_000_000, "srtt + 4 * rttvar");
        assert_eq!(
            slow.backed_off_us(0),
            240_000_000,
            "never longer than two shortest round trips"
        );
        let mut spiky = RttEstimator::default();
        spiky.sample(40_000);
        spiky.sample(1_200_000);
        assert!(spiky.rto_us() > 1_000_000);
        assert_eq!(
            spiky.backed_off_us(0),
            PROBE_FLOOR_MS * 1000,
            "one held-back copy does not stall the link"
        );
    }
}
