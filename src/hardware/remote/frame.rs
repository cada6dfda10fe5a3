//! Length-prefixed frames: a 4-byte big-endian length, then that many bytes of JSON.
//!
//! Every connection in virtual mode (machine to machine, host to machine) carries these. Memory
//! stays bounded by what a peer has actually sent, never by what it announces:
//!
//! - each read names its limit: [`PRE_AUTH_MAX_FRAME`] (4 KiB) until the connection has presented
//!   the run's token, [`MAX_FRAME`] (16 MiB) after; a longer announcement is refused before any of
//!   the body is read;
//! - a body is read incrementally, its buffer growing with the bytes that arrive, so a frame that
//!   announces 16 MiB and sends 10 bytes costs about 10 bytes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame body accepted or sent (16 MiB).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// The largest frame body accepted from a connection that has not presented the run's token yet
/// (4 KiB: a hello or a status request is a few dozen bytes).
pub const PRE_AUTH_MAX_FRAME: usize = 4 * 1024;
/// The most a body's buffer reserves before its bytes arrive.
const READ_CHUNK: usize = 8 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection cleanly between frames.
    #[error("the connection was closed")]
    Closed,
    /// The length prefix announces more bytes than the connection may send; the stream cannot
    /// be trusted any more and the connection should be closed.
    #[error("frame of {len} bytes exceeds the {limit}-byte limit")]
    Oversized {
        /// The announced length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The body is not the JSON that was expected; the stream is still in sync.
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the connection can go on after this error (the next frame is still readable).
    pub fn is_recoverable(&self) -> bool {
        matches!(self, FrameError::Malformed(_))
    }
}

/// Reads one frame's raw body, refusing one that announces more than `limit` bytes (at most
/// [`MAX_FRAME`] whatever `limit` says). The body's buffer grows as its bytes arrive.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    let limit = limit.min(MAX_FRAME);
    if len > limit {
        return Err(FrameError::Oversized { len, limit });
    }
    let mut body = Vec::new();
    let read = read_body(reader, len, &mut body).await?;
    if read < len {
        return Err(FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the connection closed {read} bytes into a {len}-byte frame"),
        )));
    }
    Ok(body)
}

/// Reads up to `len` bytes into `body`, which grows with what arrives (never reserving more than
/// [`READ_CHUNK`] ahead of it); returns how many bytes came before the stream ended.
async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
    body: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let mut read = 0;
    while read < len {
        let want = (len - read).min(READ_CHUNK);
        let n = reader.read(&mut chunk[..want]).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
        read += n;
    }
    Ok(read)
}

/// Reads one frame of at most `limit` bytes and decodes its JSON body as `T`.
pub async fn read_json<R, T>(reader: &mut R, limit: usize) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let body = read_frame(reader, limit).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Encodes `value` as one frame (prefix and body) into `out`.
pub fn encode_json<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    serde_json::to_writer(&mut *out, value)?;
    let len = out.len() - start - 4;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(FrameError::Oversized {
            len,
            limit: MAX_FRAME,
        });
    }
    let prefix = u32::try_from(len)
        .map_err(|_| FrameError::Oversized {
            len,
            limit: MAX_FRAME,
        })?
        .to_be_bytes();
    out[start..start + 4].copy_from_slice(&prefix);
    Ok(())
}

