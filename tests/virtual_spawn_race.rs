//! The spawn race in containers: a message that overtakes the spawn of its node (see
//! `tests/programs/spawn_race.rs`) is delivered exactly once, in order, with half the spawns
//! dropped by the sending machine.
//!
//! The node types are this test's own, so this binary is its own harness: run as
//! `<binary> machine --config-json …` it is the machine process inside a container, with the
//! spawn race's node types registered; otherwise it runs the test, which ships this very binary
//! into the containers.

mod programs;
mod virtual_support;

use std::process::ExitCode;
use std::sync::Arc;

use dist_zero::faults::FaultRule;
use dist_zero::hardware::docker::DockerHardware;
use dist_zero::hardware::remote::MachineConfig;
use dist_zero::hardware::Hardware;
use dist_zero::machine;
use dist_zero::node::NodeRegistry;
use libtest_mimic::{Arguments, Failed, Trial};
use programs::spawn_race;

fn registry() -> NodeRegistry {
    let mut registry = NodeRegistry::new();
    spawn_race::register(&mut registry);
    registry
}

/// The machine process: `machine --config-json JSON`.
fn run_machine(args: &[String]) -> ExitCode {
    let [flag, json] = args else {
        eprintln!("usage: machine --config-json JSON");
        return ExitCode::from(2);
    };
    if flag != "--config-json" {
        eprintln!("usage: machine --config-json JSON");
        return ExitCode::from(2);
    }
    let config = match MachineConfig::parse(json) {
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

fn virtual_a_message_that_overtakes_its_nodes_spawn_is_delivered_once() -> Result<(), Failed> {
    let binary = std::env::current_exe()?;
    let mut config = virtual_support::config(3);
    config.binary = binary;
    config.drop = Some(FaultRule {
        rate: 0.5,
        types: Some("spawn".to_owned()),
    });
    let mut hardware = DockerHardware::start(&config)?;
    let run_id = hardware.run_id().to_owned();
    spawn_race::start(&mut hardware)?;
    let until = hardware.now_ms() + 3_000;
    hardware.run_until(until)?;
    let received = spawn_race::received(&mut hardware)?;
    let stats = hardware.stats()?;
    let logs = hardware.logs_dir().to_path_buf();
    hardware.finish()?;
    let target_log = std::fs::read_to_string(logs.join("m2").join("machine.log"))?;
    if !target_log.contains("waits for its node's spawn") {
        return Err(format!("the race did not happen (counters {stats:?})").into());
    }
    let expected: Vec<u32> = (0..spawn_race::MESSAGES).collect();
    if received != Some(expected) {
        return Err(format!("the target received {received:?}").into());
    }
    if stats.undeliverable != 0 {
        return Err(format!("{} envelopes undeliverable", stats.undeliverable).into());
    }
    let left = virtual_support::leftovers(&run_id);
    if !left.is_empty() {
        return Err(format!("left behind: {left:?}").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("machine") {
        return run_machine(&args[2..]);
    }
    let tests = vec![Trial::test(
        "virtual_a_message_that_overtakes_its_nodes_spawn_is_delivered_once",
        virtual_a_message_that_overtakes_its_nodes_spawn_is_delivered_once,
    )];
    libtest_mimic::run(&Arguments::from_args(), tests).exit_code()
}
