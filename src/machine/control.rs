//! The control port: requests from the process that runs the system. Each must carry the run's
//! token; one without it is refused and its connection closed. Malformed requests are answered
//! with an error and the connection goes on. A connection's first request must show the token
//! within a few seconds, in a small frame, and only a few connections are read from before they
//! have: the rest wait their turn (within the same few seconds).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::core::Input;
use super::peers::{self, Identity, HELLO_TIMEOUT, MAX_UNAUTHENTICATED};
use crate::hardware::remote::frame::{self, FrameError, MAX_FRAME, PRE_AUTH_MAX_FRAME};
use crate::hardware::remote::protocol::{Authorized, ControlRequest, ControlResponse};

/// What every control connection shares.
#[derive(Clone)]
pub(crate) struct ControlContext {
    /// This machine and the run's secret.
    pub identity: Identity,
    /// The address book.
    pub peers: Arc<Vec<SocketAddr>>,
    /// The event loop.
    pub inputs: mpsc::UnboundedSender<Input>,
    /// Set to true to stop the machine.
    pub shutdown: Arc<watch::Sender<bool>>,
    /// Frames refused so far.
    pub bad_frames: Arc<AtomicU64>,
}

/// How long a peer round-trip measurement may take in all.
const PING_PEER_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts control connections until the process ends.
pub(crate) async fn serve(listener: TcpListener, context: ControlContext) {
    let unauthenticated = Arc::new(Semaphore::new(MAX_UNAUTHENTICATED));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a control connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let context = context.clone();
        let unauthenticated = Arc::clone(&unauthenticated);
        tokio::spawn(async move {
            match converse(stream, unauthenticated, &context).await {
                Ok(()) | Err(FrameError::Closed) => {
                    tracing::debug!(%remote, "control connection closed");
                }
                Err(error) => {
                    context.bad_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%remote, %error, "closing a control connection");
                }
            }
        });
    }
}

/// Answers requests on one connection, in order. The first request is read holding one of the
/// `unauthenticated` permits, in a small frame, within [`HELLO_TIMEOUT`]; once a request has
/// shown the token, frames may be as large as any.
async fn converse(
    stream: TcpStream,
    unauthenticated: Arc<Semaphore>,
    context: &ControlContext,
) -> Result<(), FrameError> {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let handshake = async {
        let _turn = unauthenticated
            .acquire_owned()
            .await
            .map_err(|_| std::io::Error::other("the machine is stopping"))?;
        let mut reader = BufReader::new(reader);
        let body = frame::read_frame(&mut reader, PRE_AUTH_MAX_FRAME).await?;
        Ok::<_, FrameError>((reader, body))
    };
    let (mut reader, first) = tokio::time::timeout(HELLO_TIMEOUT, handshake)
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no request with the token in time",
            )
        })??;
    let mut next = Some(first);
    loop {
        let body = match next.take() {
            Some(body) => body,
            None => frame::read_frame(&mut reader, MAX_FRAME).await?,
        };
        let request = match authorize(&body, &context.identity.token) {
            Ok(request) => request,
            Err(Verdict::Refused(reason)) => {
                context.bad_frames.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "refused a control request");
                frame::write_json(&mut writer, &ControlResponse::Refused { reason }).await?;
                return Ok(());
            }
            Err(Verdict::Malformed(reason)) => {
                context.bad_frames.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "malformed control request");
                frame::write_json(&mut writer, &ControlResponse::Failed { reason }).await?;
                continue;
            }
        };
        let stop = matches!(request, ControlRequest::Shutdown);
        let response = answer(request, context).await;
        frame::write_json(&mut writer, &response).await?;
        if stop {
            context.shutdown.send_replace(true);
            return Ok(());
        }
    }
}

enum Verdict {
    Refused(String),
    Malformed(String),
}

/// Just the token of a control request; the rest is skipped.
#[derive(serde::Deserialize)]
struct TokenOnly {
    token: Option<serde_json::Value>,
}

/// Checks the token first (so nothing about a request is revealed without it), then parses.
fn authorize(body: &[u8], token: &str) -> Result<ControlRequest, Verdict> {
    let given: TokenOnly = serde_json::from_slice(body)
        .map_err(|e| Verdict::Refused(format!("not a JSON control request: {e}")))?;
    match given.token.as_ref().and_then(serde_json::Value::as_str) {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => {}
        Some(_) => return Err(Verdict::Refused("wrong token".into())),
        None => return Err(Verdict::Refused("the request carries no token".into())),
    }
    serde_json::from_slice::<Authorized>(body)
        .map(|authorized| authorized.request)
        .map_err(|e| Verdict::Malformed(format!("not a control request: {e}")))
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn answer(request: ControlRequest, context: &ControlContext) -> ControlResponse {
    match request {
        ControlRequest::Shutdown => ControlResponse::ShuttingDown,
        ControlRequest::PingPeer { to, count } => {
            let Some(addr) = context.peers.get(to.index()).copied() else {
                return ControlResponse::Failed {
                    reason: format!("machine {to} is not in the address book"),
                };
            };
            let measured = tokio::time::timeout(
                PING_PEER_TIMEOUT,
                peers::round_trips(&context.identity, addr, count),
            )
            .await;
            match measured {
                Ok(Ok(micros)) => ControlResponse::RoundTrips { micros },
                Ok(Err(error)) => ControlResponse::Failed {
                    reason: format!("pinging {to}: {error}"),
                },
                Err(_) => ControlResponse::Failed {
                    reason: format!("pinging {to} timed out"),
                },
            }
        }
        request => {
            let (reply, answer) = oneshot::channel();
            if context
                .inputs
                .send(Input::Control { request, reply })
                .is_err()
            {
                return ControlResponse::Failed {
                    reason: "the machine is shutting down".into(),
                };
            }
            answer.await.unwrap_or(ControlResponse::Failed {
                reason: "the machine is shutting down".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_requests_without_the_token_are_refused() {
        let refused =
            |body: &str| matches!(authorize(body.as_bytes(), "s3"), Err(Verdict::Refused(_)));
        assert!(refused(r#"{"request":"status"}"#));
        assert!(refused(r#"{"token":"s4","request":"status"}"#));
        assert!(refused(r#"{"token":3,"request":"status"}"#));
        assert!(refused("garbage"));
    }

    #[test]
    fn virtual_authorized_but_malformed_requests_are_answered_not_fatal() {
        let verdict = authorize(br#"{"token":"s3","request":"launch"}"#, "s3");
        assert!(matches!(verdict, Err(Verdict::Malformed(_))));
        let ok = authorize(br#"{"token":"s3","request":"status"}"#, "s3");
        assert!(matches!(ok, Ok(ControlRequest::Status)));
    }
}
