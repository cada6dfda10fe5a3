//! A machine lost mid-run keeps its records: `docker kill` of a container while it records
//! leaves every complete record it wrote in the run's merged trace (a torn last line, from a
//! kill in the middle of a write, is dropped), and the other machines' records with it.
#![cfg(feature = "docker")]

mod virtual_support;

use std::io::Write;

use dist_zero::apps::sum::{SumConfig, SumNode};
use dist_zero::hardware::docker::DockerHardware;
use dist_zero::hardware::{Hardware, RunHardware};
use dist_zero::machine::TRACE_FILE;
use dist_zero::messages::{MachineId, Message};
use dist_zero::node::config_of;
use dist_zero::observe::{read_records, RecordKind};

#[test]
fn virtual_a_killed_machine_keeps_its_complete_records_in_the_merged_trace() {
    let mut config = virtual_support::config(3);
    config.record = true;
    let mut hardware = DockerHardware::start(&config).expect("containers");
    let run_id = hardware.run_id().to_owned();
    let logs = hardware.logs_dir().to_path_buf();
    let sum = config_of::<SumNode>(&SumConfig::default()).expect("encodes");
    let node = hardware.spawn(MachineId(1), &sum).expect("spawn on m1");
    hardware.spawn(MachineId(0), &sum).expect("spawn on m0");
    for total in 1..=5 {
        let increment = serde_json::json!({"type": "increment", "amount": 1, "total": total});
        hardware
            .send(node, Message::new(increment).expect("message"))
            .expect("delivered");
    }
    hardware.run_until(300).expect("healthy");
    hardware.kill_machine(MachineId(1)).expect("killed");
    // What m1 had written when it died, in whole lines.
    let m1_trace = logs.join("m1").join(TRACE_FILE);
    let written = std::fs::read(&m1_trace).expect("m1's trace");
    let complete = read_records(written.as_slice(), "m1").expect("whole lines");
    assert!(
        complete
            .iter()
            .filter(|r| r.kind == RecordKind::Deliver)
            .count()
            >= 5,
        "m1 wrote its deliveries before it was killed: {complete:?}"
    );
    // A kill in the middle of a write leaves half a line behind.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&m1_trace)
        .expect("opens");
    file.write_all(br#"{"id":9999,"at_us":12"#).expect("torn");
    drop(file);
    // Ended as every run ends, keeping the records.
    let (_, finished) = RunHardware::finish(Box::new(hardware), true);
    assert!(finished.unreadable.is_empty(), "{:?}", finished.unreadable);
    let records = finished.records.expect("records are kept");
    let from_m1 = records.iter().filter(|r| r.machine == 1).count();
    assert_eq!(
        from_m1,
        complete.len(),
        "every complete record of m1 is kept"
    );
    assert!(records.iter().any(|r| r.machine == 0), "m0's records too");
    assert!(virtual_support::leftovers(&run_id).is_empty());
}
