//! Cloud mode end to end against moto (the AWS emulator) and a realizer that runs every
//! instance moto reports as a container: the sum of two, the design's tags, rules and user data,
//! clean-up after a pass, a failure, a panic and SIGINT, a lost machine, wrong credentials, and
//! retried API faults. Each test has its own moto and its own realizer network.
#![cfg(feature = "cloud")]

mod cloud_support;
use cloud_support::dist_zero;
mod report_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use base64::Engine as _;
use dist_zero::apps::builtin;
use dist_zero::hardware::cloud::aws::ApiError;
use dist_zero::hardware::cloud::realizer::{Emulator, EmulatorOptions, EMULATOR_SECRET};
use dist_zero::hardware::cloud::{CloudHardware, CONTROL_PORT, PEER_PORT, TAG_EXPIRES, TAG_RUN};
use dist_zero::hardware::{BackendKind, Hardware, HardwareError, Mode};
use dist_zero::messages::MachineId;
use dist_zero::scenario::{run_scenario, Progress, Scenario};
use dist_zero::settings::Settings;
use dist_zero::time::Millis;

fn sum_of_two() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sum_of_two.json");
    Scenario::load(&path, &builtin()).expect("example loads")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn assert_nothing_left(emulator: &Emulator, run: &str) {
    assert_eq!(
        cloud_support::cloud_leftovers(emulator),
        Vec::<String>::new()
    );
    assert_eq!(cloud_support::docker_leftovers(run), Vec::<String>::new());
}

#[test]
fn cloud_sum_of_two_reaches_four_and_nothing_remains() {
    let emulator = cloud_support::emulator();
    let scenario = sum_of_two();
    let mut hardware = CloudHardware::start(&cloud_support::config(&emulator, scenario.machines))
        .expect("instances start");
    assert_eq!(hardware.mode(), Mode::Cloud);
    assert_eq!(hardware.machine_count(), 3);
    let run = hardware.run_id().to_owned();
    let realized = emulator.realizer().expect("realizer").containers();
    for instance in hardware.instances() {
        assert!(realized.contains_key(instance), "{instance} realized");
    }
    let outcome = run_scenario(
        &mut hardware,
        &scenario,
        scenario.seed,
        &Progress::new(scenario.run_ms, false),
    )
    .expect("scenario runs");
    assert!(outcome.correct, "{outcome:?}");
    assert_eq!(outcome.outcome["expected_total"], 4);
    hardware.finish().expect("clean finish");
    wait_until_unrealized(&emulator);
    assert_nothing_left(&emulator, &run);
    emulator.stop().expect("emulator stops");
}

