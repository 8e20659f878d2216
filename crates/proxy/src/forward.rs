//! Sending a shaped request upstream: per-attempt and whole-request timeouts, retries with a
//! replayable body, fire-and-forget mirrors and WebSocket splicing.

use crate::body::{self, ProxyBody};
use crate::compile::RouteTable;
use crate::filters::strip_hop_by_hop;
use crate::handler::{ms, ConnCtx};
use crate::upstream::{ClusterRt, EndpointRt, UpstreamError};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use trellis_ir::UpstreamProtocol;

/// How long a mirror request may live.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(30);

enum ReqBody {
    Empty,
    Buffered(Bytes),
    Stream(Incoming),
    Taken,
}

// Constant names: a `&str` key is parsed again on every use (perf).
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The request as it will be sent upstream.
pub(crate) struct Outgoing {
    pub method: Method,
    pub headers: HeaderMap,
    /// Host (HTTP/1) / `:authority` (h2c) sent upstream; empty when the client sent none.
    pub host: String,
    uri: Uri,
    new_path: Option<String>,
    body: ReqBody,
}

impl Outgoing {
    pub(crate) fn new(parts: Parts, host: String, body: Incoming) -> Outgoing {
        let body = if body.is_end_stream() {
            ReqBody::Empty
        } else {
            ReqBody::Stream(body)
        };
        Outgoing {
            method: parts.method,
            headers: parts.headers,
            host,
            uri: parts.uri,
            new_path: None,
            body,
        }
    }

    pub(crate) fn original_path(&self) -> &str {
        self.uri.path()
    }

    pub(crate) fn original_query(&self) -> Option<&str> {
        self.uri.query()
    }

    pub(crate) fn set_path(&mut self, path: String) {
        self.new_path = Some(path);
    }

