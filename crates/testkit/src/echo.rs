//! The echo backend of the Gateway API conformance contract
//! (`/work/shared/conformance/README.md`, "Echo backend contract").
//!
//! One [`spawn`] call serves one listener until [`EchoHandle::shutdown`]:
//! - every request (HTTP/1.1 or HTTP/2 prior knowledge, detected per connection; HTTPS when
//!   [`EchoOptions::tls`] is set, ALPN `h2`/`http/1.1`) is answered with the echo JSON
//!   `{"path","host","method","proto","headers","namespace","pod","httpPort","tls"?}`
//!   (built in the private `handler` module);
//! - `X-Echo-Set-Header`, `?delay=`, `/retry/…`, `/status/NNN`, `/health` behave as upstream;
//! - `/ws` accepts a WebSocket upgrade and echoes every message ([`EchoMode::Http`] only);
//! - every request-URI is appended to [`EchoHandle::request_log`] and logged at info as
//!   `Echoing back request made to <request-URI> to client`.

mod conn;
mod duration;
mod handler;
mod headers;
mod query;
mod retry;
pub(crate) mod tls;
mod ws;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use duration::{parse_go_duration, DurationError};
pub use tls::TlsConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EchoMode {
    /// HTTP/1.1 and HTTP/2 with prior knowledge (detected per connection); WebSocket at `/ws`.
    #[default]
    Http,
    /// Only HTTP/2 with prior knowledge; other requests get 400.
    H2cOnly,
}

#[derive(Debug, Clone, Default)]
pub struct EchoOptions {
    pub namespace: String,
    /// Pod name, `<service>-<x>-<y>` in the conformance suite.
    pub pod: String,
    pub mode: EchoMode,
    /// PEM cert chain + key: serve HTTPS instead of plain text.
    pub tls: Option<(String, String)>,
}

impl EchoOptions {
    /// Plain HTTP echo (mode [`EchoMode::Http`], no TLS) for `namespace` / `pod`.
    pub fn new(namespace: impl Into<String>, pod: impl Into<String>) -> Self {
        EchoOptions {
            namespace: namespace.into(),
            pod: pod.into(),
            mode: EchoMode::Http,
            tls: None,
        }
    }

    pub fn with_mode(mut self, mode: EchoMode) -> Self {
        self.mode = mode;
        self
    }

    /// Serve HTTPS with this PEM certificate chain and PEM private key.
    pub fn with_tls(mut self, cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.tls = Some((cert_pem.into(), key_pem.into()));
        self
    }
}

/// How many request-URIs [`EchoHandle::request_log`] keeps (oldest dropped first).
pub const REQUEST_LOG_CAPACITY: usize = 100_000;

/// A running echo server. Dropping it does not stop it; call [`EchoHandle::shutdown`].
#[derive(Clone)]
pub struct EchoHandle {
    pub local_addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for EchoHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoHandle")
            .field("local_addr", &self.local_addr)
            .field("stopped", &*self.shutdown.borrow())
            .finish()
    }
}

impl EchoHandle {
    /// Request-URIs received so far, in arrival order (the most recent
    /// [`REQUEST_LOG_CAPACITY`], so a long-running `trellis echo` does not grow without bound).
    pub fn request_log(&self) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().cloned().collect()
    }

    /// Forgets the request-URIs received so far.
    pub fn clear_request_log(&self) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Stops accepting and closes every open connection (WebSockets included). Idempotent.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once [`EchoHandle::shutdown`] has been called (by any clone of the handle).
    pub async fn stopped(&self) {
        let mut rx = self.shutdown.subscribe();
        // Err only when the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

/// State shared by every connection of one server instance.
pub(crate) struct Shared {
    pub(crate) options: EchoOptions,
    pub(crate) local_port: u16,
    pub(crate) log: Arc<Mutex<VecDeque<String>>>,
    pub(crate) retries: retry::RetryCounters,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn record(&self, request_uri: &str) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() >= REQUEST_LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(request_uri.to_string());
    }
}

