//! Seeing a run (simulated mode): the structured trace, the message-sequence diagram, the plots
//! and the HTML report, checked as a person would look at them.
//!
//! - A diagram of a hand-written trace holds exactly its lanes, arrows (sent, retransmitted,
//!   lost), shading, marks and legend, and says what its filters left out.
//! - A scripted partition and pause (no random faults) come out shaded on the lanes they hit;
//!   every message of the structured trace is an arrow; the sum network's plot shows the
//!   output reaching the expected total; the broadcast workload plots its values.
//! - Observing a run changes nothing in it, and two observations of one seed are identical.
//! - A failing seed's replay command writes the diagram of its causal history; a sweep with
//!   `--report` writes an index linking the failing seeds' reports.
//! - The HTML report opens in headless Chromium and what it draws is not blank.

mod report_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dist_zero::apps::builtin;
use dist_zero::observe::{read_records, FaultWindow, Record, RecordKind};
use dist_zero::report::diagram::diagram;
use dist_zero::report::{select, DiagramFilter};
use dist_zero::scenario::{simulate, RunOptions, Scenario};
use report_support::{ink, screenshot, Svg};

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("dist-zero-report-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn dist_zero_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dist-zero"))
        .args(args)
        .current_dir(dir)
        .env("DIST_ZERO_LOG", "warn")
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("the dist-zero binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn records_of(path: &Path) -> Vec<Record> {
    let file = std::fs::File::open(path).expect("the events file");
    read_records(std::io::BufReader::new(file), "events").expect("JSON lines of records")
}

fn record(id: u64, at_ms: u64, kind: RecordKind, machine: u32, node: &str) -> Record {
    let mut record = Record::new(id, at_ms * 1000, kind, machine);
    record.node = (!node.is_empty()).then(|| node.into());
    record
}

/// Two nodes: a ping that arrives, a pong lost to a partition and retransmitted, the pinger
/// failing on it, and an acknowledgement.
fn known_trace() -> Vec<Record> {
    let window = FaultWindow {
        fault: "partition".into(),
        index: 0,
        groups: vec![vec![0], vec![1]],
    };
    let message = |mut r: Record, peer_machine: u32, peer: &str, kind: &str, cause: Option<u64>| {
        r.peer_machine = Some(peer_machine);
        r.peer = (!peer.is_empty()).then(|| peer.into());
        r.message_type = Some(kind.into());
        r.cause = cause;
        r
    };
    let mut spawn_a = record(1, 0, RecordKind::Spawn, 0, "n0.0");
    spawn_a.summary = Some("Pinger".into());
    let mut spawn_b = record(2, 0, RecordKind::Spawn, 1, "n1.0");
    spawn_b.summary = Some("Ponger".into());
    let mut start = record(5, 100, RecordKind::FaultStart, 0, "");
    start.window = Some(Box::new(window.clone()));
    let mut end = record(7, 200, RecordKind::FaultEnd, 0, "");
    end.window = Some(Box::new(window));
    let mut drop = message(
        record(6, 120, RecordKind::Drop, 1, "n1.0"),
        0,
        "n0.0",
        "pong",
        Some(4),
    );
    drop.detail = Some("partition".into());
    let mut fail = record(11, 320, RecordKind::Fail, 0, "n0.0");
    fail.summary = Some("boom".into());
    fail.cause = Some(10);
    vec![
        spawn_a,
        spawn_b,
        message(
            record(3, 10, RecordKind::Send, 0, "n0.0"),
            1,
            "n1.0",
            "ping",
            None,
        ),
        message(
            record(4, 30, RecordKind::Deliver, 1, "n1.0"),
            0,
            "n0.0",
            "ping",
            Some(3),
        ),
        start,
        drop,
        end,
        record(8, 300, RecordKind::Timer, 1, ""),
        message(
            record(9, 300, RecordKind::Retransmit, 1, "n1.0"),
            0,
            "n0.0",
            "pong",
            Some(8),
        ),
        message(
            record(10, 320, RecordKind::Deliver, 0, "n0.0"),
            1,
            "n1.0",
            "pong",
            Some(9),
        ),
        fail,
        message(
            record(12, 325, RecordKind::Send, 0, ""),
            1,
            "",
            "ack",
            Some(10),
        ),
        message(
            record(13, 345, RecordKind::Deliver, 1, ""),
            0,
            "",
            "ack",
            Some(12),
        ),
    ]
}

