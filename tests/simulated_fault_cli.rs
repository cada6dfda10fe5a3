//! The `dist-zero` binary with faults, run as a user runs it (simulated mode).
//!
//! - `run examples/all_faults.json --seeds 0..50 --json` exits 0 with every seed correct.
//! - With `--unreliable` the same sweep exits 1 and lists the failing seeds, each with a replay
//!   command; running that exact command (in a fresh directory) reproduces the run exactly: the
//!   trace file it writes is byte-identical to a second replay's, and its trace hash equals that
//!   of a direct `--seed N --unreliable --json` run.
//! - `--trace FILE` writes one line per event, the same for the same seed.
//! - `examples/crash_restart_forgetful.json` (crashes, and nodes that do not persist) fails
//!   every seed, and a failing seed's replay writes the same trace twice; the same crashes with
//!   persisting on are exact.
//! - Every bad fault config exits 2 with one stderr line naming the field: a rate outside [0, 1],
//!   a `types` regex that does not compile, a machine out of range in a partition group or a
//!   pause, a machine in two groups, a window that ends before it starts; so does an empty seed
//!   range such as `--seeds 5..2`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .to_str()
        .expect("a UTF-8 path")
        .to_owned()
}

/// Runs the binary with `args` in `dir`.
fn dist_zero_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dist-zero"))
        .args(args)
        .current_dir(dir)
        .env("DIST_ZERO_LOG", "warn")
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("the dist-zero binary runs")
}

fn dist_zero(args: &[&str]) -> Output {
    dist_zero_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// The single JSON object `output` printed.
fn json_of(output: &Output) -> Value {
    let text = stdout(output);
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "exactly one line on stdout, got:\n{text}\nstderr:\n{}",
        stderr(output)
    );
    serde_json::from_str(text.trim_end()).expect("stdout is one JSON value")
}

/// A fresh temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dist-zero-simulated-fault-cli-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` in this directory and returns its path.
    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("the file is written");
        path.to_str().expect("a UTF-8 temp path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `trace hash` line of a readable report.
fn readable_trace_hash(text: &str) -> String {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("trace hash "))
        .unwrap_or_else(|| panic!("no trace hash line in:\n{text}"))
        .trim()
        .to_owned()
}

