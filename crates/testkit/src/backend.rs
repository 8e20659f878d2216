//! What the L4 / gRPC echo backends share: the identity they report (upstream's `NAMESPACE`,
//! `INGRESS_NAME`, `SERVICE_NAME`, `POD_NAME`) and the handle that stops a running server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

/// The identity an echo instance reports; an empty field is reported as `""`, as upstream
/// does for an unset environment variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendIdentity {
    pub namespace: String,
    /// Name of the ingress controller under test (`INGRESS_NAME`); usually empty.
    pub ingress: String,
    /// The Kubernetes Service name (`SERVICE_NAME`).
    pub service: String,
    /// Pod name, `<service>-<x>-<y>` in the conformance suite.
    pub pod: String,
}

impl BackendIdentity {
    /// An identity with an empty `ingress`, e.g.
    /// `BackendIdentity::new("gateway-conformance-infra", "tcp-backend", "tcp-backend-0-0")`.
    pub fn new(
        namespace: impl Into<String>,
        service: impl Into<String>,
        pod: impl Into<String>,
    ) -> Self {
        BackendIdentity {
            namespace: namespace.into(),
            ingress: String::new(),
            service: service.into(),
            pod: pod.into(),
        }
    }
}

/// A running gRPC / TCP / UDP / DNS echo. Dropping it does not stop it; call
/// [`ServerHandle::shutdown`].
#[derive(Debug, Clone)]
pub struct ServerHandle {
    /// The plaintext listener (or the UDP socket).
    pub local_addr: SocketAddr,
    /// The TLS listener, when the server has one.
    pub tls_addr: Option<SocketAddr>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl ServerHandle {
    pub(crate) fn new(
        local_addr: SocketAddr,
        tls_addr: Option<SocketAddr>,
    ) -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        let handle = ServerHandle {
            local_addr,
            tls_addr,
            shutdown: Arc::new(tx),
        };
        (handle, rx)
    }

    /// Stops accepting (or receiving) and closes every open connection. Idempotent.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once [`ServerHandle::shutdown`] has been called (by any clone of the handle).
    pub async fn stopped(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

/// `listener.local_addr()`, or `0.0.0.0:0` when the OS cannot tell (never on a bound socket).
pub(crate) fn addr_of(addr: std::io::Result<SocketAddr>) -> SocketAddr {
    addr.unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// A second listener that serves the same backend over TLS with this PEM chain and key
/// (upstream's `TLS_SERVER_CERT` / `TLS_SERVER_PRIV_KEY` port).
#[derive(Debug)]
pub struct TlsListener {
    pub listener: tokio::net::TcpListener,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Resolves once the server is shut down (never if every handle is dropped without one).
pub(crate) async fn wait_stopped(rx: &mut watch::Receiver<bool>) {
    crate::echo::wait_stopped(rx).await
}
