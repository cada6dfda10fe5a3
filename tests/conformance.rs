//! One conformance suite: the same test bodies on simulated hardware and on containers. Each
//! body builds its system on a [`Sim`] over whatever hardware it is given, plays the built-in
//! applications, strikes with the fault verbs, and checks what the application checks; the
//! `conformance!` lines below run every body in both modes, named `conformance_simulated_…`
//! and `conformance_virtual_…` so that `cargo test simulated` and `cargo test virtual` still
//! select by mode. (Cloud mode does not take the fault verbs yet: it is not in the suite.)

use std::sync::Arc;

use dist_zero::app::{Application, Verdict};
use dist_zero::apps::broadcast::{BroadcastApp, BroadcastSection, BroadcastSpec, Shape};
use dist_zero::apps::sum::{SumApp, SumSection, UserAction, UserSpec};
use dist_zero::faults::NetworkConfig;
use dist_zero::hardware::simulated::{SimulatedHardware, SimulationConfig};
use dist_zero::hardware::{Hardware, Mode};
use dist_zero::node::NodeRegistry;
use dist_zero::system::{Checks, Sim, SystemError};
use dist_zero::time::Millis;

#[cfg(feature = "docker")]
mod virtual_support;

/// Hardware of `machines` machines, of one mode.
type Make = fn(u32) -> Box<dyn Hardware>;

fn simulated(machines: u32) -> Box<dyn Hardware> {
    let config = SimulationConfig {
        machines,
        seed: 7,
        network: NetworkConfig::default(),
        keep_trace_text: false,
        reliable: true,
    };
    let mut registry = NodeRegistry::new();
    SumApp.register(&mut registry);
    BroadcastApp.register(&mut registry);
    Box::new(SimulatedHardware::new(config, Arc::new(registry)).expect("a simulated system"))
}

#[cfg(feature = "docker")]
fn containers(machines: u32) -> Box<dyn Hardware> {
    let config = virtual_support::config(machines);
    Box::new(dist_zero::hardware::docker::DockerHardware::start(&config).expect("containers"))
}

/// A system over `hardware` whose nodes are the built-in applications'.
fn sim(hardware: Box<dyn Hardware>) -> Sim<'static> {
    let mut registry = NodeRegistry::new();
    SumApp.register(&mut registry);
    BroadcastApp.register(&mut registry);
    Sim::over(hardware, 7, Arc::new(registry), Checks::none(), 0)
}

/// How long past its end a run on the real clock may take to become correct: a host loaded by
/// parallel tests delays retransmissions and restarts, and what every body checks is what must
/// hold *eventually*. Virtual time does not depend on the host's load: a simulated run is
/// judged at its end.
const REAL_CLOCK_GRACE_MS: u64 = 10_000;

/// Plays `section` of `app`, lets `strike` do what it does meanwhile, runs to `end_ms`, and
/// says what the application's check says (on the real clock, looking again every 250 ms for
/// up to [`REAL_CLOCK_GRACE_MS`] until it is correct).
fn play<A: Application>(
    make: Make,
    machines: u32,
    app: &A,
    section: &A::Section,
    end_ms: u64,
    strike: impl FnOnce(&mut Sim<'_>) -> Result<(), SystemError>,
) -> Result<Verdict<A::Outcome>, SystemError> {
    let mut sim = sim(make(machines));
    app.play(section, &mut sim).expect("the application plays");
    strike(&mut sim)?;
    sim.run_until(end_ms)?;
    let grace_ms = match sim.hardware().mode() {
        Mode::Simulated => 0,
        Mode::Virtual | Mode::Cloud => REAL_CLOCK_GRACE_MS,
    };
    let deadline = end_ms + grace_ms;
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
        persist: true,
        tree: None,
    }
}

/// The seed's sum of two: two users on two machines, every output exact.
fn sum_of_two(make: Make) -> Result<(), SystemError> {
    let section = sum(vec![user("a", 0, 0, 2), user("b", 1, 0, 3)]);
    let verdict = play(make, 2, &SumApp, &section, 1_500, |_| Ok(()))?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// A user who joins after the others have added everything starts from the running total.
fn late_joiner(make: Make) -> Result<(), SystemError> {
    let section = sum(vec![
        user("a", 0, 0, 2),
        user("b", 1, 0, 3),
        user("late", 2, 1_000, 0),
    ]);
    let verdict = play(make, 3, &SumApp, &section, 2_200, |_| Ok(()))?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// Broadcast over a ring, machine 0 cut off for 400 ms while values are handed out: once the
/// partition heals, every node holds every value once.
fn broadcast_through_a_healing_partition(make: Make) -> Result<(), SystemError> {
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
    let verdict = play(make, 3, &BroadcastApp, &section, 1_500, |sim| {
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
    make: Make,
) -> Result<(), SystemError> {
    let section = sum(vec![user("a", 1, 0, 2), user("b", 2, 0, 3)]);
    let verdict = play(make, 3, &SumApp, &section, 2_500, |sim| {
        sim.run_until(300)?;
        sim.crash(2)?;
        sim.run_for(300)?;
        sim.restart(2)
    })?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// A machine paused for 300 ms while its user adds: the totals catch up when it goes on.
fn a_pause(make: Make) -> Result<(), SystemError> {
    let section = sum(vec![user("a", 1, 0, 2), user("b", 2, 0, 3)]);
    let verdict = play(make, 3, &SumApp, &section, 2_000, |sim| {
        sim.run_until(200)?;
        sim.pause(1)?;
        sim.run_for(300)?;
        sim.resume(1)
    })?;
    assert!(verdict.correct, "{}", verdict.summary);
    Ok(())
}

/// Runs `body` on simulated hardware and on containers, as two tests.
macro_rules! conformance {
    ($body:ident, $simulated:ident, $virtual:ident) => {
        #[test]
        fn $simulated() -> Result<(), SystemError> {
            $body(simulated)
        }

        #[cfg(feature = "docker")]
        #[test]
        fn $virtual() -> Result<(), SystemError> {
            $body(containers)
        }
    };
}

conformance!(
    sum_of_two,
    conformance_simulated_sum_of_two,
    conformance_virtual_sum_of_two
);
conformance!(
    late_joiner,
    conformance_simulated_late_joiner,
    conformance_virtual_late_joiner
);
conformance!(
    broadcast_through_a_healing_partition,
    conformance_simulated_broadcast_through_a_healing_partition,
    conformance_virtual_broadcast_through_a_healing_partition
);
conformance!(
    crash_and_restart_of_a_machine_holding_part_of_the_sum_network,
    conformance_simulated_crash_and_restart_of_a_machine_holding_part_of_the_sum_network,
    conformance_virtual_crash_and_restart_of_a_machine_holding_part_of_the_sum_network
);
conformance!(
    a_pause,
    conformance_simulated_a_pause,
    conformance_virtual_a_pause
);
