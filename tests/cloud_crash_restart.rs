//! Crashes and restarts of instances against moto and its realizer: a crash is a forced
//! `StopInstances` (the realizer kills the instance's container and keeps it), a restart a
//! `StartInstances` (the realizer starts the same container again, at the same address, and it
//! runs the bootstrap's per-boot script: the machine boots again from its disk). The sum's
//! totals stay exact, the report counts the crashes and restarts and lists only what instances
//! cannot apply (pauses, reordering), and nothing is left in moto or Docker.
#![cfg(feature = "cloud")]

mod cloud_support;
mod sum_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::InstanceStateName;
use dist_zero::app::Application;
use dist_zero::apps::sum::SumApp;
use dist_zero::hardware::cloud::realizer::Emulator;
use dist_zero::hardware::cloud::{CloudHardware, TAG_RUN};
use dist_zero::node::NodeRegistry;
use dist_zero::observe::{read_records, RecordKind};
use dist_zero::system::{Checks, Sim, SystemError};
use serde_json::Value;

/// The realizer removes a container once its instance terminated (it polls).
fn wait_until_unrealized(emulator: &Emulator) {
    let realizer = emulator.realizer().expect("realizer");
    let started = Instant::now();
    while !realizer.containers().is_empty() && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(realizer.containers().is_empty(), "every container removed");
}

/// Nothing of `run` in moto or Docker, and, once the emulator stopped, nothing of its realizer.
fn assert_nothing_left(emulator: Emulator, run: &str) {
    wait_until_unrealized(&emulator);
    assert_eq!(
        cloud_support::cloud_leftovers(&emulator),
        Vec::<String>::new()
    );
    assert_eq!(cloud_support::docker_leftovers(run), Vec::<String>::new());
    let subnet = emulator.settings.cloud.subnet.clone();
    emulator.stop().expect("emulator stops");
    assert_eq!(
        cloud_support::realizer_leftovers(&subnet),
        Vec::<String>::new()
    );
}

#[test]
fn cloud_crash_restart_scenario_keeps_every_total_exact_and_its_report_counts_the_crashes() {
    let emulator = cloud_support::emulator();
    let out = std::env::temp_dir().join(format!("dz-cloud-crash-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = cloud_support::dist_zero(
        &emulator,
        &[
            "run",
            "examples/crash_restart.json",
            "--mode",
            "cloud",
            "--json",
        ],
    )
    .arg("--report")
    .arg(&out)
    .env("DIST_ZERO_CLOUD_READY_TIMEOUT_S", "90")
    .output()
    .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(report["mode"], "cloud", "{report}");
    assert_eq!(report["correct"], true, "{report}");
    assert_eq!(
        report["not_applied"],
        serde_json::json!(["reorder", "pause"]),
        "instances cannot be frozen and the real network orders: {report}"
    );
    let faults = &report["faults"];
    assert_eq!(faults["crashes"], 2, "{report}");
    assert_eq!(faults["restarts"], 2, "{report}");
    assert_eq!(faults["pauses"], 0, "{report}");
    assert!(
        faults["partitioned"].as_u64() > Some(0),
        "the partition cut: {report}"
    );
    // The runner writes the crashes it applied into the merged trace, at their times.
    let file = std::fs::File::open(out.join("trace.jsonl")).expect("the merged trace");
    let records = read_records(std::io::BufReader::new(file), "trace").expect("records");
    let crashes: Vec<(RecordKind, u32, u64)> = records
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::FaultStart | RecordKind::FaultEnd))
        .filter_map(|r| {
            let window = r.window.as_ref()?;
            (window.fault == "crash").then_some((r.kind, r.machine, r.at_us))
        })
        .collect();
    let (start, end) = (RecordKind::FaultStart, RecordKind::FaultEnd);
    assert_eq!(
        crashes,
        vec![
            (start, 0, 1_000_000),
            (end, 0, 1_400_000),
            (start, 2, 2_500_000),
            (end, 2, 3_300_000),
        ]
    );
    let _ = std::fs::remove_dir_all(&out);
    let run = report["run_id"].as_str().expect("a run id").to_owned();
    assert_nothing_left(emulator, &run);
}

/// The state moto says instance `id` is in.
fn state(emulator: &Emulator, run: &str, id: &str) -> Option<InstanceStateName> {
    let clients = cloud_support::clients(emulator);
    cloud_support::instances_tagged(&clients, TAG_RUN, run)
        .into_iter()
        .find(|i| i.instance_id() == Some(id))
        .and_then(|i| i.state().and_then(|s| s.name().cloned()))
}

/// The incarnation the disk in container `container` says its machine last booted as.
fn incarnation(container: &str) -> u64 {
    let disk = cloud_support::container_file(container, "/opt/dist-zero/logs/disk.json")
        .expect("the machine's disk");
    let disk: Value = serde_json::from_slice(&disk).expect("JSON");
    disk["incarnation"].as_u64().expect("an incarnation")
}

#[test]
fn cloud_a_crash_stops_the_instance_and_a_restart_boots_its_container_again_from_its_disk(
) -> Result<(), SystemError> {
    let emulator = cloud_support::emulator();
    let mut hardware = CloudHardware::start(&cloud_support::config(&emulator, 3))?;
    let run = hardware.run_id().to_owned();
    let victim = hardware.instances()[2].clone();
    let containers = emulator.realizer().expect("realizer").containers();
    let container = containers.get(&victim).expect("realized").clone();
    let before = cloud_support::container_state(&container).expect("the container");
    assert!(before.running);
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
        sim.run_until(450)?;
        // User b's machine, which holds their leaves, loses power after two of b's additions.
        sim.crash(2)?;
        assert_eq!(
            state(&emulator, &run, &victim),
            Some(InstanceStateName::Stopped)
        );
        let down = cloud_support::container_state(&container).expect("kept, not removed");
        assert_eq!(down.id, before.id);
        assert!(!down.running, "the realizer killed it");
        assert_eq!(incarnation(&container), 0, "its disk is still there");
        sim.run_for(300)?;
        sim.restart(2)?;
        assert_eq!(
            state(&emulator, &run, &victim),
            Some(InstanceStateName::Running)
        );
        let up = cloud_support::container_state(&container).expect("the same container");
        assert_eq!(
            up, before,
            "the same container runs again at the same address"
        );
        assert_eq!(incarnation(&container), 1, "booted again from its disk");
        // The outputs become exact on the real clock, by 12 s at the latest.
        sim.run_until(2_000)?;
        let verdict = loop {
            let states = sim.hardware().node_states()?;
            let verdict = SumApp.check(&section, &states);
            if verdict.correct || sim.now_ms() >= 12_000 {
                break verdict;
            }
            sim.run_for(250)?;
        };
        assert!(verdict.correct, "{}", verdict.summary);
    }
    let counters = hardware.stats()?;
    assert_eq!(
        (counters.crashes, counters.restarts),
        (1, 1),
        "{counters:?}"
    );
    hardware.finish()?;
    assert_nothing_left(emulator, &run);
    Ok(())
}