#[test]
fn simulated_report_diagram_of_a_known_trace_has_its_lanes_arrows_and_marks() {
    let records = known_trace();
    let svg = Svg::parse(&diagram(
        "known",
        &select(&records, &DiagramFilter::default()),
    ));
    assert_eq!(
        svg.attributes("lane", "data-lane"),
        ["m0/n0.0", "m1/n1.0"],
        "a lane per node, by machine; no runtime lane while acks are hidden"
    );
    assert_eq!(svg.count("machine"), 2);
    assert_eq!(svg.count("arrow"), 3);
    assert_eq!(svg.count("arrow send"), 1);
    assert_eq!(svg.count("arrow retransmit"), 1);
    assert_eq!(svg.count("arrow drop"), 1);
    assert_eq!(
        svg.attributes("arrow", "data-type"),
        ["ping", "pong", "pong"]
    );
    assert_eq!(svg.count("shade partition"), 2, "both machines' lanes");
    assert_eq!(svg.count("failure"), 1);
    assert_eq!(svg.count("spawn"), 2);
    assert_eq!(svg.count("legend-type"), 2);
    let texts = svg.texts();
    assert!(
        texts.contains("Left out: 1 messages of type ack"),
        "{texts}"
    );
    assert!(texts.contains("n0.0 failed: boom"), "{texts}");
    assert!(texts.contains("partition m0 | m1"), "{texts}");

    let acks = DiagramFilter {
        types: Some(regex::Regex::new("^(?:ack)$").expect("a regex")),
        ..DiagramFilter::default()
    };
    let svg = Svg::parse(&diagram("acks", &select(&records, &acks)));
    assert_eq!(svg.attributes("arrow", "data-type"), ["ack"]);
    assert!(svg
        .attributes("lane", "data-lane")
        .contains(&"m0/runtime".to_owned()));
    assert!(svg.texts().contains("Left out: 1 messages of type ping"));

    let late = DiagramFilter {
        from_ms: Some(250),
        ..DiagramFilter::default()
    };
    let svg = Svg::parse(&diagram("late", &select(&records, &late)));
    assert_eq!(svg.count("arrow"), 1);
    assert!(svg
        .texts()
        .contains("Left out: 2 messages outside the time window"));

    let history = DiagramFilter {
        history_of: Some(vec![11]),
        ..DiagramFilter::default()
    };
    let svg = Svg::parse(&diagram("history", &select(&records, &history)));
    assert_eq!(
        svg.count("arrow"),
        1,
        "only the pong that led to the failure"
    );
    assert_eq!(svg.count("arrow retransmit"), 1);
    assert_eq!(svg.count("failure"), 1);
    assert!(svg.texts().contains("the causal history of 1 event"));
}

/// Two machines, a constant latency, a scripted partition and pause, no random fault.
fn scripted_scenario() -> serde_json::Value {
    serde_json::json!({
        "machines": 2,
        "run_ms": 1500,
        "seed": 1,
        "network": {
            "latency_ms": {"distribution": "constant", "mean": 10},
            "partitions": [{"from_ms": 100, "to_ms": 400, "groups": [[0], [1]]}],
            "pauses": [{"machine": 1, "from_ms": 500, "to_ms": 700}]
        },
        "users": [
            {"name": "a", "machine": 1, "join_ms": 10,
             "actions": [[10, {"type": "increment", "amount": 2}],
                         [200, {"type": "increment", "amount": 3}],
                         [600, {"type": "increment", "amount": 4}]]}
        ]
    })
}

