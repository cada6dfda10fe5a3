//! A library user's own binary in virtual mode: the example crate `examples/replicated-kv` is
//! built with cargo, and `replicated-kv run … --mode virtual` ships that very binary into the
//! containers, where the user's node types run — the machines' logs show them started, and
//! the report's outcome comes from their states. Nothing is left in Docker.
#![cfg(feature = "docker")]

mod user_app_support;
mod virtual_support;

use std::path::Path;

use serde_json::Value;
use user_app_support::{assert_full_order, json_of, run, scenario, stderr};

/// The node types machine `machine`'s log says it started.
fn started_kinds(logs: &Path, machine: u32) -> Vec<String> {
    let path = logs.join(format!("m{machine}")).join("machine.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no log at {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "started node")
        .filter_map(|line| line["fields"]["kind"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn virtual_a_users_own_binary_runs_its_node_types_in_containers() {
    let three = scenario("three_replicas.json");
    let output = run(&["run", &three, "--mode", "virtual", "--json"]);
    let report = json_of(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{report}\n{}",
        stderr(&output)
    );
    assert_eq!(report["application"], "kv", "{report}");
    assert_eq!(report["mode"], "virtual", "{report}");
    assert_eq!(report["correct"], true, "{report}");
    assert_eq!(report["in_step"], 3, "{report}");
    assert_full_order(&report, 6);

    let logs = Path::new(report["logs"].as_str().expect("a logs dir"));
    assert_eq!(started_kinds(logs, 0), ["KvSequencer", "KvReplica"]);
    assert_eq!(started_kinds(logs, 1), ["KvReplica"]);
    assert_eq!(started_kinds(logs, 2), ["KvReplica"]);

    let run_id = report["run_id"].as_str().expect("a run id");
    assert!(virtual_support::leftovers(run_id).is_empty());
}
