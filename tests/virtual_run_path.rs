//! The one run path from Rust, in containers: a test built with `Builder::on` strikes the
//! containers with the same verbs as in simulation and learns what its fault plan could not
//! apply, and `scenario::run` on a virtual target returns the report `not_applied` and all,
//! with nothing left behind.
#![cfg(feature = "docker")]

mod virtual_support;

use std::path::Path;

use dist_zero::apps::broadcast::{BroadcastConfig, BroadcastMessage, BroadcastNode};
use dist_zero::apps::builtin;
use dist_zero::faults::{FaultKind, FaultRule};
use dist_zero::hardware::{Mode, Remote, Target};
use dist_zero::scenario::{run, RunOptions, Scenario};
use dist_zero::settings::Settings;
use dist_zero::system::{Builder, SystemError};

fn containers() -> Target {
    Target::Virtual(Remote::new(
        virtual_support::binary(),
        Settings::load().expect("settings load"),
    ))
}

#[test]
fn virtual_a_builder_on_containers_cuts_them_and_says_what_its_plan_could_not_apply(
) -> Result<(), SystemError> {
    let mut sim = Builder::new()
        .machines(3)
        .seed(7)
        .reordering(FaultRule {
            rate: 0.2,
            types: None,
        })
        .node::<BroadcastNode>()
        .on(containers())
        .build()?;
    assert_eq!(sim.not_applied(), &[FaultKind::Reorder]);
    let nodes: Vec<_> = (0..3)
        .map(|m| sim.spawn::<BroadcastNode>(m, &BroadcastConfig::default()))
        .collect::<Result<_, _>>()?;
    for node in &nodes {
        let neighbours = nodes.iter().filter(|n| *n != node).copied().collect();
        sim.send(*node, &BroadcastMessage::Topology { neighbours })?;
    }
    let cut = sim.partition(&[&[0], &[1, 2]])?;
    sim.send(nodes[0], &BroadcastMessage::Broadcast { value: 5 })?;
    sim.run_for(600)?;
    assert!(
        sim.state(nodes[2])?.values.is_empty(),
        "machine 0 is cut off from the other containers"
    );
    sim.repair(cut)?;
    sim.run_for(2_500)?;
    assert_eq!(sim.state(nodes[2])?.values, vec![5]);
    Ok(())
}

#[test]
fn virtual_the_run_path_reports_what_the_containers_could_not_apply_and_leaves_nothing() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/all_faults.json");
    let scenario = Scenario::load(&path, &builtin()).expect("the example loads");
    let outcome = run(&scenario, &containers(), &RunOptions::default());
    let report = outcome.result.as_ref().expect("the run completes");
    assert_eq!(report.mode, Mode::Virtual);
    assert!(report.correct, "{report}");
    assert_eq!(report.not_applied, vec![FaultKind::Reorder]);
    let faults = report
        .faults
        .as_ref()
        .expect("the report counts the faults");
    assert!(faults.partitioned > 0, "{report:?}");
    let run_id = outcome.run_id.as_deref().expect("a virtual run has an id");
    let leftovers = virtual_support::leftovers(run_id);
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}
