//! Determinism of simulated mode: one seed drives every random choice, so the same seed gives a
//! byte-identical trace text and an equal trace hash; a different seed (with random latency)
//! gives a different trace; and this holds across many generated workloads, run twice each.
//! Also checked at the hardware level with a node that draws from `ctl.random()`.

mod sum_support;

use std::sync::Arc;

use dist_zero::apps::builtin;
use dist_zero::faults::NetworkConfig;
use dist_zero::hardware::simulated::SimulationConfig;
use dist_zero::hardware::{Hardware, SimulatedHardware};
use dist_zero::messages::{MachineId, Message, NodeHandle};
use dist_zero::node::{MachineController, Node, NodeError, NodeRegistry};
use dist_zero::scenario::{simulate, RunOptions, Scenario, SimulatedRun};
use dist_zero::tools::sum::Workload;
use serde::Deserialize;
use serde_json::json;
use sum_support::sum_outcome;

/// A network with the given `latency_ms`, read from JSON as a scenario's would be.
fn network(latency_ms: serde_json::Value) -> NetworkConfig {
    serde_json::from_value(json!({ "latency_ms": latency_ms })).expect("a valid network")
}

fn example_scenario() -> Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sum_of_two.json");
    Scenario::load(std::path::Path::new(path), &builtin()).expect("the example loads")
}

fn run(scenario: &Scenario, seed: Option<u64>) -> SimulatedRun {
    simulate(
        scenario,
        &RunOptions {
            seed,
            keep_trace_text: true,
            ..RunOptions::default()
        },
    )
    .expect("the scenario runs")
}

fn text(run: &SimulatedRun) -> &str {
    run.trace_text.as_deref().expect("the trace text was kept")
}

#[test]
fn simulated_same_seed_gives_byte_identical_traces() {
    let scenario = example_scenario();
    let first = run(&scenario, None);
    let second = run(&scenario, None);
    let first_text = text(&first);
    assert!(
        first_text.contains("deliver") && first_text.contains("--increment-->"),
        "the trace records deliveries:\n{first_text}"
    );
    assert!(first_text.lines().count() > 10, "{first_text}");
    assert_eq!(first_text, text(&second));
    assert_eq!(first.report.trace_hash, second.report.trace_hash);
    assert!(first.report.trace_hash.is_some());
    assert_eq!(first.report.events, second.report.events);
    assert_eq!(
        first.report.messages_delivered,
        second.report.messages_delivered
    );
}

#[test]
fn simulated_keeping_the_text_does_not_change_the_hash() {
    let scenario = example_scenario();
    let with_text = run(&scenario, None);
    let without = simulate(&scenario, &RunOptions::default()).expect("runs");
    assert!(without.trace_text.is_none());
    assert_eq!(with_text.report.trace_hash, without.report.trace_hash);
}

#[test]
fn simulated_different_seeds_give_different_traces() {
    let mut scenario = example_scenario();
    scenario.network = network(json!({"distribution": "uniform", "min": 5.0, "max": 60.0}));
    let one = run(&scenario, Some(1));
    let two = run(&scenario, Some(2));
    assert_eq!(one.report.seed, 1);
    assert_eq!(two.report.seed, 2);
    assert_ne!(one.report.trace_hash, two.report.trace_hash);
    assert_ne!(text(&one), text(&two));
    // Different timings, same answer.
    assert!(one.report.correct && two.report.correct);
    assert_eq!(
        sum_outcome(&one.report).outputs,
        sum_outcome(&two.report).outputs
    );
}

#[test]
fn simulated_constant_latency_traces_do_not_depend_on_the_network_seed() {
    // With constant latency and no node drawing random numbers, the seed has nothing to choose:
    // the event sequence is the same for every seed. (A check that the hash covers only events.)
    let mut scenario = example_scenario();
    scenario.network = network(json!({"distribution": "constant", "mean": 10.0}));
    let one = run(&scenario, Some(1));
    let two = run(&scenario, Some(99));
    assert_eq!(text(&one), text(&two));
    assert_eq!(one.report.trace_hash, two.report.trace_hash);
}

#[test]
fn simulated_generated_workloads_are_deterministic() {
    for seed in 0..24u64 {
        let workload = Workload {
            machines: 1 + (seed % 6) as u32,
            users: 1 + (seed * 7 % 40) as u32,
            increments: 1 + (seed % 5) as u32,
            run_ms: dist_zero::time::Millis(1000),
            seed,
        };
        let scenario = workload.scenario().expect("valid");
        let first = run(&scenario, None);
        let second = run(&scenario, None);
        assert_eq!(
            first.report.trace_hash, second.report.trace_hash,
            "workload {workload:?}"
        );
        assert_eq!(text(&first), text(&second), "workload {workload:?}");
        assert_eq!(first.report.events, second.report.events);
        assert!(
            first.report.correct,
            "workload {workload:?}: {:?}",
            first.report
        );
    }
}

/// A node that, every 5 ms, draws a random number and sends it to a peer on another machine.
struct Chatter {
    peer: Option<NodeHandle>,
    drawn: Vec<u64>,
    heard: Vec<u64>,
}

#[derive(Deserialize)]
struct ChatterConfig {
    peer: Option<NodeHandle>,
}

