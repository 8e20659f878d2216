//! UDP binds: sessions keyed by client address. A session's first datagram picks a weighted
//! backend and opens its own upstream socket; replies go back to the client from the bind's
//! socket. Sessions end after `udp_idle` without traffic; at most `udp_max_sessions` live.

use super::table::{addresses, L4Table};
use super::L4Options;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

struct Session {
    upstream: UdpSocket,
    start: Instant,
    /// Milliseconds after `start` of the last datagram either way.
    last: AtomicU64,
}

impl Session {
    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle
    }
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

/// Serves until `stop`; then ends every session (a datagram flow has nothing to drain) and
/// reports `closed` once no task holds the socket any more.
pub(crate) async fn serve(
    socket: UdpSocket,
    table: Arc<ArcSwap<L4Table>>,
    opts: L4Options,
    proxy_kill: watch::Receiver<bool>,
    mut stop: watch::Receiver<Option<Duration>>,
    closed: oneshot::Sender<()>,
) {
    let socket = Arc::new(socket);
    let sessions: Sessions = Arc::default();
    let (kill_tx, kill_rx) = watch::channel(false);
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let name = table.load().name.clone();
    let mut proxy_kill_loop = proxy_kill.clone();
    loop {
        let (n, peer) = tokio::select! {
            _ = stop.changed() => break,
            () = super::killed(&mut proxy_kill_loop) => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(bind = %name, error = %e, "UDP receive failed");
                    continue;
                }
            },
        };
        let existing = lock(&sessions).get(&peer).cloned();
        let session = match existing {
            Some(s) => s,
            None => {
                if lock(&sessions).len() >= opts.udp_max_sessions {
                    tracing::debug!(bind = %name, %peer, "UDP session limit reached; datagram dropped");
                    continue;
                }
                let Some(upstream) = open_upstream(&table.load()).await else {
                    continue;
                };
                let session = Arc::new(Session {
                    upstream,
                    start: Instant::now(),
                    last: AtomicU64::new(0),
                });
                lock(&sessions).insert(peer, session.clone());
                let replies = Replies {
                    socket: socket.clone(),
                    session: session.clone(),
                    sessions: sessions.clone(),
                    peer,
                    idle: opts.udp_idle,
                    kill: [kill_rx.clone(), proxy_kill.clone()],
                    _alive: alive.clone(),
                };
                tokio::spawn(replies.run());
                session
            }
        };
        session.touch();
        if let Err(e) = session.upstream.send(&buf[..n]).await {
            tracing::debug!(bind = %name, %peer, error = %e, "UDP send to backend failed");
        }
    }
    let _ = kill_tx.send(true);
    drop(alive);
    let _ = tokio::time::timeout(Duration::from_secs(2), all_done.recv()).await;
    drop(socket);
    let _ = closed.send(());
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A socket connected to the backend picked for a new session; `None` refuses the session.
async fn open_upstream(table: &L4Table) -> Option<UdpSocket> {
    let route = table.route(None)?;
    let Some(cluster) = route.pick() else {
        tracing::debug!(route = %route.name, "no valid backend; UDP datagram dropped");
        return None;
    };
    for e in cluster.rotation() {
        for addr in addresses(e).await {
            let local: SocketAddr = if addr.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = match UdpSocket::bind(local).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open an upstream UDP socket");
                    return None;
                }
            };
            if socket.connect(addr).await.is_ok() {
                return Some(socket);
            }
        }
    }
    tracing::debug!(cluster = %cluster.name, "no UDP endpoint; datagram dropped");
    None
}

/// The reply side of one session.
struct Replies {
    socket: Arc<UdpSocket>,
    session: Arc<Session>,
    sessions: Sessions,
    peer: SocketAddr,
    idle: Duration,
    kill: [watch::Receiver<bool>; 2],
    _alive: mpsc::Sender<()>,
}

impl Replies {
    async fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let [mut k1, mut k2] = self.kill.clone();
        loop {
            let deadline = self.session.idle_deadline(self.idle);
            tokio::select! {
                r = self.session.upstream.recv(&mut buf) => match r {
                    Ok(n) => {
                        self.session.touch();
                        if let Err(e) = self.socket.send_to(&buf[..n], self.peer).await {
                            tracing::debug!(peer = %self.peer, error = %e, "UDP reply failed");
                        }
                    }
                    // E.g. ICMP port unreachable from the backend: keep the session.
                    Err(e) => tracing::debug!(peer = %self.peer, error = %e, "UDP backend receive failed"),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if Instant::now() >= self.session.idle_deadline(self.idle) {
                        break;
                    }
                }
                () = super::killed(&mut k1) => break,
                () = super::killed(&mut k2) => break,
            }
        }
        let mut map = lock(&self.sessions);
        if map
            .get(&self.peer)
            .is_some_and(|s| Arc::ptr_eq(s, &self.session))
        {
            map.remove(&self.peer);
        }
    }
}