/// The realizer removes a container once its instance terminated (it polls).
fn wait_until_unrealized(emulator: &Emulator) {
    let realizer = emulator.realizer().expect("realizer");
    let started = Instant::now();
    while !realizer.containers().is_empty() && started.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn cloud_tags_security_group_rules_and_user_data_follow_the_design() {
    let emulator = cloud_support::emulator();
    let mut config = cloud_support::config(&emulator, 2);
    config.settings.cloud.ttl_s = 900;
    let hardware = CloudHardware::start(&config).expect("instances start");
    let run = hardware.run_id().to_owned();
    let clients = cloud_support::clients(&emulator);
    let ec2 = &clients.ec2;
    let by_run = Filter::builder()
        .name(format!("tag:{TAG_RUN}"))
        .values(&run)
        .build();
    block_on(async {
        let described = ec2
            .describe_instances()
            .filters(by_run.clone())
            .send()
            .await
            .expect("describe");
        let instances: Vec<_> = described
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .collect();
        assert_eq!(instances.len(), 2);
        for instance in &instances {
            let tag = |key: &str| {
                instance
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(key))
                    .and_then(|t| t.value())
                    .map(str::to_owned)
            };
            assert_eq!(tag("dist-zero").as_deref(), Some("true"));
            assert_eq!(tag(TAG_RUN).as_deref(), Some(run.as_str()));
            let expires: u64 = tag(TAG_EXPIRES).expect("expiry").parse().expect("seconds");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            assert!(expires > now && expires <= now + 900, "{expires} vs {now}");
            assert!(instance.key_name().is_none(), "no key pair");
            let id = instance.instance_id().expect("id");
            let behaviour = ec2
                .describe_instance_attribute()
                .instance_id(id)
                .attribute(
                    aws_sdk_ec2::types::InstanceAttributeName::InstanceInitiatedShutdownBehavior,
                )
                .send()
                .await
                .expect("attribute");
            assert_eq!(
                behaviour
                    .instance_initiated_shutdown_behavior()
                    .and_then(|v| v.value()),
                Some("terminate")
            );
            let user_data = ec2
                .describe_instance_attribute()
                .instance_id(id)
                .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
                .send()
                .await
                .expect("user data");
            let script = base64::engine::general_purpose::STANDARD
                .decode(user_data.user_data().and_then(|u| u.value()).expect("some"))
                .expect("base64");
            let script = String::from_utf8(script).expect("text");
            assert!(
                script.starts_with("#!/bin/sh\n# dist-zero bootstrap"),
                "{script}"
            );
            assert!(script.contains("sleep 900; poweroff"), "time to live");
            assert!(script.contains("X-Amz-Signature"), "a presigned URL");
            assert!(script.contains("sha256sum -c"), "checksum");
            assert!(script.contains("exec /opt/dist-zero/dist-zero machine"));
            assert!(script.contains("\"tls\""), "TLS material in the config");
            assert!(
                script.contains("\"sync_disk\":true"),
                "a forced stop keeps what the machine wrote to its disk"
            );
            assert!(
                !script.contains(EMULATOR_SECRET),
                "no AWS credentials on the instance"
            );
        }
        let groups = ec2
            .describe_security_groups()
            .filters(by_run.clone())
            .send()
            .await
            .expect("groups");
        let group = groups.security_groups().first().expect("the run's group");
        let group_id = group.group_id().expect("id");
        let rules = group.ip_permissions();
        assert_eq!(rules.len(), 2, "{rules:?}");
        for rule in rules {
            let port = rule.from_port().expect("port");
            assert_eq!(rule.to_port(), Some(port));
            assert_eq!(rule.ip_protocol(), Some("tcp"));
            if port == i32::from(PEER_PORT) {
                assert!(rule.ip_ranges().is_empty(), "peers: no address range");
                let pairs: Vec<_> = rule
                    .user_id_group_pairs()
                    .iter()
                    .filter_map(|p| p.group_id())
                    .collect();
                assert_eq!(pairs, [group_id], "peers only from the group");
            } else {
                assert_eq!(port, i32::from(CONTROL_PORT));
                assert!(rule.user_id_group_pairs().is_empty());
                let ranges: Vec<_> = rule
                    .ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip())
                    .collect();
                assert_eq!(ranges.len(), 1);
                assert!(ranges[0].ends_with("/32"), "only the runner: {ranges:?}");
            }
        }
        let tagging = clients
            .s3
            .get_bucket_tagging()
            .bucket(format!("dist-zero-{run}"))
            .send()
            .await
            .expect("the run's bucket is tagged");
        let tags: Vec<(&str, &str)> = tagging
            .tag_set()
            .iter()
            .map(|t| (t.key(), t.value()))
            .collect();
        assert!(tags.contains(&("dist-zero", "true")), "{tags:?}");
        assert!(tags.contains(&(TAG_RUN, run.as_str())), "{tags:?}");
        assert!(tags.iter().any(|(k, _)| *k == TAG_EXPIRES), "{tags:?}");
        for (kind, count) in [
            (
                "vpc",
                ec2.describe_vpcs()
                    .filters(by_run.clone())
                    .send()
                    .await
                    .expect("vpcs")
                    .vpcs()
                    .len(),
            ),
            (
                "subnet",
                ec2.describe_subnets()
                    .filters(by_run.clone())
                    .send()
                    .await
                    .expect("subnets")
                    .subnets()
                    .len(),
            ),
            (
                "internet gateway",
                ec2.describe_internet_gateways()
                    .filters(by_run.clone())
                    .send()
                    .await
                    .expect("gateways")
                    .internet_gateways()
                    .len(),
            ),
            (
                "route table",
                ec2.describe_route_tables()
                    .filters(by_run.clone())
                    .send()
                    .await
                    .expect("tables")
                    .route_tables()
                    .len(),
            ),
        ] {
            assert_eq!(count, 1, "one tagged {kind}");
        }
    });
    hardware.finish().expect("clean finish");
    wait_until_unrealized(&emulator);
    assert_nothing_left(&emulator, &run);
}