#[test]
fn simulated_report_shows_a_scripted_partition_and_pause_on_the_lanes_they_hit() {
    let scratch = Scratch::new("scripted");
    let scenario = scratch.path().join("scripted.json");
    std::fs::write(&scenario, scripted_scenario().to_string()).expect("written");
    let scenario = scenario.to_str().expect("utf-8");
    let output = dist_zero_in(
        scratch.path(),
        &[
            "run",
            scenario,
            "--report",
            "out",
            "--events",
            "events.jsonl",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = scratch.path().join("out");
    let records = records_of(&scratch.path().join("events.jsonl"));
    assert_eq!(
        std::fs::read(out.join("trace.jsonl")).expect("the report's trace"),
        std::fs::read(scratch.path().join("events.jsonl")).expect("the events"),
    );
    assert!(records
        .windows(2)
        .all(|w| w[0].at_us <= w[1].at_us && w[0].id < w[1].id));
    let by_id: std::collections::BTreeMap<u64, &Record> =
        records.iter().map(|r| (r.id, r)).collect();
    let kinds: BTreeSet<RecordKind> = records.iter().map(|r| r.kind).collect();
    for kind in [
        RecordKind::Spawn,
        RecordKind::Send,
        RecordKind::Deliver,
        RecordKind::Drop,
        RecordKind::Retransmit,
        RecordKind::Timer,
        RecordKind::FaultStart,
        RecordKind::FaultEnd,
    ] {
        assert!(kinds.contains(&kind), "a {kind:?} record: {kinds:?}");
    }
    // Every delivery between machines names the transmission it received.
    for delivery in records
        .iter()
        .filter(|r| r.kind == RecordKind::Deliver && r.peer_machine != Some(r.machine))
    {
        let sent = by_id[&delivery.cause.expect("a cause")];
        assert!(sent.kind.is_transmission(), "{delivery:?} <- {sent:?}");
        assert_eq!(sent.machine, delivery.peer_machine.expect("a peer"));
        assert_eq!(sent.seq, delivery.seq);
    }
    // Nothing crosses the partition while it lasts: every transmission from one machine to the
    // other sent inside the window is lost to it.
    for sent in records.iter().filter(|r| {
        r.kind.is_transmission()
            && r.peer_machine != Some(r.machine)
            && (100_000..400_000).contains(&r.at_us)
    }) {
        assert_eq!(sent.kind, RecordKind::Drop, "{sent:?}");
        assert_eq!(
            sent.detail.as_deref().map(|d| d.starts_with("partition")),
            Some(true)
        );
    }

    let svg = Svg::read(&out.join("diagram.svg"));
    let lanes = svg.attributes("lane", "data-lane");
    let nodes: BTreeSet<String> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Spawn)
        .map(|r| format!("m{}/{}", r.machine, r.node.as_deref().expect("a node")))
        .collect();
    assert_eq!(lanes.iter().cloned().collect::<BTreeSet<_>>(), nodes);
    let m1_lanes = lanes.iter().filter(|lane| lane.starts_with("m1/")).count();
    assert!(m1_lanes > 0);
    assert_eq!(
        svg.count("shade partition"),
        lanes.len(),
        "both machines are cut"
    );
    assert_eq!(svg.count("shade pause"), m1_lanes, "only machine m1 pauses");
    let messages = records
        .iter()
        .filter(|r| r.message_type.as_deref() != Some("ack"))
        .filter(|r| match r.kind {
            RecordKind::Drop => true,
            RecordKind::Deliver | RecordKind::Spawn | RecordKind::Terminate => r
                .cause
                .and_then(|c| by_id.get(&c))
                .is_some_and(|sent| sent.kind.is_transmission()),
            _ => false,
        })
        .count();
    assert_eq!(svg.count("arrow"), messages, "an arrow per message");
    let drops = records
        .iter()
        .filter(|r| r.kind == RecordKind::Drop && r.message_type.as_deref() != Some("ack"))
        .count();
    assert_eq!(svg.count("arrow drop"), drops);
    assert!(svg.count("arrow retransmit") > 0);
    assert!(svg.texts().contains("m1 paused"));

    let series = Svg::read(&out.join("series.svg"));
    let texts = series.texts();
    assert!(texts.contains("each output's total"), "{texts}");
    assert!(texts.contains("expected total (9)"), "{texts}");
    let faults = Svg::read(&out.join("faults.svg")).texts();
    for label in ["partition", "pause", "lost", "retransmitted", "m0", "m1"] {
        assert!(faults.contains(label), "{label}: {faults}");
    }
    for picture in ["latency.svg", "rates.svg", "machines.svg"] {
        let svg = Svg::read(&out.join(picture));
        assert!(svg.tags("text") > 3, "{picture} has labels");
    }
    let html = std::fs::read_to_string(out.join("index.html")).expect("the page");
    assert!(!html.contains("<script"), "nothing to run");
    for fetch in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(fetch), "nothing fetched: {fetch}");
    }
    assert_eq!(html.matches("<svg").count(), 6, "every picture inline");
}

