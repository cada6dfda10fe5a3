//! `dist-zero bench-trees`: what the self-scaling trees buy, flat against tree, side by side.
//!
//! Each size is run twice, once as the flat network and once as the trees, each in a child
//! process of its own (so that its peak memory is its own). A run has three phases: users join
//! evenly over a window and each makes its increments at a steady pace (the active phase); the
//! system then settles; then, in the steady state, a few probe increments come one at a time,
//! and the simulator is stepped event by event to see when each output shows each of them.

use std::process::Command;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::app::Application;
use crate::apps::sum::{
    InputState, OutputLeafState, OutputState, Role, SumApp, SumSection, SumState, TreeLeafState,
    TreeNode, TreeNodeState, TreeSpec, UserAction, UserSpec,
};
use crate::cli::{report_error, EXIT_BAD_INPUT, EXIT_WRONG};
use crate::manager::NodeState;
use crate::messages::NodeHandle;
use crate::node::{NodeRegistry, TypedNode};
use crate::scenario::{RunError, MAX_MACHINES};
use crate::system::{Builder, Sim, States, SystemError};
use crate::terminal::{err, out};
use crate::time::Millis;

/// The sum network's tick: how often a sum node or a tree node sends what it gathered.
const TICK_MS: u64 = 30;
/// How long after the last increment of the active phase the steady state begins: room for
/// the trees' merges (2 s) and absorptions (4 s) to have happened.
const SETTLE_MS: u64 = 6_000;
/// The time between two probe increments; also the longest a probe is waited for.
const PROBE_GAP_MS: u64 = 1_000;
/// The most users a run of this benchmark may have.
const MAX_USERS: u32 = 2_000_000;

/// Which networks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topologies {
    /// The flat network only.
    Flat,
    /// The trees only.
    Tree,
    /// Both, flat first.
    Both,
}

/// The benchmark's shape.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchTreesArgs {
    /// Users per run (repeat for several sizes).
    #[arg(long = "users", default_values_t = [1_000u32, 10_000])]
    pub users: Vec<u32>,
    /// Machines; by default one per 100 users, from 10 to 1,000.
    #[arg(long)]
    pub machines: Option<u32>,
    /// The most kids of a tree node.
    #[arg(long, default_value_t = 16)]
    pub max_kids: usize,
    /// Increments each user makes.
    #[arg(long, default_value_t = 20)]
    pub increments: u32,
    /// Milliseconds between two increments of one user.
    #[arg(long, default_value_t = 100)]
    pub every_ms: u64,
    /// The window the users join in, in milliseconds from the start.
    #[arg(long, default_value_t = 10_000)]
    pub join_ms: u64,
    /// Probe increments in the steady state.
    #[arg(long, default_value_t = 5)]
    pub probes: u32,
    /// Seed of the amounts and of the runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Which networks to run.
    #[arg(long, value_enum, default_value_t = Topologies::Both)]
    pub topology: Topologies,
    /// Run one measurement in this process (with one `--users` and a `--topology` of flat or
    /// tree) and print it as one JSON line: what each child process of the benchmark does.
    #[arg(long, hide = true)]
    pub one: bool,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measurement {
    tree: bool,
    users: u32,
    machines: u32,
    /// Messages delivered to the busiest node per simulated second of the active phase and
    /// the settling after it.
    busiest_per_s: f64,
    /// The most kids (leaves, senders or receivers) of any node in the steady state.
    most_kids: usize,
    /// Packets sent between machines per tick of the active phase.
    between_machines_per_tick: f64,
    /// The trees' heights (input, output; users' leaves are 0); none for the flat network.
    heights: Option<(u32, u32)>,
    /// From a probe increment until each output showed it, every output of every probe, in
    /// microseconds, sorted.
    delays_us: Vec<u64>,
    /// Outputs that did not show a probe within the probe gap.
    missed: usize,
    /// From the active phase's last increment until every output showed the total.
    settle_us: Option<u64>,
    /// Tree nodes made or gone during the steady state.
    restructurings: usize,
    events: u64,
    wall_ms: f64,
    /// The process's peak resident memory, in KiB (none where the system does not say).
    peak_kib: Option<u64>,
    correct: bool,
}

