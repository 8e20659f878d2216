//! The L4 data plane (TCPRoute, UDPRoute, TLSRoute): sockets diffed by (address, port,
//! transport) like the HTTP binds. A kept socket gets the new tables (its open connections and
//! UDP sessions keep their backends); a removed one stops accepting and drains.
//!
//! `table.rs` (IR → tables, weighted pick), `tcp.rs` (TCP and TLS: accept, SNI route pick,
//! passthrough or termination, splice), `udp.rs` (sessions), `sni.rs` (ClientHello peek),
//! `shared.rs` (TLSRoutes on a port with HTTPS listeners).

mod shared;
mod sni;
mod table;
mod tcp;
mod udp;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use trellis_ir as ir;

pub(crate) use shared::{split_shared, SharedTls};
pub(crate) use table::{L4Table, TableError};

/// Timeouts and limits of L4 connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct L4Options {
    pub connect_timeout: Duration,
    /// Reading the ClientHello and (termination) the TLS handshake.
    pub handshake_timeout: Duration,
    /// A TCP connection with no bytes either way for this long is closed.
    pub tcp_idle: Duration,
    /// A UDP session with no datagram either way for this long ends.
    pub udp_idle: Duration,
    pub udp_max_sessions: usize,
}

/// Resolves once the kill switch is on (or its sender is gone).
pub(crate) async fn killed(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|k| *k).await;
}

pub(crate) type L4Key = (IpAddr, u16, ir::L4Protocol);

struct RunningL4 {
    table: Arc<ArcSwap<L4Table>>,
    local: SocketAddr,
    stop: watch::Sender<Option<Duration>>,
    closed: oneshot::Receiver<()>,
    done: JoinHandle<()>,
}

impl RunningL4 {
    /// Stops accepting (returns once the socket is closed); the returned task ends when the
    /// connections have drained or `drain` has passed.
    async fn stop(self, drain: Duration) -> JoinHandle<()> {
        let _ = self.stop.send(Some(drain));
        let _ = self.closed.await;
        self.done
    }
}

/// The running L4 sockets.
#[derive(Default)]
pub(crate) struct L4State {
    binds: HashMap<L4Key, RunningL4>,
    draining: Vec<JoinHandle<()>>,
}

/// Compiles every L4 bind of `config`; nothing changes on error.
pub(crate) fn compile(config: &ir::Config) -> Result<Vec<(L4Key, L4Table)>, TableError> {
    let clusters = table::clusters(config);
    config
        .l4_binds
        .iter()
        .map(|b| {
            Ok((
                (b.address, b.port, b.protocol),
                table::compile(b, &clusters)?,
            ))
        })
        .collect()
}

impl L4State {
    /// Closes sockets not in `wanted` (first, so another bind can take the port).
    pub(crate) async fn remove_stale(&mut self, wanted: &[L4Key], drain: Duration) {
        let removed: Vec<L4Key> = self
            .binds
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in removed {
            if let Some(running) = self.binds.remove(&key) {
                tracing::info!(address = %key.0, port = key.1, protocol = ?key.2, "removing L4 bind");
                self.draining.push(running.stop(drain).await);
            }
        }
        self.draining.retain(|h| !h.is_finished());
    }

    /// Swaps the tables of kept sockets and opens new ones; failures go to `errors` as
    /// `(bind name, error)`.
    pub(crate) fn open(
        &mut self,
        tables: Vec<(L4Key, L4Table)>,
        opts: L4Options,
        proxy_kill: &watch::Receiver<bool>,
        errors: &mut Vec<(String, String)>,
    ) {
        for (key, table) in tables {
            if let Some(running) = self.binds.get(&key) {
                running.table.store(Arc::new(table));
                continue;
            }
            let name = table.name.clone();
            match open(key, table, opts, proxy_kill.clone()) {
                Ok(running) => {
                    tracing::info!(bind = %name, local = %running.local, "listening (L4)");
                    self.binds.insert(key, running);
                }
                Err(e) => {
                    tracing::warn!(bind = %name, error = %e, "L4 bind failed");
                    errors.push((name, e.to_string()));
                }
            }
        }
    }

    /// Stops every socket; the handles finish once connections have drained.
    pub(crate) async fn shutdown(&mut self, drain: Duration) -> Vec<JoinHandle<()>> {
        let mut handles = std::mem::take(&mut self.draining);
        for (_, running) in self.binds.drain() {
            handles.push(running.stop(drain).await);
        }
        handles
    }

    pub(crate) fn local_addrs(&self) -> impl Iterator<Item = (String, SocketAddr)> + '_ {
        self.binds
            .values()
            .map(|b| (b.table.load().name.clone(), b.local))
    }
}

fn socket(addr: SocketAddr, udp: bool) -> io::Result<Socket> {
    let s = if udp {
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?
    } else {
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?
    };
    if !udp {
        // Lets a restarted proxy rebind while old connections sit in TIME_WAIT.
        s.set_reuse_address(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

fn open(
    key: L4Key,
    table: L4Table,
    opts: L4Options,
    proxy_kill: watch::Receiver<bool>,
) -> io::Result<RunningL4> {
    let addr = SocketAddr::new(key.0, key.1);
    let table = Arc::new(ArcSwap::from_pointee(table));
    let (stop, stop_rx) = watch::channel(None);
    let (closed_tx, closed) = oneshot::channel();
    let (local, done) = if key.2 == ir::L4Protocol::Udp {
        let socket = tokio::net::UdpSocket::from_std(socket(addr, true)?.into())?;
        let local = socket.local_addr()?;
        let task = udp::serve(socket, table.clone(), opts, proxy_kill, stop_rx, closed_tx);
        (local, tokio::spawn(task))
    } else {
        let s = socket(addr, false)?;
        s.listen(1024)?;
        let listener = tokio::net::TcpListener::from_std(s.into())?;
        let local = listener.local_addr()?;
        let task = tcp::accept_loop(
            listener,
            table.clone(),
            opts,
            proxy_kill,
            stop_rx,
            closed_tx,
        );
        (local, tokio::spawn(task))
    };
    Ok(RunningL4 {
        table,
        local,
        stop,
        closed,
        done,
    })
}
