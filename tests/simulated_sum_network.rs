//! The sum network in simulated mode, end to end.
//!
//! Ports of the original Python project's three tests (recorded-user times must be in order; the
//! sum of two users reaches 4; three recorded users reach 6), an output leaf that joins after
//! increments already flowed (it starts from the running total and then follows changes), and the
//! example scenarios in `examples/` (the issue's `sum_of_two.json`, `three_users.json`,
//! `late_joiner.json`).
//!
//! Some tests drive [`SimulatedHardware`] by hand — spawning the roots and sending `add_kid`
//! messages exactly as the scenario runner does — to show the library API; the others go through
//! [`run_scenario`] and [`simulate`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use dist_zero::hardware::simulated::{NetworkConfig, SimulationConfig};
use dist_zero::hardware::{Hardware, SimulatedHardware};
use dist_zero::messages::{MachineId, Message, NodeHandle};
use dist_zero::node::NodeRegistry;
use dist_zero::scenario::{run_scenario, simulate, Progress, RunOptions, Scenario};
use dist_zero::sum_network::{
    InputNode, OutputLeafNode, OutputNode, RecordedUser, RecordedUserError, SumMessage, SumNode,
};
use dist_zero::time::Millis;
use serde_json::json;

fn increment(amount: i64) -> Message {
    Message::new(json!({"type": "increment", "amount": amount})).expect("an increment is valid")
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn hardware(machines: u32, seed: u64) -> SimulatedHardware {
    SimulatedHardware::new(
        SimulationConfig {
            machines,
            seed,
            network: NetworkConfig::default(),
            keep_trace_text: false,
            reliable: true,
        },
        Arc::new(NodeRegistry::with_builtins()),
    )
    .expect("the default network is valid")
}

/// The roots of a sum network, built by hand as the scenario runner builds them.
struct SumNetwork {
    sum: NodeHandle,
    input: NodeHandle,
    output: NodeHandle,
}

impl SumNetwork {
    fn build(hardware: &mut SimulatedHardware) -> Self {
        let root = MachineId(0);
        let sum = hardware
            .spawn(root, &SumNode::config())
            .expect("the sum node starts");
        let input = hardware
            .spawn(
                root,
                &InputNode::config(vec![sum]).expect("input config encodes"),
            )
            .expect("the input root starts");
        let output = hardware
            .spawn(
                root,
                &OutputNode::config(vec![sum]).expect("output config encodes"),
            )
            .expect("the output root starts");
        SumNetwork { sum, input, output }
    }

    /// Adds an input leaf for `user` on `machine` that plays back `actions`.
    fn add_input(
        &self,
        hardware: &mut SimulatedHardware,
        machine: u32,
        user: &str,
        actions: Vec<(u64, Message)>,
    ) {
        let actions = actions
            .into_iter()
            .map(|(at_ms, message)| (Millis(at_ms), message))
            .collect();
        let recording = RecordedUser::new(user, actions).expect("times are in order");
        let add = SumMessage::AddKid {
            machine: MachineId(machine),
            user: user.to_owned(),
            recording: Some(recording),
        };
        hardware
            .send(self.input, add.to_message().expect("add_kid encodes"))
            .expect("the input root exists");
    }

    /// Adds an output leaf for `user` on `machine`.
    fn add_output(&self, hardware: &mut SimulatedHardware, machine: u32, user: &str) {
        let add = SumMessage::AddKid {
            machine: MachineId(machine),
            user: user.to_owned(),
            recording: None,
        };
        hardware
            .send(self.output, add.to_message().expect("add_kid encodes"))
            .expect("the output root exists");
    }

    /// The sum node's `sent_total`.
    fn sum_sent_total(&self, hardware: &mut SimulatedHardware) -> i64 {
        hardware
            .node_states()
            .expect("states are readable")
            .into_iter()
            .find(|node| node.handle == self.sum)
            .and_then(|node| node.state["sent_total"].as_i64())
            .expect("the sum node reports its sent_total")
    }
}

/// User name → output total, from every output leaf in the system.
fn outputs(hardware: &mut SimulatedHardware) -> BTreeMap<String, i64> {
    hardware
        .node_states()
        .expect("states are readable")
        .into_iter()
        .filter(|node| node.node_type == OutputLeafNode::TYPE)
        .map(|node| {
            let user = node.state["user"]
                .as_str()
                .expect("an output leaf names its user")
                .to_owned();
            let total = node.state["total"]
                .as_i64()
                .expect("an output leaf reports its total");
            (user, total)
        })
        .collect()
}

fn totals(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs
        .iter()
        .map(|(user, total)| ((*user).to_owned(), *total))
        .collect()
}

#[test]
fn simulated_recorded_user_times_must_be_in_order() {
    let error = RecordedUser::new(
        "user b",
        vec![
            (Millis(30), increment(2)),
            (Millis(60), increment(1)),
            (Millis(45), increment(1)),
        ],
    )
    .expect_err("an action before the previous one is rejected");
    assert_eq!(
        error,
        RecordedUserError::OutOfOrder {
            user: "user b".into(),
            index: 2,
            at_ms: Millis(45),
            previous_ms: Millis(60),
        }
    );
    assert!(error.to_string().contains("in order"), "{error}");

    let ordered = RecordedUser::new(
        "user b",
        vec![(Millis(30), increment(2)), (Millis(30), increment(1))],
    )
    .expect("equal times are in order");
    assert_eq!(ordered.actions().len(), 2);

    // The same rule holds for a scenario file, naming the offending action.
    let scenario = r#"{"machines": 2, "run_ms": 100, "users": [{"name": "u", "machine": 1,
        "actions": [[50, {"type": "increment", "amount": 1}], [20, {"type": "increment", "amount": 1}]]}]}"#;
    let message = Scenario::parse(scenario)
        .expect_err("out-of-order actions are rejected")
        .to_string();
    assert!(
        message.contains("users[0].actions[1]") && message.contains("in order"),
        "{message}"
    );
}

