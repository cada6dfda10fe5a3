//! Breaking a system on purpose, in simulation: the builder, the fault verbs a test calls at any
//! moment, crash and restart with durable state, and invariants after every event.

#[path = "../examples/replicated-kv/src/nodes.rs"]
#[allow(dead_code)]
mod nodes;

use dist_zero::faults::FaultRule;
use dist_zero::messages::NodeHandle;
use dist_zero::node::{Ctl, Handle, NoConfig, NoTimer, NodeError, ReplyTo, TypedNode};
use dist_zero::system::{Builder, Reply, States, SystemError};
use nodes::{Replica, ReplicaConfig, Sequencer, ToReplica, Write};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// Whether any two replicas disagree: one's log is not a prefix of the other's.
fn replicas_agree(states: &States) -> Result<(), String> {
    let logs: Vec<Vec<u32>> = states
        .of::<Replica>()
        .into_iter()
        .map(|(_, r)| r.applied)
        .collect();
    for (a, b) in logs.iter().flat_map(|a| logs.iter().map(move |b| (a, b))) {
        if a.iter().zip(b).any(|(x, y)| x != y) {
            return Err(format!("{a:?} and {b:?} disagree"));
        }
    }
    Ok(())
}

#[test]
fn simulated_the_story_cut_crash_restart_heal_and_no_two_replicas_ever_disagree(
) -> Result<(), SystemError> {
    let mut sim = Builder::new()
        .machines(5)
        .seed(3)
        .node::<Sequencer>()
        .node::<Replica>()
        .invariant("no two replicas disagree", replicas_agree)
        .build()?;
    let sequencer = sim.spawn::<Sequencer>(0, &NoConfig {})?;
    let replicas = (1..5)
        .map(|index| sim.spawn::<Replica>(index, &ReplicaConfig { index, sequencer }))
        .collect::<Result<Vec<_>, _>>()?;
    let put = |id: u32| ToReplica::Put {
        write: Write {
            id,
            key: format!("k{id}"),
            value: 1,
        },
    };
    sim.send(replicas[0], &put(0))?;
    sim.run_until(300)?;
    let cut = sim.partition(&[&[2], &[0, 1, 3, 4]])?; // machine 2 cut off at 300 ms
    sim.send(replicas[1], &put(1))?; // on machine 2: waits for the heal
    sim.send(replicas[3], &put(2))?;
    sim.run_for(200)?;
    sim.crash(4)?;
    sim.run_for(300)?;
    sim.restart(4)?; // its replica boots with nothing and joins again
    sim.repair(cut)?;
    sim.settle(10_000)?;
    for (_, replica) in sim.states::<Replica>()? {
        assert_eq!(replica.applied.len(), 3, "every write, on every replica");
    }
    Ok(())
}

/// What the test nodes below receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Tally {
    /// Add `n`.
    Add { n: u64 },
    /// Become odd for one event (a `Flicker` only).
    Flip,
    /// Become even again.
    Flop,
}

#[derive(Serialize, Deserialize)]
struct CounterConfig {
    persist: bool,
}

/// Adds up what it is sent; persists its total if its config says so.
struct Counter {
    total: u64,
    persist: bool,
}

impl TypedNode for Counter {
    const TYPE: &'static str = "Counter";
    type Config = CounterConfig;
    type Message = Tally;
    type State = u64;
    type Timer = NoTimer;
    type Durable = u64;

    fn new(config: CounterConfig) -> Result<Self, NodeError> {
        Ok(Counter {
            total: 0,
            persist: config.persist,
        })
    }

    fn recover(&mut self, _: &mut Ctl<'_, Self>, total: u64) -> Result<(), NodeError> {
        self.total = total;
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _: Option<NodeHandle>,
        m: Tally,
    ) -> Result<(), NodeError> {
        if let Tally::Add { n } = m {
            self.total += n;
            if self.persist {
                ctl.persist(self.total);
            }
        }
        Ok(())
    }

