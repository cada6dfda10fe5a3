//! What reality brings to virtual mode: dead and paused containers, garbage on the wire,
//! requests without the run's token, and panics in the middle of a run.
#![cfg(feature = "docker")]

mod virtual_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use dist_zero::apps::sum::{SumConfig, SumNode};
use dist_zero::hardware::docker::DockerHardware;
use dist_zero::hardware::remote::frame::encode_json;
use dist_zero::hardware::remote::protocol::{
    Authorized, ControlRequest, ControlResponse, PeerFrame,
};
use dist_zero::hardware::{Hardware, HardwareError};
use dist_zero::manager::Envelope;
use dist_zero::messages::{MachineId, Message, NodeId};
use dist_zero::node::config_of;

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
}

fn frame<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_json(value, &mut out).expect("encodes");
    out
}

fn read_response(stream: &mut TcpStream) -> Option<ControlResponse> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// Whether the peer closed the connection (reads end) within the timeout.
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}

#[test]
fn virtual_killed_container_is_reported_as_a_lost_machine() {
    let mut hardware = DockerHardware::start(&virtual_support::config(3)).expect("containers");
    let run_id = hardware.run_id().to_owned();
    hardware
        .spawn(
            MachineId(1),
            &config_of::<SumNode>(&SumConfig::default()).expect("encodes"),
        )
        .expect("spawn");
    hardware.run_until(100).expect("healthy at first");
    hardware
        .kill_machine(MachineId(1))
        .expect("kill through the Engine API");
    let begun = Instant::now();
    let error = loop {
        let next = hardware.now_ms() + 50;
        match hardware.run_until(next) {
            Ok(()) => assert!(begun.elapsed() < Duration::from_secs(20), "never noticed"),
            Err(error) => break error,
        }
    };
    match &error {
        HardwareError::MachineLost { machine, reason } => {
            assert_eq!(*machine, MachineId(1));
            assert!(reason.contains("-m1"), "names the container: {reason}");
        }
        other => panic!("expected MachineLost, got {other:?}"),
    }
    assert!(error.to_string().contains("machine m1 was lost"), "{error}");
    assert!(begun.elapsed() < Duration::from_secs(20));
    drop(hardware);
    assert!(virtual_support::leftovers(&run_id).is_empty());
}

#[test]
fn virtual_paused_container_is_reported_as_paused_not_as_a_failed_port() {
    let mut hardware = DockerHardware::start(&virtual_support::config(2)).expect("containers");
    let run_id = hardware.run_id().to_owned();
    hardware.run_until(100).expect("healthy at first");
    let container = virtual_support::leftovers(&run_id)
        .into_iter()
        .find(|name| name.ends_with("-m1"))
        .expect("machine 1's container")
        .trim_start_matches('/')
        .to_owned();
    let paused = container.clone();
    virtual_support::with_docker(|docker| async move {
        docker.pause_container(&paused).await.expect("pauses");
    });
    let begun = Instant::now();
    let error = loop {
        let next = hardware.now_ms() + 50;
        match hardware.run_until(next) {
            Ok(()) => assert!(begun.elapsed() < Duration::from_secs(60), "never noticed"),
            Err(error) => break error,
        }
    };
    let unpaused = container.clone();
    virtual_support::with_docker(|docker| async move {
        docker.unpause_container(&unpaused).await.expect("unpauses");
    });
    match &error {
        HardwareError::MachineLost { machine, reason } => {
            assert_eq!(*machine, MachineId(1));
            assert!(reason.contains("is paused"), "{reason}");
            assert!(reason.contains(&container), "names the container: {reason}");
            assert!(!reason.contains("control port failed"), "{reason}");
        }
        other => panic!("expected MachineLost, got {other:?}"),
    }
    drop(hardware);
    assert!(virtual_support::leftovers(&run_id).is_empty());
}

