//! The sum network in simulated mode, end to end.
//!
//! Ports of the original Python project's tests (recorded-user times must be in order; the sum of
//! two users reaches 4; its third, three recorded users reach 6, is a body of the conformance
//! suite, `tests/conformance.rs`, in every mode), an output leaf that joins after
//! increments already flowed (it starts from the running total and then follows changes), and the
//! example scenarios in `examples/` (the issue's `sum_of_two.json`, `three_users.json`,
//! `late_joiner.json`).
//!
//! Some tests drive [`SimulatedHardware`] by hand — spawning the roots and sending `add_kid`
//! messages exactly as the scenario runner does — to show the library API; the others go through
//! [`run_scenario`] and [`simulate`].

mod sum_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use dist_zero::app::{self, states_of};
use dist_zero::apps::builtin;
use dist_zero::apps::sum::{
    InputConfig, InputNode, OutputConfig, OutputLeafNode, OutputNode, RecordedUser,
    RecordedUserError, SumConfig, SumMessage, SumNode, UserAction,
};
use dist_zero::faults::NetworkConfig;
use dist_zero::hardware::simulated::SimulationConfig;
use dist_zero::hardware::{Hardware, SimulatedHardware};
use dist_zero::messages::MachineId;
use dist_zero::node::{Handle, TypedNode};
use dist_zero::scenario::{simulate, RunOptions, Scenario};
use dist_zero::time::Millis;
use sum_support::{sum_outcome, sum_section};

fn increment(amount: i64) -> UserAction {
    UserAction::Increment { amount }
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
        Arc::new(builtin().registry()),
    )
    .expect("the default network is valid")
}

/// The roots of a sum network, built by hand as the sum application builds them.
struct SumNetwork {
    sum: Handle<SumNode>,
    input: Handle<InputNode>,
    output: Handle<OutputNode>,
}

fn spawn<N: TypedNode>(hardware: &mut SimulatedHardware, config: &N::Config) -> Handle<N> {
    app::spawn::<N>(hardware, MachineId(0), config).expect("the root starts")
}

fn send<N: TypedNode>(hardware: &mut SimulatedHardware, to: Handle<N>, message: &N::Message) {
    app::send::<N>(hardware, to, message).expect("the root exists");
}

impl SumNetwork {
    fn build(hardware: &mut SimulatedHardware) -> Self {
        let sum = spawn::<SumNode>(hardware, &SumConfig::default());
        let input = spawn::<InputNode>(
            hardware,
            &InputConfig {
                receivers: vec![sum],
                persist: true,
            },
        );
        let output = spawn::<OutputNode>(
            hardware,
            &OutputConfig {
                senders: vec![sum],
                persist: true,
            },
        );
        SumNetwork { sum, input, output }
    }

    /// Adds an input leaf for `user` on `machine` that plays back `actions`.
    fn add_input(
        &self,
        hardware: &mut SimulatedHardware,
        machine: u32,
        user: &str,
        actions: Vec<(u64, UserAction)>,
    ) {
        let actions = actions
            .into_iter()
            .map(|(at_ms, action)| (Millis(at_ms), action))
            .collect();
        let recording = RecordedUser::new(user, actions).expect("times are in order");
        let add = SumMessage::AddInputKid {
            machine: MachineId(machine),
            recording,
        };
        send(hardware, self.input, &add);
    }

    /// Adds an output leaf for `user` on `machine`.
    fn add_output(&self, hardware: &mut SimulatedHardware, machine: u32, user: &str) {
        let add = SumMessage::AddOutputKid {
            machine: MachineId(machine),
            user: user.to_owned(),
        };
        send(hardware, self.output, &add);
    }

    /// The sum node's `sent_total`.
    fn sum_sent_total(&self, hardware: &mut SimulatedHardware) -> i64 {
        let states = hardware.node_states().expect("states are readable");
        states_of::<SumNode>(&states)
            .into_iter()
            .find(|(handle, _)| *handle == self.sum.untyped())
            .map(|(_, state)| state.sent_total)
            .expect("the sum node reports its sent_total")
    }
}

/// User name → output total, from every output leaf in the system.
fn outputs(hardware: &mut SimulatedHardware) -> BTreeMap<String, i64> {
    let states = hardware.node_states().expect("states are readable");
    states_of::<OutputLeafNode>(&states)
        .into_iter()
        .map(|(_, leaf)| (leaf.user, leaf.total))
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
    let message = Scenario::parse(scenario, &builtin())
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
    let scenario =
        Scenario::load(&example("sum_of_two.json"), &builtin()).expect("the example loads");
    let run = simulate(&scenario, &RunOptions::default()).expect("the example runs");
    let report = run.report;
    assert_eq!(sum_outcome(&report).expected_total, 4);
    let expected: BTreeMap<String, Option<i64>> = [("user b", Some(4)), ("user c", Some(4))]
        .into_iter()
        .map(|(user, total)| (user.to_owned(), total))
        .collect();
    assert_eq!(sum_outcome(&report).outputs, expected);
    assert!(report.correct);
    assert_eq!(report.seed, 1);
    assert_eq!(report.simulated_ms, Millis(700));
    assert!(report.events > 0 && report.messages_delivered > 0);
    assert!(run.trace_text.is_none(), "no trace text unless asked for");
}

#[test]
fn simulated_three_users_example_reaches_six() {
    let scenario =
        Scenario::load(&example("three_users.json"), &builtin()).expect("the example loads");
    assert_eq!(sum_section(&scenario).users.len(), 3);
    assert_eq!(scenario.machines, 3);
    let report = simulate(&scenario, &RunOptions::default())
        .expect("the example runs")
        .report;
    assert_eq!(sum_outcome(&report).expected_total, 6);
    assert_eq!(sum_outcome(&report).outputs.len(), 3);
    assert!(
        sum_outcome(&report)
            .outputs
            .values()
            .all(|total| *total == Some(6)),
        "{:?}",
        sum_outcome(&report).outputs
    );
    assert!(report.correct);
}

#[test]
fn simulated_late_joiner_example_converges_for_everyone() {
    let scenario =
        Scenario::load(&example("late_joiner.json"), &builtin()).expect("the example loads");
    let users = &sum_section(&scenario).users;
    let last_early_action = users
        .iter()
        .filter(|user| user.join_ms == Millis::ZERO)
        .filter_map(|user| user.actions.last().map(|(at, _)| *at))
        .max()
        .expect("some users join at the start and act");
    let latest_join = users.iter().map(|user| user.join_ms).max().expect("users");
    assert!(
        latest_join > last_early_action.saturating_add(Millis(100)),
        "the late joiner must join after the early increments flowed"
    );
    let report = simulate(&scenario, &RunOptions::default())
        .expect("the example runs")
        .report;
    assert_eq!(sum_outcome(&report).expected_total, 12);
    assert!(
        sum_outcome(&report)
            .outputs
            .values()
            .all(|total| *total == Some(12)),
        "{:?}",
        sum_outcome(&report).outputs
    );
    assert!(report.correct);
}
