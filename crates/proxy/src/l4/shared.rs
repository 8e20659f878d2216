//! TLSRoutes on a port that also has HTTPS listeners: the HTTPS bind owns the socket, peeks at
//! each ClientHello and hands the connection to the L4 path when a TLSRoute hostname is at
//! least as specific a match for the SNI as any HTTPS listener's.

use super::sni::{self, Hello};
use super::table::L4Table;
use super::{tcp, L4Key, L4Options};
use crate::routing::HostPattern;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::watch;
use trellis_ir as ir;

pub(crate) struct SharedTls {
    table: Arc<L4Table>,
    /// Hostnames of the bind's HTTPS listeners.
    https: Vec<HostPattern>,
    opts: L4Options,
    proxy_kill: watch::Receiver<bool>,
}

/// Removes the TLS tables that share a socket with an HTTPS bind; returns them by
/// (address, port).
pub(crate) fn split_shared(
    tables: &mut Vec<(L4Key, L4Table)>,
    binds: &[ir::Bind],
) -> HashMap<(IpAddr, u16), L4Table> {
    let https = |k: &L4Key| {
        k.2 == ir::L4Protocol::Tls
            && binds
                .iter()
                .any(|b| (b.address, b.port, b.protocol) == (k.0, k.1, ir::BindProtocol::Https))
    };
    let (shared, own): (Vec<_>, Vec<_>) = std::mem::take(tables)
        .into_iter()
        .partition(|(k, _)| https(k));
    *tables = own;
    shared.into_iter().map(|(k, t)| ((k.0, k.1), t)).collect()
}

/// Rank of a hostname pattern: lower is more specific.
fn rank(p: &HostPattern) -> (u8, usize) {
    match p {
        HostPattern::Exact(_) => (0, 0),
        HostPattern::Wildcard(s) => (1, usize::MAX - s.len()),
        HostPattern::Any => (2, 0),
    }
}

impl SharedTls {
    pub(crate) fn new(
        table: L4Table,
        bind: &ir::Bind,
        opts: L4Options,
        proxy_kill: watch::Receiver<bool>,
    ) -> SharedTls {
        SharedTls {
            table: Arc::new(table),
            https: bind
                .listeners
                .iter()
                .map(|l| HostPattern::parse(l.hostname.as_deref()))
                .collect(),
            opts,
            proxy_kill,
        }
    }

    /// Serves the connection when a TLSRoute takes it (returns `None`), otherwise gives it
    /// back for HTTPS. `bind_kill` ends it when the bind's drain deadline passes.
    pub(crate) async fn dispatch(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        bind_kill: watch::Receiver<bool>,
    ) -> Option<TcpStream> {
        let sni = match sni::peek_hello(&tcp, self.opts.handshake_timeout).await {
            Some(Hello::Tls(sni)) => sni,
            // Let the HTTPS path fail (or time out) the handshake as it always does.
            Some(Hello::NotTls) => return Some(tcp),
            None => return None,
        };
        let Some(route) = self.table.route(sni.as_deref()) else {
            return Some(tcp);
        };
        let https_best = sni
            .as_deref()
            .and_then(|s| self.https.iter().filter(|p| p.matches(s)).map(rank).min());
        if https_best.is_some_and(|h| h < rank(&route.hostname)) {
            return Some(tcp);
        }
        let kill = [bind_kill, self.proxy_kill.clone()];
        tcp::serve_tls_route(tcp, route, peer, self.opts, kill).await;
        None
    }
}
