//! A lost instance does not empty a cloud run's trace: against moto and its realizer, a machine
//! whose container was killed cannot give its structured trace, and the others still give
//! theirs; the lost one is named.
#![cfg(feature = "cloud")]

mod cloud_support;

use dist_zero::apps::sum::{SumConfig, SumNode};
use dist_zero::hardware::cloud::CloudHardware;
use dist_zero::hardware::Hardware;
use dist_zero::messages::MachineId;
use dist_zero::node::config_of;
use dist_zero::observe::gather::{gather, TraceLoss};

#[test]
fn cloud_a_lost_machine_is_named_and_the_others_keep_their_records() {
    let emulator = cloud_support::emulator();
    let mut config = cloud_support::config(&emulator, 3);
    config.record = true;
    let mut hardware = CloudHardware::start(&config).expect("instances start");
    let sum = config_of::<SumNode>(&SumConfig::default()).expect("encodes");
    for machine in 0..3 {
        hardware.spawn(MachineId(machine), &sum).expect("spawns");
    }
    hardware.run_until(100).expect("healthy");
    let victim = hardware.instances()[1].clone();
    emulator
        .realizer()
        .expect("realizer")
        .kill(&victim)
        .expect("container killed");

    let traces = hardware.traces();
    assert_eq!(traces.len(), 3);
    let gathered = gather(traces);
    let whys: Vec<_> = gathered
        .unreadable
        .iter()
        .map(|missing| (missing.machine, missing.why))
        .collect();
    assert_eq!(whys, [(MachineId(1), TraceLoss::Lost)]);
    assert!(
        gathered.unreadable[0].detail.contains(&victim),
        "{:?}",
        gathered.unreadable
    );
    for machine in [0, 2] {
        assert!(
            !gathered.per_machine[machine].is_empty(),
            "m{machine}'s records are kept"
        );
    }
    hardware.finish().expect("clean finish");
}
