//! The `dist-zero` binary on any input (simulated mode): what a user can write or type is either
//! run correctly or refused with exit 2 and one line naming the field, never a panic, a wrap
//! around or a run that reads without end.
//!
//! - Times that cannot be represented (a partition or pause 584,000 years away, a latency of
//!   1e308 ms, `demo --run-ms 18446744073709551615`, a join after the run ends) are refused,
//!   naming the field or flag.
//! - A scenario file holds one JSON object: trailing text or a second object is refused.
//! - No more of a scenario file is read than its limit (256 MiB, or `--max-input-mb`), `/dev/zero`
//!   included; `check` reads and validates a scenario without running it.
//! - `--json` prints exactly one JSON object on stdout for every outcome: a correct run, a wrong
//!   one, a node failure, bad input, a capacity limit; usage errors are one line on stderr.
//! - The report says whether the run settled and how much was still in flight.
//! - A sweep's replay command runs as printed through `sh`, whatever the path holds, and writes
//!   its trace also when the seed ends in a node failure.
//! - Control characters a user wrote reach the terminal escaped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// The binary's path.
fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dist-zero"))
}

/// Runs the binary with `args` in `dir`.
fn dist_zero_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
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

/// The single JSON object `output` printed on stdout.
fn json_of(output: &Output) -> Value {
    let text = stdout(output);
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "exactly one line on stdout, got:\n{text}\nstderr:\n{}",
        stderr(output)
    );
    let value: Value = serde_json::from_str(text.trim_end()).expect("stdout is one JSON value");
    assert!(value.is_object(), "{value}");
    value
}

/// A fresh temporary directory (its name may hold any characters), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dist-zero-simulated-input-cli-{}-{name}",
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
    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
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

/// A one-user scenario on three machines, with `changes` merged into it.
fn scenario(changes: Value) -> Value {
    let mut scenario = json!({
        "machines": 3,
        "run_ms": 1000,
        "users": [{"name": "a", "machine": 1, "actions": [[10, {"type": "increment", "amount": 1}]]}]
    });
    if let (Some(object), Some(changes)) = (scenario.as_object_mut(), changes.as_object()) {
        object.extend(changes.clone());
    }
    scenario
}

/// Runs `run FILE` and `run FILE --json` on `contents` and checks both are refused as bad input:
/// exit 2, one stderr line holding every one of `needles`, and with `--json` one error object.
fn assert_refused(name: &str, contents: &str, needles: &[&str]) {
    let dir = TempDir::new(name);
    let path = dir.file("scenario.json", contents);
    for json in [false, true] {
        let mut args = vec!["run", path.as_str()];
        if json {
            args.push("--json");
        }
        let output = dist_zero(&args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: one line:\n{err}"
        );
        assert!(err.starts_with("dist-zero: "), "{name}: {err}");
        for needle in needles {
            assert!(
                err.contains(needle),
                "{name}: `{needle}` missing from: {err}"
            );
        }
        if json {
            let error = json_of(&output);
            assert_eq!(error["exit_code"], 2, "{error}");
            assert_eq!(error["kind"], "bad_input", "{error}");
        } else {
            assert_eq!(stdout(&output), "", "{name}: nothing on stdout");
        }
    }
}

/// 584,000 years, in milliseconds: the first time whose microseconds do not fit in 64 bits.
const UNREPRESENTABLE_MS: u64 = u64::MAX / 1000 + 1;

#[test]
fn simulated_cli_rejects_fault_windows_that_cannot_be_represented() {
    let partition = scenario(json!({"network": {"partitions": [
        {"from_ms": 100, "to_ms": UNREPRESENTABLE_MS, "groups": [[0], [1]]}
    ]}}));
    assert_refused(
        "far-partition",
        &partition.to_string(),
        &["network.partitions[0].to_ms", "beyond"],
    );
    let pause = scenario(json!({"network": {"pauses": [
        {"machine": 1, "from_ms": UNREPRESENTABLE_MS, "to_ms": UNREPRESENTABLE_MS}
    ]}}));
    assert_refused(
        "far-pause",
        &pause.to_string(),
        &["network.pauses[0].from_ms", "beyond"],
    );
}

