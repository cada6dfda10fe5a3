//! The fault verbs in containers: partitions, holds and rules applied by every machine to what
//! it sends, pauses as `docker pause`, crashes as `docker kill` and restarts as `docker start`
//! from the machine's disk, from a scenario's windows and from a test at any moment; and what
//! containers cannot apply (reordering, the latency model) said, not skipped.
#![cfg(feature = "docker")]

mod sum_support;
mod virtual_support;

use std::sync::Arc;

use dist_zero::app::Application;
use dist_zero::apps::sum::SumApp;
use dist_zero::faults::{Fault, FaultKind, RuleKind};
use dist_zero::hardware::docker::DockerHardware;
use dist_zero::hardware::HardwareError;
use dist_zero::node::NodeRegistry;
use dist_zero::system::{Checks, Sim, SystemError};
use serde_json::Value;

#[test]
fn virtual_all_faults_cuts_and_pauses_the_containers_and_says_what_it_could_not_apply() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/all_faults.json");
    let output = virtual_support::dist_zero(&[
        "run", scenario, "--seed", "3", "--mode", "virtual", "--json",
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{text}\n{stderr}");
    let report: Value = serde_json::from_str(text.trim_end()).expect("one JSON object");
    assert_eq!(report["correct"], true, "{report}");
    assert_eq!(
        report["not_applied"],
        serde_json::json!(["reorder"]),
        "only what a real network decides: {report}"
    );
    let partitioned = report["faults"]["partitioned"].as_u64().unwrap_or_default();
    assert!(
        partitioned > 0,
        "the partition cut the containers: {report}"
    );
    assert!(virtual_support::leftovers(report["run_id"].as_str().unwrap_or("?")).is_empty());
}

/// Whether the run's container whose name ends with `suffix` is paused, as Docker says.
fn paused(run_id: &str, suffix: &str) -> Option<bool> {
    let name = virtual_support::leftovers(run_id)
        .into_iter()
        .find(|name| name.ends_with(suffix))?
        .trim_start_matches('/')
        .to_owned();
    virtual_support::with_docker(|docker| async move {
        let options = None::<bollard::query_parameters::InspectContainerOptions>;
        let inspected = docker.inspect_container(&name, options).await.ok()?;
        inspected.state?.paused
    })
}

/// Runs `examples/<name>` in containers and returns its JSON report and its logs directory.
fn virtual_run(name: &str) -> (Value, std::path::PathBuf) {
    let scenario = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let output = virtual_support::dist_zero(&["run", &scenario, "--mode", "virtual", "--json"]);
    let text = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(text.trim_end()).unwrap_or_else(|error| {
        panic!(
            "{error}: {text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(virtual_support::leftovers(report["run_id"].as_str().unwrap_or("?")).is_empty());
    let logs = std::path::PathBuf::from(report["logs"].as_str().unwrap_or_default());
    (report, logs)
}

/// The incarnation machine `machine`'s disk says it last booted as.
fn incarnation(logs: &std::path::Path, machine: u32) -> u64 {
    let disk = std::fs::read(logs.join(format!("m{machine}")).join("disk.json")).expect("a disk");
    let disk: Value = serde_json::from_slice(&disk).expect("JSON");
    disk["incarnation"].as_u64().expect("an incarnation")
}

#[test]
fn virtual_crash_restart_kills_and_restarts_containers_and_every_total_stays_exact() {
    let (report, logs) = virtual_run("crash_restart.json");
    assert_eq!(report["correct"], true, "{report}");
    assert_eq!(
        report["not_applied"],
        serde_json::json!(["reorder"]),
        "{report}"
    );
    assert_eq!(report["faults"]["crashes"], 2, "{report}");
    assert_eq!(report["faults"]["restarts"], 2, "{report}");
    assert!(
        report["faults"]["partitioned"].as_u64() > Some(0),
        "{report}"
    );
    assert_eq!(
        incarnation(&logs, 0),
        1,
        "machine 0 booted again from its disk"
    );
    assert_eq!(incarnation(&logs, 1), 0, "machine 1 never crashed");
    assert_eq!(
        incarnation(&logs, 2),
        1,
        "machine 2 booted again from its disk"
    );

    // The same crashes with nodes that do not persist: what they held is gone.
    let (forgetful, _) = virtual_run("crash_restart_forgetful.json");
    assert_eq!(forgetful["correct"], false, "{forgetful}");
}

#[test]
fn virtual_a_test_partitions_holds_and_pauses_containers_at_any_moment_and_the_sum_stays_exact(
) -> Result<(), SystemError> {
    let mut hardware = DockerHardware::start(&virtual_support::config(3))?;
    let run_id = hardware.run_id().to_owned();
    let mut registry = NodeRegistry::new();
    SumApp.register(&mut registry);
    let section = sum_support::two_users_on_machines_1_and_2();
    {
        let mut sim = Sim::over(
            Box::new(&mut hardware),
            7,
            Arc::new(registry),
            Checks::none(),
            0,
        );
        SumApp.play(&section, &mut sim).expect("the users join");
        sim.run_until(50)?;
        let cut = sim.partition(&[&[0], &[1, 2]])?; // the sum node, on machine 0, alone
        sim.run_for(400)?;
        sim.repair(cut)?;
        sim.hold(0, 1)?;
        sim.pause(2)?;
        assert_eq!(paused(&run_id, "-m2"), Some(true), "docker pause froze it");
        sim.run_for(300)?; // user a adds at 700 ms: held; user b's machine is frozen
        sim.resume(2)?;
        assert_eq!(paused(&run_id, "-m2"), Some(false));
        sim.release(0, 1)?;
        // A crash kills the container; the restart boots it from its disk, and the sum node's
        // machine comes back with every total it had persisted.
        sim.crash(0)?;
        sim.run_for(300)?;
        sim.restart(0)?;
        // Reordering is not applied in containers: the verb says so rather than doing nothing,
        // and a scheduled one is refused when it is scheduled, not at its time.
        let reorder = Fault::Rule {
            kind: RuleKind::Reorder,
            rule: None,
        };
        match sim.apply(&reorder) {
            Err(SystemError::Hardware(HardwareError::FaultNotApplied { kind, .. })) => {
                assert_eq!(kind, FaultKind::Reorder)
            }
            other => panic!("reordering in containers: {other:?}"),
        }
        let later = sim.now_ms() + 100;
        assert!(sim.schedule(later, reorder).is_err());
        // On the real clock a restarted container's boot takes what the host gives it: the
        // outputs must become exact, by 6 s at the latest.
        sim.run_until(2_500)?;
        let verdict = loop {
            let states = sim.hardware().node_states()?;
            let verdict = SumApp.check(&section, &states);
            if verdict.correct || sim.now_ms() >= 6_000 {
                break verdict;
            }
            sim.run_for(250)?;
        };
        assert!(verdict.correct, "{}", verdict.summary);
    }
    let counters = hardware.stats()?;
    assert!(counters.partitioned > 0, "the partition cut: {counters:?}");
    assert!(counters.held > 0, "the hold held: {counters:?}");
    drop(hardware);
    assert!(virtual_support::leftovers(&run_id).is_empty());
    Ok(())
}
