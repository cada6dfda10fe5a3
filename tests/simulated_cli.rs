//! The `dist-zero` binary in simulated mode, run as a user runs it.
//!
//! `run FILE --json` prints exactly one JSON object with the report's fields and exits 0 when
//! correct; `--seed` overrides the scenario's seed; `demo --json` is correct; the readable summary
//! says `correct`; a run whose outputs have not converged exits 1; and every kind of bad input —
//! unreadable file, invalid JSON, missing or mistyped field, machine out of range, actions out of
//! order, negative time, unavailable mode, unknown subcommand or flag — exits 2 with one line on
//! stderr naming the problem, and with `--json` (usage errors aside) one error object on stdout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
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

/// Runs `args` and parses the single JSON object it must print.
fn json_report(args: &[&str]) -> (Output, Value) {
    let output = dist_zero(args);
    let text = stdout(&output);
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "exactly one line on stdout, got:\n{text}\nstderr:\n{}",
        stderr(&output)
    );
    let report: Value = serde_json::from_str(text.trim_end()).expect("stdout is one JSON value");
    assert!(report.is_object(), "{report}");
    (output, report)
}

/// A scenario file with `contents` in a fresh temporary directory, removed on drop.
struct TempScenario {
    dir: PathBuf,
    path: PathBuf,
}