#[test]
fn virtual_machine_survives_garbage_frames_and_unknown_nodes() {
    let mut hardware = DockerHardware::start(&virtual_support::config(2)).expect("containers");
    let peer = hardware.peer_addr(MachineId(0)).expect("peer address");

    // Garbage instead of a hello.
    let mut stream = connect(peer);
    stream
        .write_all(&[0, 0, 0, 5, b'x', b'y', b'z', b'{', b'['])
        .expect("writes");
    assert!(
        closed(&mut stream),
        "a connection without a hello is closed"
    );

    // An oversized frame.
    let mut stream = connect(peer);
    stream
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .expect("writes");
    assert!(
        closed(&mut stream),
        "an oversized frame closes the connection"
    );

    // A proper hello, then a malformed frame, then an envelope for a node that does not exist,
    // then a ping: the connection survives all of it.
    let mut stream = connect(peer);
    let hello = PeerFrame::Hello {
        from: MachineId(1),
        token: hardware.token().to_owned(),
    };
    stream.write_all(&frame(&hello)).expect("hello");
    stream
        .write_all(&[0, 0, 0, 3, b'{', b'{', b'{'])
        .expect("garbage");
    let stray = PeerFrame::Envelope {
        envelope: Envelope::Deliver {
            from: None,
            to: NodeId {
                origin: 9,
                serial: 9,
            },
            message: Message::new(serde_json::json!({"type": "increment", "amount": 1}))
                .expect("message"),
        },
    };
    stream.write_all(&frame(&stray)).expect("stray envelope");
    stream
        .write_all(&frame(&PeerFrame::Ping { nonce: 42 }))
        .expect("ping");
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).expect("pong arrives");
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut body).expect("pong body");
    let pong: PeerFrame = serde_json::from_slice(&body).expect("pong parses");
    assert_eq!(pong, PeerFrame::Pong { nonce: 42 });

    // The machine still works.
    hardware
        .spawn(
            MachineId(0),
            &config_of::<SumNode>(&SumConfig::default()).expect("encodes"),
        )
        .expect("still spawns");
    hardware.run_until(200).expect("still healthy");
    let stats = hardware.stats().expect("still answers");
    assert!(stats.bad_frames >= 3, "{stats:?}");
    assert!(stats.undeliverable >= 1, "{stats:?}");
    hardware.finish().expect("clean finish");
}

#[test]
fn virtual_control_requests_without_the_token_are_refused() {
    let mut hardware = DockerHardware::start(&virtual_support::config(1)).expect("container");
    let control = hardware
        .control_addr(MachineId(0))
        .expect("control address");

    let mut stream = connect(control);
    stream
        .write_all(&frame(&serde_json::json!({"request": "shutdown"})))
        .expect("writes");
    assert!(matches!(
        read_response(&mut stream),
        Some(ControlResponse::Refused { .. })
    ));
    assert!(closed(&mut stream), "refused connections are closed");

    let mut stream = connect(control);
    let wrong = Authorized {
        token: "not the token".into(),
        request: ControlRequest::Shutdown,
    };
    stream.write_all(&frame(&wrong)).expect("writes");
    assert!(matches!(
        read_response(&mut stream),
        Some(ControlResponse::Refused { .. })
    ));

    let mut stream = connect(control);
    stream
        .write_all(&[0, 0, 0, 4, b'n', b'o', b'p', b'e'])
        .expect("garbage");
    assert!(matches!(
        read_response(&mut stream),
        Some(ControlResponse::Refused { .. })
    ));

    // With the token, a malformed request is answered and the connection goes on.
    let mut stream = connect(control);
    let token = hardware.token().to_owned();
    stream
        .write_all(&frame(
            &serde_json::json!({"token": token, "request": "launch_missiles"}),
        ))
        .expect("writes");
    assert!(matches!(
        read_response(&mut stream),
        Some(ControlResponse::Failed { .. })
    ));
    let status = Authorized {
        token,
        request: ControlRequest::Status,
    };
    stream.write_all(&frame(&status)).expect("writes");
    assert!(matches!(
        read_response(&mut stream),
        Some(ControlResponse::Status { .. })
    ));

    // The machine was not shut down by the token-less requests.
    hardware.run_until(100).expect("still healthy");
    assert!(hardware.stats().expect("answers").bad_frames >= 4);
    hardware.finish().expect("clean finish");
}

