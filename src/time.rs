//! Typed time: [`Millis`] (what scenarios, nodes and reports speak) and [`Micros`] (the
//! simulator's clock), distinct types so that one is never used as the other, with checked
//! conversions and saturating arithmetic so that no time wraps around in any build.
//!
//! Every time a scenario names must lie within [`HORIZON`]: far beyond any run anyone will
//! simulate, and low enough that the time, in microseconds, plus any latency, hold-back or timer
//! the runtime adds to it, still fits in 64 bits.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize};

/// Milliseconds, as a span or as an instant since a system started.
///
/// Serialized as a bare integer. Deserialized from a non-negative integer; a negative or
/// fractional number is refused with a message saying so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

/// Microseconds, as a span or as an instant since a system started. Serialized as a bare integer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Micros(pub u64);

/// The latest time a scenario may name: 10^15 ms, about 31,700 years.
pub const HORIZON: Millis = Millis(1_000_000_000_000_000);

/// The longest latency a network model may draw: a year (365 days).
pub const MAX_LATENCY: Millis = Millis(365 * 24 * 3600 * 1000);

impl Millis {
    /// No time at all.
    pub const ZERO: Millis = Millis(0);

    /// The same time in microseconds, if it fits in 64 bits.
    pub const fn to_micros(self) -> Option<Micros> {
        match self.0.checked_mul(1000) {
            Some(us) => Some(Micros(us)),
            None => None,
        }
    }

    /// The same time in microseconds, or the largest representable time if it does not fit.
    pub const fn to_micros_saturating(self) -> Micros {
        Micros(self.0.saturating_mul(1000))
    }

    /// `self + other`, if it fits.
    pub const fn checked_add(self, other: Millis) -> Option<Millis> {
        match self.0.checked_add(other.0) {
            Some(sum) => Some(Millis(sum)),
            None => None,
        }
    }

    /// `self + other`, or the largest time if that does not fit.
    pub const fn saturating_add(self, other: Millis) -> Millis {
        Millis(self.0.saturating_add(other.0))
    }

    /// `self - other`, or zero if `other` is later.
    pub const fn saturating_sub(self, other: Millis) -> Millis {
        Millis(self.0.saturating_sub(other.0))
    }

    /// This time, if it lies within [`HORIZON`].
    pub const fn within_horizon(self) -> Result<Millis, BeyondHorizon> {
        if self.0 <= HORIZON.0 {
            Ok(self)
        } else {
            Err(BeyondHorizon(self))
        }
    }
}

/// A time later than [`HORIZON`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is beyond the latest time a scenario may name ({HORIZON}, about 31,700 years)")]
pub struct BeyondHorizon(pub Millis);

impl Micros {
    /// No time at all.
    pub const ZERO: Micros = Micros(0);
    /// The latest representable time.
    pub const MAX: Micros = Micros(u64::MAX);

    /// The whole milliseconds in this time (rounded down).
    pub const fn to_millis(self) -> Millis {
        Millis(self.0 / 1000)
    }

    /// A number of milliseconds, possibly fractional, rounded to the nearest microsecond; `None`
    /// if it is not finite, negative, or does not fit.
    pub fn from_millis_f64(ms: f64) -> Option<Micros> {
        // `u64::MAX as f64` is 2^64 exactly; every whole number below it fits in a u64.
        let us = (ms * 1000.0).round();
        (us.is_finite() && us >= 0.0 && us < u64::MAX as f64).then_some(Micros(us as u64))
    }

    /// This time in milliseconds, with its fraction (for display).
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// `self + other`, if it fits.
    pub const fn checked_add(self, other: Micros) -> Option<Micros> {
        match self.0.checked_add(other.0) {
            Some(sum) => Some(Micros(sum)),
            None => None,
        }
    }

    /// `self + other`, or [`Micros::MAX`] if that does not fit. The simulator adds latencies
    /// and timers this way: a time that saturates lies beyond the end of any run it could be
    /// part of (see [`HORIZON`]), so it is never reached, in a debug or a release build alike.
    pub const fn saturating_add(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }

