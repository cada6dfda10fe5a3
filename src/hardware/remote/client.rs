//! The host's side of a machine's control port: one connection, requests answered in order,
//! every call bounded by a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::frame::{self, FrameError};
use super::protocol::{Authorized, ControlRequest, ControlResponse};

/// Why a control call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No answer within the time allowed.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or the answer was garbage.
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// The machine refused the request (wrong token).
    #[error("the machine refused the request: {0}")]
    Refused(String),
}

/// A connection to one machine's control port.
pub struct ControlClient {
    addr: SocketAddr,
    token: String,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl ControlClient {
    /// Connects to `addr` (giving up after `connect_timeout`) and presents the token with a
    /// status request (a machine takes only small frames from a connection until it has), whose
    /// answer may take `call_timeout`.
    pub async fn connect(
        addr: SocketAddr,
        token: &str,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Self, ControlError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ControlError::Timeout(connect_timeout))?
            .map_err(FrameError::Io)?;
        stream.set_nodelay(true).map_err(FrameError::Io)?;
        let (reader, writer) = stream.into_split();
        let mut client = ControlClient {
            addr,
            token: token.to_owned(),
            reader: BufReader::new(reader),
            writer,
        };
        client.call(ControlRequest::Status, call_timeout).await?;
        Ok(client)
    }

    /// The machine's control address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `request` and waits up to `timeout` for the answer. After an error the connection
    /// is out of step and should be replaced.
    pub async fn call(
        &mut self,
        request: ControlRequest,
        timeout: Duration,
    ) -> Result<ControlResponse, ControlError> {
        let message = Authorized {
            token: self.token.clone(),
            request,
        };
        let exchange = async {
            frame::write_json(&mut self.writer, &message).await?;
            frame::read_json::<_, ControlResponse>(&mut self.reader, frame::MAX_FRAME).await
        };
        let response = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ControlError::Timeout(timeout))??;
        match response {
            ControlResponse::Refused { reason } => Err(ControlError::Refused(reason)),
            response => Ok(response),
        }
    }
}
