//! The TLS every connection of a cloud run speaks, machine to machine and runner to machine.
//!
//! Each run makes its own certificate authority in memory. It signs two certificates: one that
//! every machine of the run presents (name [`SERVER_NAME`]), and one for the runner. Both ends of
//! every connection present a certificate and accept only the run's authority, so the runner
//! pins the machines and the machines admit only each other and the runner. The authority's key
//! never leaves the runner. Plain connections are carried over TLS one way
//! ([`forward_over_tls`]) and back ([`terminate_tls`]), so the plain control client and peer
//! links work unchanged inside it.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::config::MachineTls;

/// The name in every machine certificate, which clients check.
pub const SERVER_NAME: &str = "dist-zero-machine";
/// How long to wait after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Why TLS material could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

impl From<TlsError> for crate::hardware::HardwareError {
    fn from(error: TlsError) -> Self {
        crate::hardware::HardwareError::Backend {
            backend: crate::hardware::BackendKind::Tls,
            source: Box::new(error),
        }
    }
}

fn tls_error(what: &'static str) -> impl Fn(String) -> TlsError {
    move |reason| TlsError(format!("{what}: {reason}"))
}

/// A run's TLS material: what the machines get (in their config) and what the runner keeps.
pub struct RunTls {
    /// The authority's certificate and the machines' certificate and key.
    pub machines: MachineTls,
    /// The runner's certificate, in PEM.
    pub runner_cert: String,
    /// The runner's key, in PEM.
    pub runner_key: String,
}

impl RunTls {
    /// Makes a fresh authority and the two certificates it signs.
    pub fn generate() -> Result<Self, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let rc = |e: rcgen::Error| e.to_string();
        let mut authority = CertificateParams::new(Vec::<String>::new())
            .map_err(rc)
            .map_err(tls_error("authority"))?;
        authority
            .distinguished_name
            .push(DnType::CommonName, "dist-zero run authority");
        authority.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        authority.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let authority_key = KeyPair::generate()
            .map_err(rc)
            .map_err(tls_error("authority key"))?;
        let authority_cert = authority
            .self_signed(&authority_key)
            .map_err(rc)
            .map_err(tls_error("authority certificate"))?;
        let issuer = Issuer::new(authority, authority_key);
        let leaf = |name: &str| -> Result<(String, String), TlsError> {
            let mut params = CertificateParams::new(vec![name.to_owned()])
                .map_err(rc)
                .map_err(tls_error("certificate"))?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let key = KeyPair::generate().map_err(rc).map_err(tls_error("key"))?;
            let cert = params
                .signed_by(&key, &issuer)
                .map_err(rc)
                .map_err(tls_error("certificate"))?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (machine_cert, machine_key) = leaf(SERVER_NAME)?;
        let (runner_cert, runner_key) = leaf("dist-zero-runner")?;
        Ok(RunTls {
            machines: MachineTls {
                authority: authority_cert.pem(),
                cert: machine_cert,
                key: machine_key,
            },
            runner_cert,
            runner_key,
        })
    }

    /// The runner's client side: presents the runner's certificate, accepts only machines
    /// certified by this run's authority.
    pub fn runner_connector(&self) -> Result<TlsConnector, TlsError> {
        connector(
            &self.machines.authority,
            &self.runner_cert,
            &self.runner_key,
        )
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn certificate(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| TlsError(format!("bad certificate: {e}")))
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError(format!("bad key: {e}")))
}

fn roots(authority: &str) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(certificate(authority)?)
        .map_err(|e| TlsError(format!("bad authority: {e}")))?;
    Ok(Arc::new(roots))
}

