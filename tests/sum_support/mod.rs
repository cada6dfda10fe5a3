//! Shared by the sum-network tests: the sum network's section of a scenario and its outcome in
//! a report.

#![allow(dead_code)]

use dist_zero::apps::sum::{SumApp, SumOutcome, SumSection};
use dist_zero::scenario::{Report, Scenario};

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
