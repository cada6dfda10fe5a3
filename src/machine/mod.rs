//! The machine process: one machine of a virtual-mode system, in real time.
//!
//! It drives a [`NodeManager`] with the real clock and real sockets, exactly as the simulator
//! drives one with virtual time: envelopes arriving from other machines (over TCP, in
//! [frames](crate::hardware::remote::frame)) go to [`NodeManager::handle`], its `Wake` effects become timers, its `Transmit`
//! effects go to the other machines' peer ports. A second port takes [control
//! requests](crate::hardware::remote::protocol::ControlRequest) from the process that runs the
//! system; each must carry the run's token. Bad input on either port is logged and survived. What
//! this process and the runner both speak is in [`crate::hardware::remote`].

mod control;
mod core;
pub mod logging;
mod peers;
mod recording;
#[cfg(feature = "cloud")]
pub mod tls;

pub use core::ClockError;
pub use recording::TRACE_FILE;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::faults::SenderFaults;
use crate::hardware::remote::{MachineConfig, MachineConfigError};
use crate::manager::{Disk, NodeManager};
use crate::messages::MachineId;
use crate::node::NodeRegistry;
use crate::observe::merge::host_now_us;
use control::ControlContext;
use peers::Identity;

/// Why a machine process could not run.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The config is unusable.
    #[error(transparent)]
    Config(#[from] MachineConfigError),
    /// The log files cannot be opened.
    #[error(transparent)]
    Logging(#[from] logging::LoggingError),
    /// A port cannot be opened, or the runtime cannot start.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The machine's disk (from before a kill of its process) cannot be read.
    #[error("cannot read the machine's disk {path}: {source}")]
    Disk {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A node could not recover from the machine's disk.
    #[error("booting again from the machine's disk: {0}")]
    Recover(#[source] Box<crate::manager::NodeFailure>),
    /// The run's clock cannot be resumed from the machine's disk.
    #[error("booting again from the machine's disk: {0}")]
    Clock(#[source] ClockError),
    /// The run's TLS material cannot be used.
    #[cfg(feature = "cloud")]
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] crate::hardware::remote::tls::TlsError),
}

/// Runs a machine until it is told to shut down or receives SIGTERM or Ctrl-C. Sets up logging
/// into the config's log directory first.
pub fn run(config: &MachineConfig, registry: Arc<NodeRegistry>) -> Result<(), MachineError> {
    config.validate()?;
    logging::init(&config.log_dir, &config.log_filter)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| MachineError::Io {
            what: "start the async runtime".into(),
            source,
        })?;
    #[cfg(feature = "cloud")]
    if let Some(tls) = &config.tls {
        return runtime.block_on(tls::serve(config, tls, registry));
    }
    runtime.block_on(serve(config, registry))
}

/// Serves a machine on the current tokio runtime until shutdown.
pub async fn serve(
    config: &MachineConfig,
    registry: Arc<NodeRegistry>,
) -> Result<(), MachineError> {
    serve_on(config, registry, Ipv4Addr::UNSPECIFIED).await
}

/// Serves a machine with its ports on `ip` (loopback behind a TLS front, see `tls`).
async fn serve_on(
    config: &MachineConfig,
    registry: Arc<NodeRegistry>,
    ip: Ipv4Addr,
) -> Result<(), MachineError> {
    let bind = |port: u16| async move {
        TcpListener::bind(SocketAddr::from((ip, port)))
            .await
            .map_err(|source| MachineError::Io {
                what: format!("listen on port {port}"),
                source,
            })
    };
    let peer_listener = bind(config.peer_port).await?;
    let control_listener = bind(config.control_port).await?;

    let identity = Identity {
        me: config.machine,
        token: config.token.clone(),
    };
    let bad_frames = Arc::new(AtomicU64::new(0));
    let (inputs, input_queue) = mpsc::unbounded_channel();
    let (shutdown, shutdown_watch) = watch::channel(false);
    let shutdown = Arc::new(shutdown);

    let outbound = config
        .peers
        .iter()
        .enumerate()
        .map(|(index, addr)| {
            let to = MachineId(u32::try_from(index).unwrap_or(u32::MAX));
            (to != config.machine).then(|| peers::link(identity.clone(), to, *addr))
        })
        .collect();
    let (manager, rebooted) = match read_disk(&config.log_dir)? {
        Some((disk, start)) => {
            let now_us = host_now_us().saturating_sub(start.run_start_unix_us);
            tracing::info!(
                incarnation = disk.incarnation() + 1,
                "booting again from the machine's disk"
            );
            let manager = NodeManager::restart(
                config.machine,
                registry,
                config.seed,
                config.reliable,
                disk,
                now_us,
            )
            .map_err(|failure| MachineError::Recover(Box::new(failure)))?;
            (manager, Some(start))
        }
        None => {
            let mut manager = NodeManager::new(config.machine, registry, config.seed);
            manager.set_reliable(config.reliable);
            (manager, None)
        }
    };
    let faults = SenderFaults::new(
        config.drop.as_ref(),
        config.duplicate.as_ref(),
        config.seed,
        config.machine,
    )
    .map_err(|e| MachineError::Config(MachineConfigError::Invalid(e.to_string())))?;
    let mut core = core::Core::new(manager, outbound, Arc::clone(&bad_frames), faults);
    core.keep_disk(config.log_dir.clone(), config.sync_disk);
    if config.record {
        let recorder = if rebooted.is_some() {
            recording::MachineRecorder::resume(config.machine, &config.log_dir)
        } else {
            recording::MachineRecorder::create(config.machine, &config.log_dir)
        };
        let recorder = recorder.map_err(|source| MachineError::Io {
            what: format!("write the structured trace in {}", config.log_dir.display()),
            source,
        })?;
        core.record(recorder);
    }
    if let Some(start) = rebooted {
        core.resume(start.run_start_unix_us)
            .map_err(MachineError::Clock)?;
    }

    tokio::spawn(peers::serve(
        peer_listener,
        config.token.clone(),
        inputs.clone(),
        Arc::clone(&bad_frames),
    ));
    tokio::spawn(control::serve(
        control_listener,
        ControlContext {
            identity,
            peers: Arc::new(config.peers.clone()),
            inputs,
            shutdown: Arc::clone(&shutdown),
            bad_frames,
        },
    ));
    tokio::spawn(signals(Arc::clone(&shutdown)));

    tracing::info!(
        run = %config.run_id,
        machine = %config.machine,
        machines = config.peers.len(),
        peer_port = config.peer_port,
        control_port = config.control_port,
        "machine ready"
    );
    core.run(input_queue, shutdown_watch).await;
    tracing::info!(machine = %config.machine, "machine stopped");
    Ok(())
}

/// The machine's disk and the run's start, if its process ran before in `dir` (it was killed and
/// started again): what it boots from. A disk without the run's start is from a machine whose
/// clock never started, so it starts afresh.
fn read_disk(dir: &Path) -> Result<Option<(Disk, core::RunStart)>, MachineError> {
    let read = |name: &str| -> Result<Option<Vec<u8>>, MachineError> {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MachineError::Disk {
                path: path.display().to_string(),
                source,
            }),
        }
    };
    let (Some(disk), Some(start)) = (read(core::DISK_FILE)?, read(core::CLOCK_FILE)?) else {
        return Ok(None);
    };
    let parse = |name: &str, error: serde_json::Error| MachineError::Disk {
        path: dir.join(name).display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
    };
    let disk: Disk = serde_json::from_slice(&disk).map_err(|e| parse(core::DISK_FILE, e))?;
    let start = serde_json::from_slice(&start).map_err(|e| parse(core::CLOCK_FILE, e))?;
    Ok(Some((disk, start)))
}

/// Turns SIGTERM (what `docker stop` sends) and Ctrl-C into a shutdown.
async fn signals(shutdown: Arc<watch::Sender<bool>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            tracing::warn!("cannot listen for SIGTERM");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.send_replace(true);
}
