//! The broadcast workload (the second built-in application) in simulated mode, through the
//! library and through the `dist-zero` binary, with no change to the runner, report or CLI.
//!
//! - Every `examples/broadcast_*.json` is correct and settled, through `Scenario::load` +
//!   `simulate` and through `run FILE --json` (whose report carries `application: broadcast` and
//!   the outcome fields `nodes`, `values`, `complete`, `missing`, `extra`).
//! - `examples/broadcast_partition.json` (a grid cut in two by a partition that heals, values
//!   broadcast on both sides while it lasts, drops, duplicates and reordering) is exact on every
//!   one of 250 seeds, and on a `--seeds 0..200` sweep of the binary.
//! - Without reliable delivery the same scenario fails on some seeds: the faults bite.
//! - Bad sections are refused with exit 2 naming the field: a node out of range, a value
//!   broadcast twice, a disconnected explicit topology, a broadcast after the run ends, an unknown
//!   key.
//! - A partition that has not healed when the run ends leaves it WRONG and `settled: false`.
//! - The same seed gives the same trace, another seed another.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dist_zero::apps::broadcast::{BroadcastApp, BroadcastOutcome, BroadcastSection};
use dist_zero::apps::builtin;
use dist_zero::scenario::{simulate, Report, RunOptions, Scenario};
use rayon::prelude::*;
use serde_json::{json, Value};

/// The broadcast examples, each with its node and value counts.
const EXAMPLES: [(&str, u32, usize); 4] = [
    ("broadcast_ring.json", 5, 5),
    ("broadcast_partition.json", 16, 12),
    ("broadcast_neighbours.json", 7, 5),
    ("broadcast_lossy.json", 9, 6),
];

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn load(name: &str) -> Scenario {
    Scenario::load(&example(name), &builtin()).expect("the example is a valid scenario")
}

fn section(scenario: &Scenario) -> &BroadcastSection {
    scenario
        .section_of::<BroadcastApp>()
        .expect("a broadcast scenario")
}

fn outcome(report: &Report) -> BroadcastOutcome {
    report
        .outcome::<BroadcastOutcome>()
        .expect("a broadcast report")
}

fn options(seed: u64, reliable: bool) -> RunOptions {
    RunOptions {
        seed: Some(seed),
        reliable: Some(reliable),
        ..RunOptions::default()
    }
}

fn dist_zero(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dist-zero"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DIST_ZERO_LOG", "warn")
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("the dist-zero binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Runs `args` and parses the one JSON object it must print.
fn json_of(args: &[&str]) -> (Output, Value) {
    let output = dist_zero(args);
    let text = stdout(&output);
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "one line on stdout:\n{text}\nstderr:\n{}",
        stderr(&output)
    );
    let value: Value = serde_json::from_str(text.trim_end()).expect("stdout is one JSON value");
    assert!(value.is_object(), "{value}");
    (output, value)
}

/// A scenario file in a fresh temporary directory, removed on drop.
struct TempScenario {
    dir: PathBuf,
    path: PathBuf,
}

