//! The runtime's guarantees for any node program, in simulated mode.
//!
//! - Spawn race: a message that overtakes the spawn of its node (A on m0 spawns B on m2 and hands
//!   B's handle to C on m1, which messages B at once) is delivered exactly once, in order, on
//!   every one of 1,000 seeds with spawns dropped, reordering and a partition — and without
//!   reliable delivery it is lost on some of them.
//! - A message for a node that never existed, or was terminated, is reported undeliverable; none
//!   stays waiting.
//! - A node cannot cancel the runtime's timers or another node's: cancelling every id it can
//!   think of leaves retransmission working and the other node's timer firing.
//! - The wire check (on in the test suite) catches a message type whose serde form loses a
//!   field, and changes no trace.
//! - Retransmission follows the measured round trip: on a network with a 60 s latency the sum
//!   network settles correctly, with retransmissions of the order of the drops.

mod programs;

use std::sync::Arc;

use dist_zero::apps::builtin;
use dist_zero::faults::NetworkConfig;
use dist_zero::hardware::simulated::SimulationConfig;
use dist_zero::hardware::{Hardware, SimulatedHardware};
use dist_zero::messages::{MachineId, Message, NodeHandle, NodeId};
use dist_zero::node::{
    config_of, Ctl, MachineController, NoConfig, NoTimer, Node, NodeError, NodeRegistry, TimerId,
    TypedNode, Volatile,
};
use dist_zero::scenario::{simulate, RunOptions, Scenario};
use dist_zero::time::Millis;
use programs::spawn_race;
use rayon::prelude::*;
use serde_json::{json, Value};

fn system(
    machines: u32,
    seed: u64,
    network: Value,
    reliable: bool,
    registry: NodeRegistry,
) -> SimulatedHardware {
    SimulatedHardware::new(
        SimulationConfig {
            machines,
            seed,
            network: serde_json::from_value::<NetworkConfig>(network).expect("a valid network"),
            keep_trace_text: false,
            reliable,
        },
        Arc::new(registry),
    )
    .expect("a valid system")
}

fn spawn_race_registry() -> NodeRegistry {
    let mut registry = NodeRegistry::new();
    spawn_race::register(&mut registry);
    registry
}

/// Spawns dropped 30 % of the time, 20 % of everything held back, machine 2 cut off from 60 to
/// 250 ms.
fn racy_network() -> Value {
    json!({
        "drop": {"rate": 0.3, "types": "spawn"},
        "reorder": {"rate": 0.2},
        "partitions": [{"from_ms": 60, "to_ms": 250, "groups": [[0, 1], [2]]}]
    })
}

/// What the target received on `seed`, after 5 s; `None` if it was never created.
fn race(seed: u64, reliable: bool) -> (Option<Vec<u32>>, SimulatedHardware) {
    let mut hardware = system(3, seed, racy_network(), reliable, spawn_race_registry());
    spawn_race::start(&mut hardware).expect("the program starts");
    hardware.run_for(Millis(5_000)).expect("the run completes");
    let received = spawn_race::received(&mut hardware).expect("states");
    (received, hardware)
}

#[test]
fn simulated_a_message_that_overtakes_its_nodes_spawn_is_delivered_once_on_1000_seeds() {
    let expected: Vec<u32> = (0..spawn_race::MESSAGES).collect();
    let outcomes: Vec<(u64, Option<Vec<u32>>, usize, u64)> = (0u64..1000)
        .into_par_iter()
        .map(|seed| {
            let (received, hardware) = race(seed, true);
            let waiting = hardware.waiting_for_spawn();
            (seed, received, waiting, hardware.stats().undeliverable)
        })
        .collect();
    let wrong: Vec<_> = outcomes
        .iter()
        .filter(|(_, received, waiting, undeliverable)| {
            received.as_ref() != Some(&expected) || *waiting != 0 || *undeliverable != 0
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} seeds wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn simulated_the_spawn_race_really_happens_and_loses_messages_without_reliable_delivery() {
    let expected: Vec<u32> = (0..spawn_race::MESSAGES).collect();
    let lost = (0u64..200)
        .filter(|seed| race(*seed, false).0.as_ref() != Some(&expected))
        .count();
    assert!(lost > 20, "only {lost} of 200 seeds lost a message");
}

/// Sends one message to each handle in its config when started.
struct Sender {
    to: Vec<NodeHandle>,
}

#[derive(serde::Deserialize)]
struct SenderConfig {
    to: Vec<NodeHandle>,
}

impl Node for Sender {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        for handle in &self.to {
            ctl.send(*handle, Message::new(json!({"type": "hello"}))?);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        _ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        _message: &Message,
    ) -> Result<(), NodeError> {
        Ok(())
    }

    fn state(&self) -> Value {
        json!({})
    }
}

/// Spawns a `Quitter` on machine 2, which terminates itself as it starts.
struct Spawner {
    spawned: Option<NodeHandle>,
}

impl Node for Spawner {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        let quitter = Message::new(json!({"type": "Quitter"}))?;
        self.spawned = Some(ctl.spawn(MachineId(2), quitter)?);
        Ok(())
    }

    fn receive(
        &mut self,
        _ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        _message: &Message,
    ) -> Result<(), NodeError> {
        Ok(())
    }

    fn state(&self) -> Value {
        json!({"spawned": self.spawned})
    }
}

struct Quitter;

impl Node for Quitter {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        let me = ctl.me();
        ctl.terminate(me);
        Ok(())
    }

    fn receive(
        &mut self,
        _ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        _message: &Message,
    ) -> Result<(), NodeError> {
        Ok(())
    }

    fn state(&self) -> Value {
        json!({})
    }
}

