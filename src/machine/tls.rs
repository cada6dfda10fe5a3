//! A machine behind TLS (cloud mode): its peer and control ports take only TLS connections from
//! holders of the run's certificates, and its links to the other machines speak TLS (the
//! material and the forwarding are [`crate::hardware::remote::tls`]).
//!
//! The machine itself is unchanged: `serve` runs it with its plain ports on the loopback
//! interface only, terminates TLS on the public ports in front of them, and gives it an address
//! book of loopback forwarders that carry each outbound link over TLS. The run's token (in every
//! hello and control request) therefore only ever travels inside TLS.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;

use super::MachineError;
use crate::hardware::remote::tls::{acceptor, connector, forward_over_tls, terminate_tls};
use crate::hardware::remote::{MachineConfig, MachineTls};
use crate::node::NodeRegistry;

/// Where a TLS-fronted machine's plain peer port listens, on loopback only.
pub const INNER_PEER_PORT: u16 = 17000;
/// Where a TLS-fronted machine's plain control port listens, on loopback only.
pub const INNER_CONTROL_PORT: u16 = 17001;

async fn bind(addr: SocketAddr) -> Result<TcpListener, MachineError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| MachineError::Io {
            what: format!("listen on {addr}"),
            source,
        })
}

/// Serves a machine behind TLS: the config's peer and control ports take TLS, the machine's own
/// listeners sit on loopback ports, and its links to the other machines go through loopback
/// forwarders that speak TLS to them.
pub(super) async fn serve(
    config: &MachineConfig,
    tls: &MachineTls,
    registry: Arc<NodeRegistry>,
) -> Result<(), MachineError> {
    let acceptor = acceptor(tls)?;
    let connector = connector(&tls.authority, &tls.cert, &tls.key)?;
    let loopback = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut inner = config.clone();
    inner.tls = None;
    inner.peer_port = INNER_PEER_PORT;
    inner.control_port = INNER_CONTROL_PORT;
    for (index, peer) in inner.peers.iter_mut().enumerate() {
        if index == config.machine.index() {
            *peer = loopback(INNER_PEER_PORT);
            continue;
        }
        let listener = bind(loopback(0)).await?;
        let local = listener.local_addr().map_err(|source| MachineError::Io {
            what: "read a forwarder's address".into(),
            source,
        })?;
        tokio::spawn(forward_over_tls(listener, connector.clone(), *peer));
        *peer = local;
    }
    let public = |port: u16| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let peer_front = bind(public(config.peer_port)).await?;
    let control_front = bind(public(config.control_port)).await?;
    tokio::spawn(terminate_tls(
        peer_front,
        acceptor.clone(),
        loopback(INNER_PEER_PORT),
    ));
    tokio::spawn(terminate_tls(
        control_front,
        acceptor,
        loopback(INNER_CONTROL_PORT),
    ));
    super::serve_on(&inner, registry, Ipv4Addr::LOCALHOST).await
}
