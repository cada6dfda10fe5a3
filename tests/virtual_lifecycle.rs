//! How a virtual run begins and ends as a process: stopped by Ctrl-C or SIGTERM, killed outright,
//! cleaned up after by `dist-zero clean`, refused up front when it cannot fit.
#![cfg(feature = "docker")]

mod virtual_support;

use virtual_support::{
    dist_zero, leftovers, leftovers_of_pid, scenario_file, two_machine_scenario, Runner, Scratch,
};

/// Starts a 20-second run of two machines and waits until both containers run.
fn long_run(test: &str) -> (Runner, String) {
    let dir = Scratch::new(test);
    let path = scenario_file(dir.path(), "long.json", &two_machine_scenario(20_000));
    let path = path.to_str().expect("utf-8 path");
    let mut runner = Runner::start(&["run", path, "--mode", "virtual"]);
    let run_id = runner.wait_for_containers(2);
    (runner, run_id)
}

fn stopped_by(signal: &str, status: i32) {
    let (mut runner, run_id) = long_run(&format!("stop-{signal}"));
    assert!(!leftovers(&run_id).is_empty());
    runner.signal(signal);
    let exit = runner.wait();
    let stderr = runner.stderr();
    assert_eq!(exit.code(), Some(status), "{exit}: {stderr}");
    assert!(
        stderr.contains(&format!("stopped by SIG{signal}")),
        "{stderr}"
    );
    assert_eq!(leftovers(&run_id), Vec::<String>::new(), "{stderr}");
    assert_eq!(leftovers_of_pid(runner.pid()), Vec::<String>::new());
}

#[test]
fn virtual_ctrl_c_stops_the_run_removes_everything_and_exits_130() {
    stopped_by("INT", 130);
}

#[test]
fn virtual_sigterm_stops_the_run_removes_everything_and_exits_143() {
    stopped_by("TERM", 143);
}

#[test]
fn virtual_a_second_ctrl_c_still_removes_everything() {
    let (mut runner, run_id) = long_run("stop-twice");
    runner.signal("INT");
    runner.signal("INT");
    let exit = runner.wait();
    let stderr = runner.stderr();
    assert_eq!(exit.code(), Some(130), "{exit}: {stderr}");
    assert_eq!(leftovers(&run_id), Vec::<String>::new(), "{stderr}");
}

#[test]
fn virtual_clean_leaves_a_run_in_progress_and_all_removes_it() {
    let (mut runner, run_id) = long_run("clean-live");
    let pid = runner.pid();

    let plain = dist_zero(&["clean", "--run", &run_id]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert_eq!(plain.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "left run {run_id}: its runner, pid {pid}, is still running; use --all to remove it"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("removed container"), "{stdout}");
    assert_eq!(leftovers(&run_id).len(), 3, "two containers and a network");

    let all = dist_zero(&["clean", "--all", "--run", &run_id]);
    let stdout = String::from_utf8_lossy(&all.stdout);
    assert_eq!(all.status.code(), Some(0), "{stdout}");
    // The first container clean kills makes the runner notice and start removing the rest
    // itself, so clean may find some of them already going.
    assert!(
        stdout.contains(&format!("removed container {run_id}-m")),
        "{stdout}"
    );
    assert!(!stdout.contains("left run"), "{stdout}");

    // The runner finds its machines gone, says so, and fails; nothing of the run remains.
    let exit = runner.wait();
    let stderr = runner.stderr();
    assert_eq!(exit.code(), Some(1), "{exit}: {stderr}");
    assert!(stderr.contains("was lost"), "{stderr}");
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
}

#[test]
fn virtual_clean_removes_the_run_of_a_killed_runner() {
    let (mut runner, run_id) = long_run("clean-dead");
    let pid = runner.pid();
    runner.signal("KILL");
    runner.wait();
    assert_eq!(
        leftovers(&run_id).len(),
        3,
        "a runner killed outright cannot clean up"
    );

    let plain = dist_zero(&["clean", "--run", &run_id]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert_eq!(plain.status.code(), Some(0), "{stdout}");
    for machine in ["m0", "m1"] {
        assert!(
            stdout.contains(&format!("removed container {run_id}-{machine}")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("removed network {run_id}-net")),
        "{stdout}"
    );
    assert!(!stdout.contains("left run"), "{stdout}");
    assert_eq!(leftovers(&run_id), Vec::<String>::new());
    assert_eq!(leftovers_of_pid(pid), Vec::<String>::new());
}

#[test]
fn virtual_too_many_machines_is_refused_before_anything_is_created() {
    let scratch = Scratch::new("too-many");
    let dir = scratch.path();
    let mut scenario = two_machine_scenario(500);
    scenario["machines"] = 241.into();
    let path = scenario_file(dir, "big.json", &scenario);
    let runs_dir = dir.join("runs");
    let output = std::process::Command::new(virtual_support::binary())
        .args(["run", path.to_str().expect("utf-8"), "--mode", "virtual"])
        // Nothing may be asked of Docker, nor any file written, before the check.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("DIST_ZERO_RUNS_DIR", &runs_dir)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "dist-zero: invalid scenario: machines: virtual mode runs at most 240 machines \
         (one container each, on one /24 Docker network), not 241"
    );
    assert!(!runs_dir.exists());

    // 240 is within the limit: the same command gets as far as Docker.
    scenario["machines"] = 240.into();
    let path = scenario_file(dir, "fits.json", &scenario);
    let output = std::process::Command::new(virtual_support::binary())
        .args(["run", path.to_str().expect("utf-8"), "--mode", "virtual"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("DIST_ZERO_RUNS_DIR", &runs_dir)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot reach Docker"), "{stderr}");
}
