//! Property: random schedules of every fault verb — partitions, holds, pauses, crashes and
//! restarts, drop, duplicate and reorder rules switched on and off — over random sum networks and
//! broadcast workloads, with reliable delivery on, leave every output exact once the run has
//! settled. 1,000 cases each, without crashes and with them.

use dist_zero::app::Application;
use dist_zero::apps::broadcast::{BroadcastApp, BroadcastSection, BroadcastSpec, Shape};
use dist_zero::apps::sum::{SumApp, SumSection, UserAction, UserSpec};
use dist_zero::faults::{CutId, Fault, FaultRule, RuleKind};
use dist_zero::messages::MachineId;
use dist_zero::node::NodeRegistry;
use dist_zero::system::{Builder, Sim};
use dist_zero::time::Millis;
use proptest::prelude::*;

/// When every window has ended.
const WINDOWS_END_MS: u64 = 3_000;
/// How long a run may take to settle after that (a link that never measured its round trip
/// backs off from 200 ms, so several losses in a row take a while).
const SETTLE_MS: u64 = 180_000;

/// One fault window: a verb that starts it and one that ends it.
#[derive(Debug, Clone)]
enum Window {
    Partition { split: u32 },
    Hold { a: u32, b: u32 },
    Pause { machine: u32 },
    Crash { machine: u32 },
    Rule { kind: u8, rate: f64 },
}

/// A window of any verb but crashes.
fn window() -> impl Strategy<Value = (Window, u64, u64)> {
    let kind = prop_oneof![
        (1u32..8).prop_map(|split| Window::Partition { split }),
        (0u32..8, 0u32..8).prop_map(|(a, b)| Window::Hold { a, b }),
        (0u32..8).prop_map(|machine| Window::Pause { machine }),
        (0u8..3, 0.05f64..0.4).prop_map(|(kind, rate)| Window::Rule { kind, rate }),
    ];
    (kind, 0u64..2_500, 1u64..500)
}

/// A window of any verb, crashes and restarts included.
fn any_window() -> impl Strategy<Value = (Window, u64, u64)> {
    prop_oneof![
        window(),
        (
            (0u32..8).prop_map(|machine| Window::Crash { machine }),
            0u64..2_500,
            1u64..500
        ),
    ]
}

/// Puts `windows` on `sim`'s agenda, on a system of `machines` machines. Crashes of one machine
/// that would overlap are left out (a machine that is down cannot crash).
fn schedule(sim: &mut Sim<'_>, machines: u32, windows: &[(Window, u64, u64)]) {
    let mut down: Vec<(u32, u64, u64)> = Vec::new();
    for (index, (window, from, length)) in windows.iter().enumerate() {
        let (from, to) = (*from, (*from + *length).min(WINDOWS_END_MS));
        let machine = |m: u32| MachineId(m % machines);
        let (start, end) = match window {
            Window::Partition { split } => {
                let split = split % machines;
                let groups = vec![
                    (0..split).map(MachineId).collect(),
                    (split..machines).map(MachineId).collect(),
                ];
                let cut = CutId(100 + index as u32);
                (Fault::Partition { cut, groups }, Fault::Repair { cut })
            }
            Window::Hold { a, b } => {
                let (a, b) = (machine(*a), machine(*b));
                (Fault::Hold { a, b }, Fault::Release { a, b })
            }
            Window::Pause { machine: m } => (
                Fault::Pause {
                    machine: machine(*m),
                },
                Fault::Resume {
                    machine: machine(*m),
                },
            ),
            Window::Crash { machine: m } => {
                let m = m % machines;
                if down
                    .iter()
                    .any(|(d, f, t)| *d == m && from <= *t && *f <= to)
                {
                    continue;
                }
                down.push((m, from, to));
                let machine = MachineId(m);
                (Fault::Crash { machine }, Fault::Restart { machine })
            }
            Window::Rule { kind, rate } => {
                let kind = [RuleKind::Drop, RuleKind::Duplicate, RuleKind::Reorder][*kind as usize];
                let rule = Some(FaultRule {
                    rate: *rate,
                    types: None,
                });
                (Fault::Rule { kind, rule }, Fault::Rule { kind, rule: None })
            }
        };
        sim.schedule(from, start)
            .expect("a verb for machines the system has");
        sim.schedule(to.max(from + 1), end)
            .expect("a verb for machines the system has");
    }
}

