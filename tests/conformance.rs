//! One conformance suite: the same test bodies on simulated hardware, on containers and (a
//! subset) on instances. Each body gets a [`Harness`] naming its mode and builds its system
//! through the one start path of every mode (`system::Builder::on`, `hardware::start`, or the
//! command line with `--mode`), plays the built-in applications, strikes with the fault verbs,
//! and checks what the application checks. The `conformance!` lines at the end run every body
//! in simulated and virtual mode, and the bodies cloud mode can run (no pauses or node types of
//! its own there) on moto and its realizer too, named `conformance_simulated_…`,
//! `conformance_virtual_…` and `conformance_cloud_…` so that `cargo test simulated`, `virtual`
//! and `cloud` still select by mode.
//!
//! The spawn race's node types are this suite's own, so this binary is its own harness: run as
//! `<binary> machine --config-json …` (a container) or `machine --config FILE` (an instance) it
//! is one machine, with the built-in applications' and the spawn race's node types registered;
//! otherwise it runs the tests, and virtual mode ships this very binary into the containers.

#[cfg(feature = "cloud")]
mod cloud_support;
mod programs;
mod user_app_support;
#[cfg(feature = "docker")]
mod virtual_support;

use std::process::ExitCode;
use std::sync::Arc;

use dist_zero::app::{Application, Verdict};
use dist_zero::apps::broadcast::{BroadcastApp, BroadcastSection, BroadcastSpec, Shape};
use dist_zero::apps::sum::{SumApp, SumSection, UserAction, UserSpec};
use dist_zero::faults::{FaultRule, NetworkConfig};
#[cfg(feature = "docker")]
use dist_zero::hardware::remote::MachineConfig;
use dist_zero::hardware::{start, SystemSpec, Target};
#[cfg(feature = "docker")]
use dist_zero::machine;
use dist_zero::node::NodeRegistry;
use dist_zero::system::{Builder, Sim, SystemError};
use dist_zero::time::Millis;
use libtest_mimic::{Arguments, Failed, Trial};
use programs::spawn_race;

/// Every node type a machine of this suite runs.
fn registry() -> NodeRegistry {
    let mut registry = NodeRegistry::new();
    SumApp.register(&mut registry);
    BroadcastApp.register(&mut registry);
    spawn_race::register(&mut registry);
    registry
}

/// A mode, by the name its tests and `--mode` give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Simulated,
    #[cfg(feature = "docker")]
    Virtual,
    #[cfg(feature = "cloud")]
    Cloud,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Simulated => "simulated",
            #[cfg(feature = "docker")]
            Mode::Virtual => "virtual",
            #[cfg(feature = "cloud")]
            Mode::Cloud => "cloud",
        }
    }
}

/// What a body runs on: the mode and the hardware target every system of the body starts on.
struct Harness {
    mode: Mode,
    target: Target,
}

impl Harness {
    /// A system of `machines` machines over this harness's hardware.
    fn sim(&self, machines: u32) -> Result<Sim<'static>, SystemError> {
        Builder::new()
            .on(self.target.clone())
            .machines(machines)
            .seed(7)
            .registry(registry())
            .build()
    }
}

/// How long past its end a run on the real clock may take to become correct: a host loaded by
/// parallel tests delays retransmissions and restarts, and what every body checks is what must
/// hold *eventually*. Virtual time does not depend on the host's load: a simulated run is
/// judged at its end.
#[cfg(feature = "docker")]
const REAL_CLOCK_GRACE_MS: u64 = 10_000;

