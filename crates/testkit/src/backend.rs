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

/// A TLS client gets this long to finish its handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One connection accepted by [`serve_listeners`].
pub(crate) enum Accepted {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// What the gRPC and TCP echoes share: a plaintext listener and an optional TLS one (its
/// rustls config built with `alpn` / `ask_client_cert`), each accepting until the returned
/// handle is shut down; every connection (handshaken first on the TLS listener) runs `serve`
/// on its own task, which the shutdown also ends.
pub(crate) fn serve_listeners<F, Fut>(
    name: &'static str,
    plain: tokio::net::TcpListener,
    tls: Option<TlsListener>,
    (alpn, ask_client_cert): (&[&[u8]], bool),
    serve: F,
) -> Result<ServerHandle, crate::echo::TlsConfigError>
where
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let tls = match tls {
        Some(t) => {
            let config =
                crate::echo::tls::server_config(&t.cert_pem, &t.key_pem, alpn, ask_client_cert)?;
            Some((t.listener, tokio_rustls::TlsAcceptor::from(config)))
        }
        None => None,
    };
    let plain_addr = addr_of(plain.local_addr());
    let tls_addr = tls.as_ref().map(|(l, _)| addr_of(l.local_addr()));
    let (handle, stop) = ServerHandle::new(plain_addr, tls_addr);
    let serve = Arc::new(serve);
    tokio::spawn(accept_loop(name, plain, None, serve.clone(), stop.clone()));
    if let Some((listener, acceptor)) = tls {
        tokio::spawn(accept_loop(name, listener, Some(acceptor), serve, stop));
    }
    tracing::info!(addr = %plain_addr, tls = ?tls_addr, "{name} listening");
    Ok(handle)
}

async fn accept_loop<F, Fut>(
    name: &'static str,
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    serve: Arc<F>,
    stop: watch::Receiver<bool>,
) where
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut stopped = stop.clone();
    loop {
        tokio::select! {
            () = wait_stopped(&mut stopped) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, tls = acceptor.is_some(), "{name}: connection");
                    let _ = stream.set_nodelay(true);
                    let (acceptor, serve, mut stop) = (acceptor.clone(), serve.clone(), stop.clone());
                    tokio::spawn(async move {
                        let accepted = match acceptor {
                            None => Accepted::Plain(stream),
                            Some(acceptor) => {
                                let handshake =
                                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                                tokio::select! {
                                    () = wait_stopped(&mut stop) => return,
                                    result = handshake => match result {
                                        Ok(Ok(tls)) => Accepted::Tls(Box::new(tls)),
                                        Ok(Err(err)) => {
                                            tracing::debug!(error = %err, "{name}: TLS handshake failed");
                                            return;
                                        }
                                        Err(_) => {
                                            tracing::debug!("{name}: TLS handshake timed out");
                                            return;
                                        }
                                    },
                                }
                            }
                        };
                        tokio::select! {
                            () = wait_stopped(&mut stop) => {}
                            () = serve(accepted) => {}
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "{name}: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}