impl Chatter {
    fn from_config(config: ChatterConfig) -> Result<Self, NodeError> {
        Ok(Chatter {
            peer: config.peer,
            drawn: Vec::new(),
            heard: Vec::new(),
        })
    }
}

impl Node for Chatter {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        if self.peer.is_some() {
            ctl.set_timer(5, 0);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        _ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        #[derive(Deserialize)]
        struct Number {
            value: u64,
        }
        self.heard.push(message.decode::<Number>()?.value);
        Ok(())
    }

    fn timer(&mut self, ctl: &mut dyn MachineController, tag: u64) -> Result<(), NodeError> {
        let value = ctl.random().next_u64() % 1000;
        self.drawn.push(value);
        if let Some(peer) = self.peer {
            let message = Message::new(serde_json::json!({"type": "number", "value": value}))?;
            ctl.send(peer, message);
        }
        if tag < 19 {
            ctl.set_timer(5, tag + 1);
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({"drawn": self.drawn, "heard": self.heard})
    }
}

/// What a chatter run produced.
struct ChatterRun {
    drawn: serde_json::Value,
    heard: serde_json::Value,
    hash: String,
    text: String,
}

/// Runs a listener on machine 1 and a chatter on machine 0.
fn chatter_run(seed: u64, network: NetworkConfig) -> ChatterRun {
    chatter_run_beside(seed, network, None)
}

/// Runs a listener on machine 1 and a chatter on machine 0, and, if `neighbour` names a
/// machine, a second chatter there that draws as often as the first.
fn chatter_run_beside(seed: u64, network: NetworkConfig, neighbour: Option<u32>) -> ChatterRun {
    let mut registry = NodeRegistry::new();
    registry.register("Chatter", Chatter::from_config);
    let mut hardware = SimulatedHardware::new(
        SimulationConfig {
            machines: 2,
            seed,
            network,
            keep_trace_text: true,
            reliable: true,
        },
        Arc::new(registry),
    )
    .expect("valid network");
    let listener = hardware
        .spawn(
            MachineId(1),
            &Message::new(serde_json::json!({"type": "Chatter", "peer": null})).expect("config"),
        )
        .expect("listener starts");
    let talker = hardware
        .spawn(
            MachineId(0),
            &Message::new(serde_json::json!({"type": "Chatter", "peer": listener}))
                .expect("config"),
        )
        .expect("talker starts");
    if let Some(machine) = neighbour {
        hardware
            .spawn(
                MachineId(machine),
                &Message::new(serde_json::json!({"type": "Chatter", "peer": listener}))
                    .expect("config"),
            )
            .expect("the neighbour starts");
    }
    hardware.run_until(500).expect("runs");
    let states = hardware.node_states().expect("states");
    let state_of = |handle: NodeHandle| {
        states
            .iter()
            .find(|node| node.handle == handle)
            .map(|node| node.state.clone())
            .expect("node exists")
    };
    ChatterRun {
        drawn: state_of(talker)["drawn"].clone(),
        heard: state_of(listener)["heard"].clone(),
        hash: hardware.trace().hash(),
        text: hardware
            .trace()
            .text()
            .expect("the trace text was kept")
            .to_owned(),
    }
}

#[test]
fn simulated_a_node_draws_the_same_numbers_whichever_nodes_share_its_machine() {
    let alone = chatter_run_beside(42, NetworkConfig::default(), Some(1));
    let beside = chatter_run_beside(42, NetworkConfig::default(), Some(0));
    assert_eq!(alone.drawn.as_array().map(Vec::len), Some(20));
    assert_eq!(
        alone.drawn, beside.drawn,
        "another node drawing on the same machine changes nothing"
    );
}

#[test]
fn simulated_node_random_numbers_are_reproducible_from_the_seed() {
    let first = chatter_run(42, NetworkConfig::default());
    let drawn_list = first.drawn.as_array().expect("a list");
    assert_eq!(drawn_list.len(), 20);
    assert_eq!(first.drawn, first.heard, "every number arrived, in order");
    let distinct: std::collections::BTreeSet<u64> =
        drawn_list.iter().filter_map(|v| v.as_u64()).collect();
    assert!(distinct.len() > 10, "draws look random: {}", first.drawn);

    let again = chatter_run(42, NetworkConfig::default());
    assert_eq!(first.drawn, again.drawn);
    assert_eq!(first.heard, again.heard);
    assert_eq!(first.hash, again.hash);
    assert_eq!(first.text, again.text);

    let other = chatter_run(43, NetworkConfig::default());
    assert_ne!(first.drawn, other.drawn, "another seed, other numbers");
    assert_ne!(first.hash, other.hash);
}

#[test]
fn simulated_trace_hash_covers_message_contents() {
    // Constant latency: both seeds give the same event times; only the random payloads differ.
    let constant = network(json!({"distribution": "constant", "mean": 10.0}));
    let one = chatter_run(1, constant.clone());
    let two = chatter_run(2, constant);
    assert_ne!(one.drawn, two.drawn, "the seeds drew different numbers");
    assert_ne!(one.text, two.text, "the trace texts differ in the payloads");
    assert_ne!(one.hash, two.hash, "different traces must not share a hash");
}