/// Runs every size flat and as trees, each in a child process, and prints two tables.
pub fn run(args: &BenchTreesArgs) -> u8 {
    if let Err(reason) = validate(args) {
        return report_error(EXIT_BAD_INPUT, &reason);
    }
    if args.one {
        return one(args);
    }
    let topologies: &[bool] = match args.topology {
        Topologies::Flat => &[false],
        Topologies::Tree => &[true],
        Topologies::Both => &[false, true],
    };
    let mut measured = Vec::new();
    for users in &args.users {
        for tree in topologies {
            match child(args, *users, *tree) {
                Ok(measurement) => measured.push(measurement),
                Err(reason) => {
                    err!("dist-zero: bench-trees with {users} users failed: {reason}");
                    return EXIT_WRONG;
                }
            }
        }
    }
    print_tables(args, &measured);
    super::bench::exit_status(measured.iter().all(|m| m.correct && m.missed == 0))
}

fn validate(args: &BenchTreesArgs) -> Result<(), String> {
    if let Some(users) = args.users.iter().find(|u| **u == 0 || **u > MAX_USERS) {
        return Err(format!("--users {users}: from 1 to {MAX_USERS}"));
    }
    if let Some(machines) = args.machines {
        if machines == 0 || machines > MAX_MACHINES {
            return Err(format!("--machines {machines}: from 1 to {MAX_MACHINES}"));
        }
    }
    if !(2..=crate::apps::sum::MAX_TREE_KIDS).contains(&args.max_kids) {
        return Err(format!("--max-kids {}: from 2 to 10000", args.max_kids));
    }
    if args.every_ms == 0 || args.increments == 0 {
        return Err("--every-ms and --increments must be positive".into());
    }
    if args.one && (args.users.len() != 1 || args.topology == Topologies::Both) {
        return Err("--one takes one --users and --topology flat or tree".into());
    }
    Ok(())
}

/// The machines of a run of `users`.
fn machines_for(args: &BenchTreesArgs, users: u32) -> u32 {
    args.machines.unwrap_or((users / 100).clamp(10, 1_000))
}

