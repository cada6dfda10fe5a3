//! The built-in applications, each built exactly as a library user's would be, and
//! [`builtin`], the set DistZero's own binary knows.

pub mod broadcast;
pub mod sum;

use crate::app::Applications;

/// DistZero's built-in applications: the sum network (the default, for a scenario that names
/// no application) and the broadcast workload.
pub fn builtin() -> Applications {
    Applications::of(sum::SumApp)
        .with(broadcast::BroadcastApp)
        .expect("the built-in applications have distinct names")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_the_builtin_set_is_sum_first_then_broadcast() {
        let apps = builtin();
        assert_eq!(apps.names(), ["sum", "broadcast"]);
        assert_eq!(apps.default_app().map(|app| app.name()), Some("sum"));
    }
}