#[test]
fn simulated_cli_sweep_of_all_faults_is_correct_with_reliable_delivery() {
    let path = example("all_faults.json");
    let output = dist_zero(&["run", &path, "--seeds", "0..50", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(
        report,
        json!({"seeds": 50, "requested": 50, "correct": 50, "failed": 0, "failing": []})
    );
}

#[test]
fn simulated_cli_unreliable_sweep_fails_and_its_replay_commands_reproduce_exactly() {
    let path = example("all_faults.json");
    let output = dist_zero(&["run", &path, "--seeds", "0..50", "--unreliable", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(report["seeds"], 50);
    let failing = report["failing"].as_array().expect("a failing list");
    assert!(!failing.is_empty(), "{report}");
    assert_eq!(
        report["correct"].as_u64().expect("a count") + failing.len() as u64,
        50,
        "{report}"
    );
    let seeds: Vec<u64> = failing
        .iter()
        .map(|failure| failure["seed"].as_u64().expect("a seed"))
        .collect();
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(seeds, sorted, "failing seeds in order, each once");
    assert!(seeds.iter().all(|seed| *seed < 50), "{seeds:?}");
    for failure in failing {
        let seed = failure["seed"].as_u64().expect("a seed");
        assert!(
            failure["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{failure}"
        );
        let replay = failure["replay"].as_str().expect("a replay command");
        assert_eq!(
            replay,
            // The binary is not on PATH here: the replay names it by the path it was started by.
            format!(
                "{} run {path} --seed {seed} --unreliable --trace seed-{seed}.trace --report seed-{seed}-report",
                env!("CARGO_BIN_EXE_dist-zero")
            ),
        );
    }

    // Replay the first and the last failing seed exactly as printed.
    for failure in [&failing[0], &failing[failing.len() - 1]] {
        let seed = failure["seed"].as_u64().expect("a seed");
        let replay = failure["replay"].as_str().expect("a replay command");
        let mut words = replay.split_whitespace();
        assert_eq!(words.next(), Some(env!("CARGO_BIN_EXE_dist-zero")));
        let args: Vec<&str> = words.collect();
        let trace_name = format!("seed-{seed}.trace");

        let traces: Vec<(Vec<u8>, String)> = ["first", "second"]
            .iter()
            .map(|attempt| {
                let dir = TempDir::new(&format!("replay-{seed}-{attempt}"));
                let output = dist_zero_in(dir.path(), &args);
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "seed {seed}: the replay fails again; stderr:\n{}",
                    stderr(&output)
                );
                let text = stdout(&output);
                assert!(text.contains("WRONG"), "{text}");
                assert!(text.contains(&format!("seed {seed}")), "{text}");
                let trace = std::fs::read(dir.path().join(&trace_name))
                    .expect("the replay wrote its trace file");
                (trace, readable_trace_hash(&text))
            })
            .collect();
        let (first_trace, first_hash) = &traces[0];
        let (second_trace, second_hash) = &traces[1];
        assert!(
            first_trace.len() > 1000,
            "seed {seed}: a real trace, {} bytes",
            first_trace.len()
        );
        assert!(
            first_trace == second_trace,
            "seed {seed}: the two replays' traces differ"
        );
        assert_eq!(first_hash, second_hash);

        let seed_text = seed.to_string();
        let direct = dist_zero(&["run", &path, "--seed", &seed_text, "--unreliable", "--json"]);
        assert_eq!(direct.status.code(), Some(1), "{}", stderr(&direct));
        let direct = json_of(&direct);
        assert_eq!(direct["seed"], seed);
        assert_eq!(direct["correct"], false);
        assert_eq!(
            direct["trace_hash"].as_str(),
            Some(first_hash.as_str()),
            "seed {seed}: the replay is the same run as the direct one"
        );
        let faults = &direct["faults"];
        assert_eq!(faults["retransmitted"], 0, "{direct}");
        assert_eq!(faults["duplicates_suppressed"], 0, "{direct}");

        // The same seed with reliable delivery is a different, correct run.
        let reliable = json_of(&dist_zero(&["run", &path, "--seed", &seed_text, "--json"]));
        assert_eq!(reliable["correct"], true, "{reliable}");
        assert_ne!(reliable["trace_hash"], direct["trace_hash"]);
    }
}

#[test]
fn simulated_cli_crashes_without_persisting_fail_every_seed_and_each_replay_is_byte_identical() {
    let path = example("crash_restart_forgetful.json");
    let output = dist_zero(&["run", &path, "--seeds", "0..5", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_of(&output);
    let failing = report["failing"].as_array().expect("a failing list");
    assert_eq!(
        failing.len(),
        5,
        "every seed loses what it did not persist: {report}"
    );
    let seed = failing[0]["seed"].as_u64().expect("a seed");
    let replay = failing[0]["replay"].as_str().expect("a replay command");
    let mut words = replay.split_whitespace();
    assert_eq!(words.next(), Some(env!("CARGO_BIN_EXE_dist-zero")));
    let args: Vec<&str> = words.collect();
    let traces: Vec<Vec<u8>> = ["first", "second"]
        .iter()
        .map(|attempt| {
            let dir = TempDir::new(&format!("forgetful-{seed}-{attempt}"));
            let output = dist_zero_in(dir.path(), &args);
            assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
            assert!(stdout(&output).contains("WRONG"));
            std::fs::read(dir.path().join(format!("seed-{seed}.trace")))
                .expect("the replay wrote its trace file")
        })
        .collect();
    let text = String::from_utf8_lossy(&traces[0]);
    assert!(text.contains("fault crash m0") && text.contains("fault restart m0"));
    assert!(traces[0] == traces[1], "the two replays' traces differ");

    // With persisting on (the same scenario otherwise), every seed is exact.
    let persisting = example("crash_restart.json");
    let output = dist_zero(&["run", &persisting, "--seeds", "0..5", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn simulated_cli_trace_file_has_one_line_per_event_and_repeats() {
    let path = example("all_faults.json");
    let dir = TempDir::new("trace");
    let trace = dir.path().join("run.trace");
    let trace_arg = trace.to_str().expect("a UTF-8 path");
    let output = dist_zero(&["run", &path, "--seed", "4", "--trace", trace_arg, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json_of(&output);
    let first = std::fs::read_to_string(&trace).expect("the trace was written");
    let events = report["events"].as_u64().expect("an event count");
    let lines = first.lines().count() as u64;
    // One line per event, plus one per node the scenario runner spawns directly.
    assert!(
        lines >= events && lines <= events + 3,
        "{lines} lines for {events} events"
    );

    let output = dist_zero(&["run", &path, "--seed", "4", "--trace", trace_arg, "--json"]);
    assert_eq!(json_of(&output)["trace_hash"], report["trace_hash"]);
    let second = std::fs::read_to_string(&trace).expect("the trace was written again");
    assert!(first == second, "the same seed writes the same trace");

    // A trace and a seed range do not go together.
    let output = dist_zero(&["run", &path, "--seeds", "0..3", "--trace", trace_arg]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// all_faults.json's shape on three machines with `network` replaced.
fn scenario_with(network: Value) -> String {
    json!({
        "machines": 3,
        "run_ms": 1000,
        "network": network,
        "users": [{"name": "a", "machine": 1, "actions": [[10, {"type": "increment", "amount": 1}]]}]
    })
    .to_string()
}

/// Runs `run FILE --json`, a sweep with `--json` and `run FILE` on a scenario with `network` and
/// checks each is rejected as bad input (exit 2; on stdout one error object with `--json`,
/// nothing without) with a stderr message whose first line contains every one of `needles`;
/// returns the stderr texts.
fn bad_network_errors(name: &str, network: Value, needles: &[&str]) -> Vec<String> {
    let dir = TempDir::new(name);
    let path = dir.file("scenario.json", &scenario_with(network));
    let mut errors = Vec::new();
    for args in [
        vec!["run", path.as_str(), "--json"],
        vec!["run", path.as_str(), "--seeds", "0..3", "--json"],
        vec!["run", path.as_str()],
    ] {
        let output = dist_zero(&args);
        let err = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{name} {args:?}: exit status; stderr:\n{err}"
        );
        if args.contains(&"--json") {
            let error = json_of(&output);
            assert_eq!(error["exit_code"], 2, "{name}: {error}");
            assert_eq!(error["kind"], "bad_input", "{name}: {error}");
            let message = error["error"].as_str().expect("an error message");
            assert!(
                needles.iter().all(|needle| message.contains(needle)),
                "{name}: {error}"
            );
        } else {
            assert_eq!(stdout(&output), "", "{name}: nothing on stdout");
        }
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with("dist-zero: "), "{err}");
        for needle in needles {
            assert!(
                first.contains(needle),
                "{name}: `{needle}` missing from: {err}"
            );
        }
        errors.push(err);
    }
    errors
}

/// As [`bad_network_errors`], and each message is exactly one line.
fn assert_bad_network(name: &str, network: Value, needles: &[&str]) {
    for err in bad_network_errors(name, network, needles) {
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: one line:\n{err}"
        );
    }
}

#[test]
fn simulated_cli_rejects_a_fault_rate_outside_zero_to_one() {
    assert_bad_network(
        "drop-rate",
        json!({"drop": {"rate": 1.5}}),
        &["network.drop.rate", "1.5"],
    );
    assert_bad_network(
        "duplicate-rate",
        json!({"duplicate": {"rate": -0.1}}),
        &["network.duplicate.rate"],
    );
    assert_bad_network(
        "reorder-rate",
        json!({"reorder": {"rate": 2}}),
        &["network.reorder.rate"],
    );
}

#[test]
fn simulated_cli_rejects_a_types_regex_that_does_not_compile() {
    bad_network_errors(
        "reorder-types",
        json!({"reorder": {"rate": 0.1, "types": "incr(ement"}}),
        &["network.reorder.types", "regular expression"],
    );
    bad_network_errors(
        "drop-types",
        json!({"drop": {"rate": 0.1, "types": "[a-"}}),
        &["network.drop.types"],
    );
}

#[test]
fn simulated_cli_reports_a_bad_types_regex_on_one_line() {
    assert_bad_network(
        "reorder-types-one-line",
        json!({"reorder": {"rate": 0.1, "types": "incr(ement"}}),
        &["network.reorder.types"],
    );
}

#[test]
fn simulated_cli_rejects_a_partition_group_machine_out_of_range() {
    assert_bad_network(
        "partition-machine",
        json!({"partitions": [{"from_ms": 0, "to_ms": 10, "groups": [[0], [1, 3]]}]}),
        &["network.partitions[0].groups[1][1]", "out of range"],
    );
    assert_bad_network(
        "partition-twice",
        json!({"partitions": [{"from_ms": 0, "to_ms": 10, "groups": [[0, 1], [1]]}]}),
        &["network.partitions[0].groups[1][0]", "more than one group"],
    );
}

#[test]
fn simulated_cli_rejects_a_pause_machine_out_of_range() {
    assert_bad_network(
        "pause-machine",
        json!({"pauses": [
            {"machine": 1, "from_ms": 0, "to_ms": 10},
            {"machine": 3, "from_ms": 0, "to_ms": 10}
        ]}),
        &["network.pauses[1].machine", "out of range"],
    );
}

#[test]
fn simulated_cli_rejects_a_window_that_ends_before_it_starts() {
    assert_bad_network(
        "partition-window",
        json!({"partitions": [{"from_ms": 500, "to_ms": 100, "groups": [[0], [1]]}]}),
        &["network.partitions[0]", "to_ms 100", "from_ms 500"],
    );
    assert_bad_network(
        "pause-window",
        json!({"pauses": [{"machine": 2, "from_ms": 300, "to_ms": 299}]}),
        &["network.pauses[0]", "to_ms 299"],
    );
}

#[test]
fn simulated_cli_rejects_an_unknown_fault_field() {
    assert_bad_network(
        "unknown-field",
        json!({"drop": {"rate": 0.1, "kinds": "increment"}}),
        &["network.drop", "kinds"],
    );
}

#[test]
fn simulated_cli_rejects_an_empty_or_malformed_seed_range() {
    let path = example("all_faults.json");
    for range in ["5..2", "3..3", "x..4", "7"] {
        let output = dist_zero(&["run", &path, "--seeds", range, "--json"]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{range}: {err}");
        assert_eq!(stdout(&output), "", "{range}: nothing on stdout");
        assert!(err.contains(range), "{range}: {err}");
    }
    let output = dist_zero(&["run", &path, "--seeds", "5..2"]);
    assert!(
        stderr(&output).contains("empty"),
        "says why: {}",
        stderr(&output)
    );
    // --seeds and --seed do not go together.
    let output = dist_zero(&["run", &path, "--seeds", "0..2", "--seed", "1"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}