    /// The original request-target bytes unless a rewrite changed the path.
    fn path_and_query(&self) -> Result<PathAndQuery, StatusCode> {
        match (&self.new_path, self.uri.path_and_query()) {
            (None, Some(pq)) => Ok(pq.clone()),
            (None, None) => Ok(PathAndQuery::from_static("/")),
            (Some(p), _) => {
                let pq = match self.uri.query() {
                    Some(q) => format!("{p}?{q}"),
                    None => p.clone(),
                };
                PathAndQuery::try_from(pq).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// `peer_ip` is the client IP, already a header value (see `ConnCtx::peer_ip`).
    pub(crate) fn forwarded_for(&mut self, peer_ip: &HeaderValue, scheme: &'static str) {
        // Room for both at once (a head's map is sized to what it arrived with); one lookup
        // for X-Forwarded-For.
        self.headers.reserve(2);
        match self.headers.entry(X_FORWARDED_FOR) {
            header::Entry::Occupied(mut e) => {
                let joined = match (e.get().to_str(), peer_ip.to_str()) {
                    (Ok(prev), Ok(ip)) => HeaderValue::from_str(&format!("{prev}, {ip}")).ok(),
                    _ => Some(peer_ip.clone()),
                };
                if let Some(v) = joined {
                    e.insert(v);
                }
            }
            header::Entry::Vacant(e) => {
                e.insert(peer_ip.clone());
            }
        }
        self.headers
            .insert(X_FORWARDED_PROTO, HeaderValue::from_static(scheme));
    }

    /// Buffers a small body so it can be replayed (retries, mirrors). Large or unknown-length
    /// bodies stay streamed.
    pub(crate) async fn buffer_body(&mut self, max: usize) -> Result<(), StatusCode> {
        let ReqBody::Stream(b) = std::mem::replace(&mut self.body, ReqBody::Taken) else {
            self.body = ReqBody::Empty;
            return Ok(());
        };
        match b.size_hint().upper() {
            Some(n) if n <= max as u64 => match Limited::new(b, max).collect().await {
                Ok(c) => self.body = ReqBody::Buffered(c.to_bytes()),
                Err(_) => return Err(StatusCode::BAD_REQUEST),
            },
            _ => self.body = ReqBody::Stream(b),
        }
        Ok(())
    }

    fn replayable(&self) -> bool {
        matches!(self.body, ReqBody::Empty | ReqBody::Buffered(_))
    }

    fn copy_body(&self) -> Option<ProxyBody> {
        match &self.body {
            ReqBody::Empty => Some(body::empty()),
            ReqBody::Buffered(b) => Some(body::full(b.clone())),
            ReqBody::Stream(_) | ReqBody::Taken => None,
        }
    }

    /// The body for one attempt: a copy when replayable, the stream (once) otherwise.
    fn take_body(&mut self) -> ProxyBody {
        match std::mem::replace(&mut self.body, ReqBody::Taken) {
            ReqBody::Stream(b) => body::incoming(b),
            other => {
                self.body = other;
                self.copy_body().unwrap_or_else(body::empty)
            }
        }
    }

    /// The headers for one attempt: moved out when no attempt can follow (mirrors have taken
    /// their copies before), cloned otherwise.
    fn headers_for(&mut self, last: bool) -> HeaderMap {
        if last {
            std::mem::take(&mut self.headers)
        } else {
            self.headers.clone()
        }
    }

    /// The upstream request for one attempt, with `headers` from [`Self::headers_for`].
    fn build(
        &self,
        ep: &EndpointRt,
        protocol: UpstreamProtocol,
        (upgrade, mut headers): (bool, HeaderMap),
        body: ProxyBody,
    ) -> Result<Request<ProxyBody>, StatusCode> {
        let pq = self.path_and_query()?;
        let h2 = protocol == UpstreamProtocol::H2c;
        // HTTP/2 has no Connection-based upgrade.
        strip_hop_by_hop(&mut headers, upgrade && !h2);
        let authority = if h2 && !self.host.is_empty() {
            self.host.as_str()
        } else {
            ep.authority()
        };
        // HTTP/1 sends the origin form; HTTP/2 needs scheme and authority for its pseudo-headers.
        let uri = if h2 {
            let parsed = match ep.parsed_authority() {
                Some(a) if authority == ep.authority() => a.clone(),
                _ => authority.parse().map_err(|_| StatusCode::BAD_REQUEST)?,
            };
            Uri::builder()
                .scheme(http::uri::Scheme::HTTP)
                .authority(parsed)
                .path_and_query(pq)
                .build()
                .map_err(|_| StatusCode::BAD_REQUEST)?
        } else {
            Uri::from(pq)
        };
        if h2 {
            headers.remove(header::HOST);
        } else {
            // HTTP/1.1 requires a Host: the endpoint stands in when the client sent none.
            let host = if self.host.is_empty() {
                authority
            } else {
                &self.host
            };
            // Usually the client's own Host header is already the right one.
            if headers.get(header::HOST).map(HeaderValue::as_bytes) != Some(host.as_bytes()) {
                let v = HeaderValue::from_str(host).map_err(|_| StatusCode::BAD_REQUEST)?;
                headers.insert(header::HOST, v);
            }
        }
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = if h2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        *req.headers_mut() = headers;
        Ok(req)
    }
}

/// HTTP/1.1 `Connection: upgrade` with an `Upgrade` header.
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req.headers().get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

pub(crate) async fn forward(
    ctx: &ConnCtx,
    r: &RouteTable,
    cluster: &Arc<ClusterRt>,
    out: &mut Outgoing,
    upgrade: Option<OnUpgrade>,
) -> Response<ProxyBody> {
    let deadline = ms(r.timeouts.request_ms).map(|d| Instant::now() + d);
    let attempts = attempts(ctx, r, cluster, out, deadline, upgrade);
    match deadline {
        None => attempts.await,
        Some(d) => match tokio::time::timeout_at(d, attempts).await {
            Ok(resp) => resp,
            Err(_) => {
                tracing::warn!(side = "upstream", kind = "request_timeout", cluster = %cluster.name, route = %r.name, "request timed out");
                ctx.shared
                    .metrics
                    .upstream_error(&cluster.name, "request_timeout");
                body::status(StatusCode::GATEWAY_TIMEOUT)
            }
        },
    }
}

async fn attempts(
    ctx: &ConnCtx,
    r: &RouteTable,
    cluster: &Arc<ClusterRt>,
    out: &mut Outgoing,
    deadline: Option<Instant>,
    upgrade: Option<OnUpgrade>,
) -> Response<ProxyBody> {
    let retry = r
        .retry
        .as_ref()
        .filter(|_| upgrade.is_none() && out.replayable());
    let tries = 1 + retry.map_or(0, |r| r.attempts);
    let backoff = retry
        .and_then(|r| ms(r.backoff_ms))
        .unwrap_or(Duration::ZERO);
    let per_try = ms(r.timeouts.backend_request_ms);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(ep) = cluster.pick() else {
            return body::status(StatusCode::SERVICE_UNAVAILABLE);
        };
        let b = out.take_body();
        let headers = out.headers_for(attempt >= tries);
        let req = match out.build(ep, cluster.protocol, (upgrade.is_some(), headers), b) {
            Ok(req) => req,
            Err(status) => return body::status(status),
        };
        let sent = ep.conns.send(req, upgrade.is_some());
        let result = match per_try {
            None => sent.await,
            Some(t) => match tokio::time::timeout(t, sent).await {
                Ok(r) => r,
                Err(_) => Err(UpstreamError::Timeout),
            },
        };
        let outcome = result.as_ref().map(|_| ()).map_err(|e| *e);
        if crate::ejection::report(cluster, ep, outcome, &ctx.shared.outlier).is_some() {
            ctx.shared.metrics.ejection(&cluster.name);
        }
        let more = retry.is_some()
            && attempt < tries
            && deadline.is_none_or(|d| Instant::now() + backoff < d);
        let codes: &[u16] = retry.map_or(&[], |r| &r.codes);
        match result {
            Ok(resp) => {
                if !(more && codes.contains(&resp.status().as_u16())) {
                    return response(ctx, resp, upgrade);
                }
            }
            Err(e) => {
                tracing::warn!(side = "upstream", kind = e.kind(), cluster = %cluster.name, route = %r.name, attempt, "upstream attempt failed");
                ctx.shared.metrics.upstream_error(&cluster.name, e.kind());
                let retriable = e != UpstreamError::Timeout || codes.contains(&504);
                if !(more && retriable) {
                    return body::status(e.status());
                }
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

fn response(
    ctx: &ConnCtx,
    mut resp: Response<ProxyBody>,
    upgrade: Option<OnUpgrade>,
) -> Response<ProxyBody> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client) = upgrade else {
            return body::status(StatusCode::BAD_GATEWAY);
        };
        let upstream = hyper::upgrade::on(&mut resp);
        let kills = (ctx.shared.kill.clone(), ctx.bind_kill.clone());
        tokio::spawn(splice(client, upstream, kills, ctx.tunnels.clone()));
        let (parts, _) = resp.into_parts();
        return Response::from_parts(parts, body::empty());
    }
    strip_hop_by_hop(resp.headers_mut(), false);
    resp
}

async fn splice(
    client: OnUpgrade,
    upstream: OnUpgrade,
    (mut kill, mut bind_kill): (watch::Receiver<bool>, watch::Receiver<bool>),
    _drain_guard: tokio::sync::mpsc::Sender<()>,
) {
    let (c, u) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut c, &mut u) => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "tunnel closed with error");
            }
        }
        _ = kill.wait_for(|k| *k) => {}
        _ = bind_kill.wait_for(|k| *k) => {}
    }
}

/// Sends a copy of `out` to `cluster` in the background; the response is drained and ignored.
pub(crate) fn mirror(ctx: &ConnCtx, cluster: Arc<ClusterRt>, out: &Outgoing) {
    let Some(body) = out.copy_body() else {
        tracing::debug!(cluster = %cluster.name, "streamed body: not mirrored");
        return;
    };
    let Some(ep) = cluster.pick().cloned() else {
        return;
    };
    let Ok(req) = out.build(&ep, cluster.protocol, (false, out.headers.clone()), body) else {
        return;
    };
    let mut kill = ctx.shared.kill.clone();
    tokio::spawn(async move {
        let send = async {
            match ep.conns.send(req, false).await {
                Ok(resp) => {
                    let _ = resp.into_body().collect().await;
                }
                Err(e) => {
                    let kind = e.kind();
                    tracing::debug!(side = "mirror", kind, cluster = %cluster.name, "mirror failed");
                }
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(MIRROR_TIMEOUT, send) => {}
            _ = kill.wait_for(|k| *k) => {}
        }
    });
}
