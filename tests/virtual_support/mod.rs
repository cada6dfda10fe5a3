//! Shared by the virtual-mode tests: a config for N containers from this build's binary, the
//! `dist-zero` binary as a child process, and checks (and clean-up) of what runs leave in Docker.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
use bollard::Docker;
use dist_zero::hardware::docker::owner::LABEL_OWNER_PID;
use dist_zero::hardware::docker::DockerHardware;
use dist_zero::hardware::docker::{clean, CleanOptions, VirtualConfig, LABEL_RUN};
use dist_zero::hardware::{Hardware, Mode};
use dist_zero::scenario::{run_scenario, Progress, Scenario};
use dist_zero::settings::Settings;

/// A system of `machines` containers running the `dist-zero` binary cargo built for these tests.
pub fn config(machines: u32) -> VirtualConfig {
    let settings = Settings::load().expect("settings load");
    VirtualConfig::new(machines, 7, binary(), settings)
}

/// The `dist-zero` binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dist-zero"))
}

/// Runs `future` against the engine the settings name.
pub fn with_docker<T, F: std::future::Future<Output = T>>(f: impl FnOnce(Docker) -> F) -> T {
    let settings = Settings::load().expect("settings load");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let host = settings
            .docker_host
            .trim_start_matches("unix://")
            .to_owned();
        let docker = Docker::connect_with_unix(&host, 120, bollard::API_DEFAULT_VERSION)
            .expect("docker")
            .negotiate_version()
            .await
            .expect("docker answers");
        f(docker).await
    })
}

/// Names of containers and networks carrying `label=value`.
fn labelled(label: &str, value: &str) -> Vec<String> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{label}={value}")])]);
    with_docker(|docker| async move {
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .expect("list containers");
        let networks = docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .expect("list networks");
        containers
            .into_iter()
            .filter_map(|c| c.names.and_then(|n| n.into_iter().next()))
            .chain(networks.into_iter().filter_map(|n| n.name))
            .collect()
    })
}

/// Names of containers and networks still carrying `run_id`'s label.
pub fn leftovers(run_id: &str) -> Vec<String> {
    labelled(LABEL_RUN, run_id)
}

/// Names of containers and networks a runner with process id `pid` created.
pub fn leftovers_of_pid(pid: u32) -> Vec<String> {
    labelled(LABEL_OWNER_PID, &pid.to_string())
}

/// The run ids of the running containers a runner with process id `pid` created, one per
/// container.
pub fn running_containers_of_pid(pid: u32) -> Vec<String> {
    let filters = HashMap::from([
        ("label".to_owned(), vec![format!("{LABEL_OWNER_PID}={pid}")]),
        ("status".to_owned(), vec!["running".to_owned()]),
    ]);
    with_docker(|docker| async move {
        docker
            .list_containers(Some(ListContainersOptions {
                all: false,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .expect("list containers")
            .into_iter()
            .filter_map(|c| c.labels.and_then(|mut l| l.remove(LABEL_RUN)))
            .collect()
    })
}

/// Removes every run the runner `pid` created (test clean-up), through `dist-zero clean`'s own
/// code, which outlasts an engine slow to let go of a network. Returns what it could not remove.
pub fn remove_everything_of_pid(pid: u32) -> Vec<String> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_OWNER_PID}={pid}")])]);
    let runs: std::collections::BTreeSet<String> = with_docker(|docker| async move {
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .unwrap_or_default();
        let networks = docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .unwrap_or_default();
        containers
            .into_iter()
            .filter_map(|c| c.labels)
            .chain(networks.into_iter().filter_map(|n| n.labels))
            .filter_map(|mut labels| labels.remove(LABEL_RUN))
            .collect()
    });
    let settings = Settings::load().expect("settings load");
    let mut failed = Vec::new();
    for run in runs {
        let options = CleanOptions {
            all: true,
            run: Some(run),
        };
        match clean(&settings.docker_host, &options) {
            Ok(cleaned) => failed.extend(cleaned.failed),
            Err(error) => failed.push(error.to_string()),
        }
    }
    failed
}

/// A fresh directory for one test's files, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates `<temp dir>/dist-zero-<name>-<pid>`, empty.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("dist-zero-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a scenario file into `dir`.
pub fn scenario_file(dir: &Path, name: &str, scenario: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, scenario.to_string()).expect("scenario written");
    path
}