    fn state(&self) -> u64 {
        self.total
    }
}

#[derive(Serialize, Deserialize)]
struct PumpConfig {
    to: Handle<Counter>,
    count: u32,
    every_ms: u64,
}

/// Sends `count` additions of 1 to a counter, one every `every_ms`.
struct Pump {
    config: PumpConfig,
    sent: u32,
}

impl TypedNode for Pump {
    const TYPE: &'static str = "Pump";
    type Config = PumpConfig;
    type Message = Tally;
    type State = u32;
    type Timer = ();
    type Durable = dist_zero::node::Volatile;

    fn new(config: PumpConfig) -> Result<Self, NodeError> {
        Ok(Pump { config, sent: 0 })
    }

    fn start(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        ctl.set_timer(self.config.every_ms, ());
        Ok(())
    }

    fn receive(
        &mut self,
        _: &mut Ctl<'_, Self>,
        _: Option<NodeHandle>,
        _: Tally,
    ) -> Result<(), NodeError> {
        Ok(())
    }

    fn timer(&mut self, ctl: &mut Ctl<'_, Self>, (): ()) -> Result<(), NodeError> {
        if self.sent < self.config.count {
            self.sent += 1;
            ctl.send(self.config.to, &Tally::Add { n: 1 })?;
            ctl.set_timer(self.config.every_ms, ());
        }
        Ok(())
    }

    fn state(&self) -> u32 {
        self.sent
    }
}

/// Odd for exactly one event after each `Flip`: it sends itself a `Flop` at once.
struct Flicker {
    odd: bool,
}

impl TypedNode for Flicker {
    const TYPE: &'static str = "Flicker";
    type Config = NoConfig;
    type Message = Tally;
    type State = bool;
    type Timer = NoTimer;
    type Durable = dist_zero::node::Volatile;

    fn new(_: NoConfig) -> Result<Self, NodeError> {
        Ok(Flicker { odd: false })
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _: Option<NodeHandle>,
        m: Tally,
    ) -> Result<(), NodeError> {
        match m {
            Tally::Flip => {
                self.odd = true;
                let me = ctl.me();
                ctl.send(me, &Tally::Flop)?;
            }
            Tally::Flop => self.odd = false,
            Tally::Add { .. } => {}
        }
        Ok(())
    }

    fn state(&self) -> bool {
        self.odd
    }
}

/// What a register receives: a write, or a read that names where the value goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToRegister {
    Write { value: u64 },
    Read { reply_to: ReplyTo<RegisterReply> },
}

/// What a register answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RegisterReply {
    Value { value: u64 },
}

/// Holds one value; answers reads to whoever the read names.
struct Register {
    value: u64,
}

impl TypedNode for Register {
    const TYPE: &'static str = "Register";
    type Config = NoConfig;
    type Message = ToRegister;
    type State = u64;
    type Timer = NoTimer;
    type Durable = dist_zero::node::Volatile;

    fn new(_: NoConfig) -> Result<Self, NodeError> {
        Ok(Register { value: 0 })
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _: Option<NodeHandle>,
        m: ToRegister,
    ) -> Result<(), NodeError> {
        match m {
            ToRegister::Write { value } => self.value = value,
            ToRegister::Read { reply_to } => {
                let value = self.value;
                ctl.reply(reply_to, &RegisterReply::Value { value })?;
            }
        }
        Ok(())
    }

    fn state(&self) -> u64 {
        self.value
    }
}

