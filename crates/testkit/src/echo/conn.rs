//! One accepted connection: optional TLS handshake, then hyper's auto (HTTP/1.1 + h2c / h2)
//! server, torn down on shutdown or with a TCP reset when a handler asks for one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::tls::TlsInfo;
use super::Shared;

/// A TLS client gets this long to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request handler knows about its connection.
pub(crate) struct ConnCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tls: Option<TlsInfo>,
    /// Set, then notified, by a handler that wants the TCP connection reset (retry without
    /// responseCode); the flag covers the case where hyper ends the connection first.
    pub(crate) reset_requested: AtomicBool,
    pub(crate) reset: Notify,
}

pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    // A second descriptor of the same socket, so SO_LINGER can be set after hyper owns it.
    let socket = match socket2::SockRef::from(&stream).try_clone() {
        Ok(socket) => socket,
        Err(err) => {
            tracing::warn!(error = %err, %peer, "echo: cannot duplicate socket");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut stop = shared.shutdown.clone();
    let Some(acceptor) = acceptor else {
        let ctx = Arc::new(ConnCtx {
            shared,
            tls: None,
            reset_requested: AtomicBool::new(false),
            reset: Notify::new(),
        });
        run_http(stream, ctx, &socket, &mut stop).await;
        return;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let tls_stream = tokio::select! {
        () = super::wait_stopped(&mut stop) => return,
        result = handshake => match result {
            Ok(Ok(tls_stream)) => tls_stream,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, %peer, "echo: TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "echo: TLS handshake timed out");
                return;
            }
        },
    };
    let info = TlsInfo::from_connection(tls_stream.get_ref().1);
    let ctx = Arc::new(ConnCtx {
        shared,
        tls: Some(info),
        reset_requested: AtomicBool::new(false),
        reset: Notify::new(),
    });
    run_http(tls_stream, ctx, &socket, &mut stop).await;
}

async fn run_http<I>(
    io: I,
    ctx: Arc<ConnCtx>,
    socket: &socket2::Socket,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_ctx = ctx.clone();
    let service = service_fn(move |req| super::handler::handle(req, service_ctx.clone()));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::select! {
        // Shutdown first: a response made ready by the same wake-up must not go out.
        biased;
        () = super::wait_stopped(stop) => {}
        _ = ctx.reset.notified() => {}
        result = conn => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "echo: connection ended with error");
            }
        }
    }
    if ctx.reset_requested.load(Ordering::SeqCst) {
        // Linger 0 turns the close (when the connection and `socket` drop) into an RST.
        if let Err(err) = socket.set_linger(Some(Duration::ZERO)) {
            tracing::warn!(error = %err, "echo: cannot set SO_LINGER for reset");
        }
    }
}
