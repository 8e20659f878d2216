//! One running bind: the listening socket, its accept loop, per-connection serving
//! (HTTP/1.1 + h2c, or TLS then ALPN) and the graceful drain when the bind is removed.

use crate::compile::BindTable;
use crate::drain::Phase;
use crate::handler::{self, ConnCtx, Shared};
use crate::sniff::Sniffed;
use arc_swap::ArcSwap;
use hyper::rt::{Read, Write};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Timeouts for the client side of connections.
#[derive(Clone, Copy)]
pub(crate) struct ServeOptions {
    pub tls_handshake: Duration,
    pub header_read: Duration,
    pub limits: trellis_ir::Limits,
}

pub(crate) struct RunningBind {
    pub table: Arc<ArcSwap<BindTable>>,
    pub local: SocketAddr,
    /// `Some(deadline)` stops accepting and drains within `deadline`.
    stop: watch::Sender<Option<Duration>>,
    closed: oneshot::Receiver<()>,
    done: JoinHandle<()>,
}

impl RunningBind {
    /// Stops accepting (returns once the socket is closed); the returned task finishes when
    /// connections have drained or `drain` has passed.
    pub(crate) async fn stop(self, drain: Duration) -> JoinHandle<()> {
        let _ = self.stop.send(Some(drain));
        let _ = self.closed.await;
        self.done
    }
}

fn bind_socket(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

pub(crate) fn open(
    addr: SocketAddr,
    table: BindTable,
    shared: Arc<Shared>,
    opts: ServeOptions,
) -> io::Result<RunningBind> {
    let listener = bind_socket(addr)?;
    let local = listener.local_addr()?;
    let table = Arc::new(ArcSwap::from_pointee(table));
    let (stop, stop_rx) = watch::channel(None);
    let (closed_tx, closed) = oneshot::channel();
    let done = tokio::spawn(accept_loop(
        listener,
        table.clone(),
        shared,
        opts,
        stop_rx,
        closed_tx,
    ));
    Ok(RunningBind {
        table,
        local,
        stop,
        closed,
        done,
    })
}

async fn accept_loop(
    listener: TcpListener,
    table: Arc<ArcSwap<BindTable>>,
    shared: Arc<Shared>,
    opts: ServeOptions,
    mut stop: watch::Receiver<Option<Duration>>,
    closed: oneshot::Sender<()>,
) {
    const HYPER_DEFAULT_MAX_HEADERS: usize = 100;
    let phase = Arc::new(Phase::default());
    let (kill_tx, kill_rx) = watch::channel(false);
    // Every connection and WebSocket tunnel holds a clone; `recv` ends when all are gone.
    let (tunnels, mut tunnels_done) = mpsc::channel::<()>(1);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read)
        // Heads beyond the read buffer get 431 from hyper (it cannot be below 8 KiB).
        .max_buf_size(opts.limits.max_request_header_bytes.max(8192));
    // hyper's own limit is 100 headers. Setting any value, even that one, makes it fill a
    // 100-entry array on the heap for every parse (two per request, ~4 % of the CPU).
    if opts.limits.max_request_headers != HYPER_DEFAULT_MAX_HEADERS {
        builder.http1().max_headers(opts.limits.max_request_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(
            u32::try_from(opts.limits.max_request_header_bytes).unwrap_or(u32::MAX),
        );
    let builder = Arc::new(builder);
    let name = table.load().name.clone();
    let open = crate::conn_limit::ConnCount::default();
    loop {
        tokio::select! {
            // Only ever changed to `Some`; a dropped sender also stops.
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Some(slot) = open.take(opts.limits.max_connections_per_bind) else {
                        shared.metrics.connection_rejected(&name);
                        tracing::debug!(bind = %name, %peer, "connection limit reached; closed");
                        continue;
                    };
                    let conn = Conn {
                        table: table.clone(),
                        shared: shared.clone(),
                        builder: builder.clone(),
                        phase: phase.clone(),
                        kill: kill_rx.clone(),
                        tunnels: tunnels.clone(),
                        opts,
                        head_log: Default::default(),
                    };
                    tokio::spawn(async move {
                        conn.run(tcp, peer).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Usually fd exhaustion: back off instead of spinning.
                    tracing::warn!(bind = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = closed.send(());
    let drain = stop.borrow().unwrap_or(Duration::ZERO);
    tracing::info!(bind = %name, connections = phase.count(), "draining");
    drop(tunnels);
    phase.drain();
    let drained = async {
        phase.drained().await;
        let _ = tunnels_done.recv().await;
    };
    // The proxy's own shutdown may end the drain early.
    let mut proxy_kill = shared.kill.clone();
    tokio::select! {
        r = tokio::time::timeout(drain, drained) => if r.is_err() {
            tracing::warn!(bind = %name, "drain deadline passed; closing remaining connections");
        },
        _ = proxy_kill.wait_for(|k| *k) => {}
    }
    phase.kill();
    let _ = kill_tx.send(true);
}

struct Conn {
    table: Arc<ArcSwap<BindTable>>,
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    phase: Arc<Phase>,
    kill: watch::Receiver<bool>,
    tunnels: mpsc::Sender<()>,
    opts: ServeOptions,
    head_log: Arc<crate::sniff::HeadLog>,
}

impl Conn {
    async fn run(self, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let tls = self.table.load().tls.clone();
        let Some(tls) = tls else {
            // hyper's header read timeout starts with the first byte and protocol detection
            // (HTTP/1 or h2c) has no deadline: a client that never sends must not hold a socket.
            let mut first = [0u8; 1];
            match tokio::time::timeout(self.opts.header_read, tcp.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return,
                Err(_) => {
                    tracing::debug!(%peer, "no request bytes within the header read timeout; closed");
                    return;
                }
            }
            let io = Sniffed::new(
                tcp,
                self.opts.limits.max_request_header_bytes,
                self.head_log.clone(),
            );
            return self.serve(TokioIo::new(io), peer, None).await;
        };
        // TLSRoutes on this port take the connections whose SNI they match best.
        let l4_tls = self.table.load().l4_tls.clone();
        let tcp = match l4_tls {
            Some(l4) => match l4.dispatch(tcp, peer, self.kill.clone()).await {
                Some(tcp) => tcp,
                None => return,
            },
            None => tcp,
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        match tokio::time::timeout(self.opts.tls_handshake, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                let sni = stream
                    .get_ref()
                    .1
                    .server_name()
                    .map(|s| s.to_ascii_lowercase());
                let max_head = self.opts.limits.max_request_header_bytes;
                let io = Sniffed::new(stream, max_head, self.head_log.clone());
                self.serve(TokioIo::new(io), peer, sni).await
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    async fn serve<I>(self, io: I, peer: SocketAddr, sni: Option<String>)
    where
        I: Read + Write + Unpin + Send + 'static,
    {
        let peer_ip = http::HeaderValue::from_str(&peer.ip().to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("unknown"));
        let ctx = Arc::new(ConnCtx {
            table: self.table,
            peer,
            peer_ip,
            sni,
            shared: self.shared,
            bind_kill: self.kill,
            tunnels: self.tunnels,
            requests: Default::default(),
            head_log: self.head_log,
        });
        let svc = hyper::service::service_fn(move |req| handler::handle(ctx.clone(), req));
        let conn = self
            .builder
            .serve_connection_with_upgrades(io, svc)
            .into_owned();
        // Drain and kill come through the bind's phase (drain.rs); a connection the proxy
        // shuts down is killed through it too.
        if let Some(Err(e)) = self.phase.guard(conn).await {
            tracing::debug!(%peer, error = %e, "connection ended with error");
        }
    }
}