fn object(value: Value) -> Message {
    Message::new(value).expect("an object")
}

#[test]
fn simulated_messages_for_nodes_that_never_existed_or_were_terminated_are_undeliverable() {
    let mut registry = NodeRegistry::new();
    registry.register("Sender", |config: SenderConfig| {
        Ok(Sender { to: config.to })
    });
    registry.register("Spawner", |_: Value| Ok(Spawner { spawned: None }));
    registry.register("Quitter", |_: Value| Ok(Quitter));
    let mut hardware = system(3, 1, json!({}), true, registry);
    let spawner = hardware
        .spawn(MachineId(0), &object(json!({"type": "Spawner"})))
        .expect("spawned");
    hardware.run_for(Millis(500)).expect("runs");
    let states = hardware.node_states().expect("states");
    assert!(
        states.iter().all(|state| state.node_type != "Quitter"),
        "it quit"
    );
    let spawner_state = states
        .iter()
        .find(|state| state.handle == spawner)
        .expect("the spawner");
    let quitter: NodeHandle =
        serde_json::from_value(spawner_state.state["spawned"].clone()).expect("a handle");
    let never = |origin, serial| NodeHandle {
        id: NodeId { origin, serial },
        machine: MachineId(2),
    };
    // The terminated quitter; a node machine 2 would have named itself; nodes machines 0 and 1
    // never named (each is asked which spawns it sent, and answers).
    let to = vec![quitter, never(2, 40), never(0, 99), never(1, 7)];
    hardware
        .spawn(MachineId(1), &object(json!({"type": "Sender", "to": to})))
        .expect("spawned");
    hardware.run_for(Millis(2_000)).expect("runs");
    assert_eq!(hardware.stats().undeliverable, 4);
    assert_eq!(hardware.waiting_for_spawn(), 0);
    assert_eq!(hardware.unacknowledged(), 0);
}

/// Sets a timer for 1 s on start, which must fire; cancels every other timer id below 1,000
/// whenever a message or timer reaches it; streams `count` numbered messages to `peer`, one
/// every 5 ms.
struct Canceller {
    peer: Option<NodeHandle>,
    own_timer: Option<TimerId>,
    count: u32,
    sent: u32,
    received: Vec<u32>,
    own_timer_fired: bool,
}

#[derive(serde::Deserialize)]
struct Number {
    n: u32,
}

#[derive(serde::Deserialize)]
struct CancellerConfig {
    peer: Option<NodeHandle>,
    count: u32,
}

impl Canceller {
    fn cancel_everything(&self, ctl: &mut dyn MachineController) {
        for id in (0..1_000).map(TimerId) {
            if Some(id) != self.own_timer {
                ctl.cancel_timer(id);
            }
        }
    }
}

impl Node for Canceller {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        self.own_timer = Some(ctl.set_timer(1_000, 0));
        if self.peer.is_some() {
            ctl.set_timer(1, 1);
        }
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        self.cancel_everything(ctl);
        let Number { n } = message.decode()?;
        self.received.push(n);
        Ok(())
    }

    fn timer(&mut self, ctl: &mut dyn MachineController, tag: u64) -> Result<(), NodeError> {
        if tag == 0 {
            self.own_timer_fired = true;
            return Ok(());
        }
        self.cancel_everything(ctl);
        if let Some(peer) = self.peer {
            if self.sent < self.count {
                ctl.send(
                    peer,
                    Message::new(json!({"type": "number", "n": self.sent}))?,
                );
                self.sent += 1;
                ctl.set_timer(5, 1);
            }
        }
        Ok(())
    }

    fn state(&self) -> Value {
        json!({"received": self.received, "own_timer_fired": self.own_timer_fired})
    }
}