#[test]
fn simulated_a_test_client_gets_the_replies_to_its_requests_through_the_network_in_order(
) -> Result<(), SystemError> {
    let mut sim = Builder::new()
        .machines(2)
        .seed(5)
        .drops(FaultRule {
            rate: 0.3,
            types: None,
        })
        .node::<Register>()
        .client::<RegisterReply>()
        .keep_trace_text()
        .build()?;
    let register = sim.spawn::<Register>(1, &NoConfig {})?;
    let client = sim.client::<RegisterReply>(0)?;
    for value in [7, 8] {
        sim.request(client, register, &ToRegister::Write { value })?;
        let read = ToRegister::Read {
            reply_to: client.into(),
        };
        sim.request(client, register, &read)?;
    }
    sim.settle(10_000)?;
    let replies = sim.replies(client)?;
    let values: Vec<_> = replies
        .iter()
        .map(|Reply { message, .. }| message)
        .collect();
    assert_eq!(
        values,
        [
            &RegisterReply::Value { value: 7 },
            &RegisterReply::Value { value: 8 }
        ],
        "each request once, in order, over a link that drops 30 %"
    );
    assert!(replies
        .iter()
        .all(|reply| reply.from == Some(register.untyped())));
    assert!(
        sim.replies(client)?.is_empty(),
        "each reply is handed out once"
    );
    let trace = sim.trace_text().unwrap_or_default();
    assert!(trace.contains("m0->m1") && trace.contains("--read-->"));
    assert!(trace.contains("m1->m0") && trace.contains("--value-->"));
    assert!(sim.counters().dropped > 0, "the network dropped some");
    Ok(())
}

/// Spawns `n` counters on its own machine for every `Add { n }`, and terminates them all on a
/// `Flop`.
struct Breeder {
    bred: Vec<Handle<Counter>>,
}

impl TypedNode for Breeder {
    const TYPE: &'static str = "Breeder";
    type Config = NoConfig;
    type Message = Tally;
    type State = usize;
    type Timer = NoTimer;
    type Durable = dist_zero::node::Volatile;

    fn new(_: NoConfig) -> Result<Self, NodeError> {
        Ok(Breeder { bred: Vec::new() })
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _: Option<NodeHandle>,
        m: Tally,
    ) -> Result<(), NodeError> {
        match m {
            Tally::Add { n } => {
                for _ in 0..n {
                    let config = CounterConfig { persist: false };
                    self.bred
                        .push(ctl.spawn::<Counter>(ctl.machine(), &config)?);
                }
            }
            Tally::Flop => self.bred.drain(..).for_each(|node| ctl.terminate(node)),
            Tally::Flip => {}
        }
        Ok(())
    }

    fn state(&self) -> usize {
        self.bred.len()
    }
}

#[test]
fn simulated_an_invariant_sees_a_node_the_event_it_is_spawned_and_the_event_it_is_terminated(
) -> Result<(), SystemError> {
    let at_most = |most: usize| {
        move |states: &States| match states.of::<Counter>().len() {
            n if n > most => Err(format!("{n} counters")),
            _ => Ok(()),
        }
    };
    let mut sim = builder(1)
        .node::<Breeder>()
        .invariant("at most two counters", at_most(2))
        .build()?;
    let breeder = sim.spawn::<Breeder>(2, &NoConfig {})?;
    sim.send(breeder, &Tally::Add { n: 2 })?;
    sim.run_for(10)?;
    sim.send(breeder, &Tally::Add { n: 1 })?;
    let Err(SystemError::Invariant(broken)) = sim.run_for(10) else {
        panic!("the third counter went unseen");
    };
    assert_eq!(
        broken.violation::<String>().map(String::as_str),
        Some("3 counters")
    );
    let event = broken.event.as_deref().unwrap_or_default();
    assert!(event.contains("receives `spawn`"), "{event}");

    let mut sim = builder(1).node::<Breeder>().build()?;
    let breeder = sim.spawn::<Breeder>(2, &NoConfig {})?;
    sim.send(breeder, &Tally::Add { n: 3 })?;
    sim.run_for(10)?;
    sim.send(breeder, &Tally::Flop)?;
    // Three terminations, three events: right after the first, two counters are left.
    let two_left = sim.run_until_true(10, |states| states.of::<Counter>().len() == 2)?;
    assert!(two_left, "the first termination went unseen");
    sim.run_for(10)?;
    assert!(sim.states::<Counter>()?.is_empty());
    Ok(())
}