#[test]
fn simulated_observing_a_run_changes_nothing_in_it() {
    let scenario =
        Scenario::load(Path::new(&example("all_faults.json")), &builtin()).expect("the example");
    let plain = simulate(&scenario, &RunOptions::default()).expect("runs");
    let observe = RunOptions {
        observe: true,
        ..RunOptions::default()
    };
    let first = simulate(&scenario, &observe).expect("runs");
    let second = simulate(&scenario, &observe).expect("runs");
    assert_eq!(plain.report.trace_hash, first.report.trace_hash);
    assert_eq!(plain.report.events, first.report.events);
    assert!(plain.observed.is_none());
    let first = first.observed.expect("observed");
    assert_eq!(Some(first.clone()), second.observed);
    assert!(!first.records.is_empty());
    let last = first.samples.last().expect("samples");
    assert_eq!(last.at_ms, scenario.run_ms.0);
    assert!(
        last.values.iter().all(|(_, total)| *total == 22.0),
        "{last:?}"
    );
}

#[test]
fn simulated_broadcast_report_plots_how_many_nodes_hold_each_value() {
    let scratch = Scratch::new("broadcast");
    let output = dist_zero_in(
        scratch.path(),
        &["run", &example("broadcast_ring.json"), "--report", "out"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let texts = Svg::read(&scratch.path().join("out/series.svg")).texts();
    assert!(texts.contains("nodes holding each value"), "{texts}");
    assert!(texts.contains("value 7"), "{texts}");
    assert!(texts.contains("every node (5)"), "{texts}");
    let diagram = Svg::read(&scratch.path().join("out/diagram.svg"));
    assert!(diagram
        .attributes("arrow", "data-type")
        .contains(&"gossip".to_owned()));
}

#[test]
fn simulated_a_failing_seeds_replay_command_writes_the_diagram_of_its_causal_history() {
    let scratch = Scratch::new("replay");
    let all_faults = example("all_faults.json");
    let output = dist_zero_in(
        scratch.path(),
        &[
            "run",
            &all_faults,
            "--seeds",
            "0..3",
            "--unreliable",
            "--json",
            "--report",
            "sweep",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let sweep: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let failing = sweep["failing"].as_array().expect("failing seeds");
    assert!(!failing.is_empty());
    let index = std::fs::read_to_string(scratch.path().join("sweep/index.html")).expect("index");
    for failure in failing {
        let seed = failure["seed"].as_u64().expect("a seed");
        assert!(
            index.contains(&format!("href=\"seed-{seed}/index.html\"")),
            "{index}"
        );
        assert!(scratch
            .path()
            .join(format!("sweep/seed-{seed}/diagram.svg"))
            .exists());
    }

    let seed = failing[0]["seed"].as_u64().expect("a seed");
    let replay = failing[0]["replay"].as_str().expect("a replay command");
    assert!(
        replay.ends_with(&format!("--report seed-{seed}-report")),
        "{replay}"
    );
    let fresh = Scratch::new("replay-fresh");
    let output = Command::new("sh")
        .arg("-c")
        .arg(replay)
        .current_dir(fresh.path())
        .output()
        .expect("sh runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = fresh.path().join(format!("seed-{seed}-report"));
    let svg = Svg::read(&report.join("diagram.svg"));
    let texts = svg.texts();
    assert!(texts.contains("what led to the failure"), "{texts}");
    assert!(texts.contains("Shown: the causal history of"), "{texts}");
    assert!(
        svg.count("arrow drop") > 0,
        "the losses behind the wrong outputs"
    );
    let full = records_of(&report.join("trace.jsonl"));
    let arrows = svg.count("arrow");
    assert!(
        arrows > 0 && arrows < full.len(),
        "{arrows} of {} events",
        full.len()
    );
    let html = std::fs::read_to_string(report.join("index.html")).expect("the page");
    assert!(html.contains("WRONG"));
    assert!(html.contains("Replay it with"));
    assert!(html.contains(&format!("--seed {seed} --unreliable")));
}

#[test]
fn simulated_report_opens_in_headless_chromium_and_is_not_blank() {
    let scratch = Scratch::new("chromium");
    let output = dist_zero_in(
        scratch.path(),
        &[
            "run",
            &example("all_faults.json"),
            "--seed",
            "3",
            "--report",
            "out",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = scratch.path().join("out/index.html");
    let (pixels, width) = screenshot(&page, scratch.path());
    let height = (pixels.len() / 4) as u32 / width;
    assert!(height >= 3000, "{width}x{height}");
    // The summary, the fault timeline and the series plot are in the first 1500 rows; the
    // diagram and the traffic plots below.
    for rows in [0..1500, 1500..3000] {
        let (inked, colours) = ink(&pixels, width, rows.clone());
        assert!(inked > 0.02, "rows {rows:?}: {inked} of the pixels drawn");
        assert!(colours > 20, "rows {rows:?}: {colours} colours");
    }
    let diagram = scratch.path().join("out/diagram.svg");
    let (pixels, width) = screenshot(&diagram, scratch.path());
    let (inked, colours) = ink(&pixels, width, 0..1000);
    assert!(inked > 0.02 && colours > 10, "{inked} {colours}");
}

#[test]
fn simulated_cli_refuses_report_flags_it_cannot_follow() {
    let scratch = Scratch::new("refusals");
    let all_faults = example("all_faults.json");
    for (args, says) in [
        (
            vec!["--report", "out", "--diagram-types", "("],
            "--diagram-types:",
        ),
        (
            vec!["--report", "out", "--diagram-max", "0"],
            "--diagram-max",
        ),
        (
            vec![
                "--report",
                "out",
                "--diagram-from-ms",
                "500",
                "--diagram-to-ms",
                "100",
            ],
            "--diagram-from-ms 500 comes after --diagram-to-ms 100",
        ),
    ] {
        let mut all = vec!["run", all_faults.as_str()];
        all.extend(args);
        let output = dist_zero_in(scratch.path(), &all);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{all:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{all:?}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
        assert!(!scratch.path().join("out").exists(), "nothing written");
    }
}

#[test]
fn simulated_a_report_path_that_is_a_file_is_refused_before_any_seed_runs() {
    let scratch = Scratch::new("report-file");
    std::fs::write(scratch.path().join("taken"), "a file").expect("written");
    let all_faults = example("all_faults.json");
    for args in [
        vec!["--seeds", "0..3000", "--unreliable"],
        vec!["--seed", "3"],
    ] {
        let mut all = vec!["run", all_faults.as_str(), "--report", "taken"];
        all.extend(args);
        let output = dist_zero_in(scratch.path(), &all);
        let errors = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{all:?}: {errors}");
        assert!(
            errors.contains("--report taken: not a directory"),
            "{all:?}: {errors}"
        );
        assert!(output.stdout.is_empty(), "no run, so no result");
    }
    let trace = dist_zero_in(
        scratch.path(),
        &["run", all_faults.as_str(), "--trace", "nowhere/seed.trace"],
    );
    assert_eq!(trace.status.code(), Some(2));
    assert!(
        stderr(&trace).contains("--trace nowhere/seed.trace: there is no directory nowhere"),
        "{}",
        stderr(&trace)
    );
    assert!(trace.stdout.is_empty());
}

#[test]
fn simulated_a_report_that_cannot_be_written_after_the_run_prints_the_result_first() {
    let scratch = Scratch::new("report-late");
    // The directory can be made, but not the page inside it.
    std::fs::create_dir_all(scratch.path().join("out/index.html")).expect("a directory");
    let all_faults = example("all_faults.json");
    let output = dist_zero_in(
        scratch.path(),
        &["run", all_faults.as_str(), "--report", "out"],
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("correct: "),
        "the verdict first: {printed}"
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot write the report"),
        "{}",
        stderr(&output)
    );
    let sweep = dist_zero_in(
        scratch.path(),
        &[
            "run",
            all_faults.as_str(),
            "--seeds",
            "0..30",
            "--unreliable",
            "--report",
            "out",
            "--json",
        ],
    );
    let report: serde_json::Value =
        serde_json::from_slice(&sweep.stdout).expect("the sweep's one JSON object");
    assert_eq!(report["seeds"], 30, "{report}");
    assert!(
        !report["failing"].as_array().expect("a list").is_empty(),
        "{report}"
    );
    assert_eq!(sweep.status.code(), Some(2), "{}", stderr(&sweep));
}

#[test]
fn simulated_report_diagram_of_many_nodes_draws_at_most_its_lanes_and_says_so() {
    // A chain of 100 nodes on 10 machines, each passing a token to the next.
    let mut records = Vec::new();
    let name = |i: u32| format!("n{}.{}", i % 10, i / 10);
    for i in 0..100u32 {
        let mut spawn = record(u64::from(i) + 1, 0, RecordKind::Spawn, i % 10, &name(i));
        spawn.summary = Some("Link".into());
        records.push(spawn);
    }
    for i in 0..99u32 {
        let id = 101 + 2 * u64::from(i);
        let mut send = record(
            id,
            10 * u64::from(i) + 10,
            RecordKind::Send,
            i % 10,
            &name(i),
        );
        send.peer_machine = Some((i + 1) % 10);
        send.peer = Some(name(i + 1).into());
        send.message_type = Some("token".into());
        let mut deliver = record(
            id + 1,
            10 * u64::from(i) + 15,
            RecordKind::Deliver,
            (i + 1) % 10,
            &name(i + 1),
        );
        deliver.peer_machine = Some(i % 10);
        deliver.peer = Some(name(i).into());
        deliver.message_type = Some("token".into());
        deliver.cause = Some(id);
        records.push(send);
        records.push(deliver);
    }
    let svg = Svg::parse(&diagram(
        "chain",
        &select(&records, &DiagramFilter::default()),
    ));
    let lanes = svg.attributes("lane", "data-lane");
    assert_eq!(lanes.len(), 48, "{lanes:?}");
    let arrows = svg.count("arrow send");
    assert!(
        (40..48).contains(&arrows),
        "{arrows} arrows between the lanes drawn"
    );
    let texts = svg.texts();
    assert!(texts.contains("Left out: 52 more lanes and the"), "{texts}");

    let two_machines = DiagramFilter {
        machines: Some(BTreeSet::from([0, 1])),
        ..DiagramFilter::default()
    };
    let svg = Svg::parse(&diagram("two", &select(&records, &two_machines)));
    let lanes = svg.attributes("lane", "data-lane");
    assert!(
        lanes
            .iter()
            .all(|l| l.starts_with("m0/") || l.starts_with("m1/")),
        "{lanes:?}"
    );
    assert_eq!(
        svg.count("arrow send"),
        10,
        "n0.k -> n1.k, within the two machines"
    );
    assert!(svg
        .texts()
        .contains("Left out: 89 messages with an end outside the machines or nodes chosen"));
}

#[test]
fn simulated_every_picture_and_the_page_are_well_formed_whatever_a_user_wrote() {
    let scratch = Scratch::new("names");
    let names = [
        "a\u{1}b",
        "c\u{fffe}",
        "d\u{ffff}",
        "e\u{85}f",
        "<g & 'h'>",
        "i\u{1fffe}",
    ];
    let users: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            serde_json::json!({"name": name, "machine": index % 2,
                "actions": [[10, {"type": "increment", "amount": 1}]]})
        })
        .collect();
    let scenario = serde_json::json!({"machines": 2, "run_ms": 500, "users": users});
    std::fs::write(scratch.path().join("names.json"), scenario.to_string()).expect("written");
    let output = dist_zero_in(scratch.path(), &["run", "names.json", "--report", "out"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for picture in dist_zero::report::PICTURES {
        Svg::read(&scratch.path().join("out").join(picture));
    }
    let series = Svg::read(&scratch.path().join("out/series.svg")).texts();
    assert!(
        series.contains("<g & 'h'>"),
        "the legend names the user: {series}"
    );
    let page = std::fs::read_to_string(scratch.path().join("out/index.html")).expect("the page");
    let forbidden = page.chars().find(|c| {
        let code = u32::from(*c);
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || code & 0xfffe == 0xfffe
    });
    assert_eq!(
        forbidden, None,
        "the page holds no character HTML or XML refuses"
    );
}