/// A two-machine sum network that runs for `run_ms`.
pub fn two_machine_scenario(run_ms: u64) -> serde_json::Value {
    serde_json::json!({
        "machines": 2,
        "run_ms": run_ms,
        "users": [
            {"name": "a", "machine": 1, "join_ms": 10,
             "actions": [[20, {"type": "increment", "amount": 2}]]}
        ]
    })
}

/// `dist-zero ARGS` run to its end; it must leave nothing of its own in Docker (a run that
/// leaks fails the test that made it, not a later check of the whole engine).
pub fn dist_zero(args: &[&str]) -> Output {
    let child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dist-zero starts");
    let pid = child.id();
    let output = child.wait_with_output().expect("dist-zero runs");
    let left = leftovers_of_pid(pid);
    if !left.is_empty() {
        let failed = remove_everything_of_pid(pid);
        panic!(
            "`dist-zero {}` left {left:?} in Docker (removing them: {failed:?}); it printed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// A `dist-zero` child process; on drop it is killed and whatever it created is removed, so a
/// failing test leaves nothing behind.
pub struct Runner {
    /// The process.
    pub child: Child,
}

impl Runner {
    /// Starts `dist-zero ARGS` with its output captured.
    pub fn start(args: &[&str]) -> Runner {
        let child = Command::new(binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dist-zero starts");
        Runner { child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `machines` of its containers are running; returns its run id.
    pub fn wait_for_containers(&mut self, machines: usize) -> String {
        let begun = Instant::now();
        loop {
            let running = running_containers_of_pid(self.pid());
            if running.len() == machines {
                return running[0].clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the runner ended first ({status}): {}", self.stderr());
            }
            assert!(
                begun.elapsed() < Duration::from_secs(180),
                "the runner's {machines} containers never ran (found {running:?})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends a signal by name (`INT`, `TERM`, `KILL`).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Waits for the process to end (a hang fails the test after a few minutes).
    pub fn wait(&mut self) -> ExitStatus {
        let begun = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(180),
                "the runner never ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it wrote to standard error (after it ended).
    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(stderr) = self.child.stderr.as_mut() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let failed = remove_everything_of_pid(self.pid());
        if !failed.is_empty() && !std::thread::panicking() {
            panic!("could not remove what the runner left: {failed:?}");
        }
    }
}

/// What a scenario run in containers came to: the application's outcome, whether it was
/// correct, the run's id and where its machines' logs are.
pub struct ContainerRun<T> {
    /// The application's outcome.
    pub outcome: T,
    /// Whether the check found it correct.
    pub correct: bool,
    /// The run's id (its Docker resources' label).
    pub run_id: String,
    /// The machines' log directories' parent.
    pub logs: PathBuf,
}

/// Runs `scenario` on as many containers as it has machines, to a clean finish.
pub fn run_in_containers<T: serde::de::DeserializeOwned>(scenario: &Scenario) -> ContainerRun<T> {
    let mut hardware = DockerHardware::start(&config(scenario.machines)).expect("containers start");
    assert_eq!(hardware.mode(), Mode::Virtual);
    assert_eq!(hardware.machine_count(), scenario.machines as usize);
    let run_id = hardware.run_id().to_owned();
    let verdict = run_scenario(
        &mut hardware,
        scenario,
        scenario.seed,
        &Progress::new(scenario.run_ms, false),
    )
    .expect("scenario runs, its invariant held");
    let logs = hardware.logs_dir().to_path_buf();
    hardware.finish().expect("clean finish");
    let outcome = serde_json::from_value(serde_json::Value::Object(verdict.outcome))
        .expect("the application's outcome");
    ContainerRun {
        outcome,
        correct: verdict.correct,
        run_id,
        logs,
    }
}