#[test]
fn simulated_changed_states_are_the_nodes_an_event_or_spawn_changed_and_no_other(
) -> Result<(), SystemError> {
    let seen: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
    let log = Arc::clone(&seen);
    let record = move |states: &States| -> Result<(), String> {
        let changed: Vec<u64> = states
            .changed::<Counter>()
            .into_iter()
            .map(|(_, total)| total)
            .collect();
        if !changed.is_empty() {
            log.lock().map_err(|_| "poisoned")?.push(changed);
        }
        Ok(())
    };
    let mut sim = builder(1).invariant("records", record).build()?;
    let config = CounterConfig { persist: false };
    let a = sim.spawn::<Counter>(1, &config)?;
    let b = sim.spawn::<Counter>(1, &config)?;
    sim.send(a, &Tally::Add { n: 0 })?;
    sim.run_for(10)?;
    sim.send(b, &Tally::Add { n: 5 })?;
    sim.run_for(10)?;
    let seen = seen.lock().map(|seen| seen.clone()).unwrap_or_default();
    // Each spawn shows the new node alone; adding 0 changes nothing, so nothing is fresh.
    assert_eq!(seen, vec![vec![0], vec![0], vec![5]]);
    Ok(())
}

fn builder(seed: u64) -> Builder {
    Builder::new()
        .machines(3)
        .seed(seed)
        .node::<Counter>()
        .node::<Pump>()
        .node::<Flicker>()
}

/// A pump on machine 0 sending 200 additions to a counter on machine 1 under 20 % drops, with
/// machine 1 crashed at `crash_ms` and restarted 300 ms later: the counter's total, settled.
fn pumped_through_a_crash(seed: u64, crash_ms: u64, persist: bool) -> Result<u64, SystemError> {
    let mut sim = builder(seed)
        .drops(FaultRule {
            rate: 0.2,
            types: None,
        })
        .build()?;
    let counter = sim.spawn::<Counter>(1, &CounterConfig { persist })?;
    sim.spawn::<Pump>(
        0,
        &PumpConfig {
            to: counter,
            count: 200,
            every_ms: 5,
        },
    )?;
    sim.run_until(crash_ms)?;
    sim.crash(1)?;
    sim.run_for(300)?;
    sim.restart(1)?;
    sim.settle(60_000)?;
    sim.state(counter)
}

#[test]
fn simulated_every_message_to_a_machine_that_crashes_is_delivered_exactly_once_across_incarnations(
) -> Result<(), SystemError> {
    // A receiver that persists what it applied sees every message once: nothing delivered
    // before the crash is delivered again (the disk keeps how far each peer's stream was
    // delivered), and nothing acknowledged only selectively before the crash is lost (the sender
    // keeps it until it is acknowledged in order, and sends it again when the peer reboots).
    for seed in 0..40 {
        let crash_ms = 100 + seed * 17 % 700;
        assert_eq!(
            pumped_through_a_crash(seed, crash_ms, true)?,
            200,
            "seed {seed}"
        );
    }
    Ok(())
}

#[test]
fn simulated_what_a_node_did_not_persist_is_gone_after_a_crash() -> Result<(), SystemError> {
    let total = pumped_through_a_crash(1, 500, false)?;
    assert!(
        total < 200,
        "the volatile counter started again from 0: {total}"
    );
    let mut sim = builder(2).build()?;
    let durable = sim.spawn::<Counter>(1, &CounterConfig { persist: true })?;
    let volatile = sim.spawn::<Counter>(1, &CounterConfig { persist: false })?;
    for node in [durable, volatile] {
        sim.send(node, &Tally::Add { n: 7 })?;
    }
    sim.run_for(10)?;
    sim.crash(1)?;
    assert!(
        matches!(sim.state(durable), Err(SystemError::NoSuchNode(_))),
        "the machine is down, and its nodes with it"
    );
    sim.restart(1)?;
    assert_eq!((sim.state(durable)?, sim.state(volatile)?), (7, 0));
    Ok(())
}