/// Plays `app`'s `section` on `machines` machines on `seed` under `windows`, settles, and says
/// what the application's check said.
fn exact<A: Application>(
    app: &A,
    section: &A::Section,
    machines: u32,
    seed: u64,
    windows: &[(Window, u64, u64)],
) -> Result<(), String> {
    let mut registry = NodeRegistry::new();
    app.register(&mut registry);
    let mut sim = Builder::new()
        .machines(machines)
        .seed(seed)
        .registry(registry)
        .build()
        .map_err(|e| e.to_string())?;
    schedule(&mut sim, machines, windows);
    app.play(section, &mut sim).map_err(|e| e.to_string())?;
    sim.run_until(WINDOWS_END_MS + 1)
        .map_err(|e| e.to_string())?;
    sim.settle(SETTLE_MS).map_err(|e| e.to_string())?;
    let states = sim.hardware().node_states().map_err(|e| e.to_string())?;
    let verdict = app.check(section, &states);
    if verdict.correct {
        Ok(())
    } else {
        Err(verdict.summary)
    }
}

/// Users as (machine, join time, `(gap, amount)` actions).
type Users = Vec<(u32, u64, Vec<(u64, i64)>)>;

fn users() -> impl Strategy<Value = Users> {
    prop::collection::vec(
        (
            0u32..8,
            0u64..1_500,
            prop::collection::vec((0u64..400, -9i64..10), 1..4),
        ),
        1..6,
    )
}

/// The sum section of `users` (machine, join, `(gap, amount)` actions) on `machines` machines.
fn sum_section(machines: u32, users: Users) -> SumSection {
    let users = users
        .into_iter()
        .enumerate()
        .map(|(index, (machine, join_ms, actions))| {
            let mut at = 0;
            let actions = actions
                .into_iter()
                .map(|(gap, amount)| {
                    at += gap;
                    (Millis(at), UserAction::Increment { amount })
                })
                .collect();
            UserSpec {
                name: format!("user {index}"),
                machine: machine % machines,
                join_ms: Millis(join_ms),
                actions,
                leave_ms: None,
            }
        })
        .collect();
    SumSection {
        users,
        ..SumSection::default()
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Ring),
        Just(Shape::Line),
        Just(Shape::Grid),
        Just(Shape::Star)
    ]
}

/// Broadcasts as (time, node) pairs.
fn broadcasts() -> impl Strategy<Value = Vec<(u64, u32)>> {
    prop::collection::vec((0u64..2_500, 0u32..10), 1..6)
}

/// The broadcast section of `nodes` nodes in `shape` broadcasting `broadcasts`.
fn broadcast_section(nodes: u32, shape: Shape, broadcasts: Vec<(u64, u32)>) -> BroadcastSection {
    let broadcasts = broadcasts
        .into_iter()
        .zip(0i64..)
        .map(|((at_ms, node), value)| BroadcastSpec {
            at_ms: Millis(at_ms),
            node: node % nodes,
            value,
        })
        .collect();
    BroadcastSection {
        nodes,
        topology: Some(shape),
        neighbours: None,
        broadcasts,
        gossip_ms: 20,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn simulated_random_verb_schedules_leave_every_sum_output_exact(
        machines in 2u32..5,
        seed in any::<u64>(),
        users in users(),
        windows in prop::collection::vec(window(), 0..7),
    ) {
        let section = sum_section(machines, users);
        prop_assert_eq!(exact(&SumApp, &section, machines, seed, &windows), Ok(()));
    }

    #[test]
    fn simulated_random_verb_schedules_leave_every_broadcast_node_holding_every_value_once(
        machines in 2u32..5,
        seed in any::<u64>(),
        nodes in 2u32..10,
        shape in shape(),
        broadcasts in broadcasts(),
        windows in prop::collection::vec(window(), 0..7),
    ) {
        let section = broadcast_section(nodes, shape, broadcasts);
        prop_assert_eq!(exact(&BroadcastApp, &section, machines, seed, &windows), Ok(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn simulated_random_verb_schedules_with_crashes_leave_every_sum_output_exact(
        machines in 2u32..5,
        seed in any::<u64>(),
        users in users(),
        windows in prop::collection::vec(any_window(), 0..7),
    ) {
        let section = sum_section(machines, users);
        prop_assert_eq!(exact(&SumApp, &section, machines, seed, &windows), Ok(()));
    }

    #[test]
    fn simulated_random_verb_schedules_with_crashes_leave_every_broadcast_node_holding_every_value_once(
        machines in 2u32..5,
        seed in any::<u64>(),
        nodes in 2u32..10,
        shape in shape(),
        broadcasts in broadcasts(),
        windows in prop::collection::vec(any_window(), 0..7),
    ) {
        let section = broadcast_section(nodes, shape, broadcasts);
        prop_assert_eq!(exact(&BroadcastApp, &section, machines, seed, &windows), Ok(()));
    }
}