#[test]
fn simulated_cli_rejects_a_latency_beyond_a_year() {
    let huge = scenario(json!({"network": {
        "latency_ms": {"distribution": "constant", "mean": 1e308},
        "reorder": {"rate": 0.5}
    }}));
    assert_refused(
        "huge-latency",
        &huge.to_string(),
        &["network.latency_ms.mean", "a year"],
    );
}

#[test]
fn simulated_cli_rejects_run_and_join_times_out_of_range() {
    assert_refused(
        "far-run",
        &scenario(json!({"run_ms": UNREPRESENTABLE_MS})).to_string(),
        &["run_ms", "beyond"],
    );
    let late =
        scenario(json!({"run_ms": 500, "users": [{"name": "a", "machine": 1, "join_ms": 900}]}));
    assert_refused(
        "join-after-run",
        &late.to_string(),
        &["users[0].join_ms", "after the run ends"],
    );
    let far_action = scenario(json!({"users": [{"name": "a", "machine": 1, "join_ms": 10,
        "actions": [[UNREPRESENTABLE_MS, {"type": "increment", "amount": 1}]]}]}));
    assert_refused(
        "far-action",
        &far_action.to_string(),
        &["users[0].actions[0]", "beyond"],
    );
}

#[test]
fn simulated_cli_demo_names_the_flag_it_refuses() {
    for (args, flag) in [
        (vec!["demo", "--run-ms", "18446744073709551615"], "--run-ms"),
        (vec!["demo", "--machines", "0"], "--machines"),
        (vec!["demo", "--machines", "100001"], "--machines"),
    ] {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let output = dist_zero(&args);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
            assert!(
                err.starts_with(&format!("dist-zero: {flag}: ")),
                "{args:?}: {err}"
            );
            if json {
                assert_eq!(json_of(&output)["exit_code"], 2);
            }
        }
    }
}

