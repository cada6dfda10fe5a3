//! The sum network in containers: the example scenario, the same outcome as simulated
//! mode, with every machine's logs on the host (the seed's recorded users are a body of the
//! conformance suite, `tests/conformance.rs`).
#![cfg(feature = "docker")]

mod virtual_support;

use std::path::Path;

use dist_zero::apps::builtin;
use dist_zero::apps::sum::SumOutcome;
use dist_zero::scenario::Scenario;

fn run_in_containers(scenario: &Scenario) -> (SumOutcome, bool, String) {
    let run = virtual_support::run_in_containers::<SumOutcome>(scenario);
    for machine in ["m0", "m1", "m2"].iter().take(scenario.machines as usize) {
        let text = std::fs::read_to_string(run.logs.join(machine).join("machine.log"))
            .expect("human log on the host");
        assert!(text.contains("machine ready"), "{machine}: {text}");
        let json = std::fs::read_to_string(run.logs.join(machine).join("machine.jsonl"))
            .expect("JSON log on the host");
        let first = json.lines().next().expect("a JSON line");
        serde_json::from_str::<serde_json::Value>(first).expect("valid JSON log line");
    }
    (run.outcome, run.correct, run.run_id)
}

#[test]
fn virtual_sum_of_two_users_reaches_four_in_three_containers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sum_of_two.json");
    let scenario = Scenario::load(&path, &builtin()).expect("example loads");
    let (outcome, correct, run_id) = run_in_containers(&scenario);
    assert_eq!(outcome.expected_total, 4);
    assert!(correct, "{outcome:?}");
    assert_eq!(outcome.outputs.len(), 2);
    assert!(virtual_support::leftovers(&run_id).is_empty());
}

/// 400 users who all join at the start: by the time the runner reaches the first, every other's
/// time has passed, so their joins go to machine 0 in groups, one control request each (the
/// batched path), and every output is still exact; flat and as trees.
#[test]
fn virtual_users_the_runner_is_behind_on_join_in_groups_and_every_output_is_exact() {
    for tree in [None, Some(serde_json::json!({"max_kids": 16}))] {
        let mut scenario = serde_json::json!({
            "machines": 3,
            "run_ms": 3000,
            "seed": 5,
            "crowds": [{
                "name": "visitor",
                "users": 400,
                "machines": "all",
                "join_ms": 0,
                "increments": 2,
                "first_ms": 100,
                "every_ms": 200,
                "amount": 3
            }]
        });
        if let Some(tree) = tree {
            scenario["tree"] = tree;
        }
        let scenario = Scenario::parse(&scenario.to_string(), &builtin()).expect("valid");
        let (outcome, correct, run_id) = run_in_containers(&scenario);
        assert_eq!(outcome.expected_total, 400 * 2 * 3);
        assert_eq!(outcome.outputs.len(), 400);
        assert!(
            correct,
            "{:?}",
            outcome.outputs.values().find(|total| **total != Some(2400))
        );
        assert!(virtual_support::leftovers(&run_id).is_empty());
    }
}
