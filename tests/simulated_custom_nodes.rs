//! A library user's own node types in simulated mode.
//!
//! A ping-pong pair is registered through `NodeRegistry::register` / `register_factory`, exactly
//! as the built-in sum network is, and run in `SimulatedHardware`: the pinger spawns its echo on
//! another machine, exchanges messages, waits random delays drawn from `ctl.random()` on timers,
//! cancels a timer, and terminates the echo. With constant latency every arrival time is checked
//! exactly. A node that raises an error stops the run with `HardwareError::NodeFailed`, whose
//! report carries the seed and the causal trace (`--ping-->`, `--pong-->`) that led to it.

use std::sync::Arc;

use dist_zero::apps::builtin;
use dist_zero::faults::NetworkConfig;
use dist_zero::hardware::simulated::SimulationConfig;
use dist_zero::hardware::{FailureReport, Hardware, HardwareError, SimulatedHardware};
use dist_zero::messages::{MachineId, Message, NodeConfig, NodeHandle};
use dist_zero::node::{MachineController, Node, NodeError, NodeErrorKind, NodeRegistry};
use dist_zero::observe::failure_history;
use dist_zero::time::Millis;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One-way latency between machines in these tests.
const LATENCY_MS: u64 = 10;
/// The tag of a timer the pinger sets and cancels at once; it must never fire.
const CANCELLED_TAG: u64 = 999;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PingPong {
    Ping { n: u32 },
    Pong { n: u32 },
}

impl PingPong {
    fn message(&self) -> Result<Message, NodeError> {
        Ok(Message::encode(self)?)
    }
}

/// Answers every `ping` from a node with a `pong` carrying the same number, except `fail_at`.
struct Echo {
    fail_at: Option<u32>,
    pings: u32,
}

#[derive(Deserialize)]
struct EchoConfig {
    #[serde(default)]
    fail_at: Option<u32>,
}

impl Node for Echo {
    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        let PingPong::Ping { n } = message.decode::<PingPong>()? else {
            return Err(NodeError::UnexpectedMessage {
                node_type: "Echo",
                kind: message.kind().to_owned(),
            });
        };
        if self.fail_at == Some(n) {
            return Err(NodeError::Protocol(format!("echo refuses ping {n}")));
        }
        let sender =
            sender.ok_or_else(|| NodeError::Protocol("a ping from outside has no reply".into()))?;
        self.pings += 1;
        ctl.send(sender, PingPong::Pong { n }.message()?);
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        json!({"pings": self.pings})
    }
}

/// Spawns an [`Echo`] on `echo_machine`, plays `rounds` rounds of ping-pong with a random pause
/// before each ping after the first, then terminates the echo.
struct Pinger {
    echo_machine: u32,
    rounds: u32,
    fail_at: Option<u32>,
    echo: Option<NodeHandle>,
    /// `(n, virtual ms)` of every pong received.
    pongs: Vec<(u32, u64)>,
    /// The random pauses, in ms, before pings 2, 3, ...
    pauses: Vec<u64>,
    terminated_echo: bool,
}

#[derive(Deserialize)]
struct PingerConfig {
    echo_machine: u32,
    rounds: u32,
    #[serde(default)]
    fail_at: Option<u32>,
}

impl Pinger {
    fn from_config(config: PingerConfig) -> Result<Self, NodeError> {
        if config.rounds == 0 {
            return Err(NodeError::Protocol("rounds must be positive".into()));
        }
        Ok(Pinger {
            echo_machine: config.echo_machine,
            rounds: config.rounds,
            fail_at: config.fail_at,
            echo: None,
            pongs: Vec::new(),
            pauses: Vec::new(),
            terminated_echo: false,
        })
    }

    fn echo(&self) -> Result<NodeHandle, NodeError> {
        self.echo
            .ok_or_else(|| NodeError::Protocol("no echo yet".into()))
    }
}

