//! Property tests of simulated mode (proptest).
//!
//! - Convergence: for random users (1..30), actions (amounts -5..=20 at random times), machines
//!   (1..8), join times, latency models and seeds, once the run lasts 500 ms past the last join
//!   plus the last action time, every user's output equals the total of all increments.
//! - Robustness (fuzz-ish): no JSON value, string or byte string makes `Message::from_bytes` or
//!   `Scenario::parse` panic; a JSON object with a string `"type"` is always a message and
//!   anything else never is.
//! - Scenarios the parser accepts, with extreme (but valid) numbers — an action at the horizon, a
//!   run that ends at it, amounts whose sum over users overflows a 64-bit total — run without
//!   panicking; the parser refuses times beyond the horizon.
//!
//! Case counts are kept small so the whole file runs in a few seconds in a debug build.

mod sum_support;

use dist_zero::apps::builtin;
use dist_zero::messages::Message;
use dist_zero::scenario::{simulate, RunOptions, Scenario};
use dist_zero::time::{Millis, HORIZON};
use proptest::prelude::*;
use serde_json::{json, Value};
use sum_support::{sum_outcome, sum_section};

/// One generated user: a raw machine number (reduced modulo the machine count), a join time and
/// `(time, amount)` actions in any order (sorted before use).
#[derive(Debug, Clone)]
struct GeneratedUser {
    machine: u32,
    join_ms: u64,
    actions: Vec<(u64, i64)>,
}

fn user_strategy() -> impl Strategy<Value = GeneratedUser> {
    (
        any::<u32>(),
        0u64..400,
        prop::collection::vec((0u64..400, -5i64..=20), 0..6),
    )
        .prop_map(|(machine, join_ms, actions)| GeneratedUser {
            machine,
            join_ms,
            actions,
        })
}

/// A `latency_ms` object: normal, uniform or constant.
fn latency_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0.0f64..40.0, 0.0f64..10.0).prop_map(
            |(mean, stddev)| json!({"distribution": "normal", "mean": mean, "stddev": stddev})
        ),
        (0.0f64..30.0, 0.0f64..30.0).prop_map(|(a, b)| {
            json!({"distribution": "uniform", "min": a.min(b), "max": a.max(b)})
        }),
        (0.0f64..50.0).prop_map(|mean| json!({"distribution": "constant", "mean": mean})),
    ]
}

/// The scenario for generated users, lasting 500 ms past the last join plus the last action.
/// Built as JSON and parsed, as a user's scenario file would be.
fn scenario_of(machines: u32, users: &[GeneratedUser], latency: Value, seed: u64) -> Scenario {
    let last_join = users.iter().map(|user| user.join_ms).max().unwrap_or(0);
    let last_action = users
        .iter()
        .flat_map(|user| user.actions.iter().map(|(at, _)| *at))
        .max()
        .unwrap_or(0);
    let users: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(index, user)| {
            let mut actions = user.actions.clone();
            actions.sort_by_key(|(at, _)| *at);
            let actions: Vec<Value> = actions
                .into_iter()
                .map(|(at, amount)| json!([at, {"type": "increment", "amount": amount}]))
                .collect();
            json!({
                "name": format!("user {index}"),
                "machine": user.machine % machines,
                "join_ms": user.join_ms,
                "actions": actions,
            })
        })
        .collect();
    let document = json!({
        "machines": machines,
        "run_ms": last_join + last_action + 500,
        "seed": seed,
        "network": {"latency_ms": latency},
        "users": users,
    });
    Scenario::parse(&document.to_string(), &builtin()).expect("a generated scenario is valid")
}