#[test]
fn simulated_cli_rejects_text_after_the_scenario_object() {
    let one = scenario(json!({})).to_string();
    assert_refused(
        "second-object",
        &format!("{one}\n{one}\n"),
        &["trailing characters", "one scenario"],
    );
    assert_refused(
        "trailing-text",
        &format!("{one} and then some"),
        &["trailing characters"],
    );
    let dir = TempDir::new("trailing-space");
    let path = dir.file("scenario.json", format!("\n{one}\n\t \n"));
    let output = dist_zero(&["run", &path, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn simulated_cli_reads_no_more_of_a_scenario_than_its_limit() {
    // A valid scenario padded past the limit with white space is refused, not parsed; at the
    // limit it is read.
    let dir = TempDir::new("large");
    let mut padded = scenario(json!({})).to_string().into_bytes();
    padded.resize(1024 * 1024, b' ');
    let at_limit = dir.file("at-limit.json", &padded);
    let output = dist_zero(&["check", &at_limit, "--max-input-mb", "1"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    padded.push(b' ');
    let beyond = dir.file("padded.json", &padded);
    for command in ["run", "check"] {
        assert_refused_file(
            command,
            &beyond,
            &["1"],
            &["cannot read scenario", "larger than the 1 MiB limit"],
        );
    }
    // An endless file is refused at the limit, the default one or one of its own.
    assert_refused_file(
        "run",
        "/dev/zero",
        &[],
        &["cannot read scenario /dev/zero", "256 MiB"],
    );
    assert_refused_file(
        "check",
        "/dev/zero",
        &["2"],
        &["cannot read scenario /dev/zero", "2 MiB"],
    );
    let zero = dist_zero(&["check", &at_limit, "--max-input-mb", "0"]);
    assert_eq!(zero.status.code(), Some(2), "a limit of nothing is refused");
}

#[test]
fn simulated_cli_check_says_what_a_valid_scenario_holds() {
    let dir = TempDir::new("check");
    let path = dir.file(
        "crowd.json",
        json!({"machines": 4, "run_ms": 1000, "crowds": [{"name": "c", "users": 1000}]})
            .to_string(),
    );
    let human = dist_zero(&["check", &path]);
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    assert_eq!(
        stdout(&human).trim_end(),
        "valid: sum network, 4 machines, 1000 users, run_ms 1000, seed 0"
    );
    let report = json_of(&dist_zero(&["check", &path, "--json"]));
    assert_eq!(report["valid"], true);
    assert_eq!(report["size"], "1000 users");
    let bad = dir.file(
        "bad.json",
        json!({"machines": 4, "run_ms": 1000, "crowds": [{"name": "c", "users": 5, "machines": [4]}]})
            .to_string(),
    );
    assert_refused_file(
        "check",
        &bad,
        &[],
        &["crowds[0].machines[0]", "out of range"],
    );
}

/// As [`assert_refused`], for a file that is already there, with `command` (`run` or `check`)
/// and `--max-input-mb` set to the first of `limit`, if any.
fn assert_refused_file(command: &str, path: &str, limit: &[&str], needles: &[&str]) {
    let mut args = vec![command, path, "--json"];
    if let Some(limit) = limit.first() {
        args.extend(["--max-input-mb", limit]);
    }
    let output = dist_zero(&args);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{path}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{path}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    assert_eq!(json_of(&output)["kind"], "bad_input");
}

/// A scenario whose only increment is the largest amount there is, delivered twice (reliable
/// delivery off): the sum node's total overflows, and the node fails, on every seed.
/// Two users who each add the largest amount: each user's own total fits in 64 bits (so the
/// scenario is valid), their sum does not, and the sum node fails.
fn overflowing() -> Value {
    json!({
        "machines": 2,
        "run_ms": 500,
        "users": [{"name": "u", "machine": 1,
            "actions": [[0, {"type": "increment", "amount": i64::MAX}]]},
            {"name": "v", "machine": 1,
            "actions": [[0, {"type": "increment", "amount": i64::MAX}]]}]
    })
}

#[test]
fn simulated_cli_json_prints_one_object_for_every_outcome() {
    let dir = TempDir::new("outcomes");
    let correct = dir.file("correct.json", scenario(json!({})).to_string());
    // The increment at 10 ms is played, but cannot reach the output by 20 ms.
    let wrong = dir.file("wrong.json", scenario(json!({"run_ms": 20})).to_string());
    let failing = dir.file("failing.json", overflowing().to_string());
    let invalid = dir.file("invalid.json", scenario(json!({"machines": 0})).to_string());

    let report = json_of(&dist_zero(&["run", &correct, "--json"]));
    assert_eq!(report["correct"], true, "{report}");

    let output = dist_zero(&["run", &wrong, "--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_of(&output)["correct"], false);

    let output = dist_zero(&["run", &failing, "--seed", "3", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = json_of(&output);
    assert_eq!(error["exit_code"], 1, "{error}");
    assert_eq!(error["kind"], "node_failed", "{error}");
    assert_eq!(error["seed"], 3, "{error}");
    // The failure itself, typed: which node, of what type, what kind of error, when.
    let failure = &error["node_failure"];
    assert_eq!(failure["node_type"], "SumNode", "{error}");
    assert_eq!(failure["kind"], "protocol", "{error}");
    assert!(failure["at_us"].as_u64().is_some(), "{error}");
    assert!(failure["node"]["machine"].is_number(), "{error}");

    let output = dist_zero(&["run", &invalid, "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let error = json_of(&output);
    assert_eq!(error["kind"], "bad_input", "{error}");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("machines")),
        "{error}"
    );

    let output = dist_zero(&["run", &correct, "--max-events", "10", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = json_of(&output);
    assert_eq!(error["kind"], "capacity", "{error}");
    assert_eq!(error["exit_code"], 1, "{error}");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("limit of 10 events")),
        "{error}"
    );

    let output = dist_zero(&["run", "/nonexistent/scenario.json", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(json_of(&output)["kind"], "bad_input");

    // A usage error is not a run: one line on stderr, nothing on stdout.
    let output = dist_zero(&["run", &correct, "--json", "--seed", "x"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("dist-zero: ") && err.contains("--seed"),
        "{err}"
    );
}

#[test]
fn simulated_cli_reports_whether_the_run_settled() {
    let dir = TempDir::new("settled");
    // Machine 0 cannot reach machine 1 until long after the run ends: the leaves it spawns
    // there stay unacknowledged, retransmitted in vain.
    let cut = dir.file(
        "cut.json",
        scenario(json!({"run_ms": 500, "network": {"partitions": [
            {"from_ms": 0, "to_ms": 10000, "groups": [[0], [1]]}
        ]}}))
        .to_string(),
    );
    let report = json_of(&dist_zero(&["run", &cut, "--json"]));
    assert_eq!(report["correct"], false, "{report}");
    assert_eq!(report["settled"], false, "{report}");
    let in_flight = report["in_flight"].as_u64().expect("a count");
    assert!(in_flight > 0, "{report}");
    let human = stdout(&dist_zero(&["run", &cut]));
    assert!(
        human.contains(&format!(
            "not settled: {in_flight} messages still in flight"
        )),
        "{human}"
    );
    assert!(human.contains("ended before it settled"), "{human}");
    let sweep = json_of(&dist_zero(&["run", &cut, "--seeds", "0..1", "--json"]));
    assert!(
        sweep["failing"][0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("not settled")),
        "{sweep}"
    );

    // Without reliable delivery, what the network still carries is in flight.
    let slow = dir.file(
        "slow.json",
        scenario(json!({"run_ms": 500, "reliable_delivery": false,
            "network": {"latency_ms": {"distribution": "constant", "mean": 10000}}}))
        .to_string(),
    );
    let report = json_of(&dist_zero(&["run", &slow, "--json"]));
    assert_eq!(report["settled"], false, "{report}");
    assert!(
        report["in_flight"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );

    // A run that ends long after its last message has settled.
    let calm = dir.file("calm.json", scenario(json!({})).to_string());
    let report = json_of(&dist_zero(&["run", &calm, "--json"]));
    assert_eq!(report["settled"], true, "{report}");
    assert_eq!(report["in_flight"], 0, "{report}");
    assert!(!stdout(&dist_zero(&["run", &calm])).contains("not settled"));
}

#[test]
fn simulated_cli_replay_of_a_node_failure_runs_through_sh_and_writes_its_trace() {
    let dir = TempDir::new("replay");
    let awkward = dir.path().join("it's a \"dir\" $HOME");
    std::fs::create_dir_all(&awkward).expect("the awkward dir is created");
    let path = awkward.join("scénario (1).json");
    std::fs::write(&path, overflowing().to_string()).expect("the scenario is written");
    let path = path.to_str().expect("a UTF-8 path");

    let output = dist_zero(&["run", path, "--seeds", "0..2", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let sweep = json_of(&output);
    let failing = sweep["failing"].as_array().expect("failing seeds");
    assert_eq!(failing.len(), 2, "{sweep}");

    // `dist-zero` on the PATH, as a user who installed it has it.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin is created");
    std::os::unix::fs::symlink(binary(), bin.join("dist-zero")).expect("linked");
    let search = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for failure in failing {
        let seed = failure["seed"].as_u64().expect("a seed");
        assert!(
            failure["reason"]
                .as_str()
                .is_some_and(|r| r.contains("overflows")),
            "{failure}"
        );
        let replay = failure["replay"].as_str().expect("a replay command");
        let fresh = TempDir::new(&format!("replay-{seed}"));
        let output = Command::new("sh")
            .arg("-c")
            .arg(replay)
            .current_dir(fresh.path())
            .env("PATH", &search)
            .env("DIST_ZERO_LOG", "warn")
            .env("DIST_ZERO_ENV", "test")
            .output()
            .expect("sh runs");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{replay}: {err}");
        assert!(
            err.contains("overflows") && err.contains(&format!("seed {seed}")),
            "{err}"
        );
        let trace = std::fs::read_to_string(fresh.path().join(format!("seed-{seed}.trace")))
            .unwrap_or_else(|e| panic!("{replay}: the replay wrote no trace: {e}"));
        assert!(
            trace.lines().count() > 5 && trace.contains("increment"),
            "{replay}: a real trace:\n{trace}"
        );
        // The report's diagram shows the chain of messages that led to the node's failure.
        let diagram = fresh.path().join(format!("seed-{seed}-report/diagram.svg"));
        let diagram = std::fs::read_to_string(&diagram)
            .unwrap_or_else(|e| panic!("{replay}: the replay wrote no diagram: {e}"));
        assert!(diagram.contains("what led to the failure"), "{diagram}");
        assert_eq!(
            diagram.matches(r#"class="failure""#).count(),
            1,
            "{diagram}"
        );
        assert!(diagram.contains("overflows"), "{diagram}");
        assert!(diagram.contains(r#"data-type="increment""#), "{diagram}");
    }
}

#[test]
fn simulated_cli_escapes_control_characters_in_human_output() {
    let dir = TempDir::new("escapes");
    let name = "evil\u{1b}[2J\u{1b}]0;title\u{7}";
    let path = dir.file(
        "named.json",
        scenario(json!({"users": [{"name": name, "machine": 1,
            "actions": [[10, {"type": "increment", "amount": 1}]]}]}))
        .to_string(),
    );
    let human = dist_zero(&["run", &path]);
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    let text = stdout(&human);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains(r"evil\u{1b}[2J\u{1b}]0;title\u{7}"), "{text}");
    // JSON carries the name as written (escaped by JSON itself).
    let report = json_of(&dist_zero(&["run", &path, "--json"]));
    assert!(report["outputs"].get(name).is_some(), "{report}");

    // Error messages that echo what the user wrote: a field name, a file name.
    let field = dir.file(
        "field.json",
        r#"{"machines": 1, "run_ms": 5, "col\u001bour": 1}"#,
    );
    let ugly_name = dir
        .path()
        .join("missing\u{1b}[31m.json")
        .to_str()
        .expect("a UTF-8 path")
        .to_owned();
    for path in [field, ugly_name] {
        let output = dist_zero(&["run", &path]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{err}");
        assert!(!err.contains('\u{1b}'), "{err:?}");
        assert!(err.contains(r"\u{1b}"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn simulated_cli_inputs_at_or_after_the_end_of_the_run_are_refused_naming_the_field() {
    let increment = json!({"type": "increment", "amount": 1});
    for (name, contents, field) in [
        (
            "late-action",
            scenario(json!({"run_ms": 100, "users": [
                {"name": "a", "machine": 1, "join_ms": 60, "actions": [[10, increment], [40, increment]]}
            ]})),
            "users[0].actions[1]",
        ),
        (
            "join-at-end",
            scenario(
                json!({"run_ms": 100, "users": [{"name": "a", "machine": 1, "join_ms": 100}]}),
            ),
            "users[0].join_ms",
        ),
        (
            "zero-run",
            scenario(json!({"run_ms": 0})),
            "users[0].join_ms",
        ),
        (
            "broadcast-at-end",
            json!({"application": "broadcast", "machines": 2, "run_ms": 1000, "nodes": 3,
                   "broadcasts": [{"at_ms": 10, "node": 0, "value": 1}, {"at_ms": 1000, "node": 1, "value": 2}]}),
            "broadcasts[1].at_ms",
        ),
    ] {
        assert_refused(
            name,
            &contents.to_string(),
            &[field, "at or after the run ends", "would never be played"],
        );
    }
}