impl Node for Pinger {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        let config = Message::new(json!({"type": "Echo", "fail_at": self.fail_at}))?;
        let echo = ctl.spawn(MachineId(self.echo_machine), config)?;
        self.echo = Some(echo);
        ctl.send(echo, PingPong::Ping { n: 1 }.message()?);
        let doomed = ctl.set_timer(5, CANCELLED_TAG);
        ctl.cancel_timer(doomed);
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        let PingPong::Pong { n } = message.decode::<PingPong>()? else {
            return Err(NodeError::UnexpectedMessage {
                node_type: "Pinger",
                kind: message.kind().to_owned(),
            });
        };
        self.pongs.push((n, ctl.now_ms()));
        if n < self.rounds {
            let pause = ctl.random().next_u64() % 10 + 1;
            self.pauses.push(pause);
            ctl.set_timer(pause, u64::from(n + 1));
        } else {
            ctl.terminate(self.echo()?);
            self.terminated_echo = true;
        }
        Ok(())
    }

    fn timer(&mut self, ctl: &mut dyn MachineController, tag: u64) -> Result<(), NodeError> {
        if tag == CANCELLED_TAG {
            return Err(NodeError::Protocol("a cancelled timer fired".into()));
        }
        let n = u32::try_from(tag).map_err(|_| NodeError::Protocol("bad tag".into()))?;
        ctl.send(self.echo()?, PingPong::Ping { n }.message()?);
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        json!({
            "echo": self.echo,
            "pongs": self.pongs,
            "pauses": self.pauses,
            "terminated_echo": self.terminated_echo,
        })
    }
}

/// A registry with the built-ins and the ping-pong pair: `Pinger` through `register` (a typed
/// config), `Echo` through `register_factory` (an arbitrary closure).
fn registry() -> NodeRegistry {
    let mut registry = builtin().registry();
    registry.register("Pinger", Pinger::from_config);
    registry.register_factory(
        "Echo",
        Box::new(|config: &NodeConfig| {
            let EchoConfig { fail_at } = config.decode()?;
            Ok(Box::new(Echo { fail_at, pings: 0 }) as Box<dyn Node>)
        }),
    );
    registry
}

fn hardware(seed: u64) -> SimulatedHardware {
    SimulatedHardware::new(
        SimulationConfig {
            machines: 3,
            seed,
            network: serde_json::from_value::<NetworkConfig>(json!({
                "latency_ms": {"distribution": "constant", "mean": LATENCY_MS}
            }))
            .expect("a constant latency network is valid"),
            keep_trace_text: false,
            reliable: true,
        },
        Arc::new(registry()),
    )
    .expect("a constant latency network is valid")
}

fn pinger_config(rounds: u32, fail_at: Option<u32>) -> Message {
    Message::new(json!({"type": "Pinger", "echo_machine": 2, "rounds": rounds, "fail_at": fail_at}))
        .expect("a valid config")
}

fn state_of(hardware: &mut SimulatedHardware, handle: NodeHandle) -> Option<serde_json::Value> {
    hardware
        .node_states()
        .expect("states are readable")
        .into_iter()
        .find(|node| node.handle == handle)
        .map(|node| node.state)
}

#[test]
fn simulated_custom_nodes_are_registered_like_builtins() {
    let registry = registry();
    for kind in ["Pinger", "Echo", "SumNode", "InputNode", "OutputLeafNode"] {
        assert!(registry.knows(kind), "{kind} is registered");
    }
    assert!(!registry.knows("Nope"));
    let built = registry.build(&pinger_config(1, None));
    assert!(built.is_ok());
    let unfit = Message::new(json!({"type": "Pinger", "rounds": "three"})).expect("valid");
    let error = registry
        .build(&unfit)
        .err()
        .expect("a config that does not fit");
    assert!(error.to_string().contains("Pinger"), "{error}");
    let zero = registry
        .build(&pinger_config(0, None))
        .err()
        .expect("the node's own check runs");
    assert_eq!(zero, NodeError::Protocol("rounds must be positive".into()));
}