#[test]
fn cloud_a_failed_start_leaves_nothing() {
    let emulator = cloud_support::emulator();
    let faults = Arc::new(cloud_support::Faults::default());
    // The first instance launches; the second launch is refused for good.
    faults.add("RunInstances", 1, 400, "InstanceLimitExceeded", 1);
    let mut config = cloud_support::config(&emulator, 3);
    config.http = Some(cloud_support::fault_layer(Arc::clone(&faults)));
    let error = match CloudHardware::start(&config) {
        Ok(_) => panic!("the start must fail"),
        Err(error) => error,
    };
    // The AWS error, typed: the back-end and the service's own code.
    let HardwareError::Backend {
        backend: BackendKind::Aws,
        source,
    } = &error
    else {
        panic!("expected an AWS error, got {error:?}");
    };
    let api = source
        .downcast_ref::<ApiError>()
        .expect("the AWS error is kept as the source");
    assert_eq!(api.action, "RunInstances", "{error}");
    assert_eq!(
        api.code.as_deref(),
        Some("InstanceLimitExceeded"),
        "{error}"
    );
    wait_until_unrealized(&emulator);
    assert_eq!(
        cloud_support::cloud_leftovers(&emulator),
        Vec::<String>::new()
    );
    let realizer = emulator.realizer().expect("realizer");
    assert!(realizer.containers().is_empty());
}

#[test]
fn cloud_a_panic_leaves_nothing() {
    let emulator = cloud_support::emulator();
    let config = cloud_support::config(&emulator, 2);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let hardware = CloudHardware::start(&config).expect("instances start");
        let run = hardware.run_id().to_owned();
        std::panic::panic_any(run);
    }))
    .expect_err("it panicked");
    let run = run.downcast::<String>().expect("the run id");
    wait_until_unrealized(&emulator);
    assert_nothing_left(&emulator, &run);
}

#[test]
fn cloud_a_machine_whose_container_dies_is_reported_by_name() {
    let emulator = cloud_support::emulator();
    let mut hardware =
        CloudHardware::start(&cloud_support::config(&emulator, 2)).expect("instances start");
    let run = hardware.run_id().to_owned();
    let victim = hardware.instances()[1].clone();
    emulator
        .realizer()
        .expect("realizer")
        .kill(&victim)
        .expect("container killed");
    let error = hardware.run_until(10).expect_err("machine m1 is gone");
    match &error {
        HardwareError::MachineLost { machine, reason } => {
            assert_eq!(*machine, MachineId(1));
            assert!(reason.contains(&victim), "{reason}");
        }
        other => panic!("expected a lost machine, got {other}"),
    }
    assert!(error.to_string().contains("machine m1 was lost"), "{error}");
    hardware.finish().expect("clean finish");
    wait_until_unrealized(&emulator);
    assert_nothing_left(&emulator, &run);
}

#[test]
fn cloud_throttling_and_eventual_consistency_are_retried() {
    let emulator = cloud_support::emulator();
    let faults = Arc::new(cloud_support::Faults::default());
    faults.add("CreateVpc", 0, 503, "RequestLimitExceeded", 2);
    faults.add("RunInstances", 0, 503, "RequestLimitExceeded", 1);
    faults.add(
        "AuthorizeSecurityGroupIngress",
        0,
        400,
        "InvalidGroup.NotFound",
        2,
    );
    faults.add("DescribeInstances", 0, 400, "InvalidInstanceID.NotFound", 2);
    let mut config = cloud_support::config(&emulator, 1);
    config.http = Some(cloud_support::fault_layer(Arc::clone(&faults)));
    let scenario = Scenario::parse(
        r#"{"machines": 1, "run_ms": 300, "seed": 2, "users": [
            {"name": "a", "machine": 0, "join_ms": 10,
             "actions": [[20, {"type": "increment", "amount": 3}]]}]}"#,
        &builtin(),
    )
    .expect("scenario parses");
    let mut hardware = CloudHardware::start(&config).expect("starts despite the faults");
    let run = hardware.run_id().to_owned();
    let outcome = run_scenario(
        &mut hardware,
        &scenario,
        scenario.seed,
        &Progress::new(Millis(300), false),
    )
    .expect("scenario runs");
    assert!(outcome.correct, "{outcome:?}");
    hardware.finish().expect("clean finish");
    let injected = faults.injected();
    assert_eq!(
        injected.get("RequestLimitExceeded"),
        Some(&3),
        "{injected:?}"
    );
    assert_eq!(
        injected.get("InvalidGroup.NotFound"),
        Some(&2),
        "{injected:?}"
    );
    assert_eq!(
        injected.get("InvalidInstanceID.NotFound"),
        Some(&2),
        "{injected:?}"
    );
    wait_until_unrealized(&emulator);
    assert_nothing_left(&emulator, &run);
}

