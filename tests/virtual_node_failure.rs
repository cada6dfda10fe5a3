//! A node's failure is one typed value in every mode: the same node, node type, kind of error
//! and message in containers as in the simulator, with its time on the run's clock and the
//! run's seed — matched here by kind, not by prose.
#![cfg(feature = "docker")]

mod virtual_support;

use std::sync::Arc;

use dist_zero::apps::builtin;
use dist_zero::apps::sum::{SumConfig, SumNode};
use dist_zero::faults::NetworkConfig;
use dist_zero::hardware::docker::DockerHardware;
use dist_zero::hardware::simulated::SimulationConfig;
use dist_zero::hardware::{FailureReport, Hardware, HardwareError, RunHardware, SimulatedHardware};
use dist_zero::messages::{MachineId, Message};
use dist_zero::node::{config_of, NodeErrorKind};
use dist_zero::observe::failure_history;

/// Starts a sum node on machine 1 and sends it a message it has no type for; then asks machine
/// 0 for a node type nobody registered. Returns both failures.
fn break_two_nodes(hardware: &mut dyn Hardware) -> (FailureReport, FailureReport) {
    let sum = config_of::<SumNode>(&SumConfig::default()).expect("encodes");
    let node = hardware.spawn(MachineId(1), &sum).expect("spawn on m1");
    let nonsense = Message::new(serde_json::json!({"type": "nonsense"})).expect("a message");
    let delivered = hardware
        .send(node, nonsense)
        .and_then(|()| hardware.run_until(hardware.now_ms() + 200));
    let Err(HardwareError::NodeFailed(on_delivery)) = delivered else {
        panic!("the sum node fails on a message it has no type for: {delivered:?}");
    };
    let unknown = Message::new(serde_json::json!({"type": "Nope"})).expect("a config");
    let started = hardware.spawn(MachineId(0), &unknown);
    let Err(HardwareError::NodeFailed(on_start)) = started else {
        panic!("an unknown node type fails its start: {started:?}");
    };
    (*on_delivery, *on_start)
}

#[test]
fn virtual_a_node_failure_is_the_same_typed_failure_as_in_the_simulator() {
    let mut config = virtual_support::config(2);
    config.record = true;
    let mut containers = DockerHardware::start(&config).expect("containers");
    let run_id = containers.run_id().to_owned();
    let (remote_delivery, remote_start) = break_two_nodes(&mut containers);
    let (_, finished) = RunHardware::finish(Box::new(containers), true);
    let records = finished.records.expect("the machines' records");
    assert!(virtual_support::leftovers(&run_id).is_empty());

    let mut simulated = SimulatedHardware::new(
        SimulationConfig {
            machines: 2,
            seed: config.seed,
            network: NetworkConfig::default(),
            keep_trace_text: false,
            reliable: true,
        },
        Arc::new(builtin().registry()),
    )
    .expect("a simulator");
    simulated.record_events(Vec::new());
    let (simulated_delivery, simulated_start) = break_two_nodes(&mut simulated);

    // The history of the failure, read from the containers' records, is the simulator's causal
    // chain: the same deliveries, at their own times.
    let untimed = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|line| {
                line.split_once(" ms  ")
                    .map_or(line.as_str(), |(_, rest)| rest)
                    .to_owned()
            })
            .collect()
    };
    let history = failure_history(&records, &remote_delivery.failure);
    assert!(
        !history.is_empty(),
        "the records hold the failure's history"
    );
    assert_eq!(untimed(&history), untimed(&simulated_delivery.trace));

    for (remote, simulated) in [
        (&remote_delivery, &simulated_delivery),
        (&remote_start, &simulated_start),
    ] {
        assert_eq!(remote.seed, config.seed, "the run's seed, to replay it");
        assert_eq!(remote.failure.node, simulated.failure.node);
        assert_eq!(remote.failure.node_type, simulated.failure.node_type);
        assert_eq!(remote.failure.kind, simulated.failure.kind);
        assert_eq!(remote.failure.message, simulated.failure.message);
    }
    assert_eq!(remote_delivery.failure.node_type, "SumNode");
    assert_eq!(remote_delivery.failure.node.machine, MachineId(1));
    assert_eq!(remote_start.failure.kind, NodeErrorKind::UnknownNodeType);
    assert_eq!(remote_start.failure.node.machine, MachineId(0));
    // On the run's clock: after the start, within the 200 ms the delivery was given.
    assert!(
        remote_delivery.failure.at_us.0 < 200_000 + 50_000,
        "{:?}",
        remote_delivery.failure
    );
}
