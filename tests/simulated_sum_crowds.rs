//! Users by rule (a sum section's `crowds`) in simulated mode: a rule expands to the same users
//! on every read, drawn amounts follow the scenario's `seed`, every invalid rule is refused
//! naming its field, a rule and the same users listed run to the same trace, the examples load
//! (a million users in a few lines) and run, and a file of 100,000 listed users is read.

mod sum_support;

use std::path::PathBuf;

use dist_zero::apps::builtin;
use dist_zero::apps::sum::{SumSection, UserAction};
use dist_zero::scenario::{simulate, RunOptions, Scenario, ScenarioError};
use serde_json::{json, Value};
use sum_support::{sum_outcome, sum_section};

fn parse(scenario: &Value) -> Result<Scenario, ScenarioError> {
    Scenario::parse(&scenario.to_string(), &builtin())
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A flat scenario of two crowds and a listed user, `changes` merged into its first crowd.
fn crowds(seed: u64, changes: Value) -> Value {
    let mut first = json!({
        "name": "visitor", "users": 40, "machines": {"from": 1, "to": 3},
        "join_from_ms": 0, "join_to_ms": 800,
        "increments": 4, "first_ms": 20, "every_ms": 70,
        "amount": {"from": -3, "to": 9}
    });
    if let (Some(crowd), Some(changes)) = (first.as_object_mut(), changes.as_object()) {
        crowd.extend(changes.clone());
    }
    json!({
        "machines": 4, "run_ms": 3000, "seed": seed,
        "network": {"latency_ms": {"mean": 15.0, "stddev": 3.0}, "drop": {"rate": 0.05}},
        "users": [{"name": "ann", "machine": 0, "join_ms": 100,
                   "actions": [[10, {"type": "increment", "amount": 5}]]}],
        "crowds": [first, {"name": "regular", "users": 5, "machines": [2, 0], "join_ms": 300,
                           "increments": 2, "every_ms": 100, "amount": 2}]
    })
}

/// Every user of `section` written out: name, machine, join, leave and actions.
fn listed(section: &SumSection) -> Vec<Value> {
    section
        .each_user()
        .map(|user| {
            let recording = user.recording().expect("a crowd's times are in order");
            let actions: Vec<Value> = recording
                .actions()
                .iter()
                .map(|(at, UserAction::Increment { amount })| {
                    json!([at.0, {"type": "increment", "amount": amount}])
                })
                .collect();
            let mut listed = json!({
                "name": user.name(), "machine": user.machine_id().0,
                "join_ms": user.join_ms().0, "actions": actions,
            });
            if let Some(leave) = user.leave_ms() {
                listed["leave_ms"] = json!(leave.0);
            }
            listed
        })
        .collect()
}

#[test]
fn simulated_crowds_expand_to_the_same_users_on_every_read_and_draw_from_the_seed() {
    let once = parse(&crowds(3, json!({}))).expect("valid");
    let again = parse(&crowds(3, json!({}))).expect("valid");
    let (once, again) = (sum_section(&once), sum_section(&again));
    assert_eq!(once.user_count(), 46);
    assert_eq!(listed(once), listed(again));
    let other_seed = parse(&crowds(4, json!({}))).expect("valid");
    let other = listed(sum_section(&other_seed));
    assert_ne!(listed(once), other, "drawn amounts follow the seed");
    let names = |users: &[Value]| -> Vec<Value> {
        users
            .iter()
            .map(|user| json!([user["name"], user["machine"], user["join_ms"]]))
            .collect()
    };
    assert_eq!(
        names(&listed(once)),
        names(&other),
        "who, where and when do not"
    );
    assert_eq!(listed(once)[1]["name"], "visitor 000000");
    assert_eq!(listed(once)[1]["machine"], 1);
    assert_eq!(listed(once)[4]["machine"], 1, "round-robin over 1..=3");
    assert_eq!(listed(once)[40]["join_ms"], 780);
    // The expected total is the sum of what the users do.
    let total: i64 = listed(once)
        .iter()
        .flat_map(|user| user["actions"].as_array().cloned().unwrap_or_default())
        .map(|action| action[1]["amount"].as_i64().expect("an amount"))
        .sum();
    assert_eq!(once.expected_total(), total);
}

#[test]
fn simulated_invalid_crowds_are_refused_naming_the_field() {
    let refused =
        |changes: Value| -> String { parse(&crowds(0, changes)).expect_err("invalid").to_string() };
    for (changes, field) in [
        (json!({"machines": [1, 4]}), "crowds[0].machines[1]"),
        (
            json!({"machines": {"from": 2, "to": 9}}),
            "crowds[0].machines.to",
        ),
        (json!({"machines": "some"}), "crowds[0].machines"),
        (json!({"users": 0}), "crowds[0].users"),
        (json!({"join_ms": 5}), "crowds[0].join_ms"),
        (json!({"join_to_ms": 0}), "crowds[0].join_to_ms"),
        (json!({"join_to_ms": 5000}), "crowds[0].join_to_ms"),
        (json!({"leave_ms": 900}), "crowds[0].leave_ms"),
        (json!({"every_ms": 1000}), "crowds[0].increments"),
        (
            json!({"amount": {"from": 2, "to": 1}}),
            "crowds[0].amount.to",
        ),
        (json!({"amount": "lots"}), "crowds[0].amount"),
        (json!({"name": "regular"}), "crowds[1].name"),
        (json!({"name": ""}), "crowds[0].name"),
        (json!({"colour": "red"}), "crowds[0]"),
    ] {
        let error = refused(changes.clone());
        assert!(
            error.contains(field),
            "{changes}: `{field}` not in: {error}"
        );
    }
    let mut clash = crowds(0, json!({}));
    clash["users"][0]["name"] = json!("regular 000004");
    let error = parse(&clash).expect_err("a name a crowd gives").to_string();
    assert!(
        error.contains("users[0].name") && error.contains("crowds[1]"),
        "{error}"
    );
    let mut not_a_clash = crowds(0, json!({}));
    not_a_clash["users"][0]["name"] = json!("regular 000005");
    assert!(parse(&not_a_clash).is_ok(), "the crowd has users 0 to 4");
}

#[test]
fn simulated_a_rule_and_the_same_users_listed_run_to_the_same_trace() {
    let rule = parse(&crowds(1, json!({}))).expect("valid");
    let mut written = crowds(1, json!({}));
    written["users"] = Value::Array(listed(sum_section(&rule)));
    written.as_object_mut().expect("an object").remove("crowds");
    let written = parse(&written).expect("valid");
    assert_eq!(
        sum_section(&rule).expected_total(),
        sum_section(&written).expected_total()
    );
    for seed in [0, 7] {
        let options = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let by_rule = simulate(&rule, &options).expect("runs");
        let by_list = simulate(&written, &options).expect("runs");
        assert!(by_rule.report.correct, "{}", by_rule.report.summary);
        assert_eq!(by_rule.report.trace_hash, by_list.report.trace_hash);
        assert_eq!(sum_outcome(&by_rule.report), sum_outcome(&by_list.report));
    }
}

#[test]
fn simulated_the_crowd_examples_load_and_the_small_one_is_exact() {
    let million = Scenario::load(&example("sum_million.json"), &builtin()).expect("valid");
    let section = sum_section(&million);
    assert_eq!(section.user_count(), 1_000_000);
    assert_eq!(million.machines, 1_000);
    assert_eq!(section.tree.map(|tree| tree.max_kids), Some(16));
    let small = Scenario::load(&example("sum_crowds.json"), &builtin()).expect("valid");
    for seed in 0..3 {
        let options = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let run = simulate(&small, &options).expect("runs");
        assert!(run.report.correct, "seed {seed}: {}", run.report.summary);
    }
}

#[test]
fn simulated_a_file_of_a_hundred_thousand_listed_users_is_read() {
    let dir = std::env::temp_dir().join(format!("dist-zero-crowds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("hundred-thousand.json");
    let users: Vec<String> = (0..100_000)
        .map(|index| {
            format!(
                r#"{{"name": "user {index:06}", "machine": {}, "join_ms": {}, "actions": [[50, {{"type": "increment", "amount": {}}}]]}}"#,
                index % 10,
                index / 20,
                index % 7
            )
        })
        .collect();
    let text = format!(
        "{{\"machines\": 10, \"run_ms\": 10000, \"users\": [\n{}\n]}}",
        users.join(",\n")
    );
    std::fs::write(&path, &text).expect("written");
    let loaded = Scenario::load(&path, &builtin());
    let _ = std::fs::remove_dir_all(&dir);
    let scenario = loaded.expect("a hundred thousand users are read");
    let section = sum_section(&scenario);
    assert_eq!(section.user_count(), 100_000);
    let expected: i64 = (0..100_000).map(|index| index % 7).sum();
    assert_eq!(section.expected_total(), expected);
}