/// A client that presents `cert` and accepts only servers certified by `authority`.
pub fn connector(authority: &str, cert: &str, private_key: &str) -> Result<TlsConnector, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_root_certificates(roots(authority)?)
        .with_client_auth_cert(vec![certificate(cert)?], key(private_key)?)
        .map_err(|e| TlsError(format!("client certificate: {e}")))?;
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A server that presents the machines' certificate and admits only clients certified by the
/// run's authority.
pub fn acceptor(tls: &MachineTls) -> Result<TlsAcceptor, TlsError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots(&tls.authority)?,
        provider(),
    )
    .build()
    .map_err(|e| TlsError(format!("client verifier: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![certificate(&tls.cert)?], key(&tls.key)?)
        .map_err(|e| TlsError(format!("server certificate: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Opens a TLS connection to a machine at `addr`.
pub async fn connect(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let name = ServerName::try_from(SERVER_NAME)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    connector.connect(name, stream).await
}

/// Accepts plain connections on `listener` and carries each over TLS to `remote`.
pub async fn forward_over_tls(listener: TcpListener, connector: TlsConnector, remote: SocketAddr) {
    forward_over_tls_to(listener, connector, tokio::sync::watch::channel(remote).1).await;
}

/// Accepts plain connections on `listener` and carries each over TLS to the address `remote`
/// holds when it is accepted (an instance started again may have a new public address).
pub async fn forward_over_tls_to(
    listener: TcpListener,
    connector: TlsConnector,
    remote: tokio::sync::watch::Receiver<SocketAddr>,
) {
    loop {
        let Ok((mut plain, _)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_PAUSE).await;
            continue;
        };
        let connector = connector.clone();
        let remote = *remote.borrow();
        tokio::spawn(async move {
            let _ = plain.set_nodelay(true);
            match connect(&connector, remote).await {
                Ok(mut secure) => {
                    let _ = tokio::io::copy_bidirectional(&mut plain, &mut secure).await;
                }
                Err(error) => tracing::debug!(%remote, %error, "TLS connection failed"),
            }
        });
    }
}

/// Accepts TLS connections on `listener` and carries each, decrypted, to `inner` (loopback).
pub async fn terminate_tls(listener: TcpListener, acceptor: TlsAcceptor, inner: SocketAddr) {
    loop {
        let Ok((stream, remote)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_PAUSE).await;
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut secure = match acceptor.accept(stream).await {
                Ok(secure) => secure,
                Err(error) => {
                    tracing::warn!(%remote, %error, "refused a TLS connection");
                    return;
                }
            };
            match TcpStream::connect(inner).await {
                Ok(mut plain) => {
                    let _ = plain.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut secure, &mut plain).await;
                }
                Err(error) => tracing::warn!(%inner, %error, "inner port unreachable"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn cloud_tls_carries_bytes_between_holders_of_the_run_certificates_only() {
        let run = RunTls::generate().expect("material");
        let other = RunTls::generate().expect("another run's material");
        runtime().block_on(async {
            let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let echo_addr = echo.local_addr().expect("addr");
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = echo.accept().await {
                    tokio::spawn(async move {
                        let (mut r, mut w) = stream.split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                    });
                }
            });
            let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let front_addr = front.local_addr().expect("addr");
            let acceptor = acceptor(&run.machines).expect("acceptor");
            tokio::spawn(terminate_tls(front, acceptor, echo_addr));

            let mut ours = connect(&run.runner_connector().expect("connector"), front_addr)
                .await
                .expect("the run's runner gets in");
            ours.write_all(b"hello").await.expect("write");
            let mut back = [0u8; 5];
            ours.read_exact(&mut back).await.expect("echo");
            assert_eq!(&back, b"hello");

            // Another run's runner: its certificate is not from this run's authority, and this
            // run's machine certificate is not one it trusts.
            let theirs = connect(&other.runner_connector().expect("connector"), front_addr).await;
            match theirs {
                Err(_) => {}
                Ok(mut stream) => {
                    let _ = stream.write_all(b"hello").await;
                    let mut buf = [0u8; 5];
                    assert!(stream.read_exact(&mut buf).await.is_err());
                }
            }
        });
    }
}