/// The Python project's `test_sum_two_nodes`, driving the simulated hardware by hand.
#[test]
fn simulated_sum_of_two_users_reaches_four() {
    let mut hardware = hardware(3, 1);
    let network = SumNetwork::build(&mut hardware);
    hardware.run_until(30).expect("runs");
    assert_eq!(hardware.now_ms(), 30);

    network.add_input(
        &mut hardware,
        1,
        "user b",
        vec![(30, increment(2)), (60, increment(1))],
    );
    network.add_output(&mut hardware, 1, "user b");
    network.add_input(&mut hardware, 2, "user c", vec![(110, increment(1))]);
    network.add_output(&mut hardware, 2, "user c");

    // Before any increment has been played back, both outputs exist and read 0.
    hardware.run_until(55).expect("runs");
    assert_eq!(
        outputs(&mut hardware),
        totals(&[("user b", 0), ("user c", 0)])
    );

    hardware.run_for(Millis(645)).expect("runs");
    assert_eq!(hardware.now_ms(), 700);
    assert_eq!(
        outputs(&mut hardware),
        totals(&[("user b", 4), ("user c", 4)])
    );
    assert_eq!(network.sum_sent_total(&mut hardware), 4);

    let stats = hardware.stats();
    assert!(
        stats.messages_delivered >= 8,
        "too few deliveries: {stats:?}"
    );
    assert_eq!(stats.undeliverable, 0, "{stats:?}");

    // Converged for good: running on changes nothing.
    hardware.run_for(Millis(500)).expect("runs");
    assert_eq!(
        outputs(&mut hardware),
        totals(&[("user b", 4), ("user c", 4)])
    );
}

/// The Python project's `test_sum_recorded_users`: three recorded users reach 6, through the
/// scenario runner on a `SimulatedHardware`.
#[test]
fn simulated_three_recorded_users_reach_six() {
    let scenario = Scenario::parse(
        r#"{"machines": 3, "run_ms": 800, "seed": 11,
            "users": [
              {"name": "a", "machine": 0, "join_ms": 0,
               "actions": [[10, {"type": "increment", "amount": 1}], [40, {"type": "increment", "amount": 2}]]},
              {"name": "b", "machine": 1, "join_ms": 10,
               "actions": [[25, {"type": "increment", "amount": 1}]]},
              {"name": "c", "machine": 2, "join_ms": 20,
               "actions": [[5, {"type": "increment", "amount": 1}], [90, {"type": "increment", "amount": 1}]]}
            ]}"#,
    )
    .expect("a valid scenario");
    assert_eq!(scenario.expected_total(), 6);

    let mut hardware = hardware(scenario.machines, scenario.seed);
    let outcome = run_scenario(
        &mut hardware,
        &scenario,
        &Progress::new(scenario.run_ms, false),
    )
    .expect("the run completes");
    assert_eq!(outcome.expected_total, 6);
    let expected: BTreeMap<String, Option<i64>> = ["a", "b", "c"]
        .into_iter()
        .map(|user| (user.to_owned(), Some(6)))
        .collect();
    assert_eq!(outcome.outputs, expected);
    assert!(outcome.correct());
    assert_eq!(hardware.now_ms(), 800);
}