/// Writes `value` as one frame and flushes.
pub async fn write_json<W, T>(writer: &mut W, value: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut buffer = Vec::new();
    encode_json(value, &mut buffer)?;
    writer.write_all(&buffer).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn virtual_frames_round_trip() {
        let mut wire = Vec::new();
        encode_json(&serde_json::json!({"type": "a", "n": 1}), &mut wire).expect("encodes");
        encode_json(&"second", &mut wire).expect("encodes");
        let mut reader = wire.as_slice();
        let first: serde_json::Value =
            block_on(read_json(&mut reader, PRE_AUTH_MAX_FRAME)).expect("first");
        assert_eq!(first["n"], 1);
        let second: String = block_on(read_json(&mut reader, MAX_FRAME)).expect("second");
        assert_eq!(second, "second");
        assert!(matches!(
            block_on(read_frame(&mut reader, MAX_FRAME)),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn virtual_oversized_frames_are_refused_before_reading() {
        let mut reader: &[u8] = &[0xff, 0xff, 0xff, 0xff, b'{'];
        let error = block_on(read_frame(&mut reader, MAX_FRAME)).expect_err("oversized");
        assert!(matches!(error, FrameError::Oversized { .. }));
        assert!(!error.is_recoverable());
    }

    /// A frame just over 4 KiB is refused from a connection that has not authenticated, and
    /// read from one that has.
    #[test]
    fn virtual_unauthenticated_connections_may_send_only_small_frames() {
        let body = vec![b' '; PRE_AUTH_MAX_FRAME + 1];
        let mut wire = u32::try_from(body.len())
            .expect("fits")
            .to_be_bytes()
            .to_vec();
        wire.extend_from_slice(&body);
        let error = block_on(read_frame(&mut wire.as_slice(), PRE_AUTH_MAX_FRAME))
            .expect_err("too large before authentication");
        assert!(
            matches!(error, FrameError::Oversized { len, limit: PRE_AUTH_MAX_FRAME } if len == body.len()),
            "{error}"
        );
        assert!(error.to_string().contains("4096-byte limit"), "{error}");
        let read = block_on(read_frame(&mut wire.as_slice(), MAX_FRAME)).expect("after");
        assert_eq!(read.len(), body.len());
        let mut exact = 4096u32.to_be_bytes().to_vec();
        exact.extend_from_slice(&[b' '; PRE_AUTH_MAX_FRAME]);
        assert!(block_on(read_frame(&mut exact.as_slice(), PRE_AUTH_MAX_FRAME)).is_ok());
    }

    /// No limit above 16 MiB can be asked for.
    #[test]
    fn virtual_no_read_accepts_more_than_the_frame_limit() {
        let mut reader: &[u8] = &[0x01, 0x00, 0x00, 0x01, b'{'];
        let error = block_on(read_frame(&mut reader, usize::MAX)).expect_err("over 16 MiB");
        assert!(matches!(
            error,
            FrameError::Oversized {
                limit: MAX_FRAME,
                ..
            }
        ));
    }

    /// A frame announcing 16 MiB that sends a few bytes costs a buffer the size of what came,
    /// not of what was announced.
    #[test]
    fn virtual_a_half_sent_frame_reserves_only_what_arrived() {
        let mut reader: &[u8] = &[b'x'; 10];
        let mut body = Vec::new();
        let read = block_on(read_body(&mut reader, MAX_FRAME, &mut body)).expect("reads");
        assert_eq!(read, 10);
        assert!(body.capacity() <= READ_CHUNK, "{} bytes", body.capacity());

        let mut wire = u32::try_from(MAX_FRAME)
            .expect("fits")
            .to_be_bytes()
            .to_vec();
        wire.extend_from_slice(&[b'x'; 10]);
        let error = block_on(read_frame(&mut wire.as_slice(), MAX_FRAME)).expect_err("truncated");
        assert!(error.to_string().contains("10 bytes into"), "{error}");
    }

    #[test]
    fn virtual_malformed_frames_leave_the_stream_in_sync() {
        let mut wire = vec![0, 0, 0, 3];
        wire.extend_from_slice(b"{{{");
        encode_json(&7u32, &mut wire).expect("encodes");
        let mut reader = wire.as_slice();
        let error = block_on(read_json::<_, u32>(&mut reader, MAX_FRAME)).expect_err("malformed");
        assert!(error.is_recoverable());
        assert_eq!(
            block_on(read_json::<_, u32>(&mut reader, MAX_FRAME)).expect("next"),
            7
        );
    }

    #[test]
    fn virtual_truncated_frames_are_an_error_not_a_hang() {
        let mut reader: &[u8] = &[0, 0, 0, 10, b'{'];
        assert!(matches!(
            block_on(read_frame(&mut reader, MAX_FRAME)),
            Err(FrameError::Io(_))
        ));
    }
}
