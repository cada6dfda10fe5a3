//! Reaching the Docker Engine: the endpoint from settings, a ping with a timeout, and one clear
//! error when it cannot be reached.

use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};

use crate::hardware::{BackendKind, HardwareError};

/// How long the engine has to answer the first ping.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds any one Docker API request may take.
const REQUEST_TIMEOUT_S: u64 = 120;

/// Connects to the engine at `docker_host` (`unix:///path` or `tcp://host:port`), checks that it
/// answers, and agrees on an API version with it.
pub async fn connect(docker_host: &str) -> Result<Docker, HardwareError> {
    let unavailable =
        |reason: String| HardwareError::Unavailable(unreachable(docker_host, &reason));
    let docker = if let Some(path) = docker_host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_S, API_DEFAULT_VERSION)
    } else if docker_host.starts_with("tcp://") || docker_host.starts_with("http://") {
        Docker::connect_with_http(docker_host, REQUEST_TIMEOUT_S, API_DEFAULT_VERSION)
    } else {
        return Err(unavailable(
            "unsupported scheme (use unix:///path or tcp://host:port)".into(),
        ));
    }
    .map_err(|e| unavailable(e.to_string()))?;
    let ping = async {
        docker.ping().await?;
        docker.negotiate_version().await
    };
    match tokio::time::timeout(PING_TIMEOUT, ping).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(error)) => Err(unavailable(error.to_string())),
        Err(_) => Err(unavailable(format!("no answer within {PING_TIMEOUT:?}"))),
    }
}

/// The one line a user sees when Docker cannot be reached.
fn unreachable(docker_host: &str, reason: &str) -> String {
    format!(
        "cannot reach Docker at {docker_host} ({reason}); start the Docker daemon \
         (e.g. `sudo systemctl start docker`) or set DOCKER_HOST to a running engine \
         (see .env.template)"
    )
}

/// A Docker Engine request that failed: what was being done, and Docker's error.
#[derive(Debug, thiserror::Error)]
#[error("Docker could not {action}: {source}")]
pub struct DockerError {
    /// What was being done, e.g. `kill a machine container`.
    pub action: String,
    /// Docker's error.
    #[source]
    pub source: bollard::errors::Error,
}

impl DockerError {
    /// Docker failed to `action`, as a hardware error.
    pub fn hardware(action: String, source: bollard::errors::Error) -> HardwareError {
        HardwareError::Backend {
            backend: BackendKind::Docker,
            source: Box::new(DockerError { action, source }),
        }
    }
}

/// Turns a Docker API error into a hardware error saying what was being done.
pub fn failed(what: &str) -> impl Fn(bollard::errors::Error) -> HardwareError + '_ {
    move |source| DockerError::hardware(what.to_owned(), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn virtual_missing_socket_says_how_to_fix_it() {
        let error = block_on(connect("unix:///nonexistent/docker.sock")).expect_err("no socket");
        let text = error.to_string();
        assert!(matches!(error, HardwareError::Unavailable(_)));
        assert!(
            text.contains("cannot reach Docker at unix:///nonexistent/docker.sock"),
            "{text}"
        );
        assert!(text.contains("DOCKER_HOST"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    #[test]
    fn virtual_unknown_scheme_is_refused() {
        let error = block_on(connect("ftp://somewhere")).expect_err("bad scheme");
        assert!(error.to_string().contains("unsupported scheme"), "{error}");
    }
}
