//! One clock for a run in containers: every machine's `now_ms` is the time since the run
//! started, on the epoch the runner picked, so two machines' readings of the same moment agree
//! (and agree with the runner's own time) within a few milliseconds.
#![cfg(feature = "docker")]

mod virtual_support;

use std::time::Instant;

use dist_zero::hardware::docker::DockerHardware;
use dist_zero::hardware::Hardware;
use dist_zero::messages::MachineId;
use dist_zero::observe::merge::host_now_us;

/// What the machines' clocks and the runner's may differ by beyond the time a request takes:
/// they read the same host clock, a reading is rounded to a microsecond, and the machines take
/// the run's start from the wall clock once.
const SLACK_US: u64 = 2_000;

#[test]
fn virtual_every_machine_reads_the_same_run_clock_as_the_runner() {
    let mut hardware = DockerHardware::start(&virtual_support::config(3)).expect("containers");
    let run_id = hardware.run_id().to_owned();
    hardware.run_until(50).expect("runs");
    let run_start = hardware.run_start_unix_us();
    let mut readings = Vec::new();
    for machine in 0..3 {
        let before = host_now_us().saturating_sub(run_start);
        let asked = Instant::now();
        let now_us = hardware
            .machine_now_us(MachineId(machine))
            .expect("the machine tells its time");
        let took_us = u64::try_from(asked.elapsed().as_micros()).expect("fits");
        let after = host_now_us().saturating_sub(run_start);
        assert!(
            now_us + SLACK_US >= before && now_us <= after + SLACK_US,
            "machine m{machine} read {now_us} µs while the runner read {before} to {after} µs \
             since the run's start (the request took {took_us} µs)"
        );
        readings.push((now_us, before, after));
    }
    // Read one right after the other, two machines' clocks differ by what passed between the
    // readings on the runner's clock, and no more than the slack beyond it.
    for pair in readings.windows(2) {
        let ((first, first_before, _), (second, _, second_after)) = (pair[0], pair[1]);
        let between = second_after - first_before;
        assert!(
            second.abs_diff(first) <= between + SLACK_US,
            "consecutive readings {first} and {second} µs differ by more than the {between} µs \
             that passed between them"
        );
    }
    // The runner's own `now_ms` counts from the same start: a machine's reading falls between
    // the runner's readings before and after the request (a loaded host may take a while to
    // answer), within a few milliseconds.
    let before_ms = hardware.now_ms();
    let machine_ms = hardware.machine_now_us(MachineId(2)).expect("time") / 1000;
    let after_ms = hardware.now_ms();
    assert!(
        machine_ms + 3 >= before_ms && machine_ms <= after_ms + 3,
        "runner {before_ms} to {after_ms} ms, m2 {machine_ms} ms"
    );
    hardware.finish().expect("finishes");
    assert!(virtual_support::leftovers(&run_id).is_empty());
}
