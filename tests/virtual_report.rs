//! Seeing a run in containers: `dist-zero run examples/all_faults.json --seed 3 --report DIR
//! --mode virtual` writes the same kinds of pictures as simulated mode, from the structured
//! traces each machine wrote, merged by time.
#![cfg(feature = "docker")]

mod report_support;
mod virtual_support;

use std::collections::BTreeSet;

use dist_zero::observe::{read_records, RecordKind};
use report_support::Svg;
use virtual_support::{dist_zero, Scratch};

#[test]
fn virtual_report_of_all_faults_has_every_picture_from_every_machine() {
    let scratch = Scratch::new("virtual-report");
    let out = scratch.path().join("out");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/all_faults.json");
    let output = dist_zero(&[
        "run",
        scenario,
        "--seed",
        "3",
        "--mode",
        "virtual",
        "--report",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = std::fs::File::open(out.join("trace.jsonl")).expect("the merged trace");
    let records = read_records(std::io::BufReader::new(file), "trace").expect("records");
    assert!(records
        .windows(2)
        .all(|w| w[0].at_us <= w[1].at_us && w[0].id + 1 == w[1].id));
    let machines: BTreeSet<u32> = records.iter().map(|r| r.machine).collect();
    assert_eq!(
        machines,
        BTreeSet::from([0, 1, 2]),
        "every machine's records"
    );
    let by_id: std::collections::BTreeMap<u64, _> = records.iter().map(|r| (r.id, r)).collect();
    let remote: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Deliver && r.peer_machine != Some(r.machine))
        .collect();
    assert!(!remote.is_empty());
    for delivery in remote {
        let sent = by_id[&delivery
            .cause
            .expect("every arrival paired with its transmission")];
        assert!(sent.kind.is_transmission(), "{delivery:?} <- {sent:?}");
        assert_eq!(Some(sent.machine), delivery.peer_machine);
        assert_eq!(sent.seq, delivery.seq);
        assert!(
            sent.at_us <= delivery.at_us + 1_000,
            "{sent:?} {delivery:?}"
        );
    }

    let diagram = Svg::read(&out.join("diagram.svg"));
    let lanes = diagram.attributes("lane", "data-lane");
    for machine in ["m0/", "m1/", "m2/"] {
        assert!(
            lanes.iter().any(|lane| lane.starts_with(machine)),
            "{lanes:?}"
        );
    }
    assert!(diagram.count("arrow send") > 10);
    assert!(diagram
        .attributes("arrow", "data-type")
        .contains(&"increment".to_owned()));
    let series = Svg::read(&out.join("series.svg")).texts();
    assert!(series.contains("expected total (22)"), "{series}");
    for picture in ["latency.svg", "rates.svg", "machines.svg", "faults.svg"] {
        Svg::read(&out.join(picture));
    }
    let html = std::fs::read_to_string(out.join("index.html")).expect("the page");
    assert!(html.contains("virtual mode"));
    assert!(
        html.contains("not applied in virtual mode: reordering"),
        "the page says what was not applied"
    );
}

#[test]
fn virtual_report_of_a_failing_run_shows_what_led_to_the_failure() {
    let scratch = Scratch::new("virtual-report-failing");
    // Two users who each add the largest amount: the sum node's total overflows and the node
    // fails.
    let scenario = virtual_support::scenario_file(
        scratch.path(),
        "overflowing.json",
        &serde_json::json!({
            "machines": 2,
            "run_ms": 500,
            "users": [{"name": "u", "machine": 1,
                "actions": [[0, {"type": "increment", "amount": i64::MAX}]]},
                {"name": "v", "machine": 1,
                "actions": [[0, {"type": "increment", "amount": i64::MAX}]]}]
        }),
    );
    let out = scratch.path().join("out");
    let output = dist_zero(&[
        "run",
        scenario.to_str().expect("utf-8"),
        "--mode",
        "virtual",
        "--report",
        out.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("overflows"), "{stderr}");
    let diagram = Svg::read(&out.join("diagram.svg"));
    let texts = diagram.texts();
    assert!(texts.contains("what led to the failure"), "{texts}");
    assert!(diagram.count("failure") >= 1, "{texts}");
    let html = std::fs::read_to_string(out.join("index.html")).expect("the page");
    assert!(html.contains("the run failed") && html.contains("overflows"));
    assert!(
        html.contains("--mode virtual --seed 0"),
        "the command that runs it again"
    );
}

/// `dist-zero run examples/crash_restart.json --mode virtual --json`: the outputs are exact, only
/// the latency model and reordering go unapplied, and the partition, the pause and both crashes
/// happened to the containers: the report counts them, the merged trace holds their windows at
/// the times the scenario gives, and the diagram shades them (`m0 down`, `m1 paused`, ...).
#[test]
fn virtual_crash_restart_is_correct_and_its_report_shows_the_partition_pause_and_crashes() {
    let scratch = Scratch::new("virtual-report-crash-restart");
    let out = scratch.path().join("out");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/crash_restart.json");
    let output = dist_zero(&[
        "run",
        scenario,
        "--mode",
        "virtual",
        "--json",
        "--report",
        out.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(report["mode"], "virtual", "{report}");
    assert_eq!(report["correct"], true, "{report}");
    let not_applied = report["not_applied"].as_array().expect("a list");
    assert!(
        not_applied
            .iter()
            .all(|kind| kind == "latency" || kind == "reorder"),
        "{report}"
    );
    let faults = &report["faults"];
    assert_eq!(faults["pauses"], 1, "{report}");
    assert_eq!(faults["crashes"], 2, "{report}");
    assert_eq!(faults["restarts"], 2, "{report}");
    assert!(
        faults["partitioned"].as_u64().expect("a count") > 0,
        "the partition cut transmissions: {report}"
    );

    let file = std::fs::File::open(out.join("trace.jsonl")).expect("the merged trace");
    let records = read_records(std::io::BufReader::new(file), "trace").expect("records");
    assert!(records
        .windows(2)
        .all(|w| w[0].at_us <= w[1].at_us && w[0].id + 1 == w[1].id));
    let windows: Vec<(RecordKind, String, u32, u64)> = records
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::FaultStart | RecordKind::FaultEnd))
        .map(|r| {
            let window = r.window.as_ref().expect("a window");
            (r.kind, window.fault.clone(), r.machine, r.at_us)
        })
        .collect();
    let (start, end) = (RecordKind::FaultStart, RecordKind::FaultEnd);
    assert_eq!(
        windows,
        vec![
            (start, "partition".to_owned(), 0, 200_000),
            (start, "pause".to_owned(), 1, 300_000),
            (end, "pause".to_owned(), 1, 800_000),
            (end, "partition".to_owned(), 0, 900_000),
            (start, "crash".to_owned(), 0, 1_000_000),
            (end, "crash".to_owned(), 0, 1_400_000),
            (start, "crash".to_owned(), 2, 2_500_000),
            (end, "crash".to_owned(), 2, 3_300_000),
        ]
    );

    let diagram = Svg::read(&out.join("diagram.svg"));
    assert!(diagram.count("shade partition") > 0);
    assert!(diagram.count("shade pause") > 0);
    assert!(diagram.count("shade crash") > 0);
    let labels = diagram.texts();
    for label in ["m1 paused", "m0 down", "m2 down"] {
        assert!(labels.contains(label), "{label}: {labels}");
    }
}
