//! Length-prefixed frames: a 4-byte big-endian length, then that many bytes of JSON.
//!
//! Every connection in virtual mode (machine to machine, host to machine) carries these. A frame
//! longer than [`MAX_FRAME`] is refused before any of it is read, so a peer cannot make a machine
//! allocate without bound.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame body accepted or sent (16 MiB).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection cleanly between frames.
    #[error("the connection was closed")]
    Closed,
    /// The length prefix announces more than [`MAX_FRAME`] bytes; the stream cannot be trusted
    /// any more and the connection should be closed.
    #[error("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit")]
    Oversized {
        /// The announced length.
        len: usize,
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

/// Reads one frame's raw body.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::Oversized { len });
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads one frame and decodes its JSON body as `T`.
pub async fn read_json<R, T>(reader: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let body = read_frame(reader).await?;
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
        return Err(FrameError::Oversized { len });
    }
    let prefix = u32::try_from(len)
        .map_err(|_| FrameError::Oversized { len })?
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
        let first: serde_json::Value = block_on(read_json(&mut reader)).expect("first");
        assert_eq!(first["n"], 1);
        let second: String = block_on(read_json(&mut reader)).expect("second");
        assert_eq!(second, "second");
        assert!(matches!(
            block_on(read_frame(&mut reader)),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn virtual_oversized_frames_are_refused_before_reading() {
        let mut reader: &[u8] = &[0xff, 0xff, 0xff, 0xff, b'{'];
        let error = block_on(read_frame(&mut reader)).expect_err("oversized");
        assert!(matches!(error, FrameError::Oversized { .. }));
        assert!(!error.is_recoverable());
    }

    #[test]
    fn virtual_malformed_frames_leave_the_stream_in_sync() {
        let mut wire = vec![0, 0, 0, 3];
        wire.extend_from_slice(b"{{{");
        encode_json(&7u32, &mut wire).expect("encodes");
        let mut reader = wire.as_slice();
        let error = block_on(read_json::<_, u32>(&mut reader)).expect_err("malformed");
        assert!(error.is_recoverable());
        assert_eq!(block_on(read_json::<_, u32>(&mut reader)).expect("next"), 7);
    }

    #[test]
    fn virtual_truncated_frames_are_an_error_not_a_hang() {
        let mut reader: &[u8] = &[0, 0, 0, 10, b'{'];
        assert!(matches!(
            block_on(read_frame(&mut reader)),
            Err(FrameError::Io(_))
        ));
    }
}
