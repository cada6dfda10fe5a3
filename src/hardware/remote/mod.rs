//! What the back-ends whose machines are processes elsewhere (virtual: Docker containers; cloud:
//! EC2 instances) share with those processes: the control protocol and peer frames, their
//! framing, the control client, a machine's config, the TLS material, and the runner's set of
//! control connections to a run's machines.
//!
//! It sits in the hardware layer, below both sides that speak it: `crate::machine` (the process
//! inside a container or an instance) and the back-ends in `hardware::docker` and
//! `hardware::cloud` depend on this module and not on each other, so the protocol has one
//! definition and neither side reaches into the other's code. Nothing here knows about Docker or
//! AWS; what differs between back-ends is behind the crate-private `machines::Backend` trait.

pub mod client;
pub mod config;
pub mod frame;
pub mod hardware;
pub(crate) mod machines;
pub mod protocol;
pub mod stop;
#[cfg(feature = "cloud")]
pub mod tls;

pub use client::{ControlClient, ControlError};
pub use config::{MachineConfig, MachineConfigError, MachineTls};

/// The async runtime a remote run's blocking calls run on: two worker threads (the runner waits
/// on the network, it computes little). Every remote mode makes its runtime here.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, crate::hardware::HardwareError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| crate::hardware::HardwareError::Io {
            action: "start a runtime".into(),
            source,
        })
}
