//! The self-scaling sum trees in containers: the tree example under every fault containers take,
//! and 3,000 users on 30 containers, exact, with the trees' invariant checked as the run goes.
#![cfg(feature = "docker")]

mod virtual_support;

use std::path::Path;

use dist_zero::apps::builtin;
use dist_zero::apps::sum::{SumApp, SumOutcome, SumSection, TreeSpec, UserAction, UserSpec};
use dist_zero::scenario::Scenario;
use dist_zero::time::Millis;

/// Runs `scenario` in containers and returns its outcome and whether it was correct.
fn run_in_containers(scenario: &Scenario) -> (SumOutcome, bool) {
    let run = virtual_support::run_in_containers::<SumOutcome>(scenario);
    assert!(virtual_support::leftovers(&run.run_id).is_empty());
    (run.outcome, run.correct)
}

#[test]
fn virtual_the_tree_example_is_exact_under_drops_duplicates_a_partition_a_pause_and_crashes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sum_tree.json");
    let scenario = Scenario::load(&path, &builtin()).expect("example loads");
    let (outcome, correct) = run_in_containers(&scenario);
    assert!(correct, "{outcome:?}");
    assert_eq!(
        outcome.outputs.len(),
        5,
        "the users who stay have an output"
    );
    assert!(outcome.outputs.values().all(|total| *total == Some(93)));
}

/// Heavy (30 containers of the debug build, 3,000 users' nodes): run it on its own with
/// `cargo nextest run --all-features --run-ignored all virtual_trees_of_3000`.
#[test]
#[ignore = "30 containers: run on its own, see its doc comment"]
fn virtual_trees_of_3000_users_on_30_containers_are_exact() {
    const USERS: u32 = 3_000;
    const MACHINES: u32 = 30;
    let users = (0..USERS)
        .map(|index| UserSpec {
            name: format!("user {index:04}"),
            machine: index % MACHINES,
            join_ms: Millis(u64::from(index) * 4_000 / u64::from(USERS)),
            actions: (1..=5)
                .map(|step| {
                    let amount = i64::from(index % 7) - 2;
                    (Millis(step * 200), UserAction::Increment { amount })
                })
                .collect(),
            leave_ms: None,
        })
        .collect();
    let section = SumSection {
        users,
        tree: Some(TreeSpec { max_kids: 16 }),
        ..SumSection::default()
    };
    let expected = section.expected_total();
    let scenario = Scenario::new(SumApp, section, MACHINES, Millis(12_000), 3).expect("valid");
    let (outcome, correct) = run_in_containers(&scenario);
    assert!(correct, "{:?}", outcome.heights);
    assert_eq!(outcome.outputs.len(), USERS as usize);
    assert!(outcome
        .outputs
        .values()
        .all(|total| *total == Some(expected)));
    let heights = outcome.heights.expect("trees have heights");
    // 3,000 leaves under nodes of at most 16 kids: at least three levels above the leaves.
    assert!(heights.input >= 3 && heights.output >= 3, "{heights:?}");
}
