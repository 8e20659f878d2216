//! The HTTP data plane. [`Proxy::apply`] takes a new IR, binds sockets that are new, compiles
//! lookup tables once and swaps them in atomically; sockets that disappear drain gracefully.
//!
//! Start here, then: `compile.rs` (IR → tables), `lookup.rs` (listener → virtual host →
//! route), `handler.rs` (one request: lookup, filters, action), `forward.rs` (upstream
//! attempts, retries, mirrors, WebSocket), `upstream.rs` (endpoints, clusters),
//! `upstream_http.rs` (upstream connections: HTTP/1 pool driven by the request's task, h2c),
//! `listener.rs` (sockets), `drain.rs` (drain and kill of a bind's connections), `tls.rs`
//! (SNI certificates), `l4/` (TCPRoute, UDPRoute and TLSRoute
//! sockets). Hardening: `framing.rs` + `sniff.rs`
//! (strict HTTP/1 framing, limits), `conn_limit.rs`, `ejection.rs` (outlier detection).

mod body;
mod compile;
mod conn_limit;
mod drain;
mod ejection;
mod filters;
mod forward;
mod framing;
mod grpc;
mod handler;
mod l4;
mod listener;
mod lookup;
mod metrics;
mod path_index;
mod routing;
mod sniff;
mod sniff_fuzz;
mod tls;
mod upstream;
mod upstream_http;
mod upstream_tls;

pub use ejection::OutlierDetection;
pub use metrics::Metrics;
/// Fuzzing entries for the HTTP/1 stream tracker (fuzz/fuzz_targets/http1_sniff.rs).
#[doc(hidden)]
pub use sniff_fuzz::{sniff_feed, sniff_hyper, Served, SniffVerdict};
pub use trellis_ir::Limits;

use listener::{RunningBind, ServeOptions};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use trellis_ir::{BindProtocol, Config};

#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// How long a removed bind (or [`Proxy::shutdown`]) lets connections finish.
    pub drain_timeout: Duration,
    /// TCP connect to an upstream endpoint.
    pub connect_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    /// HTTP/1 request headers must arrive within this.
    pub header_read_timeout: Duration,
    /// Request bodies up to this size are buffered when a retry or mirror needs a copy.
    pub max_buffered_body: usize,
    /// When set, the proxy's counters are registered here.
    pub registry: Option<Arc<Mutex<Registry>>>,
    /// Request head, URI and connection limits for every bind.
    pub limits: Limits,
    /// Passive ejection of endpoints whose connects keep failing.
    pub outlier: OutlierDetection,
    /// TCP/TLS-route connections with no bytes either way for this long are closed.
    pub l4_tcp_idle_timeout: Duration,
    /// UDP-route sessions with no datagram either way for this long end.
    pub l4_udp_idle_timeout: Duration,
    /// UDP-route sessions per bind; datagrams of new clients beyond it are dropped.
    pub l4_udp_max_sessions: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            drain_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            max_buffered_body: 64 * 1024,
            registry: None,
            limits: Limits::default(),
            outlier: OutlierDetection::default(),
            l4_tcp_idle_timeout: Duration::from_secs(3600),
            l4_udp_idle_timeout: Duration::from_secs(60),
            l4_udp_max_sessions: 16_384,
        }
    }
}

/// Per-bind outcome of an apply: binds that could not be opened are reported, never fatal.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// `(bind name, error)` for sockets that failed to bind.
    pub bind_errors: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

type BindKey = (IpAddr, u16, BindProtocol);

#[derive(Default)]
struct State {
    binds: HashMap<BindKey, RunningBind>,
    draining: Vec<JoinHandle<()>>,
    l4: l4::L4State,
}

pub struct Proxy {
    options: ProxyOptions,
    shared: Arc<handler::Shared>,
    kill: watch::Sender<bool>,
    pools: upstream::PoolRegistry,
    /// Serialises applies; holds the running binds.
    state: tokio::sync::Mutex<State>,
}

