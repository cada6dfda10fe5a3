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
