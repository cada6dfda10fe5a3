//! Links between machines: one outbound connection per other machine, opened when the first
//! envelope for it is sent, and a listener that takes envelopes from all of them. Bad input on the
//! listener is logged and survived. A connection must say hello with the run's token within a
//! few seconds, in a small frame, and only a few connections are read from before they have:
//! the rest wait their turn (within the same few seconds).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use super::core::Input;
use crate::hardware::remote::frame::{self, FrameError, MAX_FRAME, PRE_AUTH_MAX_FRAME};
use crate::hardware::remote::protocol::PeerFrame;
use crate::manager::Envelope;
use crate::messages::MachineId;

/// How long a new connection has to present the run's token, waiting for its turn included.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How many connections, per port, are read from before they have presented the run's token;
/// others wait for one of them to finish.
pub(crate) const MAX_UNAUTHENTICATED: usize = 32;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Bytes of frames gathered before one write.
const WRITE_BATCH: usize = 64 * 1024;

/// Who this machine is, for the links it opens.
#[derive(Clone)]
pub(crate) struct Identity {
    /// This machine.
    pub me: MachineId,
    /// The run's secret.
    pub token: String,
}

/// Starts the task that carries envelopes to machine `to` at `addr`, connecting (and
/// reconnecting) as needed, and returns the sender that feeds it.
pub(crate) fn link(
    identity: Identity,
    to: MachineId,
    addr: SocketAddr,
) -> mpsc::UnboundedSender<Envelope> {
    let (sender, mut envelopes) = mpsc::unbounded_channel::<Envelope>();
    tokio::spawn(async move {
        let mut pending: Vec<u8> = Vec::new();
        let mut stream: Option<TcpStream> = None;
        loop {
            let Some(envelope) = envelopes.recv().await else {
                return;
            };
            encode(&envelope, &mut pending);
            while pending.len() < WRITE_BATCH {
                match envelopes.try_recv() {
                    Ok(envelope) => encode(&envelope, &mut pending),
                    Err(_) => break,
                }
            }
            let open = match stream.as_mut() {
                Some(open) => open,
                None => stream.insert(connect(&identity, to, addr).await),
            };
            if let Err(error) = open.write_all(&pending).await {
                tracing::warn!(%to, %error, "link to machine broke; reconnecting");
                stream = None;
            }
            pending.clear();
        }
    });
    sender
}

fn encode(envelope: &Envelope, out: &mut Vec<u8>) {
    let frame = PeerFrame::Envelope {
        envelope: envelope.clone(),
    };
    if let Err(error) = frame::encode_json(&frame, out) {
        tracing::error!(%error, "cannot encode an envelope; dropped");
    }
}

/// Connects to `addr` and says hello, retrying with backoff until it works.
async fn connect(identity: &Identity, to: MachineId, addr: SocketAddr) -> TcpStream {
    let mut backoff = Duration::from_millis(10);
    let mut attempts = 0u32;
    loop {
        match try_connect(identity, addr).await {
            Ok(stream) => {
                tracing::info!(%to, %addr, "linked to machine");
                return stream;
            }
            Err(error) => {
                attempts += 1;
                if attempts == 10 {
                    tracing::warn!(%to, %addr, %error, "cannot reach machine yet; still trying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn try_connect(identity: &Identity, addr: SocketAddr) -> Result<TcpStream, FrameError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let hello = PeerFrame::Hello {
        from: identity.me,
        token: identity.token.clone(),
    };
    frame::write_json(&mut stream, &hello).await?;
    Ok(stream)
}

/// Accepts connections from other machines and feeds their envelopes to the event loop.
pub(crate) async fn serve(
    listener: TcpListener,
    token: String,
    inputs: mpsc::UnboundedSender<Input>,
    bad_frames: Arc<AtomicU64>,
) {
    let unauthenticated = Arc::new(Semaphore::new(MAX_UNAUTHENTICATED));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a peer connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let token = token.clone();
        let inputs = inputs.clone();
        let bad_frames = Arc::clone(&bad_frames);
        let unauthenticated = Arc::clone(&unauthenticated);
        tokio::spawn(async move {
            let outcome = receive(stream, unauthenticated, &token, &inputs, &bad_frames).await;
            match outcome {
                Ok(()) | Err(FrameError::Closed) => {
                    tracing::debug!(%remote, "peer connection closed");
                }
                Err(error) => {
                    bad_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%remote, %error, "closing a peer connection");
                }
            }
        });
    }
}

/// Reads one peer connection until it closes or sends something unrecoverable. The hello is read
/// holding one of the `unauthenticated` permits.
async fn receive(
    stream: TcpStream,
    unauthenticated: Arc<Semaphore>,
    token: &str,
    inputs: &mpsc::UnboundedSender<Input>,
    bad_frames: &AtomicU64,
) -> Result<(), FrameError> {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let handshake = async {
        let _turn = unauthenticated
            .acquire_owned()
            .await
            .map_err(|_| std::io::Error::other("the machine is stopping"))?;
        let mut reader = BufReader::new(reader);
        let hello = frame::read_json::<_, PeerFrame>(&mut reader, PRE_AUTH_MAX_FRAME).await?;
        Ok::<_, FrameError>((reader, hello))
    };
    let (mut reader, hello) = tokio::time::timeout(HELLO_TIMEOUT, handshake)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no hello in time"))??;
    let from = match hello {
        PeerFrame::Hello { from, token: given }
            if super::control::constant_time_eq(given.as_bytes(), token.as_bytes()) =>
        {
            from
        }
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the first frame is not a hello with the run's token",
            )
            .into())
        }
    };
    loop {
        match frame::read_json::<_, PeerFrame>(&mut reader, MAX_FRAME).await {
            Ok(PeerFrame::Envelope { envelope }) => {
                if inputs.send(Input::Arrive { from, envelope }).is_err() {
                    return Ok(());
                }
            }
            Ok(PeerFrame::Ping { nonce }) => {
                frame::write_json(&mut writer, &PeerFrame::Pong { nonce }).await?;
            }
            Ok(other) => {
                tracing::warn!(%from, ?other, "unexpected peer frame; ignored");
                bad_frames.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) if error.is_recoverable() => {
                tracing::warn!(%from, %error, "malformed frame from a machine; skipped");
                bad_frames.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Measures `count` round trips to the machine at `addr` over a fresh connection, in
/// microseconds.
pub(crate) async fn round_trips(
    identity: &Identity,
    addr: SocketAddr,
    count: u32,
) -> Result<Vec<u64>, FrameError> {
    let stream = try_connect(identity, addr).await?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut micros = Vec::with_capacity(count as usize);
    for nonce in 0..u64::from(count) {
        let sent = Instant::now();
        frame::write_json(&mut writer, &PeerFrame::Ping { nonce }).await?;
        loop {
            if let PeerFrame::Pong { nonce: back } =
                frame::read_json(&mut reader, MAX_FRAME).await?
            {
                if back == nonce {
                    break;
                }
            }
        }
        micros.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    Ok(micros)
}