#[test]
fn simulated_late_output_starts_from_the_running_total_then_follows_changes() {
    let mut hardware = hardware(3, 5);
    let network = SumNetwork::build(&mut hardware);
    network.add_input(
        &mut hardware,
        1,
        "early",
        vec![(10, increment(3)), (50, increment(4))],
    );
    network.add_output(&mut hardware, 1, "early");
    hardware.run_until(300).expect("runs");
    assert_eq!(outputs(&mut hardware), totals(&[("early", 7)]));
    assert_eq!(network.sum_sent_total(&mut hardware), 7);

    // A watcher joins after the increments flowed: it catches up to 7, not 0.
    network.add_output(&mut hardware, 2, "late");
    hardware.run_until(400).expect("runs");
    assert_eq!(outputs(&mut hardware), totals(&[("early", 7), ("late", 7)]));

    // Then it follows changes made after it joined, negative ones included.
    network.add_input(
        &mut hardware,
        2,
        "later",
        vec![(20, increment(-2)), (80, increment(10))],
    );
    hardware.run_until(900).expect("runs");
    assert_eq!(
        outputs(&mut hardware),
        totals(&[("early", 15), ("late", 15)])
    );
    assert_eq!(network.sum_sent_total(&mut hardware), 15);
}

#[test]
fn simulated_issue_example_scenario_reports_four_for_both_users() {
    let scenario = Scenario::load(&example("sum_of_two.json")).expect("the example loads");
    let run = simulate(&scenario, &RunOptions::default()).expect("the example runs");
    let report = run.report;
    assert_eq!(report.expected_total, 4);
    let expected: BTreeMap<String, Option<i64>> = [("user b", Some(4)), ("user c", Some(4))]
        .into_iter()
        .map(|(user, total)| (user.to_owned(), total))
        .collect();
    assert_eq!(report.outputs, expected);
    assert!(report.correct);
    assert_eq!(report.seed, 1);
    assert_eq!(report.simulated_ms, Millis(700));
    assert!(report.events > 0 && report.messages_delivered > 0);
    assert!(run.trace_text.is_none(), "no trace text unless asked for");
}

#[test]
fn simulated_three_users_example_reaches_six() {
    let scenario = Scenario::load(&example("three_users.json")).expect("the example loads");
    assert_eq!(scenario.users.len(), 3);
    assert_eq!(scenario.machines, 3);
    let report = simulate(&scenario, &RunOptions::default())
        .expect("the example runs")
        .report;
    assert_eq!(report.expected_total, 6);
    assert_eq!(report.outputs.len(), 3);
    assert!(
        report.outputs.values().all(|total| *total == Some(6)),
        "{:?}",
        report.outputs
    );
    assert!(report.correct);
}

#[test]
fn simulated_late_joiner_example_converges_for_everyone() {
    let scenario = Scenario::load(&example("late_joiner.json")).expect("the example loads");
    let last_early_action = scenario
        .users
        .iter()
        .filter(|user| user.join_ms == Millis::ZERO)
        .filter_map(|user| user.actions.last().map(|(at, _)| *at))
        .max()
        .expect("some users join at the start and act");
    let latest_join = scenario
        .users
        .iter()
        .map(|user| user.join_ms)
        .max()
        .expect("users");
    assert!(
        latest_join > last_early_action.saturating_add(Millis(100)),
        "the late joiner must join after the early increments flowed"
    );
    let report = simulate(&scenario, &RunOptions::default())
        .expect("the example runs")
        .report;
    assert_eq!(report.expected_total, 12);
    assert!(
        report.outputs.values().all(|total| *total == Some(12)),
        "{:?}",
        report.outputs
    );
    assert!(report.correct);
}