#[test]
fn simulated_custom_ping_pong_runs_across_machines() {
    let rounds = 6;
    let mut hardware = hardware(17);
    let pinger = hardware
        .spawn(MachineId(0), &pinger_config(rounds, None))
        .expect("the pinger starts");

    // The echo was spawned on machine 2 and answered the first ping one round trip later.
    hardware.run_until(2 * LATENCY_MS).expect("runs");
    let state = state_of(&mut hardware, pinger).expect("the pinger exists");
    let echo: NodeHandle = serde_json::from_value(state["echo"].clone()).expect("an echo handle");
    assert_eq!(echo.machine, MachineId(2));
    let echo_state = hardware
        .node_states()
        .expect("states")
        .into_iter()
        .find(|node| node.handle == echo)
        .expect("the echo runs on machine 2");
    assert_eq!(echo_state.node_type, "Echo");
    assert_eq!(echo_state.state, json!({"pings": 1}));

    hardware
        .run_until(1000)
        .expect("the cancelled timer never fires");
    let state = state_of(&mut hardware, pinger).expect("the pinger exists");
    let pauses: Vec<u64> = serde_json::from_value(state["pauses"].clone()).expect("pauses");
    let pongs: Vec<(u32, u64)> = serde_json::from_value(state["pongs"].clone()).expect("pongs");
    assert_eq!(pauses.len(), rounds as usize - 1);
    assert!(
        pauses.iter().all(|pause| (1..=10).contains(pause)),
        "{pauses:?}"
    );
    // Each pong arrives one round trip after its ping, and each ping leaves after its pause.
    let mut expected = Vec::new();
    let mut at = 2 * LATENCY_MS;
    for n in 1..=rounds {
        expected.push((n, at));
        if let Some(pause) = pauses.get(n as usize - 1) {
            at += pause + 2 * LATENCY_MS;
        }
    }
    assert_eq!(pongs, expected);
    assert_eq!(state["terminated_echo"], json!(true));

    // The echo was terminated: it is gone, and a message to it is undeliverable.
    assert!(state_of(&mut hardware, echo).is_none(), "the echo is gone");
    let before = hardware.stats().undeliverable;
    hardware
        .send(echo, PingPong::Ping { n: 99 }.message().expect("encodes"))
        .expect("machine 2 exists");
    hardware.run_for(Millis(10)).expect("runs");
    assert_eq!(hardware.stats().undeliverable, before + 1);
}

#[test]
fn simulated_custom_node_randomness_follows_the_seed() {
    let pauses = |seed: u64| {
        let mut hardware = hardware(seed);
        let pinger = hardware
            .spawn(MachineId(0), &pinger_config(12, None))
            .expect("the pinger starts");
        hardware.run_until(2000).expect("runs");
        state_of(&mut hardware, pinger).expect("the pinger exists")["pauses"].clone()
    };
    assert_eq!(pauses(3), pauses(3));
    assert_ne!(pauses(3), pauses(4));
}

/// Starts a pinger on machine 0 whose echo refuses ping 3, runs until it does; the pinger and
/// the failure.
fn echo_refuses_ping_3(hardware: &mut SimulatedHardware) -> (NodeHandle, Box<FailureReport>) {
    let pinger = hardware
        .spawn(MachineId(0), &pinger_config(5, Some(3)))
        .expect("the pinger starts");
    let error = hardware
        .run_until(1000)
        .expect_err("the echo refuses ping 3");
    let HardwareError::NodeFailed(report) = error else {
        panic!("expected NodeFailed, got {error:?}");
    };
    (pinger, report)
}

#[test]
fn simulated_a_failures_history_read_from_the_records_is_the_simulators_causal_trace() {
    let mut hardware = hardware(42);
    hardware.record_events(Vec::new());
    let (_, report) = echo_refuses_ping_3(&mut hardware);
    let records = hardware.take_records();
    let from_records = failure_history(&records, &report.failure);
    assert_eq!(report.trace.len(), 5, "{report}");
    assert_eq!(
        from_records, report.trace,
        "the records give the same history as the simulator's causal chain"
    );
}