#[test]
fn cloud_cli_sum_of_two_reports_correct_json_twice_in_a_row() {
    // The second run reuses the addresses of the first, whose containers are just going away.
    let emulator = cloud_support::emulator();
    for _ in 0..2 {
        let output = dist_zero(
            &emulator,
            &[
                "run",
                "examples/sum_of_two.json",
                "--mode",
                "cloud",
                "--json",
            ],
        )
        .output()
        .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_str(stdout.trim()).expect("one JSON object");
        assert_eq!(report["correct"], true);
        assert_eq!(report["mode"], "cloud");
        let run = report["run_id"].as_str().expect("run id").to_owned();
        assert_eq!(
            cloud_support::cloud_leftovers(&emulator),
            Vec::<String>::new()
        );
        assert!(!run.is_empty());
    }
    wait_until_unrealized(&emulator);
    assert!(emulator
        .realizer()
        .expect("realizer")
        .containers()
        .is_empty());
}

#[test]
fn cloud_all_faults_cuts_the_instances_and_says_what_it_could_not_apply() {
    let emulator = cloud_support::emulator();
    let output = dist_zero(
        &emulator,
        &[
            "run",
            "examples/all_faults.json",
            "--seed",
            "3",
            "--mode",
            "cloud",
            "--json",
        ],
    )
    .output()
    .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(report["correct"], true, "{report}");
    assert_eq!(
        report["not_applied"],
        serde_json::json!(["reorder", "pause"]),
        "pauses and reordering are not applied on instances yet: {report}"
    );
    let partitioned = report["faults"]["partitioned"].as_u64().unwrap_or_default();
    assert!(partitioned > 0, "the partition cut the instances: {report}");
    wait_until_unrealized(&emulator);
    assert_eq!(
        cloud_support::cloud_leftovers(&emulator),
        Vec::<String>::new()
    );
}

#[test]
fn cloud_sigint_removes_everything_the_run_created() {
    signal_removes_everything("INT", 130);
}

#[test]
fn cloud_sigterm_removes_everything_the_run_created() {
    signal_removes_everything("TERM", 143);
}