/// Runs one measurement in a child process of this binary and reads its JSON line.
fn child(args: &BenchTreesArgs, users: u32, tree: bool) -> Result<Measurement, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let output = Command::new(exe)
        .args([
            "bench-trees",
            "--one",
            "--users",
            &users.to_string(),
            "--machines",
            &machines_for(args, users).to_string(),
            "--max-kids",
            &args.max_kids.to_string(),
            "--increments",
            &args.increments.to_string(),
            "--every-ms",
            &args.every_ms.to_string(),
            "--join-ms",
            &args.join_ms.to_string(),
            "--probes",
            &args.probes.to_string(),
            "--seed",
            &args.seed.to_string(),
            "--topology",
            if tree { "tree" } else { "flat" },
        ])
        .output()
        .map_err(|e| format!("cannot start the measurement: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|_| {
        format!(
            "the measurement exited with {} and printed no result: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// Runs one measurement here and prints it as a JSON line.
fn one(args: &BenchTreesArgs) -> u8 {
    let tree = args.topology == Topologies::Tree;
    let users = args.users[0];
    match measure(args, users, tree) {
        Ok(measurement) => match serde_json::to_string(&measurement) {
            Ok(line) => {
                out!("{line}");
                crate::cli::EXIT_CORRECT
            }
            Err(error) => report_error(EXIT_WRONG, &error),
        },
        Err(error) => report_error(EXIT_WRONG, &error),
    }
}

/// The workload's times, since the start.
struct Phases {
    /// The last increment of the active phase (the last user's last).
    last_active_ms: u64,
    /// The steady state's start.
    steady_ms: u64,
    /// When each probe increment is made.
    probes_ms: Vec<u64>,
    /// The end of the run.
    end_ms: u64,
}

impl Phases {
    fn of(args: &BenchTreesArgs, users: u32) -> Self {
        let last_join = u64::from(users - 1) * args.join_ms / u64::from(users);
        let last_active_ms = last_join + u64::from(args.increments) * args.every_ms;
        let steady_ms = last_active_ms + SETTLE_MS;
        let probes_ms: Vec<u64> = (1..=u64::from(args.probes))
            .map(|probe| steady_ms + probe * PROBE_GAP_MS)
            .collect();
        let end_ms = probes_ms.last().copied().unwrap_or(steady_ms) + PROBE_GAP_MS;
        Phases {
            last_active_ms,
            steady_ms,
            probes_ms,
            end_ms,
        }
    }
}

/// The users: joining evenly over the window, round robin over the machines, each making its
/// increments (1 to 5) every `every_ms` after its join; probe `p` is one more increment of 1
/// by user `p × users / probes`, at its probe time.
fn section(args: &BenchTreesArgs, users: u32, machines: u32, tree: bool) -> SumSection {
    let phases = Phases::of(args, users);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut specs: Vec<UserSpec> = (0..users)
        .map(|index| {
            let join_ms = u64::from(index) * args.join_ms / u64::from(users);
            let actions = (1..=u64::from(args.increments))
                .map(|step| {
                    let amount = rng.random_range(1..=5);
                    (
                        Millis(step * args.every_ms),
                        UserAction::Increment { amount },
                    )
                })
                .collect();
            UserSpec {
                name: format!("user {index}"),
                machine: index % machines,
                join_ms: Millis(join_ms),
                actions,
                leave_ms: None,
            }
        })
        .collect();
    for (probe, at_ms) in phases.probes_ms.iter().enumerate() {
        let index = probe as u64 * u64::from(users) / u64::from(args.probes.max(1));
        let user = &mut specs[index as usize];
        let after_join = at_ms - user.join_ms.0;
        user.actions
            .push((Millis(after_join), UserAction::Increment { amount: 1 }));
    }
    SumSection {
        users: specs,
        tree: tree.then_some(TreeSpec {
            max_kids: args.max_kids,
        }),
        ..SumSection::default()
    }
}

/// Builds and runs one network, measuring as it goes.
fn measure(args: &BenchTreesArgs, users: u32, tree: bool) -> Result<Measurement, RunError> {
    let started = Instant::now();
    let machines = machines_for(args, users);
    let phases = Phases::of(args, users);
    let section = section(args, users, machines, tree);
    let mut registry = NodeRegistry::new();
    SumApp.register(&mut registry);
    let mut sim = Builder::new()
        .machines(machines)
        .seed(args.seed)
        .registry(registry)
        .build()
        .map_err(RunError::System)?;
    SumApp.play(&section, &mut sim)?;
    sim.run_until(phases.last_active_ms)?;
    let active_packets = sim.counters().sent;

    // The settling: from the last increment until every output shows the total so far.
    sim.hardware().describe_events();
    let mut watch = Outputs::new(&mut sim)?;
    let before_probes = section.expected_total() - i64::from(args.probes);
    let settle_us = watch
        .wait_for(&mut sim, before_probes, phases.steady_ms)?
        .map(|delays| delays.into_iter().max().unwrap_or(0));
    sim.run_until(phases.steady_ms)?;
    let steady = States::new(sim.hardware().node_states()?);
    let steady_s = phases.steady_ms as f64 / 1000.0;
    let busiest_per_s = steady
        .all()
        .map(|state| state.counters.messages_delivered)
        .max()
        .unwrap_or(0) as f64
        / steady_s;
    let most_kids = most_kids(&steady);
    let steady_nodes = tree_nodes(&steady);

    // The probes, one at a time.
    let mut delays_us = Vec::new();
    let mut missed = 0;
    let mut total = before_probes;
    for at_ms in &phases.probes_ms {
        sim.run_until(*at_ms)?;
        total += 1;
        watch.since(*at_ms);
        match watch.wait_for(&mut sim, total, at_ms + PROBE_GAP_MS)? {
            Some(delays) => delays_us.extend(delays),
            None => missed += watch.outputs.len() - watch.shown,
        }
    }
    sim.run_until(phases.end_ms)?;
    let end = sim.hardware().node_states()?;
    let restructurings = tree_nodes(&States::new(end.clone()))
        .symmetric_difference(&steady_nodes)
        .count();
    let verdict = SumApp.check(&section, &end);
    delays_us.sort_unstable();
    Ok(Measurement {
        tree,
        users,
        machines,
        busiest_per_s,
        most_kids,
        between_machines_per_tick: active_packets as f64
            / (phases.last_active_ms as f64 / TICK_MS as f64),
        heights: verdict
            .outcome
            .heights
            .map(|heights| (heights.input, heights.output)),
        delays_us,
        missed,
        settle_us,
        restructurings,
        events: sim.counters().events,
        wall_ms: started.elapsed().as_secs_f64() * 1000.0,
        peak_kib: peak_kib(),
        correct: verdict.correct,
    })
}

/// The most kids of any node: a flat list's leaves, a sum node's senders or receivers, a tree
/// node's kids.
fn most_kids(states: &States) -> usize {
    let flat = states
        .of::<crate::apps::sum::InputNode>()
        .into_iter()
        .map(|(_, state): (_, InputState)| state.kids.len())
        .chain(
            states
                .of::<crate::apps::sum::OutputNode>()
                .into_iter()
                .map(|(_, state): (_, OutputState)| state.kids.len()),
        )
        .chain(
            states
                .of::<crate::apps::sum::SumNode>()
                .into_iter()
                .map(|(_, state): (_, SumState)| state.senders.max(state.receivers)),
        );
    let tree = states
        .of::<TreeNode>()
        .into_iter()
        .map(|(_, state): (_, TreeNodeState)| state.kids.len());
    flat.chain(tree).max().unwrap_or(0)
}

/// Every tree node there is.
fn tree_nodes(states: &States) -> std::collections::BTreeSet<NodeHandle> {
    states
        .of::<TreeNode>()
        .into_iter()
        .map(|(handle, _)| handle.untyped())
        .collect()
}

/// Every user's output, and when each showed the total waited for.
struct Outputs {
    /// Each output leaf, and whether it shows the total waited for.
    outputs: std::collections::BTreeMap<NodeHandle, bool>,
    /// How many show it.
    shown: usize,
    /// Since when the total is waited for, in microseconds.
    since_us: u64,
}

impl Outputs {
    fn new(sim: &mut Sim<'_>) -> Result<Self, SystemError> {
        let outputs = sim
            .hardware()
            .node_states()?
            .into_iter()
            .filter(|state| output_total(state).is_some())
            .map(|state| (state.handle, false))
            .collect();
        Ok(Outputs {
            outputs,
            shown: 0,
            since_us: sim.now_us().0,
        })
    }

    /// Waits for a new total, made at `at_ms`.
    fn since(&mut self, at_ms: u64) {
        self.since_us = at_ms * 1000;
        self.outputs.values_mut().for_each(|shown| *shown = false);
        self.shown = 0;
    }

    /// Steps the simulator until every output shows `total` (then the delays, one per output)
    /// or until `limit_ms` (then none).
    fn wait_for(
        &mut self,
        sim: &mut Sim<'_>,
        total: i64,
        limit_ms: u64,
    ) -> Result<Option<Vec<u64>>, SystemError> {
        let mut delays = Vec::with_capacity(self.outputs.len());
        let handles: Vec<NodeHandle> = self.outputs.keys().copied().collect();
        for handle in handles {
            self.look(sim, handle, total, &mut delays)?;
        }
        let limit_us = limit_ms * 1000;
        while self.shown < self.outputs.len() {
            match sim.hardware().next_event_us() {
                Some(at) if at.0 <= limit_us => {}
                _ => return Ok(None),
            }
            sim.step()?;
            let Some(event) = sim.hardware().last_event() else {
                continue;
            };
            let Some(machine) = event.machine else {
                continue;
            };
            let touched: Vec<NodeHandle> = event
                .touched
                .iter()
                .map(|id| NodeHandle { id: *id, machine })
                .collect();
            for handle in touched {
                self.look(sim, handle, total, &mut delays)?;
            }
        }
        Ok(Some(delays))
    }

    /// Notes whether output `handle` shows `total` now.
    fn look(
        &mut self,
        sim: &mut Sim<'_>,
        handle: NodeHandle,
        total: i64,
        delays: &mut Vec<u64>,
    ) -> Result<(), SystemError> {
        let Some(shown) = self.outputs.get_mut(&handle) else {
            return Ok(());
        };
        if *shown {
            return Ok(());
        }
        let now_us = sim.now_us().0;
        let Some(state) = sim.hardware().node_state(handle)? else {
            return Ok(());
        };
        if output_total(&state) == Some(total) {
            *shown = true;
            self.shown += 1;
            delays.push(now_us.saturating_sub(self.since_us));
        }
        Ok(())
    }
}

/// An output leaf's total (of the flat network or of the output tree); none for another node.
fn output_total(state: &NodeState) -> Option<i64> {
    if state.node_type == <crate::apps::sum::OutputLeafNode as TypedNode>::TYPE {
        return serde_json::from_value::<OutputLeafState>(state.state.clone())
            .ok()
            .map(|leaf| leaf.total);
    }
    if state.node_type == <crate::apps::sum::TreeLeaf as TypedNode>::TYPE {
        return serde_json::from_value::<TreeLeafState>(state.state.clone())
            .ok()
            .filter(|leaf| leaf.role == Role::Output)
            .map(|leaf| leaf.total);
    }
    None
}

/// This process's peak resident memory in KiB, from `/proc/self/status` (Linux).
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The `q` quantile of sorted `values`, in milliseconds.
fn quantile_ms(values: &[u64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    Some(values[index] as f64 / 1000.0)
}

fn shown(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

fn print_tables(args: &BenchTreesArgs, measured: &[Measurement]) {
    out!(
        "{} increments per user every {} ms, joining over {} ms; tree nodes have at most {} kids; {} probes",
        args.increments,
        args.every_ms,
        args.join_ms,
        args.max_kids,
        args.probes
    );
    out!(
        "{:>9} {:>8} {:>5} {:>11} {:>9} {:>13} {:>7} {:>10} {:>10} {:>10} {:>11} {:>9}",
        "users",
        "machines",
        "net",
        "busiest/s",
        "most kids",
        "pkts/tick",
        "height",
        "delay p50",
        "delay p99",
        "delay max",
        "settle ms",
        "restruct."
    );
    for m in measured {
        let height = m.heights.map_or_else(
            || "-".to_owned(),
            |(input, output)| format!("{input}/{output}"),
        );
        out!(
            "{:>9} {:>8} {:>5} {:>11.0} {:>9} {:>13.1} {:>7} {:>10} {:>10} {:>10} {:>11} {:>9}",
            m.users,
            m.machines,
            if m.tree { "tree" } else { "flat" },
            m.busiest_per_s,
            m.most_kids,
            m.between_machines_per_tick,
            height,
            shown(quantile_ms(&m.delays_us, 0.5)),
            shown(quantile_ms(&m.delays_us, 0.99)),
            shown(quantile_ms(&m.delays_us, 1.0)),
            shown(m.settle_us.map(|us| us as f64 / 1000.0)),
            m.restructurings,
        );
    }
    out!("");
    out!(
        "{:>9} {:>5} {:>12} {:>10} {:>11} {:>12} {:>8}",
        "users",
        "net",
        "events",
        "wall ms",
        "Mevents/s",
        "peak MiB",
        "correct"
    );
    for m in measured {
        out!(
            "{:>9} {:>5} {:>12} {:>10.0} {:>11.2} {:>12} {:>8}",
            m.users,
            if m.tree { "tree" } else { "flat" },
            m.events,
            m.wall_ms,
            m.events as f64 / m.wall_ms / 1000.0,
            m.peak_kib.map_or_else(
                || "-".to_owned(),
                |kib| format!("{:.0}", kib as f64 / 1024.0)
            ),
            m.correct && m.missed == 0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(users: u32) -> BenchTreesArgs {
        BenchTreesArgs {
            users: vec![users],
            machines: Some(3),
            max_kids: 3,
            increments: 3,
            every_ms: 50,
            join_ms: 600,
            probes: 2,
            seed: 1,
            topology: Topologies::Tree,
            one: true,
        }
    }

    #[test]
    fn simulated_both_networks_show_every_probe_and_the_trees_stay_narrow() {
        for tree in [false, true] {
            let m = measure(&args(30), 30, tree).expect("runs");
            assert!(m.correct, "tree {tree}: {m:?}");
            assert_eq!(m.missed, 0, "tree {tree}: every output shows every probe");
            assert_eq!(m.delays_us.len(), 2 * 30, "one delay per output per probe");
            assert!(m.delays_us.iter().all(|d| *d > 0 && *d < 1_000_000));
            assert!(m.settle_us.is_some());
            if tree {
                assert!(m.most_kids <= 3, "{m:?}");
                assert!(m.heights.is_some_and(|(i, o)| i >= 3 && o >= 3), "{m:?}");
                assert_eq!(m.restructurings, 0, "no restructuring in the steady state");
            } else {
                assert_eq!(m.most_kids, 30, "the flat lists hold every user");
                assert_eq!(m.heights, None);
            }
        }
    }

    #[test]
    fn simulated_quantiles_pick_from_the_sorted_values() {
        let values: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(quantile_ms(&values, 0.5), Some(51.0));
        assert_eq!(quantile_ms(&values, 1.0), Some(100.0));
        assert_eq!(quantile_ms(&[], 0.5), None);
    }
}