fn canceller_registry() -> NodeRegistry {
    let mut registry = NodeRegistry::new();
    registry.register("Canceller", |config: CancellerConfig| {
        Ok(Canceller {
            peer: config.peer,
            own_timer: None,
            count: config.count,
            sent: 0,
            received: Vec::new(),
            own_timer_fired: false,
        })
    });
    registry
}

#[test]
fn simulated_a_node_cannot_cancel_the_runtimes_timers_or_another_nodes() {
    for seed in 0..20 {
        let network = json!({"drop": {"rate": 0.3}});
        let mut hardware = system(2, seed, network, true, canceller_registry());
        let receiver = hardware
            .spawn(
                MachineId(1),
                &object(json!({"type": "Canceller", "peer": null, "count": 0})),
            )
            .expect("spawned");
        // A bystander on the sender's machine, whose timer the sender tries to cancel.
        let bystander = json!({"type": "Canceller", "peer": null, "count": 0});
        hardware
            .spawn(MachineId(0), &object(bystander))
            .expect("spawned");
        let config = json!({"type": "Canceller", "peer": receiver, "count": 50});
        hardware
            .spawn(MachineId(0), &object(config))
            .expect("spawned");
        hardware.run_for(Millis(20_000)).expect("runs");
        let states = hardware.node_states().expect("states");
        let receiver_state = states
            .iter()
            .find(|state| state.handle == receiver)
            .expect("the receiver exists");
        let received: Vec<u32> =
            serde_json::from_value(receiver_state.state["received"].clone()).expect("numbers");
        assert_eq!(received, (0..50).collect::<Vec<_>>(), "seed {seed}");
        for state in &states {
            assert_eq!(
                state.state["own_timer_fired"],
                json!(true),
                "seed {seed}: {state:?}"
            );
        }
        assert_eq!(hardware.unacknowledged(), 0, "seed {seed}");
    }
}

/// A sum-network scenario on a network whose one-way latency is about a minute.
fn minute_latency() -> Scenario {
    let users: Vec<Value> = (0..6)
        .map(|user| {
            let actions: Vec<Value> = (0..10)
                .map(|k| json!([k * 7_000 + user * 100, {"type": "increment", "amount": user + k}]))
                .collect();
            json!({"name": format!("user {user}"), "machine": user % 3, "join_ms": user * 1_000,
                   "actions": actions})
        })
        .collect();
    Scenario::parse(
        &json!({
            "machines": 3,
            "run_ms": 1_800_000,
            "network": {
                "latency_ms": {"distribution": "normal", "mean": 60_000.0, "stddev": 2_000.0},
                "drop": {"rate": 0.1}
            },
            "users": users
        })
        .to_string(),
        &builtin(),
    )
    .expect("a valid scenario")
}

#[test]
fn simulated_a_60_s_latency_network_settles_with_retransmissions_of_the_order_of_its_drops() {
    let scenario = minute_latency();
    for seed in 0..5 {
        let outcome = simulate(
            &scenario,
            &RunOptions {
                seed: Some(seed),
                ..RunOptions::default()
            },
        )
        .expect("the run completes");
        let report = outcome.report;
        assert!(report.correct, "seed {seed}: {report}");
        let faults = report.faults.expect("simulated runs count faults");
        assert!(faults.dropped > 0, "seed {seed}: {faults:?}");
        assert!(
            faults.retransmitted <= 3 * faults.dropped + 40,
            "seed {seed}: {} retransmissions for {} drops",
            faults.retransmitted,
            faults.dropped
        );
    }
}

/// A message type whose serde form loses a field: `note` is never written, so what a receiver
/// decodes is not what the sender meant.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Lossy {
    Note {
        #[serde(skip_serializing, default)]
        note: u32,
        n: u32,
    },
}

/// Receives `Lossy` messages; a sender puts a `note` field on the wire that the type drops.
struct LossyReceiver;

impl TypedNode for LossyReceiver {
    const TYPE: &'static str = "LossyReceiver";
    type Config = NoConfig;
    type Message = Lossy;
    type State = ();
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(_: NoConfig) -> Result<Self, NodeError> {
        Ok(LossyReceiver)
    }

    fn receive(
        &mut self,
        _ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        _message: Lossy,
    ) -> Result<(), NodeError> {
        Ok(())
    }

    fn state(&self) {}
}

