//! TCP and TLS binds: the accept loop with its graceful drain, one connection (route pick by
//! SNI for TLS, passthrough or termination, weighted backend, upstream connect) and the
//! bidirectional splice with an idle timeout.

use super::sni::{self, Hello};
use super::table::{addresses, L4Cluster, L4Table, RouteRt};
use super::L4Options;
use arc_swap::ArcSwap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use trellis_ir as ir;

/// Accepts until `stop` turns `Some(drain)`, then closes the socket and lets open connections
/// finish for up to `drain` before cutting them.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    table: Arc<ArcSwap<L4Table>>,
    opts: L4Options,
    proxy_kill: watch::Receiver<bool>,
    mut stop: watch::Receiver<Option<Duration>>,
    closed: oneshot::Sender<()>,
) {
    let (kill_tx, kill_rx) = watch::channel(false);
    // Every connection holds a clone; `recv` returns `None` once all are gone.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let name = table.load().name.clone();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let conn = Conn {
                        // The table of the moment: a later swap does not touch this connection.
                        table: table.load_full(),
                        opts,
                        kill: [kill_rx.clone(), proxy_kill.clone()],
                        _alive: alive.clone(),
                    };
                    tokio::spawn(conn.run(tcp, peer));
                }
                Err(e) => {
                    tracing::warn!(bind = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = closed.send(());
    let drain = stop.borrow().unwrap_or(Duration::ZERO);
    drop(alive);
    if tokio::time::timeout(drain, all_done.recv()).await.is_err() {
        tracing::warn!(bind = %name, "drain deadline passed; closing remaining L4 connections");
    }
    let _ = kill_tx.send(true);
}

struct Conn {
    table: Arc<L4Table>,
    opts: L4Options,
    /// The bind's drain deadline and the proxy's shutdown.
    kill: [watch::Receiver<bool>; 2],
    _alive: mpsc::Sender<()>,
}

impl Conn {
    async fn run(self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let table = &self.table;
        if table.protocol != ir::L4Protocol::Tls {
            let Some(route) = table.route(None) else {
                return tracing::debug!(%peer, bind = %table.name, "no route; connection closed");
            };
            return forward(tcp, route.pick(), peer, self.opts, self.kill).await;
        }
        let sni = match sni::peek_hello(&tcp, self.opts.handshake_timeout).await {
            Some(Hello::Tls(sni)) => sni,
            Some(Hello::NotTls) => return tracing::debug!(%peer, "not a TLS ClientHello; closed"),
            None => return tracing::debug!(%peer, "no ClientHello before the deadline; closed"),
        };
        let Some(route) = table.route(sni.as_deref()) else {
            return tracing::debug!(%peer, ?sni, bind = %table.name, "no TLS route for SNI; closed");
        };
        serve_tls_route(tcp, route, peer, self.opts, self.kill).await
    }
}

/// A TLS connection whose ClientHello (still unread) selected `route`: passthrough or
/// termination to a weighted backend.
pub(crate) async fn serve_tls_route(
    tcp: TcpStream,
    route: &RouteRt,
    peer: SocketAddr,
    opts: L4Options,
    kill: [watch::Receiver<bool>; 2],
) {
    let Some(cluster) = route.pick() else {
        // No valid backend: close before any handshake, so the client sees a reset/EOF.
        return tracing::debug!(%peer, route = %route.name, "no valid backend; closed");
    };
    let Some(cfg) = &route.terminate else {
        return forward(tcp, Some(cluster), peer, opts, kill).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
    match tokio::time::timeout(opts.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => forward(tls, Some(cluster), peer, opts, kill).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

async fn forward<S>(
    client: S,
    cluster: Option<&Arc<L4Cluster>>,
    peer: SocketAddr,
    opts: L4Options,
    kill: [watch::Receiver<bool>; 2],
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(cluster) = cluster else {
        return tracing::debug!(%peer, "no valid backend; closed");
    };
    let Some(upstream) = connect(cluster, opts.connect_timeout).await else {
        return;
    };
    if let Err(e) = splice(client, upstream, opts.tcp_idle, kill).await {
        tracing::debug!(%peer, error = %e, "L4 connection ended with error");
    }
}

/// Connects to the cluster's next endpoint, trying the others in turn.
pub(crate) async fn connect(cluster: &L4Cluster, timeout: Duration) -> Option<TcpStream> {
    for e in cluster.rotation() {
        for addr in addresses(e).await {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Some(s);
                }
                Ok(Err(err)) => tracing::debug!(%addr, error = %err, "L4 connect failed"),
                Err(_) => tracing::debug!(%addr, "L4 connect timed out"),
            }
        }
    }
    tracing::debug!(cluster = %cluster.name, "no endpoint reachable; connection closed");
    None
}

/// Copies both ways (a half-close is passed on) until both directions end, an error, nothing
/// moves for `idle`, or a kill signal.
pub(crate) async fn splice<A, B>(
    a: A,
    b: B,
    idle: Duration,
    kill: [watch::Receiver<bool>; 2],
) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let start = tokio::time::Instant::now();
    let last = AtomicU64::new(0);
    let up = copy_half(&mut ar, &mut bw, start, &last);
    let down = copy_half(&mut br, &mut aw, start, &last);
    let idle_watch = async {
        loop {
            let at = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
            if tokio::time::Instant::now() >= at {
                return;
            }
            tokio::time::sleep_until(at).await;
        }
    };
    let [mut k1, mut k2] = kill;
    tokio::select! {
        r = futures_util::future::try_join(up, down) => r.map(|_| ()),
        _ = idle_watch => {
            tracing::debug!("L4 connection idle; closed");
            Ok(())
        }
        () = super::killed(&mut k1) => Ok(()),
        () = super::killed(&mut k2) => Ok(()),
    }
}

async fn copy_half<R, W>(
    r: &mut R,
    w: &mut W,
    start: tokio::time::Instant,
    last: &AtomicU64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            // Pass the half-close on; the other direction keeps going.
            return w.shutdown().await;
        }
        w.write_all(&buf[..n]).await?;
        let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(now, Ordering::Relaxed);
    }
}