#[test]
fn simulated_node_error_stops_the_run_with_its_causal_trace_and_seed() {
    let mut hardware = hardware(42);
    let (pinger, report) = echo_refuses_ping_3(&mut hardware);
    assert_eq!(report.seed, 42);
    assert_eq!(report.failure.node_type, "Echo");
    assert_eq!(report.failure.node.machine, MachineId(2));
    assert_eq!(report.failure.kind, NodeErrorKind::Protocol);
    assert_eq!(report.failure.message, "echo refuses ping 3");
    // The run stopped at the failing delivery.
    assert_eq!(report.failure.at_us.to_millis().0, hardware.now_ms());
    assert!(hardware.now_ms() < 1000);

    // ping 1 (sent from start) → pong 1 → (timer) ping 2 → pong 2 → (timer) ping 3.
    let kinds: Vec<&str> = report
        .trace
        .iter()
        .map(|line| {
            if line.contains("--ping-->") {
                "ping"
            } else if line.contains("--pong-->") {
                "pong"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(kinds, ["ping", "pong", "ping", "pong", "ping"], "{report}");
    let pinger_name = pinger.to_string();
    assert!(
        report.trace[0].contains(&format!("{pinger_name} --ping-->")),
        "{}",
        report.trace[0]
    );
    assert!(
        report.trace[1].contains(&format!("--pong--> {pinger_name}")),
        "{}",
        report.trace[1]
    );

    let text = HardwareError::NodeFailed(report.clone()).to_string();
    for needle in [
        "seed 42",
        "echo refuses ping 3",
        "Echo",
        "--ping-->",
        "--pong-->",
        "message trace",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    assert_eq!(text.lines().count(), 1 + report.trace.len(), "{text}");
}

#[test]
fn simulated_spawning_an_unregistered_node_type_is_an_error_naming_it() {
    let mut hardware = hardware(1);
    let config = Message::new(json!({"type": "Nope"})).expect("valid");
    let error = hardware
        .spawn(MachineId(1), &config)
        .expect_err("nobody registered Nope");
    let text = error.to_string();
    assert!(text.contains("unknown node type `Nope`"), "{text}");
    let HardwareError::NodeFailed(report) = error else {
        panic!("expected NodeFailed");
    };
    assert_eq!(report.failure.kind, NodeErrorKind::UnknownNodeType);
    assert_eq!(report.failure.message, "unknown node type `Nope`");

    let error = hardware
        .spawn(MachineId(3), &pinger_config(1, None))
        .expect_err("machine 3 of 3 does not exist");
    assert!(
        matches!(error, HardwareError::NoSuchMachine { machines: 3, .. }),
        "{error:?}"
    );
}

/// Two node types of one name, `Twin`, as two crates might both write.
mod twins {
    use dist_zero::messages::NodeHandle;
    use dist_zero::node::{Ctl, NoConfig, NoTimer, NodeError, TypedNode, Volatile};

    macro_rules! twin {
        ($name:ident) => {
            pub struct $name;

            impl TypedNode for $name {
                const TYPE: &'static str = "Twin";
                type Config = NoConfig;
                type Message = i64;
                type State = i64;
                type Timer = NoTimer;
                type Durable = Volatile;

                fn new(_: NoConfig) -> Result<Self, NodeError> {
                    Ok($name)
                }

                fn receive(
                    &mut self,
                    _: &mut Ctl<'_, Self>,
                    _: Option<NodeHandle>,
                    _: i64,
                ) -> Result<(), NodeError> {
                    Ok(())
                }

                fn state(&self) -> i64 {
                    0
                }
            }
        };
    }
    twin!(First);
    twin!(Second);
}

/// An application that takes the sum network's name.
struct Impostor;

impl dist_zero::app::Application for Impostor {
    const NAME: &'static str = "sum";
    const TITLE: &'static str = "impostor";
    type Section = ();
    type Outcome = ();

    fn register(&self, registry: &mut NodeRegistry) {
        registry.add::<twins::First>();
        registry.add::<twins::Second>();
    }

    fn validate(
        &self,
        _: &(),
        _: &dist_zero::app::Common,
    ) -> Result<(), dist_zero::app::FieldError> {
        Ok(())
    }

    fn size(&self, _: &()) -> String {
        String::new()
    }

    fn play(
        &self,
        _: &(),
        _: &mut dist_zero::system::Sim<'_>,
    ) -> Result<(), dist_zero::app::PlayError> {
        Ok(())
    }

    fn check(&self, _: &(), _: &[dist_zero::manager::NodeState]) -> dist_zero::app::Verdict<()> {
        dist_zero::app::Verdict {
            correct: true,
            summary: String::new(),
            outcome: (),
            lines: Vec::new(),
        }
    }
}

#[test]
fn simulated_a_node_type_or_an_application_registered_twice_is_refused_naming_both() {
    let refused = dist_zero::system::Builder::new()
        .node::<twins::First>()
        .node::<twins::Second>()
        .build()
        .err()
        .expect("two node types called Twin");
    let said = refused.to_string();
    assert!(
        said.contains("`Twin`") && said.contains("twins::First") && said.contains("twins::Second"),
        "{said}"
    );
    // The same type twice is the same registration.
    assert!(dist_zero::system::Builder::new()
        .node::<twins::First>()
        .node::<twins::First>()
        .build()
        .is_ok());
    // Through an application's registration, a run refuses to start, as bad input.
    let scenario = dist_zero::scenario::Scenario::new(Impostor, (), 1, Millis(10), 0)
        .expect("the section is valid");
    let run = dist_zero::scenario::simulate(&scenario, &Default::default())
        .err()
        .expect("refused");
    assert!(run.to_string().contains("`Twin`"), "{run}");

    let twice = builtin()
        .with(Impostor)
        .err()
        .expect("two applications called sum");
    let said = twice.to_string();
    assert!(
        said.contains("`sum`") && said.contains("SumApp") && said.contains("Impostor"),
        "{said}"
    );
}