/// Sends `SIG<signal>` to a cloud run once it has instances; the runner must remove everything
/// and exit with `code`.
fn signal_removes_everything(signal: &str, code: i32) {
    let emulator = cloud_support::emulator();
    let clients = cloud_support::clients(&emulator);
    let child = dist_zero(
        &emulator,
        &["run", "examples/sum_of_two.json", "--mode", "cloud"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("starts");
    // Wait until the run has instances, then interrupt it.
    let started = Instant::now();
    let run = loop {
        let run = cloud_support::instances_tagged(&clients, "dist-zero", "true")
            .iter()
            .flat_map(|i| i.tags())
            .find(|t| t.key() == Some(TAG_RUN))
            .and_then(|t| t.value())
            .map(str::to_owned);
        if let Some(run) = run {
            break run;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no instance appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let output = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(&format!("SIG{signal}")), "{stderr}");
    wait_until_unrealized(&emulator);
    assert_nothing_left(&emulator, &run);
}

#[test]
fn cloud_wrong_credentials_give_one_line_and_exit_two() {
    let settings = Settings::load().expect("settings");
    let options = EmulatorOptions {
        check_signatures: true,
        ..Default::default()
    };
    let emulator = Emulator::start(&settings, &options).expect("moto starts");
    let output = dist_zero(
        &emulator,
        &["run", "examples/sum_of_two.json", "--mode", "cloud"],
    )
    .output()
    .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("dist-zero: AWS refused the credentials"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn cloud_clean_spares_a_run_in_progress_then_removes_and_lists_what_it_left_when_dead() {
    let emulator = cloud_support::emulator();
    // The sum of two, played for two minutes: the run is still in progress when cleaned.
    let scenario = std::env::temp_dir().join(format!("dz-clean-{}.json", std::process::id()));
    let text = std::fs::read_to_string("examples/sum_of_two.json").expect("example");
    let long = text.replace("\"run_ms\": 700", "\"run_ms\": 120000");
    assert_ne!(text, long);
    std::fs::write(&scenario, long).expect("scenario written");
    let mut child = dist_zero(
        &emulator,
        &[
            "run",
            scenario.to_str().expect("utf-8 path"),
            "--mode",
            "cloud",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("starts");
    let started = Instant::now();
    while cloud_support::cloud_leftovers(&emulator).is_empty()
        || !cloud_support::cloud_leftovers(&emulator)
            .iter()
            .any(|l| l.contains("instances: [\"i-"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no instance appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // While its runner runs, the run is in progress: clean leaves all of it.
    let live = dist_zero(&emulator, &["clean", "--cloud"])
        .output()
        .expect("runs");
    let live_out = String::from_utf8_lossy(&live.stdout);
    assert_eq!(live.status.code(), Some(0), "{live_out}");
    assert!(live_out.contains("left run dz-"), "{live_out}");
    assert!(live_out.contains("in progress"), "{live_out}");
    assert!(
        live_out.contains("removed 0 cloud resources; left 1 runs"),
        "{live_out}"
    );
    assert!(cloud_support::cloud_leftovers(&emulator)
        .iter()
        .any(|l| l.contains("instances: [\"i-")));
    // A runner that dies without a chance to clean up.
    child.kill().expect("killed");
    let _ = child.wait();
    let _ = std::fs::remove_file(&scenario);
    assert!(!cloud_support::cloud_leftovers(&emulator).is_empty());
    let output = dist_zero(&emulator, &["clean", "--cloud"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for kind in [
        "instance i-",
        "security-group sg-",
        "subnet subnet-",
        "vpc vpc-",
        "bucket dist-zero-",
    ] {
        assert!(
            stdout.contains(&format!("removed {kind}")),
            "{kind} missing from:\n{stdout}"
        );
    }
    wait_until_unrealized(&emulator);
    assert_eq!(
        cloud_support::cloud_leftovers(&emulator),
        Vec::<String>::new()
    );
    let again = dist_zero(&emulator, &["clean", "--cloud"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to clean"));
}

/// Real AWS: the sum of two on EC2 with the settings' credentials, region, image and runner
/// address (docs/cloud-mode.md, Cloud mode on AWS). Costs money; run with `--ignored` only.
#[test]
#[ignore = "real AWS: costs money; `cargo test --features cloud cloud_real_aws -- --ignored`"]
fn cloud_real_aws_sum_of_two_reaches_four() {
    let settings = Settings::load().expect("settings");
    assert!(
        settings.cloud.endpoint_url.is_none(),
        "unset AWS_ENDPOINT_URL to run against real AWS"
    );
    let scenario = sum_of_two();
    let config = dist_zero::hardware::cloud::CloudConfig::new(
        scenario.machines,
        1,
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_dist-zero")),
        settings,
    );
    let mut hardware = CloudHardware::start(&config).expect("instances start");
    let outcome = run_scenario(
        &mut hardware,
        &scenario,
        scenario.seed,
        &Progress::new(scenario.run_ms, false),
    )
    .expect("scenario runs");
    hardware.finish().expect("clean finish");
    assert!(outcome.correct, "{outcome:?}");
}

#[test]
fn cloud_refuses_to_run_without_the_realizer_network() {
    // moto alone, and a subnet outside the realizers' draws (10.96.0.0/11): no Docker network
    // holds it, so no private address may be contacted.
    let settings = Settings::load().expect("settings");
    let emulator = Emulator::start(&settings, &EmulatorOptions::default()).expect("moto starts");
    let output = dist_zero(
        &emulator,
        &["run", "examples/sum_of_two.json", "--mode", "cloud"],
    )
    .env("DIST_ZERO_CLOUD_SUBNET", "10.95.254.0/24")
    .output()
    .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no realizer network holds 10.95.254.0/24"),
        "{stderr}"
    );
    assert_eq!(
        cloud_support::cloud_leftovers(&emulator),
        Vec::<String>::new()
    );
}

/// An instance powers itself off when its time to live ends, whatever the runner does, and so
/// terminates (shutdown behaviour `terminate`).
#[test]
fn cloud_an_instance_terminates_itself_when_its_time_to_live_ends() {
    const TTL_S: u64 = 40;
    let emulator = cloud_support::emulator();
    let mut config = cloud_support::config(&emulator, 1);
    config.settings.cloud.ttl_s = TTL_S;
    let started = Instant::now();
    // Under a heavy load the machine may power off before it ever answers; the start then
    // fails naming the terminated instance, which is the same proof.
    let hardware = match CloudHardware::start(&config) {
        Ok(hardware) => hardware,
        Err(error) => {
            assert!(error.to_string().contains("terminated"), "{error}");
            assert!(started.elapsed() >= Duration::from_secs(TTL_S), "{error}");
            return;
        }
    };
    let run = hardware.run_id().to_owned();
    let clients = cloud_support::clients(&emulator);
    let state = || {
        cloud_support::instances_tagged(&clients, TAG_RUN, &run)
            .iter()
            .find_map(|i| i.state().and_then(|s| s.name()).cloned())
    };
    while state() != Some(aws_sdk_ec2::types::InstanceStateName::Terminated) {
        assert!(
            started.elapsed() < Duration::from_secs(TTL_S + 120),
            "the instance outlived its time to live: {:?}",
            state()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(started.elapsed() >= Duration::from_secs(TTL_S));
    drop(hardware);
    wait_until_unrealized(&emulator);
    assert_nothing_left(&emulator, &run);
}

/// A cloud run's report: the machines' structured traces come back over their control
/// connections and are merged as in virtual mode.
#[test]
fn cloud_report_of_the_sum_of_two_draws_every_machine() {
    let emulator = cloud_support::emulator();
    let out = std::env::temp_dir().join(format!("dz-cloud-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = dist_zero(
        &emulator,
        &[
            "run",
            "examples/sum_of_two.json",
            "--mode",
            "cloud",
            "--report",
            out.to_str().expect("utf-8 path"),
        ],
    )
    .output()
    .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = std::fs::File::open(out.join("trace.jsonl")).expect("the merged trace");
    let records =
        dist_zero::observe::read_records(std::io::BufReader::new(file), "trace").expect("records");
    let machines: std::collections::BTreeSet<u32> = records.iter().map(|r| r.machine).collect();
    assert_eq!(machines, std::collections::BTreeSet::from([0, 1, 2]));
    let by_id: std::collections::BTreeMap<u64, _> = records.iter().map(|r| (r.id, r)).collect();
    let remote: Vec<_> = records
        .iter()
        .filter(|r| {
            r.kind == dist_zero::observe::RecordKind::Deliver && r.peer_machine != Some(r.machine)
        })
        .collect();
    assert!(!remote.is_empty());
    for delivery in remote {
        let sent = by_id[&delivery.cause.expect("paired with its transmission")];
        assert_eq!(
            Some(sent.machine),
            delivery.peer_machine,
            "{delivery:?} <- {sent:?}"
        );
    }
    let diagram = report_support::Svg::read(&out.join("diagram.svg"));
    assert!(diagram
        .attributes("arrow", "data-type")
        .contains(&"increment".to_owned()));
    let series = report_support::Svg::read(&out.join("series.svg")).texts();
    assert!(series.contains("expected total (4)"), "{series}");
    let html = std::fs::read_to_string(out.join("index.html")).expect("the page");
    assert!(html.contains("cloud mode"), "the page names the mode");
    let _ = std::fs::remove_dir_all(&out);
    wait_until_unrealized(&emulator);
}