    /// `self - other`, or zero if `other` is later.
    pub const fn saturating_sub(self, other: Micros) -> Micros {
        Micros(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0)
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} µs", self.0)
    }
}

impl From<Millis> for u64 {
    fn from(ms: Millis) -> u64 {
        ms.0
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = Millis;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole, non-negative number of milliseconds")
            }

            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Millis, E> {
                Ok(Millis(ms))
            }

            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Millis, E> {
                u64::try_from(ms)
                    .map(Millis)
                    .map_err(|_| E::custom(format_args!("time {ms} ms is negative")))
            }

            fn visit_f64<E: de::Error>(self, ms: f64) -> Result<Millis, E> {
                Err(E::custom(format_args!(
                    "time {ms} ms is not a whole, non-negative number of milliseconds"
                )))
            }
        }

        deserializer.deserialize_u64(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_millis_convert_to_micros_only_when_they_fit() {
        assert_eq!(Millis(7).to_micros(), Some(Micros(7000)));
        assert_eq!(HORIZON.to_micros(), Some(Micros(HORIZON.0 * 1000)));
        let largest = Millis(u64::MAX / 1000);
        assert_eq!(largest.to_micros(), Some(Micros(u64::MAX / 1000 * 1000)));
        assert_eq!(Millis(u64::MAX / 1000 + 1).to_micros(), None);
        assert_eq!(Millis(u64::MAX).to_micros_saturating(), Micros::MAX);
        assert_eq!(Micros(12_999).to_millis(), Millis(12));
    }

    #[test]
    fn simulated_time_arithmetic_never_wraps() {
        assert_eq!(Millis(u64::MAX).checked_add(Millis(1)), None);
        assert_eq!(Millis(u64::MAX).saturating_add(Millis(1)), Millis(u64::MAX));
        assert_eq!(Millis(3).saturating_sub(Millis(5)), Millis::ZERO);
        assert_eq!(Micros::MAX.checked_add(Micros(1)), None);
        assert_eq!(Micros::MAX.saturating_add(Micros(1)), Micros::MAX);
        assert_eq!(Micros(1).saturating_sub(Micros(2)), Micros::ZERO);
        // The horizon leaves room for a year of latency and more, in microseconds.
        let latest = HORIZON
            .to_micros()
            .and_then(|at| at.checked_add(MAX_LATENCY.to_micros()?));
        assert!(latest.is_some_and(|at| at.0 < u64::MAX / 2));
    }

    #[test]
    fn simulated_fractional_milliseconds_round_to_microseconds_within_range() {
        assert_eq!(Micros::from_millis_f64(20.0), Some(Micros(20_000)));
        assert_eq!(Micros::from_millis_f64(0.0004), Some(Micros(0)));
        assert_eq!(Micros::from_millis_f64(1.5), Some(Micros(1500)));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e308, 1.9e16] {
            assert_eq!(Micros::from_millis_f64(bad), None, "{bad}");
        }
        assert_eq!(Micros(1500).as_millis_f64(), 1.5);
    }

    #[test]
    fn simulated_millis_parse_from_whole_non_negative_numbers_only() {
        assert_eq!(serde_json::from_str::<Millis>("30").ok(), Some(Millis(30)));
        let negative = serde_json::from_str::<Millis>("-3").expect_err("negative");
        assert!(
            negative.to_string().contains("-3 ms is negative"),
            "{negative}"
        );
        let fraction = serde_json::from_str::<Millis>("1.5").expect_err("fraction");
        assert!(fraction.to_string().contains("whole"), "{fraction}");
        let text = serde_json::from_str::<Millis>("\"5\"").expect_err("a string");
        assert!(text.to_string().contains("milliseconds"), "{text}");
        assert_eq!(
            serde_json::to_string(&Millis(42)).ok().as_deref(),
            Some("42")
        );
    }
}
