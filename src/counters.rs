//! [`Counters`]: what a run counted — one type for a node's link layer, a machine, the simulator,
//! the control protocol's status answer and a run's report, added up with `+=` or `sum()`.
//!
//! Every field is declared once, in the `counters!` invocation below; its addition, its JSON
//! form and its default come from that line, so adding a counter is a one-line change.
//! Additions saturate: counters summed from machines' answers can never overflow.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Declares [`Counters`] with the given fields (each a `u64` with its doc comment) and the
/// field-by-field addition.
macro_rules! counters {
    ($( $(#[doc = $doc:literal])+ $field:ident, )+) => {
        /// What the runtime counted, on one node, one machine or a whole system. Which layer
        /// counts which field is said on the field; a layer leaves the others at zero, so adding
        /// up what every layer counted gives the whole picture.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Counters {
            $( $(#[doc = $doc])+ pub $field: u64, )+
        }

        impl AddAssign for Counters {
            fn add_assign(&mut self, other: Counters) {
                $( self.$field = self.$field.saturating_add(other.$field); )+
            }
        }
    };
}

counters! {
    /// Events processed: envelope arrivals and timer firings (the simulator, a machine).
    events,
    /// Messages handed to a node (a NodeManager).
    messages_delivered,
    /// Envelopes for nodes or machines that do not exist (a NodeManager, the simulator, a
    /// machine whose link to another is closed).
    undeliverable,
    /// Frames a machine refused as malformed, oversized or unauthenticated (a machine).
    bad_frames,
    /// Packets the reliable link layer sent for the first time (a node's and a NodeManager's).
    sent,
    /// Packets whose acknowledgement came back (a node's and a NodeManager's).
    acknowledged,
    /// Packets sent again because they were found lost, or no acknowledgement came in time (a
    /// node's and a NodeManager's).
    retransmitted,
    /// Packets received again after they had been delivered, and dropped (a node's and a
    /// NodeManager's).
    duplicates_suppressed,
    /// Link-layer packets and acknowledgements from an incarnation of a machine that has
    /// crashed since, dropped (a NodeManager).
    stale,
    /// Transmissions lost to the drop rule (the fault injection).
    dropped,
    /// Transmissions delivered twice (the fault injection).
    duplicated,
    /// Transmissions held back so that later ones overtook them (the simulated network).
    reordered,
    /// Transmissions lost to a partition (the simulated network).
    partitioned,
    /// Transmissions held by a hold until its release (the simulated network).
    held,
    /// Pauses of a machine that was up (the hardware).
    pauses,
    /// Machines that crashed (the hardware).
    crashes,
    /// Machines that booted again after a crash (the hardware).
    restarts,
    /// Arrivals at a machine that was down, and what waited in a paused machine when it crashed
    /// (the hardware).
    lost_in_crash,
    /// Not a count of events but what was in flight when counted: packets sent and not yet
    /// acknowledged, transmissions the simulated network still carried outside reliable
    /// delivery, and messages waiting for their node's spawn (a NodeManager, the simulator).
    in_flight,
}

impl Add for Counters {
    type Output = Counters;

    fn add(mut self, other: Counters) -> Counters {
        self += other;
        self
    }
}

impl Sum for Counters {
    fn sum<I: Iterator<Item = Counters>>(iter: I) -> Counters {
        iter.fold(Counters::default(), Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_counters_add_field_by_field() {
        let one = Counters {
            events: 1,
            sent: 2,
            dropped: 3,
            in_flight: 4,
            ..Counters::default()
        };
        let total: Counters = [one, one, Counters::default()].into_iter().sum();
        assert_eq!(
            total,
            Counters {
                events: 2,
                sent: 4,
                dropped: 6,
                in_flight: 8,
                ..Counters::default()
            }
        );
    }

    #[test]
    fn simulated_counters_saturate_instead_of_overflowing() {
        let mut total = Counters {
            retransmitted: u64::MAX,
            ..Counters::default()
        };
        total += Counters {
            retransmitted: 1,
            ..Counters::default()
        };
        assert_eq!(total.retransmitted, u64::MAX);
    }

    #[test]
    fn simulated_counters_round_trip_through_json_and_default_what_is_missing() {
        let counters = Counters {
            bad_frames: 7,
            partitioned: 1,
            ..Counters::default()
        };
        let text = serde_json::to_string(&counters).expect("encodes");
        assert!(text.contains(r#""bad_frames":7"#), "{text}");
        assert_eq!(
            serde_json::from_str::<Counters>(&text).expect("decodes"),
            counters
        );
        let partial: Counters = serde_json::from_str(r#"{"events": 3}"#).expect("decodes");
        assert_eq!(partial.events, 3);
        assert_eq!(partial.sent, 0);
    }
}
