//! Upstream side: endpoints with their connections (upstream_http.rs), reused across
//! configurations, plus round-robin clusters and error classification.

use crate::upstream_http::Conns;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use trellis_ir::{Endpoint, UpstreamProtocol};

/// A connected upstream socket.
pub(crate) enum UpStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// TLS originated by the proxy (BackendTLSPolicy), over either of the above.
    Tls(Box<tokio_rustls::client::TlsStream<UpStream>>),
}

/// A cluster's TLS setup, or why it is unusable (then every connection fails).
type TlsArc = Arc<Result<crate::upstream_tls::TlsSetup, crate::upstream_tls::UpstreamTlsError>>;

impl AsyncRead for UpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            UpStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            UpStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            UpStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            UpStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            UpStream::Unix(s) => Pin::new(s).poll_flush(cx),
            UpStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            UpStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            UpStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Connects to one fixed endpoint, bounded by `timeout`.
pub(crate) struct EndpointConnector {
    target: Endpoint,
    timeout: Duration,
    tls: Option<TlsArc>,
}

impl EndpointConnector {
    pub(crate) async fn connect(&self) -> Result<TokioIo<UpStream>, UpstreamError> {
        match tokio::time::timeout(self.timeout, connect(&self.target, self.tls.as_deref())).await {
            Ok(Ok(s)) => Ok(TokioIo::new(s)),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "upstream connect failed");
                Err(UpstreamError::from_connect(&e))
            }
            Err(_) => Err(UpstreamError::ConnectTimeout),
        }
    }
}

async fn connect(
    target: &Endpoint,
    tls: Option<&Result<crate::upstream_tls::TlsSetup, crate::upstream_tls::UpstreamTlsError>>,
) -> io::Result<UpStream> {
    // An unusable TLS setting fails before dialling: nothing may be sent in clear text.
    let tls = match tls {
        Some(Err(e)) => return Err(io::Error::other(e.to_string())),
        Some(Ok(setup)) => Some(setup),
        None => None,
    };
    let tcp = |s: TcpStream| -> io::Result<UpStream> {
        s.set_nodelay(true)?;
        Ok(UpStream::Tcp(s))
    };
    let stream = match target {
        Endpoint::Socket(addr) => tcp(TcpStream::connect(addr).await?)?,
        Endpoint::Host { host, port } => tcp(TcpStream::connect((host.as_str(), *port)).await?)?,
        Endpoint::Unix(path) => UpStream::Unix(UnixStream::connect(path).await?),
    };
    match tls {
        None => Ok(stream),
        Some(setup) => {
            let s = setup
                .connector
                .connect(setup.server_name.clone(), stream)
                .await?;
            Ok(UpStream::Tls(Box::new(s)))
        }
    }
}

/// An endpoint with its pool.
pub(crate) struct EndpointRt {
    pub(crate) conns: Arc<Conns>,
    /// Formatted and parsed once: it is used by every request (perf).
    authority: String,
    parsed_authority: Option<http::uri::Authority>,
    /// Consecutive connect failures and ejection (ejection.rs).
    pub(crate) health: crate::ejection::Health,
}

impl EndpointRt {
    /// Authority used in upstream URIs when the request has no usable host.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// [`Self::authority`] as a URI authority (a cheap clone per request).
    pub(crate) fn parsed_authority(&self) -> Option<&http::uri::Authority> {
        self.parsed_authority.as_ref()
    }
}

fn authority_of(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Socket(a) => a.to_string(),
        Endpoint::Host { host, port } => format!("{host}:{port}"),
        Endpoint::Unix(_) => "localhost".to_string(),
    }
}

pub(crate) struct ClusterRt {
    pub name: String,
    pub protocol: UpstreamProtocol,
    pub endpoints: Vec<Arc<EndpointRt>>,
    next: AtomicUsize,
}

impl ClusterRt {
    /// Round-robin over endpoints that are not ejected; over all of them when every one is.
    pub(crate) fn pick(&self) -> Option<&Arc<EndpointRt>> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| &self.endpoints[start.wrapping_add(k) % n])
            .find(|e| !e.health.is_ejected())
            .or_else(|| self.endpoints.get(start % n))
    }
}

/// Pools outlive configurations so keep-alive connections survive an apply.
#[derive(Default)]
pub(crate) struct PoolRegistry {
    pools: Arc<Mutex<HashMap<String, Arc<EndpointRt>>>>,
    sweeper: std::sync::OnceLock<()>,
}

