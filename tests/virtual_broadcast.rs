//! The broadcast workload in containers: the same examples as simulated mode, the same verdict,
//! and nothing left behind.
//!
//! - `examples/broadcast_ring.json` through the one run path, `scenario::run` on a virtual
//!   target (what `run --mode virtual` does): every node holds every value once, the run settles, its machines logged.
//! - `examples/broadcast_lossy.json` (20 % drops and 20 % duplicates, which virtual mode injects
//!   at the sending machine) through the binary with `--mode virtual --json`: the faults happened,
//!   reliable delivery repaired them, and the report is exact.
#![cfg(feature = "docker")]

mod virtual_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use dist_zero::apps::broadcast::BroadcastOutcome;
use dist_zero::apps::builtin;
use dist_zero::hardware::{Mode, Remote, Target};
use dist_zero::scenario::{run, RunOptions, Scenario};
use dist_zero::settings::Settings;
use serde_json::{json, Value};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn virtual_broadcast_ring_example_is_exact_in_three_containers() {
    let scenario =
        Scenario::load(&example("broadcast_ring.json"), &builtin()).expect("the example loads");
    assert_eq!(scenario.machines, 3);
    let target = Target::Virtual(Remote::new(
        PathBuf::from(env!("CARGO_BIN_EXE_dist-zero")),
        Settings::load().expect("settings load"),
    ));
    let run = run(&scenario, &target, &RunOptions::default());
    let report = run.result.as_ref().expect("the run completes");
    let run_id = run.run_id.as_deref().expect("a virtual run has an id");
    let leftovers = virtual_support::leftovers(run_id);
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    assert_eq!(report.mode, Mode::Virtual);
    assert_eq!(report.application, "broadcast");
    assert!(report.trace_hash.is_none(), "no trace in virtual mode");
    let outcome: BroadcastOutcome = report.outcome().expect("a broadcast outcome");
    assert!(report.correct, "{outcome:?}");
    assert!(report.settled, "{report:?}");
    assert_eq!(
        outcome,
        BroadcastOutcome {
            nodes: 5,
            values: 5,
            complete: 5,
            missing: Default::default(),
            extra: Default::default(),
        }
    );
    assert!(report.messages_delivered > 5, "{report:?}");
    for machine in ["m0", "m1", "m2"] {
        let log = std::fs::read_to_string(
            run.logs
                .as_ref()
                .expect("logs on this host")
                .join(machine)
                .join("machine.log"),
        )
        .expect("each machine's log is on the host");
        assert!(log.contains("machine ready"), "{machine}: {log}");
    }
}

#[test]
fn virtual_broadcast_lossy_example_is_exact_through_the_binary() {
    let path = example("broadcast_lossy.json");
    let output = Command::new(env!("CARGO_BIN_EXE_dist-zero"))
        .args(["run", path.to_str().expect("a UTF-8 path")])
        .args(["--mode", "virtual", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DIST_ZERO_LOG", "warn")
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("the dist-zero binary runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(text.trim_end().lines().count(), 1, "{text}\n{stderr}");
    let report: Value = serde_json::from_str(text.trim_end()).expect("one JSON object");
    let run_id = report["run_id"].as_str().expect("a run id");
    let leftovers = virtual_support::leftovers(run_id);
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    assert_eq!(output.status.code(), Some(0), "{report}\n{stderr}");
    assert!(
        !stderr.contains("does not apply"),
        "drops and duplicates are applied in virtual mode: {stderr}"
    );
    assert_eq!(report["application"], "broadcast", "{report}");
    assert_eq!(report["mode"], "virtual", "{report}");
    assert_eq!(report["correct"], true, "{report}");
    assert_eq!(report["settled"], true, "{report}");
    assert_eq!(report["nodes"], 9, "{report}");
    assert_eq!(report["values"], 6, "{report}");
    assert_eq!(report["complete"], 9, "{report}");
    assert_eq!(report["missing"], json!({}), "{report}");
    assert_eq!(report["extra"], json!({}), "{report}");
    let faults = &report["faults"];
    assert!(
        faults["dropped"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert!(
        faults["duplicated"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert!(
        faults["retransmitted"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
}