/// Any JSON value, nested a few levels.
fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("type"),
            Just("increment"),
            Just("amount"),
            Just("machines"),
            Just("users"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key_strategy(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Object keys: mostly the names DistZero looks for, so parsing gets past the first check.
fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop_oneof![
            Just("type"),
            Just("amount"),
            Just("machines"),
            Just("run_ms"),
            Just("seed"),
            Just("users"),
            Just("network"),
            Just("name"),
            Just("machine"),
            Just("join_ms"),
            Just("actions"),
        ]
        .prop_map(str::to_owned),
        1 => "[a-z_]{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn simulated_every_output_converges_to_the_total(
        machines in 1u32..8,
        users in prop::collection::vec(user_strategy(), 1..30),
        latency in latency_strategy(),
        seed in any::<u64>(),
    ) {
        let scenario = scenario_of(machines, &users, latency, seed);
        let total: i64 = users
            .iter()
            .flat_map(|user| user.actions.iter().map(|(_, amount)| *amount))
            .sum();
        prop_assert_eq!(sum_section(&scenario).expected_total(), total);

        let report = simulate(&scenario, &RunOptions::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .report;
        prop_assert_eq!(sum_outcome(&report).outputs.len(), users.len());
        for (user, output) in &sum_outcome(&report).outputs {
            prop_assert_eq!(*output, Some(total), "user {} of {:?}", user, sum_outcome(&report).outputs);
        }
        prop_assert!(report.correct);
        prop_assert_eq!(report.seed, seed);
        prop_assert_eq!(report.simulated_ms, scenario.run_ms);
    }

    #[test]
    fn simulated_any_json_value_is_a_message_exactly_when_it_is_a_typed_object(
        value in json_strategy(),
    ) {
        let bytes = serde_json::to_vec(&value).expect("a JSON value serializes");
        let parsed = Message::from_bytes(&bytes);
        match value.as_object().and_then(|object| object.get("type")) {
            Some(Value::String(kind)) => {
                let message = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(message.kind(), kind.as_str());
                // The wire form is the text that came in, byte for byte (comparing parsed values
                // instead would trip over serde_json's default, not exactly rounded, float
                // parsing), and it round-trips.
                prop_assert_eq!(message.as_json().as_bytes(), &bytes[..]);
                prop_assert_eq!(Message::from_bytes(&message.to_bytes()), Ok(message.clone()));
            }
            _ => prop_assert!(parsed.is_err(), "{} was accepted", value),
        }
        // And as a scenario: an error or a scenario, never a panic.
        let text = String::from_utf8(bytes).expect("JSON is UTF-8");
        let _ = Scenario::parse(&text, &builtin());
    }

    #[test]
    fn simulated_arbitrary_text_and_bytes_never_panic_the_parsers(
        text in ".{0,64}",
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = Message::from_bytes(text.as_bytes());
        let _ = Message::from_bytes(&bytes);
        if let Ok(scenario) = Scenario::parse(&text, &builtin()) {
            prop_assert!(scenario.machines >= 1);
        }
    }

    #[test]
    fn simulated_scenario_shaped_json_never_panics_the_parser(
        machines in json_strategy(),
        run_ms in json_strategy(),
        name in json_strategy(),
        machine in json_strategy(),
        join_ms in json_strategy(),
        actions in json_strategy(),
        amount in json_strategy(),
    ) {
        let documents = [
            json!({"machines": machines, "run_ms": run_ms, "users": [
                {"name": name, "machine": machine, "join_ms": join_ms, "actions": actions}
            ]}),
            json!({"machines": 2, "run_ms": 10, "users": [
                {"name": "u", "machine": 1, "join_ms": 0,
                 "actions": [[0, {"type": "increment", "amount": amount}]]}
            ]}),
        ];
        for document in documents {
            if let Ok(scenario) = Scenario::parse(&document.to_string(), &builtin()) {
                prop_assert!(scenario.validate().is_ok());
                prop_assert!(sum_section(&scenario).users.iter().all(|user| user.machine < scenario.machines));
            }
        }
    }
}

/// Parses `text`, which the parser must accept, runs it for at most `limit`, and returns
/// whether every output was correct, or why the run stopped.
fn run_accepted(text: &str, limit: Millis) -> Result<bool, String> {
    let mut scenario = Scenario::parse(text, &builtin())
        .unwrap_or_else(|e| panic!("the parser must accept this scenario: {e}"));
    scenario.run_ms = scenario.run_ms.min(limit);
    let run = simulate(&scenario, &RunOptions::default()).map_err(|e| e.to_string())?;
    Ok(run.report.correct)
}

/// A one-user scenario on two machines whose actions are `actions` (JSON `[ms, message]` pairs).
fn one_user(run_ms: u64, join_ms: u64, actions: &str) -> String {
    format!(
        r#"{{"machines": 2, "run_ms": {run_ms}, "users": [{{"name": "u", "machine": 1,
            "join_ms": {join_ms}, "actions": {actions}}}]}}"#
    )
}