#[test]
fn virtual_panic_mid_run_still_removes_containers_and_network() {
    let mut run_id = String::new();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut hardware = DockerHardware::start(&virtual_support::config(2)).expect("containers");
        run_id = hardware.run_id().to_owned();
        assert!(!virtual_support::leftovers(&run_id).is_empty());
        hardware.run_until(50).expect("runs");
        panic!("a test failing mid-run");
    }));
    assert!(outcome.is_err());
    assert!(!run_id.is_empty());
    assert!(
        virtual_support::leftovers(&run_id).is_empty(),
        "leftovers after a panic: {:?}",
        virtual_support::leftovers(&run_id)
    );
}

#[test]
fn virtual_unreachable_docker_is_one_clear_error() {
    let mut config = virtual_support::config(1);
    config.settings.docker_host = "unix:///nonexistent/docker.sock".into();
    let error = match DockerHardware::start(&config) {
        Ok(_) => panic!("started without Docker"),
        Err(error) => error,
    };
    assert!(matches!(error, HardwareError::Unavailable(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("cannot reach Docker"), "{text}");
    assert!(!text.contains('\n'));
}

/// What a container uses now, less the file cache it could drop, and its limit (bytes).
fn memory_of(container: &str) -> (u64, u64) {
    use bollard::query_parameters::StatsOptions;
    use futures_util::StreamExt;
    let container = container.to_owned();
    virtual_support::with_docker(|docker| async move {
        let options = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let stats = docker
            .stats(&container, Some(options))
            .next()
            .await
            .expect("one sample")
            .expect("stats");
        let memory = stats.memory_stats.expect("memory stats");
        let usage = memory.usage.expect("usage");
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| {
                s.get("total_inactive_file")
                    .or_else(|| s.get("inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        (usage.saturating_sub(cache), memory.limit.expect("a limit"))
    })
}

#[test]
fn virtual_frames_announced_before_the_token_cannot_grow_a_machine() {
    const MIB: usize = 1024 * 1024;
    let config = virtual_support::config(1);
    let limit_mib = config.settings.machine_memory_mib;
    let mut hardware = DockerHardware::start(&config).expect("container");
    let container = format!("{}-m0", hardware.run_id());
    let peer = hardware.peer_addr(MachineId(0)).expect("peer address");
    let control = hardware
        .control_addr(MachineId(0))
        .expect("control address");
    let (before, limit) = memory_of(&container);
    assert_eq!(
        limit,
        limit_mib * 1024 * 1024,
        "the container's memory limit"
    );

    // 40 connections to each port, each announcing a 16 MiB frame and sending half of it: had
    // the machine believed them it would hold 640 MiB.
    let announce = u32::try_from(16 * MIB).expect("fits").to_be_bytes();
    let half = vec![b' '; 8 * MIB];
    let mut open = Vec::new();
    for i in 0..80 {
        let addr = if i % 2 == 0 { peer } else { control };
        let mut stream = connect(addr);
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        // The machine may close the connection at once: later writes then fail.
        let _ = stream
            .write_all(&announce)
            .and_then(|()| stream.write_all(&half));
        open.push(stream);
    }
    let (during, _) = memory_of(&container);
    assert!(
        during < before + 64 * MIB as u64,
        "the machine grew from {before} to {during} bytes"
    );

    // It still answers, spawns and runs, and counted what it refused.
    hardware
        .spawn(
            MachineId(0),
            &config_of::<SumNode>(&SumConfig::default()).expect("encodes"),
        )
        .expect("still spawns");
    hardware.run_until(200).expect("still healthy");
    let stats = hardware.stats().expect("still answers");
    assert!(stats.bad_frames >= 40, "{stats:?}");
    drop(open);
    hardware.finish().expect("clean finish");
}