#[test]
fn simulated_the_wire_check_catches_a_message_type_that_loses_a_field() {
    let run = |check: bool| {
        let mut registry = NodeRegistry::new();
        registry.set_wire_check(check);
        registry.add::<LossyReceiver>();
        let mut hardware = system(1, 0, json!({}), true, registry);
        let receiver = hardware
            .spawn(
                MachineId(0),
                &config_of::<LossyReceiver>(&NoConfig {}).expect("encodes"),
            )
            .expect("spawned");
        let on_the_wire = object(json!({"type": "note", "note": 7, "n": 1}));
        hardware.send(receiver, on_the_wire).expect("sent");
        hardware.run_for(Millis(10))
    };
    assert!(
        run(false).is_ok(),
        "without the check the loss goes unnoticed"
    );
    let error = run(true).expect_err("the check catches it").to_string();
    assert!(
        error.contains("LossyReceiver") && error.contains("round trip"),
        "{error}"
    );
}

#[test]
fn simulated_the_wire_check_changes_no_trace() {
    let scenario = Scenario::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/all_faults.json"),
        &builtin(),
    )
    .expect("the example loads");
    for seed in 0..20 {
        let hash = |check: bool| {
            simulate(
                &scenario,
                &RunOptions {
                    seed: Some(seed),
                    wire_check: Some(check),
                    ..RunOptions::default()
                },
            )
            .expect("runs")
            .report
            .trace_hash
        };
        assert_eq!(hash(true), hash(false), "seed {seed}");
    }
}

/// A node whose state's serde form loses a field: what it shows does not read back as its type.
mod lossy {
    use dist_zero::app::PlayError;
    use dist_zero::app::{states_of, Application, Common, FieldError, Verdict};
    use dist_zero::manager::NodeState;
    use dist_zero::messages::{MachineId, NodeHandle};
    use dist_zero::node::{Ctl, NoConfig, NoTimer, NodeError, NodeRegistry, TypedNode, Volatile};
    use dist_zero::system::Sim;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Lossy {
        pub kept: u32,
        #[serde(skip_serializing)]
        pub lost: u32,
    }

    #[derive(Clone, Serialize, Deserialize)]
    #[serde(tag = "type")]
    pub enum Nothing {}

    pub struct LossyNode;

    impl TypedNode for LossyNode {
        const TYPE: &'static str = "LossyNode";
        type Config = NoConfig;
        type Message = Nothing;
        type State = Lossy;
        type Timer = NoTimer;
        type Durable = Volatile;

        fn new(_: NoConfig) -> Result<Self, NodeError> {
            Ok(LossyNode)
        }

        fn receive(
            &mut self,
            _: &mut Ctl<'_, Self>,
            _: Option<NodeHandle>,
            message: Nothing,
        ) -> Result<(), NodeError> {
            match message {}
        }

        fn state(&self) -> Lossy {
            Lossy { kept: 1, lost: 2 }
        }
    }

    /// Spawns one lossy node; "correct" whatever the states say (the runner must stop first).
    pub struct LossyApp;

    impl Application for LossyApp {
        const NAME: &'static str = "lossy";
        const TITLE: &'static str = "a node whose state does not read back";
        type Section = NoConfig;
        type Outcome = NoConfig;

        fn register(&self, registry: &mut NodeRegistry) {
            registry.add::<LossyNode>();
        }

        fn validate(&self, _: &NoConfig, _: &Common) -> Result<(), FieldError> {
            Ok(())
        }

        fn size(&self, _: &NoConfig) -> String {
            "1 node".into()
        }

        fn play(&self, _: &NoConfig, sim: &mut Sim<'_>) -> Result<(), PlayError> {
            sim.spawn::<LossyNode>(MachineId(0), &NoConfig {})?;
            Ok(())
        }

        fn check(&self, _: &NoConfig, states: &[NodeState]) -> Verdict<NoConfig> {
            // `states_of` skips a state that does not read back: without the runner's check,
            // this would judge a run whose node it cannot see.
            let seen: u32 = states_of::<LossyNode>(states)
                .iter()
                .map(|(_, state)| state.kept + state.lost)
                .sum();
            Verdict {
                correct: true,
                summary: format!("{seen} seen"),
                outcome: NoConfig {},
                lines: Vec::new(),
            }
        }
    }
}

#[test]
fn simulated_a_node_state_that_does_not_read_back_as_its_type_fails_the_run_naming_it() {
    let scenario =
        Scenario::new(lossy::LossyApp, NoConfig {}, 1, Millis(100), 0).expect("a valid scenario");
    let error = match simulate(&scenario, &RunOptions::default()) {
        Ok(run) => panic!("the run must fail, not report {:?}", run.report.summary),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("LossyNode"), "{error}");
    assert!(error.contains("lost"), "{error}");
}