impl TempScenario {
    fn new(name: &str, contents: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dist-zero-simulated-cli-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, contents).expect("the scenario is written");
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

/// Runs `run FILE` on `contents`, with and without `--json`, and checks it is rejected as bad
/// input with one stderr line (and with `--json` one error object) containing every one of
/// `needles`.
fn assert_bad_scenario(name: &str, contents: &str, needles: &[&str]) {
    let scenario = TempScenario::new(name, contents);
    assert_bad_input(&["run", scenario.path(), "--json"], needles);
    assert_bad_input(&["run", scenario.path()], needles);
}

/// Runs `args` and checks that they are refused as bad input: exit 2 and one line on stderr
/// containing every one of `needles`; on stdout nothing, or with `--json` exactly one error
/// object saying the same.
fn assert_bad_input(args: &[&str], needles: &[&str]) {
    assert_refused(args, needles, "bad_input");
}

/// As [`assert_bad_input`], for an error object of kind `kind`.
fn assert_refused(args: &[&str], needles: &[&str], kind: &str) {
    let output = &dist_zero(args);
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "exit status; stderr:\n{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line:\n{err}");
    assert!(err.starts_with("dist-zero: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
    if !args.contains(&"--json") {
        assert_eq!(stdout(output), "", "nothing on stdout");
        return;
    }
    let error = error_object(output);
    assert_eq!(error["exit_code"], 2, "{error}");
    assert_eq!(error["kind"], kind, "{error}");
    let message = error["error"].as_str().expect("an error message");
    assert_eq!(format!("dist-zero: {message}"), err.trim_end());
}

/// The one JSON error object `output` printed on stdout.
fn error_object(output: &Output) -> Value {
    let text = stdout(output);
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "one line on stdout:\n{text}"
    );
    let error: Value = serde_json::from_str(text.trim_end()).expect("stdout is one JSON value");
    assert!(
        error["error"].is_string() && error["exit_code"].is_u64(),
        "an error object: {error}"
    );
    error
}

#[test]
fn simulated_cli_run_json_prints_one_correct_report() {
    let path = example("sum_of_two.json");
    let path = path.to_str().expect("UTF-8 path");
    let (output, report) = json_report(&["run", path, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for key in [
        "mode",
        "seed",
        "simulated_ms",
        "wall_ms",
        "events",
        "messages_delivered",
        "expected_total",
        "outputs",
        "correct",
        "settled",
        "in_flight",
    ] {
        assert!(report.get(key).is_some(), "`{key}` missing from {report}");
    }
    assert_eq!(report["mode"], "simulated");
    assert_eq!(report["seed"], 1);
    assert_eq!(report["simulated_ms"], 700);
    assert!(report["wall_ms"].is_number(), "{report}");
    assert!(report["events"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert!(
        report["messages_delivered"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert_eq!(report["expected_total"], 4);
    assert_eq!(
        report["outputs"],
        serde_json::json!({"user b": 4, "user c": 4})
    );
    assert_eq!(report["correct"], true);
    assert_eq!(report["settled"], true);
    assert_eq!(report["in_flight"], 0);
}

#[test]
fn simulated_cli_seed_flag_overrides_the_scenario_seed() {
    let path = example("sum_of_two.json");
    let path = path.to_str().expect("UTF-8 path");
    let (output, report) = json_report(&["run", path, "--seed", "5", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(report["seed"], 5);
    assert_eq!(report["correct"], true);
    let (_, original) = json_report(&["run", path, "--json"]);
    assert_eq!(original["seed"], 1);
    assert_ne!(
        report["trace_hash"], original["trace_hash"],
        "another seed, another run"
    );
}

#[test]
fn simulated_cli_same_seed_gives_the_same_trace_hash() {
    let path = example("three_users.json");
    let path = path.to_str().expect("UTF-8 path");
    let (first_output, first) = json_report(&["run", path, "--json"]);
    let (_, second) = json_report(&["run", path, "--json"]);
    assert_eq!(first_output.status.code(), Some(0));
    assert!(first["trace_hash"].is_string(), "{first}");
    assert_eq!(first["trace_hash"], second["trace_hash"]);
    assert_eq!(first["events"], second["events"]);
    assert_eq!(first["expected_total"], 6);
    assert_eq!(first["correct"], true);
}

#[test]
fn simulated_cli_example_scenarios_are_correct() {
    for name in ["sum_of_two.json", "three_users.json", "late_joiner.json"] {
        let path = example(name);
        let (output, report) = json_report(&["run", path.to_str().expect("UTF-8"), "--json"]);
        assert_eq!(output.status.code(), Some(0), "{name}: {report}");
        assert_eq!(report["correct"], true, "{name}: {report}");
    }
}

#[test]
fn simulated_cli_demo_json_is_correct() {
    let (output, report) = json_report(&["demo", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(report["mode"], "simulated");
    assert_eq!(report["correct"], true);
    assert_eq!(report["users"], 6);
    assert_eq!(report["machines"], 3);
    assert_eq!(report["outputs"].as_object().map(|o| o.len()), Some(6));

    let (output, report) = json_report(&[
        "demo",
        "--machines",
        "5",
        "--users",
        "40",
        "--increments",
        "3",
        "--seed",
        "9",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(report["seed"], 9);
    assert_eq!(report["users"], 40);
    assert_eq!(report["correct"], true);
}

#[test]
fn simulated_cli_human_summary_says_correct() {
    let path = example("sum_of_two.json");
    let output = dist_zero(&["run", path.to_str().expect("UTF-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.trim_start().starts_with('{'), "not JSON:\n{text}");
    assert!(text.contains("simulated mode, seed 1"), "{text}");
    assert!(text.contains("expected total: 4"), "{text}");
    assert!(text.contains("user b"), "{text}");
    assert!(text.contains("correct"), "{text}");
    assert!(!text.contains("WRONG"), "{text}");

    let demo = dist_zero(&["demo"]);
    assert_eq!(demo.status.code(), Some(0));
    assert!(
        stdout(&demo).contains("correct: all 6 outputs"),
        "{}",
        stdout(&demo)
    );
}

#[test]
fn simulated_cli_unconverged_run_exits_one() {
    // Cut off 10 ms after the last increment (user c's, at 140 ms), before it reaches the
    // outputs.
    let text = std::fs::read_to_string(example("sum_of_two.json"))
        .expect("the example is readable")
        .replace("\"run_ms\": 700", "\"run_ms\": 150");
    assert!(
        text.contains("\"run_ms\": 150"),
        "the example changed shape"
    );
    let scenario = TempScenario::new("unconverged", &text);
    let (output, report) = json_report(&["run", scenario.path(), "--json"]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert_eq!(report["correct"], false);
    assert_eq!(report["expected_total"], 4);

    let human = dist_zero(&["run", scenario.path()]);
    assert_eq!(human.status.code(), Some(1));
    assert!(stdout(&human).contains("WRONG"), "{}", stdout(&human));
}

#[test]
fn simulated_cli_unreadable_file_is_bad_input() {
    let missing = std::env::temp_dir().join(format!(
        "dist-zero-simulated-cli-{}-does-not-exist.json",
        std::process::id()
    ));
    let missing = missing.to_str().expect("UTF-8 path");
    for args in [vec!["run", missing, "--json"], vec!["run", missing]] {
        assert_bad_input(&args, &["cannot read scenario", missing]);
    }
}

#[test]
fn simulated_cli_invalid_json_is_bad_input() {
    assert_bad_scenario(
        "invalid-json",
        r#"{"machines": 2, "run_ms": "#,
        &["invalid scenario", "EOF"],
    );
}

#[test]
fn simulated_cli_missing_field_is_bad_input() {
    assert_bad_scenario(
        "missing-machines",
        r#"{"run_ms": 100, "users": []}"#,
        &["missing field", "machines"],
    );
}

#[test]
fn simulated_cli_mistyped_field_is_bad_input() {
    assert_bad_scenario(
        "mistyped-machine",
        r#"{"machines": 2, "run_ms": 100, "users": [{"name": "a", "machine": "one"}]}"#,
        &["users[0].machine", "invalid type"],
    );
}

#[test]
fn simulated_cli_machine_out_of_range_is_bad_input() {
    assert_bad_scenario(
        "machine-out-of-range",
        r#"{"machines": 2, "run_ms": 100, "users": [{"name": "a", "machine": 0}, {"name": "b", "machine": 5}]}"#,
        &["users[1].machine", "out of range"],
    );
}

#[test]
fn simulated_cli_actions_out_of_order_are_bad_input() {
    assert_bad_scenario(
        "out-of-order",
        r#"{"machines": 1, "run_ms": 100, "users": [{"name": "a", "machine": 0, "actions": [
            [40, {"type": "increment", "amount": 1}],
            [10, {"type": "increment", "amount": 1}]]}]}"#,
        &["users[0].actions[1]", "in order"],
    );
}

#[test]
fn simulated_cli_negative_time_is_bad_input() {
    assert_bad_scenario(
        "negative-action",
        r#"{"machines": 1, "run_ms": 100, "users": [{"name": "a", "machine": 0, "actions": [
            [-3, {"type": "increment", "amount": 1}]]}]}"#,
        &["users[0].actions[0]", "negative"],
    );
    assert_bad_scenario(
        "negative-join",
        r#"{"machines": 1, "run_ms": 100, "users": [{"name": "a", "machine": 0, "join_ms": -10}]}"#,
        &["users[0].join_ms", "negative"],
    );
}

#[test]
#[cfg(not(feature = "cloud"))]
fn simulated_cli_unavailable_mode_is_bad_input() {
    let path = example("sum_of_two.json");
    let path = path.to_str().expect("UTF-8 path");
    assert_bad_input(&["run", path, "--mode", "cloud"], &["cloud"]);
    assert_bad_input(&["run", path, "--mode", "cloud", "--json"], &["cloud"]);
}

/// With the cloud feature, cloud mode without a machine image (and no emulator) is refused
/// before anything is created, as hardware that is not there.
#[test]
#[cfg(feature = "cloud")]
fn simulated_cli_cloud_mode_without_an_image_is_unavailable() {
    let path = example("sum_of_two.json");
    let path = path.to_str().expect("UTF-8 path");
    for json in [false, true] {
        let mut args = vec!["run", path, "--mode", "cloud"];
        if json {
            args.push("--json");
        }
        assert_refused(&args, &["DIST_ZERO_CLOUD_IMAGE"], "unavailable");
    }
}

#[test]
fn simulated_cli_unknown_subcommand_or_flag_exits_two_with_one_line() {
    let path = example("sum_of_two.json");
    let path = path.to_str().expect("UTF-8 path");
    for (args, needle) in [
        (vec!["frobnicate"], "frobnicate"),
        (vec!["run", path, "--bogus"], "--bogus"),
        (vec!["run", path, "--seed", "-1", "--json"], "-1"),
        (vec!["run", path, "--seed", "x"], "--seed"),
        (vec!["run"], "SCENARIO"),
    ] {
        let output = dist_zero(&args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(stdout(&output), "", "{args:?}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line:\n{err}"
        );
        assert!(err.starts_with("dist-zero: "), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: `{needle}` missing from {err}"
        );
    }
    let help = dist_zero(&["run", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("--max-events"), "{}", stdout(&help));
}

#[test]
fn simulated_a_closed_stdout_ends_the_output_quietly() {
    use std::process::Stdio;
    // `dist-zero run … --seeds … | head -1`: the reader is gone before the sweep prints.
    let mut child = Command::new(env!("CARGO_BIN_EXE_dist-zero"))
        .args([
            "run",
            example("all_faults.json").to_str().expect("UTF-8"),
            "--seeds",
            "0..40",
            "--unreliable",
        ])
        .env("DIST_ZERO_LOG", "warn")
        .env("DIST_ZERO_ENV", "test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the dist-zero binary runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("it ends");
    let errors = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the sweep's own status (some seeds fail unreliably), not a panic's 101: {errors}"
    );
    assert!(
        !errors.contains("panicked") && !errors.contains("Broken pipe"),
        "{errors}"
    );
}

/// Starts a sweep of a hundred million seeds (hours), lets it run a moment, sends it `signal`
/// with `kill`, and returns what it printed and its status.
fn stopped_sweep(signal: &str, json: bool) -> (Output, std::time::Duration) {
    use std::process::Stdio;
    let mut args = vec![
        "run".to_owned(),
        example("all_faults.json").display().to_string(),
        "--seeds".to_owned(),
        "0..100000000".to_owned(),
        "--unreliable".to_owned(),
        "--max-failing".to_owned(),
        "5".to_owned(),
    ];
    if json {
        args.push("--json".to_owned());
    }
    let child = Command::new(env!("CARGO_BIN_EXE_dist-zero"))
        .args(&args)
        .env("DIST_ZERO_LOG", "warn")
        .env("DIST_ZERO_ENV", "test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the dist-zero binary runs");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = std::time::Instant::now();
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let output = child.wait_with_output().expect("the sweep ends");
    (output, sent.elapsed())
}

#[test]
fn simulated_a_sweep_stopped_by_sigint_prints_what_ran() {
    let (output, took) = stopped_sweep("-INT", false);
    let printed = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(130),
        "{printed}{}",
        stderr(&output)
    );
    assert!(
        took.as_secs() < 20,
        "it stopped soon after the signal: {took:?}"
    );
    let last = printed.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("stopped by SIGINT after ") && last.contains(" of 100000000 seeds: "),
        "{printed}"
    );
    // all_faults.json without reliable delivery fails on every seed: the lowest 5 are listed.
    assert_eq!(printed.matches("  replay: ").count(), 5, "{printed}");
    assert!(
        printed.contains("more failing seeds, counted but not listed"),
        "{printed}"
    );
}

#[test]
fn simulated_a_sweep_stopped_by_sigterm_prints_one_json_object() {
    let (output, _) = stopped_sweep("-TERM", true);
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    let report: Value = serde_json::from_str(text.trim_end()).expect("one JSON object");
    assert_eq!(report["stopped_by"], "SIGTERM", "{report}");
    assert_eq!(report["requested"], 100_000_000u64, "{report}");
    let ran = report["seeds"].as_u64().expect("a count");
    assert!(ran > 0 && ran < 100_000_000, "{report}");
    assert_eq!(report["failed"].as_u64(), Some(ran), "{report}");
    assert_eq!(
        report["failing"].as_array().map(Vec::len),
        Some(5),
        "{report}"
    );
}

#[test]
fn simulated_a_sweep_on_a_terminal_shows_its_progress() {
    // `script` gives the sweep a terminal (its stdout and stderr both go to it).
    let command = format!(
        "{} run {} --seeds 0..1000",
        env!("CARGO_BIN_EXE_dist-zero"),
        example("all_faults.json").display()
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("DIST_ZERO_LOG", "warn")
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("/1000 seeds"), "a progress bar: {shown}");
    assert!(shown.contains("1000 of 1000 seeds correct"), "{shown}");
    // Without a terminal, no bar.
    let plain = dist_zero(&[
        "run",
        example("all_faults.json").to_str().expect("UTF-8"),
        "--seeds",
        "0..50",
    ]);
    assert!(!stderr(&plain).contains("seeds"), "{}", stderr(&plain));
}

#[test]
fn simulated_a_sweep_counts_every_failure_and_lists_the_lowest_few() {
    let all_faults = example("all_faults.json");
    let all_faults = all_faults.to_str().expect("UTF-8");
    // Without reliable delivery, every seed of all_faults.json fails.
    let (output, report) = json_report(&[
        "run",
        all_faults,
        "--seeds",
        "0..300",
        "--unreliable",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report["seeds"], 300, "{report}");
    assert_eq!(report["failed"], 300, "{report}");
    let listed: Vec<u64> = report["failing"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|failure| failure["seed"].as_u64())
        .collect();
    assert_eq!(
        listed,
        (0..100).collect::<Vec<_>>(),
        "the lowest 100 by default"
    );
    let few = dist_zero(&[
        "run",
        all_faults,
        "--seeds",
        "0..300",
        "--unreliable",
        "--max-failing",
        "7",
    ]);
    let printed = stdout(&few);
    assert_eq!(printed.matches("  replay: ").count(), 7, "{printed}");
    assert!(
        printed.contains("... and 293 more failing seeds, counted but not listed"),
        "{printed}"
    );
    assert!(printed.ends_with("0 of 300 seeds correct\n"), "{printed}");
    let lone = dist_zero(&["run", all_faults, "--max-failing", "7"]);
    assert_eq!(lone.status.code(), Some(2), "--max-failing needs --seeds");
}

#[test]
fn simulated_a_replay_command_names_the_binary_as_it_can_be_started() {
    let all_faults = example("all_faults.json");
    let all_faults = all_faults.to_str().expect("UTF-8");
    let args = [
        "run",
        all_faults,
        "--seeds",
        "0..2",
        "--unreliable",
        "--json",
    ];
    let replay = |output: &Output| -> String {
        let report: Value = serde_json::from_str(stdout(output).trim_end()).expect("JSON");
        report["failing"][0]["replay"]
            .as_str()
            .expect("a replay")
            .to_owned()
    };
    // Started by its path, not on PATH: the replay names the path.
    let by_path = Command::new(env!("CARGO_BIN_EXE_dist-zero"))
        .args(args)
        .env("PATH", "/usr/bin:/bin")
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("runs");
    let command = replay(&by_path);
    assert!(
        command.starts_with(&format!("{} run ", env!("CARGO_BIN_EXE_dist-zero"))),
        "{command}"
    );
    // Started by its name, found on PATH: the name alone.
    let bin = Path::new(env!("CARGO_BIN_EXE_dist-zero"))
        .parent()
        .expect("a directory");
    let by_name = Command::new("dist-zero")
        .args(args)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("runs");
    let command = replay(&by_name);
    assert!(command.starts_with("dist-zero run "), "{command}");
}

#[test]
fn simulated_a_replay_command_names_a_non_utf8_scenario_path_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::env::temp_dir().join(format!("dist-zero-cli-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.json");
    std::fs::copy(example("all_faults.json"), dir.join(name)).expect("copied");
    let output = Command::new(env!("CARGO_BIN_EXE_dist-zero"))
        .args([
            std::ffi::OsStr::new("run"),
            name,
            "--seeds".as_ref(),
            "0..1".as_ref(),
            "--unreliable".as_ref(),
            "--json".as_ref(),
        ])
        .current_dir(&dir)
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("runs");
    let report: Value = serde_json::from_str(stdout(&output).trim_end()).expect("JSON");
    let replay = report["failing"][0]["replay"].as_str().expect("a replay");
    // The replay, through sh, runs the same file: it fails the same way and writes its trace.
    let again = Command::new("sh")
        .args(["-c", replay])
        .current_dir(&dir)
        .env("DIST_ZERO_ENV", "test")
        .output()
        .expect("sh runs");
    let trace = dir.join("seed-0.trace").exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(again.status.code(), Some(1), "{replay}: {}", stderr(&again));
    assert!(trace, "{replay} wrote its trace");
}
