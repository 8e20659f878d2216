//! TLS client side for the L4 conformance cases: a rustls client config trusting a PEM CA (the
//! `tls_tcp_echo` dial) and the `tls_connection_rejected` probe.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Why a TLS client configuration cannot be built or a TLS dial failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsClientError {
    #[error("bad PEM CA certificate: {0}")]
    Ca(String),
    #[error("no certificate in the PEM CA bundle")]
    NoCa,
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS dial to {0} timed out")]
    Timeout(SocketAddr),
}

/// A client config (TLS 1.2+, ring) trusting every certificate in `ca_pem`, or nothing when
/// `None` (so any server certificate fails verification), offering `alpn`.
pub fn client_config(
    ca_pem: Option<&str>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, TlsClientError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsClientError::Ca(e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsClientError::NoCa);
        }
        for cert in certs {
            roots.add(cert)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Dials `addr` and completes a TLS handshake with SNI `sni`, all within `timeout`.
pub async fn tls_connect(
    addr: SocketAddr,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, TlsClientError> {
    let name = ServerName::try_from(sni.to_string())
        .map_err(|_| TlsClientError::ServerName(sni.to_string()))?;
    let dial = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| TlsClientError::Connect { addr, source })?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|source| TlsClientError::Handshake { addr, source })
    };
    tokio::time::timeout(timeout, dial)
        .await
        .map_err(|_| TlsClientError::Timeout(addr))?
}

/// How a TLS dial ended, for `tls_connection_rejected`.
#[derive(Debug)]
pub enum TlsDialOutcome {
    /// The peer closed or reset the connection during the handshake (Go: EOF, unexpected EOF,
    /// connection reset): what `tls_connection_rejected` wants.
    ClosedByPeer(std::io::Error),
    /// The handshake completed: the Gateway did not reject the connection.
    Established,
    /// Anything else (connection refused, certificate or alert error, timeout, bad name).
    Failed(TlsClientError),
}

impl TlsDialOutcome {
    /// True for [`TlsDialOutcome::ClosedByPeer`], the outcome that passes the case.
    pub fn is_rejected(&self) -> bool {
        matches!(self, TlsDialOutcome::ClosedByPeer(_))
    }
}

/// One attempt of `tls_connection_rejected`: a TLS dial to `addr` with SNI `sni`, trusting
/// `ca_pem` (upstream trusts the system roots; irrelevant, since a handshake must not
/// complete). The runner retries until [`TlsDialOutcome::is_rejected`] or its deadline.
pub async fn tls_connection_rejected(
    addr: SocketAddr,
    sni: &str,
    ca_pem: Option<&str>,
    timeout: Duration,
) -> TlsDialOutcome {
    let config = match client_config(ca_pem, &[]) {
        Ok(config) => config,
        Err(err) => return TlsDialOutcome::Failed(err),
    };
    match tls_connect(addr, sni, config, timeout).await {
        Ok(_) => TlsDialOutcome::Established,
        Err(TlsClientError::Handshake { source, .. }) if closed_by_peer(&source) => {
            TlsDialOutcome::ClosedByPeer(source)
        }
        Err(err) => TlsDialOutcome::Failed(err),
    }
}

fn closed_by_peer(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}