/// Plays `section` of `app`, lets `strike` do what it does meanwhile, runs to `end_ms`, and
/// says what the application's check says (on the real clock, looking again every 250 ms for
/// up to [`REAL_CLOCK_GRACE_MS`] until it is correct).
fn play<A: Application>(
    harness: &Harness,
    machines: u32,
    app: &A,
    section: &A::Section,
    end_ms: u64,
    strike: impl FnOnce(&mut Sim<'_>) -> Result<(), SystemError>,
) -> Result<Verdict<A::Outcome>, SystemError> {
    let mut sim = harness.sim(machines)?;
    app.play(section, &mut sim).expect("the application plays");
    strike(&mut sim)?;
    sim.run_until(end_ms)?;
    let deadline = match harness.mode {
        Mode::Simulated => end_ms,
        #[cfg(feature = "docker")]
        _ => end_ms + REAL_CLOCK_GRACE_MS,
    };
    loop {
        let states = sim.hardware().node_states()?;
        let verdict = app.check(section, &states);
        if verdict.correct || sim.now_ms() >= deadline {
            return Ok(verdict);
        }
        sim.run_for(250)?;
    }
}

/// A user on `machine` joining at `join_ms` who adds `amount` every 200 ms, four times.
fn user(name: &str, machine: u32, join_ms: u64, amount: i64) -> UserSpec {
    UserSpec {
        name: name.into(),
        machine,
        join_ms: Millis(join_ms),
        actions: (0..4)
            .map(|i| (Millis(50 + 200 * i), UserAction::Increment { amount }))
            .collect(),
        leave_ms: None,
    }
}

fn sum(users: Vec<UserSpec>) -> SumSection {
    SumSection {
        users,
        ..SumSection::default()
    }
}

/// The seed's sum of two: two users on two machines, every output exact.
fn sum_of_two(harness: &Harness) -> Result<(), SystemError> {
    let section = sum(vec![user("a", 0, 0, 2), user("b", 1, 0, 3)]);
    let verdict = play(harness, 2, &SumApp, &section, 1_500, |_| Ok(()))?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// A user who joins after the others have added everything starts from the running total.
fn late_joiner(harness: &Harness) -> Result<(), SystemError> {
    let section = sum(vec![
        user("a", 0, 0, 2),
        user("b", 1, 0, 3),
        user("late", 2, 1_000, 0),
    ]);
    let verdict = play(harness, 3, &SumApp, &section, 2_200, |_| Ok(()))?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// Broadcast over a ring, machine 0 cut off for 400 ms while values are handed out: once the
/// partition heals, every node holds every value once.
fn broadcast_through_a_healing_partition(harness: &Harness) -> Result<(), SystemError> {
    let section = BroadcastSection {
        nodes: 6,
        topology: Some(Shape::Ring),
        neighbours: None,
        broadcasts: (0..6)
            .map(|value| BroadcastSpec {
                at_ms: Millis(100 + 60 * value as u64),
                node: value as u32,
                value,
            })
            .collect(),
        gossip_ms: 20,
    };
    let verdict = play(harness, 3, &BroadcastApp, &section, 1_500, |sim| {
        sim.run_until(80)?;
        let cut = sim.partition(&[&[0], &[1, 2]])?;
        sim.run_for(400)?;
        sim.repair(cut)
    })?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// The machine of one user's leaves crashes and comes back; the totals stay exact.
fn crash_and_restart_of_a_machine_holding_part_of_the_sum_network(
    harness: &Harness,
) -> Result<(), SystemError> {
    let section = sum(vec![user("a", 1, 0, 2), user("b", 2, 0, 3)]);
    let verdict = play(harness, 3, &SumApp, &section, 2_500, |sim| {
        sim.run_until(300)?;
        sim.crash(2)?;
        sim.run_for(300)?;
        sim.restart(2)
    })?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// A machine paused for 300 ms while its user adds: the totals catch up when it goes on.
fn a_pause(harness: &Harness) -> Result<(), SystemError> {
    let section = sum(vec![user("a", 1, 0, 2), user("b", 2, 0, 3)]);
    let verdict = play(harness, 3, &SumApp, &section, 2_000, |sim| {
        sim.run_until(200)?;
        sim.pause(1)?;
        sim.run_for(300)?;
        sim.resume(1)
    })?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// The seed's recorded users (the Python project's `test_sum_recorded_users`): three users who
/// join at 0, 10 and 20 ms and add at their recorded times; every output reaches 6.
fn recorded_users(harness: &Harness) -> Result<(), SystemError> {
    let recorded = |name: &str, machine: u32, join_ms: u64, actions: &[(u64, i64)]| UserSpec {
        name: name.into(),
        machine,
        join_ms: Millis(join_ms),
        actions: actions
            .iter()
            .map(|(at, amount)| (Millis(*at), UserAction::Increment { amount: *amount }))
            .collect(),
        leave_ms: None,
    };
    let section = sum(vec![
        recorded("a", 0, 0, &[(10, 1), (40, 2)]),
        recorded("b", 1, 10, &[(25, 1)]),
        recorded("c", 2, 20, &[(5, 1), (90, 1)]),
    ]);
    let verdict = play(harness, 3, &SumApp, &section, 1_500, |_| Ok(()))?;
    assert!(verdict.correct, "{}", verdict.summary);
    assert_eq!(verdict.outcome.expected_total, 6);
    let outputs: Vec<(&str, Option<i64>)> = verdict
        .outcome
        .outputs
        .iter()
        .map(|(user, total)| (user.as_str(), *total))
        .collect();
    assert_eq!(outputs, [("a", Some(6)), ("b", Some(6)), ("c", Some(6))]);
    Ok(())
}

/// The spawn race (`tests/programs/spawn_race.rs`): with half the spawns dropped by the sending
/// machine, the messages the relay sends the target may reach machine 2 before the target
/// exists there; the target still receives each once, in order, and nothing is undeliverable.
fn the_spawn_race(harness: &Harness) -> Result<(), SystemError> {
    let spec = SystemSpec {
        machines: 3,
        seed: 7,
        network: NetworkConfig {
            drop: Some(FaultRule {
                rate: 0.5,
                types: Some("spawn".to_owned()),
            }),
            ..NetworkConfig::default()
        },
        reliable: true,
        observe: false,
        keep_trace_text: false,
        max_events: None,
    };
    let mut hardware = start(&harness.target, &spec, Arc::new(registry()))?.hardware;
    spawn_race::start(&mut *hardware)?;
    let until = hardware.now_ms() + 3_000;
    hardware.run_until(until)?;
    let received = spawn_race::received(&mut *hardware)?;
    let totals = hardware.totals()?;
    #[cfg(feature = "docker")]
    let target_log = hardware
        .logs_dir()
        .map(|logs| std::fs::read_to_string(logs.join("m2").join("machine.log")));
    let (finished, _) = hardware.finish(false);
    finished?;
    let expected: Vec<u32> = (0..spawn_race::MESSAGES).collect();
    assert_eq!(received, Some(expected), "{totals:?}");
    assert_eq!(totals.undeliverable, 0, "{totals:?}");
    if harness.mode == Mode::Simulated {
        // On this seed the simulator drops the target's spawn (only spawns are dropped), so
        // the relay's messages reach machine 2 before the target exists there.
        assert!(totals.dropped > 0, "no spawn was dropped: {totals:?}");
    }
    // In containers the target's machine says when a message waited for its node's spawn: the
    // race happened.
    #[cfg(feature = "docker")]
    if let Some(log) = target_log {
        let log = log.expect("the target machine's log");
        assert!(
            log.contains("waits for its node's spawn"),
            "the race did not happen: {totals:?}"
        );
    }
    Ok(())
}

/// The example crate `examples/replicated-kv`, a library user's own crate: its binary runs its
/// own node types (a sequencer and replicas) with `--mode` this harness's; every replica applies
/// all 6 writes in one order. In containers, the machines' logs show the user's node types
/// started there, and nothing is left in Docker.
fn the_example_crates_own_node_types(harness: &Harness) -> Result<(), SystemError> {
    use user_app_support::{assert_full_order, json_of, scenario, stderr};
    let three = scenario("three_replicas.json");
    let output = user_app_support::run(&["run", &three, "--mode", harness.mode.name(), "--json"]);
    let report = json_of(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{report}\n{}",
        stderr(&output)
    );
    assert_eq!(report["application"], "kv", "{report}");
    assert_eq!(report["mode"], harness.mode.name(), "{report}");
    assert_eq!(report["correct"], true, "{report}");
    assert_eq!(report["in_step"], 3, "{report}");
    assert_full_order(&report, 6);
    if let Some(logs) = report["logs"].as_str() {
        let logs = std::path::Path::new(logs);
        assert_eq!(started_kinds(logs, 0), ["KvSequencer", "KvReplica"]);
        assert_eq!(started_kinds(logs, 1), ["KvReplica"]);
        assert_eq!(started_kinds(logs, 2), ["KvReplica"]);
    }
    #[cfg(feature = "docker")]
    if let Some(run_id) = report["run_id"].as_str() {
        assert!(virtual_support::leftovers(run_id).is_empty());
    }
    Ok(())
}

/// The node types machine `machine`'s log says it started.
fn started_kinds(logs: &std::path::Path, machine: u32) -> Vec<String> {
    let path = logs.join(format!("m{machine}")).join("machine.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no log at {}: {e}", path.display()));
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "started node")
        .filter_map(|line| line["fields"]["kind"].as_str().map(str::to_owned))
        .collect()
}

/// A body: what one conformance test does, in whichever mode its harness names.
type Body = fn(&Harness) -> Result<(), SystemError>;

/// Runs `body` in `mode`: on the simulator; in containers running this binary; or on instances
/// of moto, each realized as a container on the realizer's own Docker network, with nothing
/// left in moto or Docker afterwards (no instance, no container, no network).
fn run(mode: Mode, body: Body) -> Result<(), Failed> {
    match mode {
        Mode::Simulated => body(&Harness {
            mode,
            target: Target::Simulated,
        })?,
        #[cfg(feature = "docker")]
        Mode::Virtual => {
            let mut settings = dist_zero::settings::Settings::load()?;
            // Its own image name, so that building it does not prune the image of the
            // `dist-zero` binary other tests run at the same time.
            settings.machine_image = "dist-zero-conformance".to_owned();
            let remote = dist_zero::hardware::Remote::new(std::env::current_exe()?, settings);
            body(&Harness {
                mode,
                target: Target::Virtual(remote),
            })?
        }
        #[cfg(feature = "cloud")]
        Mode::Cloud => {
            let emulator = cloud_support::emulator();
            let mut settings = emulator.settings.clone();
            settings.cloud.ready_timeout_s = 90;
            // The instances run the `dist-zero` binary: cloud mode runs only the built-in
            // applications' bodies.
            let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_dist-zero"));
            let remote = dist_zero::hardware::Remote::new(binary, settings);
            body(&Harness {
                mode,
                target: Target::Cloud(remote),
            })?;
            wait_until_unrealized(&emulator);
            assert_eq!(
                cloud_support::cloud_leftovers(&emulator),
                Vec::<String>::new()
            );
            let subnet = emulator.settings.cloud.subnet.clone();
            emulator.stop()?;
            assert_eq!(
                cloud_support::realizer_leftovers(&subnet),
                Vec::<String>::new(),
                "the realizer removed its containers and its network"
            );
        }
    }
    Ok(())
}

/// Waits until the realizer has removed every container (it polls moto for terminated
/// instances), three minutes at most.
#[cfg(feature = "cloud")]
fn wait_until_unrealized(emulator: &dist_zero::hardware::cloud::realizer::Emulator) {
    let realizer = emulator.realizer().expect("realizer");
    let started = std::time::Instant::now();
    while !realizer.containers().is_empty()
        && started.elapsed() < std::time::Duration::from_secs(180)
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(realizer.containers().is_empty(), "every container removed");
}

/// The machine process: `machine --config-json JSON` or `machine --config FILE`.
#[cfg(feature = "docker")]
fn run_machine(args: &[String]) -> ExitCode {
    let config = match args {
        [flag, json] if flag == "--config-json" => MachineConfig::parse(json),
        [flag, path] if flag == "--config" => MachineConfig::load(std::path::Path::new(path)),
        _ => {
            eprintln!("usage: machine --config-json JSON | --config FILE");
            return ExitCode::from(2);
        }
    };
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    match machine::run(&config, Arc::new(registry())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(1)
        }
    }
}

/// The tests: `conformance_<mode>_<body>` for each body and each mode it runs in.
macro_rules! conformance {
    ($($body:ident in [$($mode:ident),+];)+) => {
        #[allow(clippy::vec_init_then_push, reason = "which tests exist depends on the features")]
        fn trials() -> Vec<Trial> {
            let mut trials = Vec::new();
            $($(
                conformance!(@one trials, $body, $mode);
            )+)+
            trials
        }
    };
    (@one $trials:ident, $body:ident, simulated) => {
        $trials.push(Trial::test(
            concat!("conformance_simulated_", stringify!($body)),
            || run(Mode::Simulated, $body),
        ));
    };
    (@one $trials:ident, $body:ident, virtual) => {
        #[cfg(feature = "docker")]
        $trials.push(Trial::test(
            concat!("conformance_virtual_", stringify!($body)),
            || run(Mode::Virtual, $body),
        ));
    };
    (@one $trials:ident, $body:ident, cloud) => {
        #[cfg(feature = "cloud")]
        $trials.push(Trial::test(
            concat!("conformance_cloud_", stringify!($body)),
            || run(Mode::Cloud, $body),
        ));
    };
}

conformance! {
    sum_of_two in [simulated, virtual, cloud];
    late_joiner in [simulated, virtual, cloud];
    recorded_users in [simulated, virtual, cloud];
    broadcast_through_a_healing_partition in [simulated, virtual];
    crash_and_restart_of_a_machine_holding_part_of_the_sum_network in [simulated, virtual, cloud];
    a_pause in [simulated, virtual];
    the_spawn_race in [simulated, virtual];
    the_example_crates_own_node_types in [simulated, virtual];
}

fn main() -> ExitCode {
    #[cfg(feature = "docker")]
    {
        let args: Vec<String> = std::env::args().collect();
        if args.get(1).map(String::as_str) == Some("machine") {
            return run_machine(&args[2..]);
        }
    }
    libtest_mimic::run(&Arguments::from_args(), trials()).exit_code()
}