#[test]
fn simulated_accepted_scenario_with_a_huge_action_time_does_not_panic() {
    // The latest action the parser accepts is just before a run that ends at the horizon; the
    // run is cut at 200 ms, before it, so the output misses its increment.
    let at_the_horizon = one_user(
        HORIZON.0,
        0,
        &format!(
            r#"[[0, {{"type": "increment", "amount": 1}}], [{}, {{"type": "increment", "amount": 1}}]]"#,
            HORIZON.0 - 1
        ),
    );
    let outcome = std::panic::catch_unwind(|| run_accepted(&at_the_horizon, Millis(200)))
        .expect("a scenario the parser accepted must not panic the simulator");
    assert_eq!(outcome, Ok(false));
    // One millisecond later, or at i64::MAX ms, the time is refused, naming the action.
    for beyond in [HORIZON.0 + 1, i64::MAX as u64] {
        let text = one_user(
            200,
            0,
            &format!(r#"[[{beyond}, {{"type": "increment", "amount": 1}}]]"#),
        );
        let error = Scenario::parse(&text, &builtin()).expect_err("beyond the horizon");
        assert!(error.to_string().contains("users[0].actions[0]"), "{error}");
    }
}

#[test]
fn simulated_accepted_scenario_at_the_horizon_runs_to_a_correct_end() {
    // Everything happens in the last second before the horizon: every time, in microseconds,
    // plus latencies and the runtime's timers, still fits, so the run is as correct as at 0.
    let text = one_user(
        HORIZON.0,
        HORIZON.0 - 1000,
        r#"[[0, {"type": "increment", "amount": 2}], [500, {"type": "increment", "amount": 3}]]"#,
    );
    let scenario = Scenario::parse(&text, &builtin()).expect("accepted");
    let report = simulate(&scenario, &RunOptions::default())
        .expect("the run completes")
        .report;
    assert_eq!(report.simulated_ms, HORIZON);
    assert_eq!(
        sum_outcome(&report).outputs.get("u"),
        Some(&Some(5)),
        "{report:?}"
    );
    assert!(report.correct && report.settled, "{report:?}");
}

#[test]
fn simulated_accepted_scenario_with_the_largest_amount_delivered_twice_counts_it_once() {
    // The largest amount the parser accepts (the magnitudes add up to at most i64::MAX), and a
    // network that delivers every increment twice with reliable delivery off: every report
    // carries its sender's running total, so the copy changes nothing (before reports carried
    // their sender's total, the copy overflowed the sum node's total).
    let text = format!(
        r#"{{"machines": 2, "run_ms": 500, "reliable_delivery": false,
            "network": {{"duplicate": {{"rate": 1.0, "types": "increment"}}}},
            "users": [{{"name": "u", "machine": 1,
                "actions": [[0, {{"type": "increment", "amount": {max}}}]]}}]}}"#,
        max = i64::MAX
    );
    let outcome = std::panic::catch_unwind(|| run_accepted(&text, Millis(500)))
        .expect("a scenario the parser accepted must not panic the simulator");
    assert_eq!(
        outcome,
        Ok(true),
        "the copy of the report is not counted again"
    );
}
