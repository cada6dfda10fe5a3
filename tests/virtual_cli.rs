//! `dist-zero run --mode virtual` as a user runs it: the README's command, and `--unreliable`.
#![cfg(feature = "docker")]

mod virtual_support;

use virtual_support::{dist_zero, scenario_file, Scratch};

/// Runs `scenario` with `--json` plus `extra` arguments; returns the exit status and the report.
fn run_json(path: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["run", path, "--mode", "virtual", "--json"];
    args.extend_from_slice(extra);
    let output = dist_zero(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "one JSON object ({e}): {stdout} / {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

#[test]
fn virtual_the_readme_command_runs_sum_of_two_correctly() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sum_of_two.json");
    let (status, report) = run_json(path, &[]);
    assert_eq!(status, Some(0), "{report}");
    assert_eq!(report["mode"], "virtual");
    assert_eq!(report["correct"], true);
    assert_eq!(report["expected_total"], 4);
}

#[test]
fn virtual_unreliable_turns_reliable_delivery_off_in_every_machine() {
    let dir = Scratch::new("unreliable");
    let actions: Vec<serde_json::Value> = (0..20)
        .map(|i| serde_json::json!([10 * i, {"type": "increment", "amount": 1}]))
        .collect();
    let scenario = serde_json::json!({
        "machines": 3,
        "run_ms": 3000,
        "seed": 3,
        "network": {"drop": {"rate": 0.3, "types": "increment"}},
        "users": [
            {"name": "a", "machine": 1, "join_ms": 10, "actions": actions},
            {"name": "b", "machine": 2, "join_ms": 10, "actions": actions}
        ]
    });
    let path = scenario_file(dir.path(), "lossy.json", &scenario);
    let path = path.to_str().expect("utf-8");

    let (status, reliable) = run_json(path, &[]);
    assert_eq!(
        status,
        Some(0),
        "reliable delivery repairs the drops: {reliable}"
    );
    let retransmitted = reliable["faults"]["retransmitted"]
        .as_u64()
        .expect("a count");
    assert!(retransmitted > 0, "{reliable}");
    assert!(
        reliable["faults"]["dropped"].as_u64() > Some(0),
        "{reliable}"
    );

    let (_, unreliable) = run_json(path, &["--unreliable"]);
    assert!(
        unreliable["faults"]["dropped"].as_u64() > Some(0),
        "{unreliable}"
    );
    assert_eq!(
        unreliable["faults"]["retransmitted"], 0,
        "nothing is retransmitted without reliable delivery: {unreliable}"
    );
    assert_eq!(unreliable["faults"]["duplicates_suppressed"], 0);
}