impl PoolRegistry {
    /// Builds cluster runtimes for `clusters`, reusing pools. Pass the second value to
    /// [`PoolRegistry::commit`] once the configuration is accepted.
    pub(crate) fn clusters(
        &self,
        clusters: &[trellis_ir::Cluster],
        connect_timeout: Duration,
    ) -> (HashMap<String, Arc<ClusterRt>>, PoolSet) {
        self.start_sweeper();
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let mut used = HashMap::new();
        let mut out = HashMap::new();
        for c in clusters {
            let tls = c.tls.as_ref().map(|t| {
                let setup = crate::upstream_tls::setup(t, c.protocol);
                if let Err(e) = &setup {
                    tracing::warn!(cluster = %c.name, error = %e, "upstream TLS unusable; connections will fail");
                }
                Arc::new(setup)
            });
            let tls_key = c.tls.as_ref().map(crate::upstream_tls::fingerprint);
            let endpoints = c
                .endpoints
                .iter()
                .map(|e| {
                    // IR types are not Hash; their Debug form is a faithful key. TLS settings
                    // are keyed by fingerprint (their Debug form hides key material).
                    let key = format!("{:?}|{:?}|{:?}", c.protocol, e, tls_key);
                    let rt = used
                        .get(&key)
                        .or_else(|| pools.get(&key))
                        .cloned()
                        .unwrap_or_else(|| {
                            Arc::new(new_endpoint(e, c.protocol, connect_timeout, tls.clone()))
                        });
                    used.insert(key, rt.clone());
                    rt
                })
                .collect();
            let rt = ClusterRt {
                name: c.name.clone(),
                protocol: c.protocol,
                endpoints,
                next: AtomicUsize::new(0),
            };
            out.insert(c.name.clone(), Arc::new(rt));
        }
        (out, PoolSet(used))
    }

    /// Closes idle connections past their timeout even on endpoints without traffic (the pool
    /// itself only looks when a request comes). Stops with the registry.
    fn start_sweeper(&self) {
        self.sweeper.get_or_init(|| {
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let pools: Weak<_> = Arc::downgrade(&self.pools);
            rt.spawn(async move {
                let mut tick = tokio::time::interval(crate::upstream_http::IDLE_TIMEOUT / 4);
                loop {
                    tick.tick().await;
                    let Some(pools) = pools.upgrade() else { return };
                    let endpoints: Vec<_> = {
                        let map = pools.lock().unwrap_or_else(|e| e.into_inner());
                        map.values().cloned().collect()
                    };
                    for e in endpoints {
                        e.conns.sweep();
                    }
                }
            });
        });
    }

    /// Keeps exactly the pools of the accepted configuration.
    pub(crate) fn commit(&self, set: PoolSet) {
        *self.pools.lock().unwrap_or_else(|e| e.into_inner()) = set.0;
    }
}

pub(crate) struct PoolSet(HashMap<String, Arc<EndpointRt>>);

fn new_endpoint(
    e: &Endpoint,
    protocol: UpstreamProtocol,
    timeout: Duration,
    tls: Option<TlsArc>,
) -> EndpointRt {
    let connector = EndpointConnector {
        target: e.clone(),
        timeout,
        tls,
    };
    EndpointRt {
        conns: Arc::new(Conns::new(connector, protocol == UpstreamProtocol::H2c)),
        parsed_authority: authority_of(e).parse().ok(),
        authority: authority_of(e),
        health: Default::default(),
    }
}

/// Why an upstream attempt failed, for status codes, retries, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamError {
    ConnectRefused,
    ConnectTimeout,
    ConnectOther,
    /// Reset / closed / protocol error after connecting.
    Io,
    /// The per-attempt (backend request) timeout fired.
    Timeout,
}

impl UpstreamError {
    pub(crate) fn from_connect(e: &io::Error) -> UpstreamError {
        match e.kind() {
            io::ErrorKind::TimedOut => UpstreamError::ConnectTimeout,
            io::ErrorKind::ConnectionRefused => UpstreamError::ConnectRefused,
            _ => UpstreamError::ConnectOther,
        }
    }

    pub(crate) fn status(self) -> http::StatusCode {
        match self {
            UpstreamError::ConnectRefused | UpstreamError::ConnectOther => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
            UpstreamError::ConnectTimeout | UpstreamError::Timeout => {
                http::StatusCode::GATEWAY_TIMEOUT
            }
            UpstreamError::Io => http::StatusCode::BAD_GATEWAY,
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            UpstreamError::ConnectRefused => "connect_refused",
            UpstreamError::ConnectTimeout => "connect_timeout",
            UpstreamError::ConnectOther => "connect_error",
            UpstreamError::Io => "reset",
            UpstreamError::Timeout => "timeout",
        }
    }
}
