//! A library user's own binary in simulated mode: the example crate `examples/replicated-kv`
//! (its own node types and application, and a `main` that is `dist_zero::main(KvApp)`) is built
//! with cargo and gets the whole command line — runs with a JSON or readable report, seed sweeps
//! whose replay commands name the user's binary and reproduce the run, and input errors naming
//! the field, on lines that start with the binary's name.

mod user_app_support;

use std::process::Command;

use user_app_support::{assert_full_order, json_of, run, run_in, scenario, stderr, stdout};

#[test]
fn simulated_a_users_own_binary_runs_its_application() {
    let three = scenario("three_replicas.json");
    let output = run(&["run", &three, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(report["application"], "kv", "{report}");
    assert_eq!(report["mode"], "simulated", "{report}");
    assert_eq!(report["correct"], true, "{report}");
    assert_eq!(report["replicas"], 3, "{report}");
    assert_eq!(report["in_step"], 3, "{report}");
    assert_full_order(&report, 6);
    let keys: Vec<&String> = report["store"]
        .as_object()
        .map(|store| store.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["x", "y"], "{report}");
    assert!(
        report["faults"]["dropped"].as_u64() > Some(0),
        "the scenario drops: {report}"
    );

    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0), "{}", stderr(&version));
    assert!(
        stdout(&version).starts_with("replicated-kv (built with DistZero "),
        "{}",
        stdout(&version)
    );

    let output = run(&["run", &three]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("DistZero replicated key-value store, simulated mode, seed 1")
            && text.contains("3 machines, 3 replicas, 6 writes")
            && text.contains("correct: all 3 replicas applied all 6 writes in one order"),
        "{text}"
    );
}

#[test]
fn simulated_a_users_binary_reports_its_own_series() {
    let three = scenario("three_replicas.json");
    let dir = std::env::temp_dir().join(format!("dist-zero-kv-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let output = run_in(&dir, &["run", &three, "--report", "out"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let series = std::fs::read_to_string(dir.join("out/series.svg")).expect("the series plot");
    let diagram = std::fs::read_to_string(dir.join("out/diagram.svg")).expect("the diagram");
    let _ = std::fs::remove_dir_all(&dir);
    for text in [
        "writes each replica applied",
        "replica 0",
        "replica 2",
        "every write (6)",
    ] {
        assert!(series.contains(text), "{text}: {series}");
    }
    assert!(diagram.contains("class=\"lane\""), "{diagram}");
}

#[test]
fn simulated_a_users_binary_sweeps_fifty_seeds_of_a_rough_network() {
    let rough = scenario("rough_network.json");
    let output = run(&["run", &rough, "--seeds", "0..50", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let sweep = json_of(&output);
    assert_eq!(sweep["seeds"], 50, "{sweep}");
    assert_eq!(sweep["correct"], 50, "{sweep}");
}

#[test]
fn simulated_a_users_binary_prints_replays_that_name_it_and_reproduce_the_seed() {
    let three = scenario("three_replicas.json");
    let output = run(&["run", &three, "--seeds", "0..20", "--unreliable", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let sweep = json_of(&output);
    let failing = sweep["failing"].as_array().expect("failing seeds");
    let first = failing.first().unwrap_or_else(|| panic!("{sweep}"));
    let seed = first["seed"].as_u64().expect("a seed");
    let replay = first["replay"].as_str().expect("a replay command");
    // Started by its path and not on PATH: the replay names the path.
    assert!(
        replay.starts_with(&format!(
            "{} run {three} --seed {seed} --unreliable",
            user_app_support::binary().display()
        )),
        "{replay}"
    );

    // The user's binary on the PATH, as a user who installed it has it; each replay in its own
    // directory writes the same trace.
    let work = std::env::temp_dir().join(format!("dist-zero-user-app-{}", std::process::id()));
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).expect("bin is created");
    let linked = bin.join("replicated-kv");
    let _ = std::fs::remove_file(&linked);
    std::os::unix::fs::symlink(user_app_support::binary(), &linked).expect("linked");
    let search = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut traces = Vec::new();
    for attempt in ["a", "b"] {
        let dir = work.join(attempt);
        std::fs::create_dir_all(&dir).expect("the replay dir is created");
        let output = Command::new("sh")
            .arg("-c")
            .arg(replay)
            .current_dir(&dir)
            .env("PATH", &search)
            .env("DIST_ZERO_LOG", "warn")
            .output()
            .expect("sh runs");
        assert_ne!(output.status.code(), Some(0), "{replay}: the seed fails");
        let trace = std::fs::read_to_string(dir.join(format!("seed-{seed}.trace")))
            .unwrap_or_else(|e| panic!("{replay}: no trace: {e}"));
        assert!(trace.contains("KvReplica"), "the user's nodes ran: {trace}");
        traces.push(trace);
    }
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(traces[0], traces[1], "a replay is deterministic");
}

#[test]
fn simulated_a_users_binary_refuses_other_applications_and_bad_fields() {
    let dir = std::env::temp_dir().join(format!("dist-zero-user-app-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the temp dir is created");
    let sum = dir.join("sum.json");
    std::fs::write(
        &sum,
        r#"{"application": "sum", "machines": 1, "run_ms": 10, "users": []}"#,
    )
    .expect("written");
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"application": "kv", "machines": 2, "run_ms": 100, "replicas": 2,
            "writes": [{"at_ms": 5, "replica": 2, "key": "x", "value": 1}]}"#,
    )
    .expect("written");
    for (path, needle) in [
        (&sum, "no application `sum`; this program knows kv"),
        (&bad, "writes[0].replica"),
    ] {
        let output = run_in(&dir, &["run", path.to_str().expect("UTF-8"), "--json"]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let error = json_of(&output);
        assert_eq!(error["kind"], "bad_input", "{error}");
        let err = stderr(&output);
        assert!(
            err.starts_with("replicated-kv: invalid scenario: ") && err.contains(needle),
            "errors are the binary's own: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