impl TempScenario {
    fn new(name: &str, contents: &Value) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dist-zero-simulated-broadcast-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, contents.to_string()).expect("the scenario is written");
        TempScenario { dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempScenario {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts that `report` says every node holds every value once, with nothing in flight.
fn assert_exact(report: &Report, nodes: u32, values: usize) {
    let outcome = outcome(report);
    assert!(report.correct, "seed {}: {outcome:?}", report.seed);
    assert!(report.settled, "seed {}: {report:?}", report.seed);
    assert_eq!(report.in_flight, 0, "seed {}", report.seed);
    assert_eq!(
        outcome,
        BroadcastOutcome {
            nodes,
            values,
            complete: nodes,
            missing: Default::default(),
            extra: Default::default(),
        },
        "seed {}",
        report.seed
    );
}

#[test]
fn simulated_broadcast_examples_are_correct_through_the_library() {
    for (name, nodes, values) in EXAMPLES {
        let scenario = load(name);
        assert_eq!(scenario.app().name(), "broadcast", "{name}");
        let section = section(&scenario);
        assert_eq!(section.nodes, nodes, "{name}");
        assert_eq!(section.values().len(), values, "{name}");
        let run = simulate(&scenario, &RunOptions::default()).expect("the run completes");
        assert_eq!(run.report.application, "broadcast");
        assert_eq!(run.report.seed, scenario.seed, "{name}");
        assert_exact(&run.report, nodes, values);
        assert!(
            run.report.messages_delivered > u64::from(nodes),
            "{name}: values were gossiped: {:?}",
            run.report
        );
    }
}

#[test]
fn simulated_broadcast_examples_are_correct_through_the_binary() {
    for (name, nodes, values) in EXAMPLES {
        let path = example(name);
        let path = path.to_str().expect("a UTF-8 path");
        let (output, report) = json_of(&["run", path, "--json"]);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
        assert_eq!(report["application"], "broadcast", "{report}");
        assert_eq!(report["mode"], "simulated", "{report}");
        assert_eq!(report["correct"], true, "{report}");
        assert_eq!(report["settled"], true, "{report}");
        assert_eq!(report["in_flight"], 0, "{report}");
        assert_eq!(report["nodes"], nodes, "{report}");
        assert_eq!(report["values"], values, "{report}");
        assert_eq!(report["complete"], nodes, "{report}");
        assert_eq!(report["missing"], json!({}), "{report}");
        assert_eq!(report["extra"], json!({}), "{report}");
        assert!(report["trace_hash"].is_string(), "{report}");
        assert!(report.get("outputs").is_none(), "no sum-network fields");

        let readable = dist_zero(&["run", path]);
        assert_eq!(readable.status.code(), Some(0));
        let text = stdout(&readable);
        assert!(
            text.starts_with("DistZero broadcast workload, simulated mode"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "correct: all {nodes} nodes hold all {values} values, each once"
            )),
            "{text}"
        );
    }
}

#[test]
fn simulated_broadcast_partition_example_cuts_the_grid_in_two_with_values_on_both_sides() {
    let scenario = load("broadcast_partition.json");
    let section = section(&scenario);
    let [partition] = scenario.network.partitions.as_slice() else {
        panic!("one partition: {:?}", scenario.network.partitions);
    };
    assert!(
        partition.to_ms < scenario.run_ms,
        "the partition heals before the end"
    );
    let side = |node: u32| {
        let machine = node % scenario.machines;
        partition
            .groups
            .iter()
            .position(|group| group.contains(&machine))
            .expect("every machine is in a group")
    };
    // Each side is connected on its own, and some edges cross: the partition cuts the topology
    // in two.
    let neighbours = section.neighbours();
    let crossing = neighbours
        .iter()
        .enumerate()
        .flat_map(|(i, list)| list.iter().map(move |j| (i as u32, *j)))
        .filter(|(i, j)| side(*i) != side(*j))
        .count();
    assert!(crossing > 0);
    for group in 0..partition.groups.len() {
        let members: Vec<u32> = (0..section.nodes).filter(|n| side(*n) == group).collect();
        let mut reached = BTreeSet::from([members[0]]);
        let mut stack = vec![members[0]];
        while let Some(node) = stack.pop() {
            for next in &neighbours[node as usize] {
                if side(*next) == group && reached.insert(*next) {
                    stack.push(*next);
                }
            }
        }
        assert_eq!(reached.len(), members.len(), "side {group} is connected");
    }
    let during: BTreeSet<usize> = section
        .broadcasts
        .iter()
        .filter(|b| b.at_ms >= partition.from_ms && b.at_ms < partition.to_ms)
        .map(|b| side(b.node))
        .collect();
    assert_eq!(during.len(), 2, "values broadcast on both sides");
}

#[test]
fn simulated_broadcast_partition_is_exact_on_250_seeds() {
    let scenario = load("broadcast_partition.json");
    let reports: Vec<Report> = (0..250u64)
        .into_par_iter()
        .map(|seed| {
            simulate(&scenario, &options(seed, true))
                .expect("the run completes")
                .report
        })
        .collect();
    let mut total = dist_zero::scenario::FaultReport::default();
    for report in &reports {
        assert_exact(report, 16, 12);
        let faults = report.faults.expect("simulated runs report faults");
        assert!(faults.partitioned > 0, "seed {}: {faults:?}", report.seed);
        assert!(faults.retransmitted > 0, "seed {}: {faults:?}", report.seed);
        total.dropped += faults.dropped;
        total.duplicated += faults.duplicated;
        total.reordered += faults.reordered;
    }
    assert!(total.dropped > 250, "{total:?}");
    assert!(total.duplicated > 250, "{total:?}");
    assert!(total.reordered > 250, "{total:?}");

    let path = example("broadcast_partition.json");
    let path = path.to_str().expect("a UTF-8 path");
    let (output, sweep) = json_of(&["run", path, "--seeds", "0..200", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{sweep}");
    assert_eq!(sweep["seeds"], 200, "{sweep}");
    assert_eq!(sweep["correct"], 200, "{sweep}");
    assert_eq!(sweep["failing"], json!([]), "{sweep}");
}

#[test]
fn simulated_broadcast_partition_without_reliable_delivery_fails_on_some_seeds() {
    let scenario = load("broadcast_partition.json");
    let reports: Vec<Report> = (0..50u64)
        .into_par_iter()
        .map(|seed| {
            simulate(&scenario, &options(seed, false))
                .expect("the run completes")
                .report
        })
        .collect();
    let wrong: Vec<&Report> = reports.iter().filter(|r| !r.correct).collect();
    assert!(
        !wrong.is_empty(),
        "the faults must bite without reliable delivery"
    );
    for report in &reports {
        let faults = report.faults.expect("simulated runs report faults");
        assert_eq!(
            faults.retransmitted, 0,
            "seed {}: no link layer",
            report.seed
        );
        let outcome = outcome(report);
        // The verdict is exactly "no node lacks a value, none holds one twice or one never
        // broadcast".
        assert_eq!(
            report.correct,
            outcome.missing.is_empty() && outcome.extra.is_empty(),
            "seed {}: {outcome:?}",
            report.seed
        );
        assert_eq!(
            outcome.complete as usize + outcome.missing.len(),
            16,
            "seed {}: the nodes lacking values are the incomplete ones: {outcome:?}",
            report.seed
        );
    }

    let path = example("broadcast_partition.json");
    let path = path.to_str().expect("a UTF-8 path");
    let (output, sweep) = json_of(&["run", path, "--seeds", "0..200", "--unreliable", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{sweep}");
    assert_eq!(sweep["seeds"], 200, "{sweep}");
    let failing = sweep["failing"].as_array().expect("failing seeds");
    assert!(!failing.is_empty(), "{sweep}");
    assert_eq!(
        sweep["correct"]
            .as_u64()
            .zip(sweep["failed"].as_u64())
            .map(|(c, f)| c + f),
        Some(200),
        "{sweep}"
    );
    let replay = failing[0]["replay"].as_str().expect("a replay command");
    assert!(
        replay.contains("--unreliable") && replay.contains("broadcast_partition.json"),
        "{replay}"
    );
}

/// A broadcast scenario on 2 machines for 500 ms over `nodes` nodes, with `fields` added.
fn small(fields: Value) -> Value {
    let mut scenario = json!({
        "application": "broadcast",
        "machines": 2,
        "run_ms": 500,
        "nodes": 3,
        "broadcasts": [{"at_ms": 10, "node": 0, "value": 1}]
    });
    if let (Some(scenario), Some(fields)) = (scenario.as_object_mut(), fields.as_object()) {
        scenario.extend(fields.clone());
    }
    scenario
}

#[test]
fn simulated_broadcast_validation_errors_name_the_field_and_exit_2() {
    let cases = [
        (
            "node-out-of-range",
            small(json!({"broadcasts": [{"at_ms": 10, "node": 3, "value": 1}]})),
            vec!["broadcasts[0].node", "node 3 is out of range"],
        ),
        (
            "duplicate-value",
            small(json!({"broadcasts": [
                {"at_ms": 10, "node": 0, "value": 1},
                {"at_ms": 20, "node": 1, "value": 1}
            ]})),
            vec!["broadcasts[1].value", "broadcast twice"],
        ),
        (
            "disconnected",
            small(json!({"neighbours": [[1], [0], []]})),
            vec!["neighbours", "node 2 cannot be reached"],
        ),
        (
            "after-the-end",
            small(json!({"broadcasts": [{"at_ms": 501, "node": 0, "value": 1}]})),
            vec!["broadcasts[0].at_ms", "after the run ends"],
        ),
        (
            "gossip-too-slow",
            small(json!({"gossip_ms": 3_600_001})),
            vec!["gossip_ms", "at most 3600000"],
        ),
        (
            "unknown-key",
            small(json!({"colour": "blue"})),
            vec!["colour", "unknown field"],
        ),
    ];
    for (name, contents, needles) in cases {
        let library = Scenario::parse(&contents.to_string(), &builtin())
            .expect_err(name)
            .to_string();
        for needle in &needles {
            assert!(library.contains(needle), "{name}: `{needle}` in {library}");
        }
        let file = TempScenario::new(name, &contents);
        let (output, error) = json_of(&["run", file.path(), "--json"]);
        assert_eq!(output.status.code(), Some(2), "{name}: {error}");
        assert_eq!(error["kind"], "bad_input", "{name}: {error}");
        assert_eq!(error["exit_code"], 2, "{name}: {error}");
        let readable = dist_zero(&["run", file.path()]);
        let err = stderr(&readable);
        assert_eq!(readable.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line: {err}");
        assert_eq!(stdout(&readable), "", "{name}");
        for needle in &needles {
            assert!(err.contains(needle), "{name}: `{needle}` in {err}");
            assert!(
                error["error"].as_str().is_some_and(|e| e.contains(needle)),
                "{name}: `{needle}` in {error}"
            );
        }
    }
    // The same scenario with the fault removed is accepted: each refusal is about its field.
    assert!(Scenario::parse(&small(json!({})).to_string(), &builtin()).is_ok());
}

#[test]
fn simulated_broadcast_partition_that_never_heals_is_wrong_and_unsettled() {
    // Every edge of a ring of 4 nodes on 2 machines crosses machines; the partition outlasts the
    // run, so values broadcast after it starts never reach the other machine.
    let contents = json!({
        "application": "broadcast",
        "machines": 2,
        "run_ms": 3000,
        "nodes": 4,
        "topology": "ring",
        "network": {"partitions": [{"from_ms": 100, "to_ms": 10000, "groups": [[0], [1]]}]},
        "broadcasts": [
            {"at_ms": 10, "node": 0, "value": 1},
            {"at_ms": 500, "node": 0, "value": 2},
            {"at_ms": 600, "node": 1, "value": 3}
        ]
    });
    let scenario = Scenario::parse(&contents.to_string(), &builtin()).expect("valid");
    let report = simulate(&scenario, &RunOptions::default())
        .expect("the run completes")
        .report;
    let outcome = outcome(&report);
    assert!(!report.correct, "{outcome:?}");
    assert!(!report.settled, "{report:?}");
    assert!(report.in_flight > 0, "{report:?}");
    assert!(!outcome.missing.is_empty(), "{outcome:?}");
    assert!(outcome.extra.is_empty(), "nothing held twice: {outcome:?}");
    assert!(outcome.complete < 4, "{outcome:?}");

    let file = TempScenario::new("never-heals", &contents);
    let (output, json) = json_of(&["run", file.path(), "--json"]);
    assert_eq!(output.status.code(), Some(1), "{json}");
    assert_eq!(json["correct"], false, "{json}");
    assert_eq!(json["settled"], false, "{json}");
    assert!(
        json["missing"].as_object().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    let readable = dist_zero(&["run", file.path()]);
    assert_eq!(readable.status.code(), Some(1));
    let text = stdout(&readable);
    assert!(text.contains("not settled"), "{text}");
    assert!(text.contains("WRONG"), "{text}");

    // Healed a second before the end, the same scenario is exact.
    let mut healed = contents.clone();
    healed["network"]["partitions"][0]["to_ms"] = json!(2000);
    let scenario = Scenario::parse(&healed.to_string(), &builtin()).expect("valid");
    let report = simulate(&scenario, &RunOptions::default())
        .expect("the run completes")
        .report;
    assert_exact(&report, 4, 3);
}

#[test]
fn simulated_broadcast_same_seed_gives_the_same_trace() {
    let scenario = load("broadcast_partition.json");
    let traced = |seed: u64| {
        let run = simulate(
            &scenario,
            &RunOptions {
                seed: Some(seed),
                keep_trace_text: true,
                ..RunOptions::default()
            },
        )
        .expect("the run completes");
        (run.report, run.trace_text.expect("the trace was kept"))
    };
    let (first, first_text) = traced(11);
    let (second, second_text) = traced(11);
    let (other, _) = traced(12);
    assert!(first.trace_hash.is_some());
    assert_eq!(first.trace_hash, second.trace_hash);
    assert!(first_text == second_text, "byte-identical traces");
    assert_eq!(first.events, second.events);
    assert_eq!(first.faults, second.faults);
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "another seed, another run"
    );

    let path = example("broadcast_partition.json");
    let path = path.to_str().expect("a UTF-8 path");
    let (_, a) = json_of(&["run", path, "--seed", "11", "--json"]);
    let (_, b) = json_of(&["run", path, "--seed", "11", "--json"]);
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    assert_eq!(
        a["trace_hash"].as_str(),
        first.trace_hash.as_deref(),
        "the binary and the library run the same"
    );
}