#[test]
fn simulated_a_message_from_outside_to_a_machine_that_is_down_waits_for_its_restart(
) -> Result<(), SystemError> {
    let mut sim = builder(3).build()?;
    let counter = sim.spawn::<Counter>(2, &CounterConfig { persist: true })?;
    sim.crash(2)?;
    sim.send(counter, &Tally::Add { n: 5 })?;
    sim.run_for(1_000)?;
    sim.restart(2)?;
    sim.run_for(10)?;
    assert_eq!(sim.state(counter)?, 5);
    Ok(())
}

#[test]
fn simulated_a_machine_that_never_comes_back_keeps_the_run_from_settling_and_is_named(
) -> Result<(), SystemError> {
    let mut sim = builder(4).build()?;
    let counter = sim.spawn::<Counter>(1, &CounterConfig { persist: true })?;
    sim.spawn::<Pump>(
        0,
        &PumpConfig {
            to: counter,
            count: 5,
            every_ms: 10,
        },
    )?;
    sim.run_for(25)?;
    sim.crash(1)?;
    match sim.settle(5_000) {
        Err(SystemError::NotSettled {
            down, in_flight, ..
        }) => {
            assert_eq!(down, vec![1]);
            assert!(in_flight > 0, "the pump keeps retrying");
        }
        other => panic!("settled with machine 1 down: {other:?}"),
    }
    Ok(())
}

#[test]
fn simulated_settling_waits_for_what_a_timer_sends_after_a_quiet_moment() -> Result<(), SystemError>
{
    let mut sim = builder(0).build()?;
    let counter = sim.spawn::<Counter>(1, &CounterConfig { persist: false })?;
    let pump = PumpConfig {
        to: counter,
        count: 1,
        every_ms: 500,
    };
    sim.spawn::<Pump>(0, &pump)?;
    sim.run_for(10)?;
    assert_eq!(sim.counters().in_flight, 0, "nothing in flight yet");
    sim.settle(10_000)?; // the pump's timer sends only at 500 ms
    assert_eq!(sim.state(counter)?, 1);
    Ok(())
}

#[test]
fn simulated_an_invariant_broken_for_a_single_event_is_caught_and_names_that_event(
) -> Result<(), SystemError> {
    let never_odd = |states: &States| match states.of::<Flicker>().iter().find(|(_, odd)| *odd) {
        Some((node, _)) => Err(format!("{node:?} is odd")),
        None => Ok(()),
    };
    let mut sim = builder(5).invariant("never odd", never_odd).build()?;
    let flicker = sim.spawn::<Flicker>(1, &NoConfig {})?;
    sim.run_until(100)?;
    sim.send(flicker, &Tally::Flip)?; // odd for one event, between two of any 50 ms steps
    let Err(SystemError::Invariant(broken)) = sim.run_until(200) else {
        panic!("the one-event violation went unseen");
    };
    assert_eq!(broken.check, "never odd");
    assert_eq!(
        broken.violation::<String>().map(String::as_str),
        Some("n1.0@m1 is odd")
    );
    let event = broken.event.as_deref().unwrap_or_default();
    assert!(
        event.contains("--flip-->") && event.contains("n1.0@m1"),
        "{event}"
    );
    assert_eq!(broken.at_us.0, 100_000);

    // Looking every 1,000 events instead is cheaper, and misses it.
    let mut sparse = builder(5)
        .invariant("never odd", never_odd)
        .check_every(1_000)
        .build()?;
    let flicker = sparse.spawn::<Flicker>(1, &NoConfig {})?;
    sparse.send(flicker, &Tally::Flip)?;
    sparse.run_until(200)
}