impl Proxy {
    pub fn new(options: ProxyOptions) -> Proxy {
        let metrics = Metrics::default();
        if let Some(reg) = &options.registry {
            metrics.register(&mut reg.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let (kill, kill_rx) = watch::channel(false);
        let shared = Arc::new(handler::Shared {
            metrics,
            max_buffered_body: options.max_buffered_body,
            kill: kill_rx,
            limits: options.limits,
            outlier: options.outlier,
        });
        Proxy {
            options,
            shared,
            kill,
            pools: upstream::PoolRegistry::default(),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The proxy's counters (also registered into `ProxyOptions::registry` when given).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Makes `config` live. On error the previous configuration keeps serving.
    pub async fn apply(&self, config: Arc<Config>) -> Result<ApplyReport, ApplyError> {
        config
            .validate()
            .map_err(|e| ApplyError::Invalid(e.to_string()))?;
        let mut state = self.state.lock().await;
        let (clusters, pools) = self
            .pools
            .clusters(&config.clusters, self.options.connect_timeout);
        let mut tables = Vec::with_capacity(config.binds.len());
        for b in &config.binds {
            let table = compile::compile_bind(b, &clusters)
                .map_err(|e| ApplyError::Invalid(e.to_string()))?;
            tables.push(((b.address, b.port, b.protocol), table));
        }
        let mut l4_tables = l4::compile(&config).map_err(|e| ApplyError::Invalid(e.to_string()))?;
        self.pools.commit(pools);
        let l4_opts = l4::L4Options {
            connect_timeout: self.options.connect_timeout,
            handshake_timeout: self.options.tls_handshake_timeout,
            tcp_idle: self.options.l4_tcp_idle_timeout,
            udp_idle: self.options.l4_udp_idle_timeout,
            udp_max_sessions: self.options.l4_udp_max_sessions,
        };
        let kill = self.kill.subscribe();
        // TLSRoutes on an HTTPS port ride on the HTTPS socket.
        let mut shared = l4::split_shared(&mut l4_tables, &config.binds);
        for (b, (_, table)) in config.binds.iter().zip(tables.iter_mut()) {
            if let Some(t) = shared.remove(&(b.address, b.port)) {
                let s = l4::SharedTls::new(t, b, l4_opts, kill.clone());
                table.l4_tls = Some(Arc::new(s));
            }
        }

        // Close removed sockets first so a protocol change on the same port can rebind.
        let wanted: Vec<BindKey> = tables.iter().map(|(k, _)| *k).collect();
        let removed: Vec<BindKey> = state
            .binds
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in removed {
            if let Some(running) = state.binds.remove(&key) {
                tracing::info!(address = %key.0, port = key.1, "removing bind");
                let done = running.stop(self.options.drain_timeout).await;
                state.draining.push(done);
            }
        }
        state.draining.retain(|h| !h.is_finished());
        let l4_wanted: Vec<l4::L4Key> = l4_tables.iter().map(|(k, _)| *k).collect();
        state
            .l4
            .remove_stale(&l4_wanted, self.options.drain_timeout)
            .await;

        let mut report = ApplyReport::default();
        state
            .l4
            .open(l4_tables, l4_opts, &kill, &mut report.bind_errors);
        let serve = ServeOptions {
            tls_handshake: self.options.tls_handshake_timeout,
            header_read: self.options.header_read_timeout,
            limits: self.options.limits,
        };
        for (key, table) in tables {
            if let Some(running) = state.binds.get(&key) {
                running.table.store(Arc::new(table));
                continue;
            }
            let name = table.name.clone();
            match listener::open(
                SocketAddr::new(key.0, key.1),
                table,
                self.shared.clone(),
                serve,
            ) {
                Ok(running) => {
                    tracing::info!(bind = %name, local = %running.local, "listening");
                    state.binds.insert(key, running);
                }
                Err(e) => {
                    tracing::warn!(bind = %name, error = %e, "bind failed");
                    report.bind_errors.push((name, e.to_string()));
                }
            }
        }
        Ok(report)
    }

    /// Addresses actually bound (useful with port 0), keyed by bind name.
    pub async fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        let state = self.state.lock().await;
        state
            .binds
            .values()
            .map(|b| (b.table.load().name.clone(), b.local))
            .chain(state.l4.local_addrs())
            .collect()
    }

    /// Stops accepting, lets in-flight requests finish up to `deadline`, then returns.
    pub async fn shutdown(&self, deadline: Duration) {
        let mut state = self.state.lock().await;
        let mut handles = std::mem::take(&mut state.draining);
        for (_, running) in state.binds.drain() {
            handles.push(running.stop(deadline).await);
        }
        handles.extend(state.l4.shutdown(deadline).await);
        let mut all = futures_util::future::join_all(handles);
        if tokio::time::timeout(deadline, &mut all).await.is_err() {
            // Binds removed earlier may have longer drains: end everything now.
            let _ = self.kill.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(1), all).await;
        }
        let _ = self.kill.send(true);
    }
}

/// Route lookup without sockets (benchmarks, tooling). Cluster references are not resolved.
#[doc(hidden)]
pub struct RouteMatcher {
    table: compile::BindTable,
}

impl RouteMatcher {
    pub fn new(bind: &trellis_ir::Bind) -> Result<RouteMatcher, String> {
        let table = compile::compile_bind(bind, &HashMap::new()).map_err(|e| e.to_string())?;
        Ok(RouteMatcher { table })
    }

    /// The name of the route `raw_host` + request would take, if any.
    pub fn find(
        &self,
        raw_host: &str,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Option<&str> {
        let host = routing::normalize_host(raw_host);
        match self.table.lookup(&host, None, method, uri, headers) {
            lookup::Lookup::Found { route, .. } => Some(&route.name),
            _ => None,
        }
    }
}
