//! Shared by the sum-network tests: the sum network's section of a scenario and its outcome in
//! a report.

#![allow(dead_code)]

use dist_zero::apps::sum::{SumApp, SumOutcome, SumSection, UserAction, UserSpec};
use dist_zero::scenario::{Report, Scenario};
use dist_zero::time::Millis;

/// The users of a sum-network scenario.
pub fn sum_section(scenario: &Scenario) -> &SumSection {
    scenario
        .section_of::<SumApp>()
        .expect("a sum-network scenario")
}

/// What a sum-network run's report says of its outputs.
pub fn sum_outcome(report: &Report) -> SumOutcome {
    report
        .outcome::<SumOutcome>()
        .expect("a sum-network report")
}

/// Two users on machines 1 and 2 who join at once and add 5 and 7 four times, 300 ms apart
/// from 100 ms: a total of 48.
pub fn two_users_on_machines_1_and_2() -> SumSection {
    let user = |name: &str, machine, amount| UserSpec {
        name: name.into(),
        machine,
        join_ms: Millis(0),
        actions: (0..4)
            .map(|i| (Millis(100 + 300 * i), UserAction::Increment { amount }))
            .collect(),
        leave_ms: None,
    };
    SumSection {
        users: vec![user("a", 1, 5), user("b", 2, 7)],
        ..SumSection::default()
    }
}