/// A run with every verb, the trace hash at its end.
fn every_verb(seed: u64) -> Result<Option<String>, SystemError> {
    let mut sim = builder(seed).build()?;
    let counter = sim.spawn::<Counter>(1, &CounterConfig { persist: true })?;
    sim.spawn::<Pump>(
        0,
        &PumpConfig {
            to: counter,
            count: 50,
            every_ms: 7,
        },
    )?;
    sim.run_for(40)?;
    let cut = sim.partition(&[&[0], &[1, 2]])?;
    sim.run_for(40)?;
    sim.repair(cut)?;
    sim.hold(0, 1)?;
    sim.run_for(40)?;
    sim.release(0, 1)?;
    sim.pause(1)?;
    sim.run_for(40)?;
    sim.resume(1)?;
    sim.drop_rule(Some(FaultRule {
        rate: 0.3,
        types: None,
    }))?;
    sim.duplicate_rule(Some(FaultRule {
        rate: 0.3,
        types: None,
    }))?;
    sim.reorder_rule(Some(FaultRule {
        rate: 0.3,
        types: None,
    }))?;
    sim.run_for(40)?;
    sim.crash(1)?;
    sim.run_for(40)?;
    sim.restart(1)?;
    sim.drop_rule(None)?;
    sim.settle(60_000)?;
    assert_eq!(sim.state(counter)?, 50, "seed {seed}");
    Ok(sim.trace_hash())
}

#[test]
fn simulated_the_same_seed_and_the_same_verbs_give_the_same_trace() -> Result<(), SystemError> {
    let first = every_verb(11)?;
    assert!(first.is_some());
    assert_eq!(first, every_verb(11)?);
    assert_ne!(first, every_verb(12)?);
    Ok(())
}

#[test]
fn simulated_a_hold_delays_everything_on_its_link_until_released() -> Result<(), SystemError> {
    let mut sim = builder(6).build()?;
    let counter = sim.spawn::<Counter>(1, &CounterConfig { persist: false })?;
    sim.spawn::<Pump>(
        0,
        &PumpConfig {
            to: counter,
            count: 10,
            every_ms: 10,
        },
    )?;
    sim.hold(0, 1)?;
    sim.run_for(500)?;
    assert_eq!(sim.state(counter)?, 0, "held, not lost");
    assert!(sim.counters().held >= 10);
    sim.release(0, 1)?;
    sim.run_for(100)?;
    assert_eq!(sim.state(counter)?, 10);
    Ok(())
}

#[test]
fn simulated_a_paused_machine_does_nothing_until_resumed() -> Result<(), SystemError> {
    let mut sim = builder(7).build()?;
    let counter = sim.spawn::<Counter>(2, &CounterConfig { persist: false })?;
    sim.pause(2)?;
    sim.send(counter, &Tally::Add { n: 3 })?;
    sim.run_for(1_000)?;
    assert_eq!(sim.state(counter)?, 0);
    sim.resume(2)?;
    sim.run_for(1)?;
    assert_eq!(sim.state(counter)?, 3);
    Ok(())
}

#[test]
fn simulated_a_drop_rule_switched_on_and_off_mid_run() -> Result<(), SystemError> {
    let mut sim = builder(8).unreliable().build()?;
    let counter = sim.spawn::<Counter>(1, &CounterConfig { persist: false })?;
    sim.spawn::<Pump>(
        0,
        &PumpConfig {
            to: counter,
            count: 20,
            every_ms: 10,
        },
    )?;
    sim.drop_rule(Some(FaultRule {
        rate: 1.0,
        types: Some("add".into()),
    }))?;
    sim.run_until(105)?;
    assert_eq!(
        sim.state(counter)?,
        0,
        "every addition dropped, none resent"
    );
    sim.drop_rule(None)?;
    sim.run_for(1_000)?;
    assert_eq!(sim.state(counter)?, 10);
    Ok(())
}