/// Serves on `listener` until shut down. Must be called inside a Tokio runtime.
///
/// An unusable TLS certificate or key is logged and the server then refuses every
/// connection; use [`try_spawn`] to get the error instead.
pub fn spawn(listener: TcpListener, options: EchoOptions) -> EchoHandle {
    match try_spawn_inner(listener, options) {
        Ok(handle) => handle,
        Err((listener, err)) => {
            tracing::error!(error = %err, "echo: unusable TLS configuration; refusing connections");
            let local_addr = local_addr_of(&listener);
            let (tx, rx) = watch::channel(false);
            tokio::spawn(refuse_all(listener, rx));
            EchoHandle {
                local_addr,
                log: Arc::default(),
                shutdown: Arc::new(tx),
            }
        }
    }
}

/// Like [`spawn`], but reports an unusable TLS certificate or key.
pub fn try_spawn(
    listener: TcpListener,
    options: EchoOptions,
) -> Result<EchoHandle, TlsConfigError> {
    try_spawn_inner(listener, options).map_err(|(_, err)| err)
}

/// Binds `addr`, serves the echo there and returns when Ctrl-C is received (after shutting
/// the server down). Meant for `trellis echo --listen ADDR [--name POD] [--namespace NS]`:
///
/// ```no_run
/// # async fn cli() -> Result<(), Box<dyn std::error::Error>> {
/// let options = trellis_testkit::echo::EchoOptions::new("default", "echo-0-0");
/// trellis_testkit::echo::serve_forever("127.0.0.1:8080".parse()?, options).await?;
/// # Ok(()) }
/// ```
pub async fn serve_forever(addr: SocketAddr, options: EchoOptions) -> Result<(), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let handle = try_spawn(listener, options)?;
    tracing::info!(addr = %handle.local_addr, "echo backend listening");
    let result = tokio::signal::ctrl_c().await;
    handle.shutdown();
    result.map_err(ServeError::Signal)
}

/// Why [`serve_forever`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("waiting for Ctrl-C: {0}")]
    Signal(std::io::Error),
}

fn local_addr_of(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

#[allow(clippy::result_large_err)]
fn try_spawn_inner(
    listener: TcpListener,
    options: EchoOptions,
) -> Result<EchoHandle, (TcpListener, TlsConfigError)> {
    let acceptor = match &options.tls {
        Some((cert, key)) => match tls::acceptor(cert, key) {
            Ok(acceptor) => Some(acceptor),
            Err(err) => return Err((listener, err)),
        },
        None => None,
    };
    let local_addr = local_addr_of(&listener);
    let (tx, rx) = watch::channel(false);
    let log: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let shared = Arc::new(Shared {
        options,
        local_port: local_addr.port(),
        log: log.clone(),
        retries: retry::RetryCounters::default(),
        shutdown: rx,
    });
    tokio::spawn(accept_loop(listener, shared, acceptor));
    Ok(EchoHandle {
        local_addr,
        log,
        shutdown: Arc::new(tx),
    })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut stop = shared.shutdown.clone();
    loop {
        tokio::select! {
            () = wait_stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(conn::serve(stream, peer, shared.clone(), acceptor.clone()));
                }
                Err(err) => {
                    // Usually EMFILE or a peer gone before accept: back off briefly, keep serving.
                    tracing::warn!(error = %err, "echo: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    tracing::debug!(addr = ?listener.local_addr().ok(), "echo: stopped accepting");
}

async fn refuse_all(listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = wait_stopped(&mut stop) => break,
            accepted = listener.accept() => drop(accepted),
        }
    }
}

/// Resolves once the server is shut down; never when every handle is dropped without a
/// shutdown (the server then runs as long as the runtime).
pub(crate) async fn wait_stopped(rx: &mut watch::Receiver<bool>) {
    // The guard returned by `wait_for` is not `Send`: drop it here, not across an await.
    let stopped = rx.wait_for(|stopped| *stopped).await.is_ok();
    if !stopped {
        std::future::pending::<()>().await;
    }
}
