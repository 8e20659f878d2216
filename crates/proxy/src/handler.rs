//! Per-request entry point: load the bind's table once, pick listener → virtual host → route,
//! run the route's filters and its action.

use crate::body::{self, ProxyBody};
use crate::compile::{ActionRt, BindTable, FilterRt, HeaderMod, RouteTable};
use crate::filters::{self, RedirectInput};
use crate::forward::{self, Outgoing};
use crate::lookup::Lookup;
use crate::metrics::Metrics;
use crate::routing::{normalize_host, replace_prefix};
use arc_swap::ArcSwap;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use rand::Rng;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use trellis_ir as ir;

/// Settings shared by all connections of a proxy.
pub(crate) struct Shared {
    pub metrics: Metrics,
    pub max_buffered_body: usize,
    /// Flipped to `true` on proxy shutdown: ends tunnels and mirror tasks.
    pub kill: watch::Receiver<bool>,
    pub limits: ir::Limits,
    pub outlier: crate::ejection::OutlierDetection,
}

/// What a connection knows; cloned (by `Arc`) into each request.
pub(crate) struct ConnCtx {
    pub table: Arc<ArcSwap<BindTable>>,
    pub peer: SocketAddr,
    /// `peer`'s IP as a header value, formatted once per connection for X-Forwarded-For.
    pub peer_ip: HeaderValue,
    pub sni: Option<String>,
    pub shared: Arc<Shared>,
    /// Flipped when this bind's drain deadline passes.
    pub bind_kill: watch::Receiver<bool>,
    /// Held by upgraded tunnels so a drain waits for them (up to its deadline).
    pub tunnels: tokio::sync::mpsc::Sender<()>,
    /// Requests seen on this connection, to match them with `head_log` (HTTP/1 is in order).
    pub requests: std::sync::atomic::AtomicU64,
    pub head_log: Arc<crate::sniff::HeadLog>,
}

pub(crate) async fn handle(
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let table = ctx.table.load_full();
    // Copies for the per-request log line only when it is enabled (perf: no clone per request).
    let logged =
        tracing::enabled!(tracing::Level::DEBUG).then(|| (req.method().clone(), req.uri().clone()));
    let grpc = crate::grpc::is_grpc(req.headers());
    let n = ctx
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let cl_and_te = ctx.head_log.had_cl_and_te(n);
    let resp = match crate::framing::check(&req, &ctx.shared.limits, cl_and_te) {
        Ok(()) => route(&ctx, &table, req).await,
        Err(status) => {
            tracing::debug!(bind = %table.name, peer = %ctx.peer, status = status.as_u16(), "request refused before routing");
            crate::framing::reject(status, req.version())
        }
    };
    ctx.shared.metrics.response(resp.status());
    if let Some((method, uri)) = logged {
        tracing::debug!(bind = %table.name, peer = %ctx.peer, %method, %uri, status = resp.status().as_u16(), "request");
    }
    Ok(crate::grpc::local_reply(grpc, resp))
}

/// The Host header (HTTP/1) or `:authority` (HTTP/2) as received. `Err` on a non-text Host.
fn raw_host(req: &Request<Incoming>) -> Result<String, ()> {
    let header = match req.headers().get(header::HOST) {
        Some(h) => Some(h.to_str().map_err(|_| ())?),
        None => None,
    };
    let authority = || req.uri().authority().map(|a| a.as_str());
    let host = if req.version() == Version::HTTP_2 {
        authority().or(header)
    } else {
        header.or_else(authority)
    };
    Ok(host.unwrap_or_default().to_owned())
}

async fn route(ctx: &ConnCtx, table: &BindTable, req: Request<Incoming>) -> Response<ProxyBody> {
    let Ok(raw) = raw_host(&req) else {
        return body::status(StatusCode::BAD_REQUEST);
    };
    let host = normalize_host(&raw);
    let sni = ctx.sni.as_deref().filter(|_| table.https);
    let (listener, r, matched) =
        match table.lookup(&host, sni, req.method(), req.uri(), req.headers()) {
            Lookup::Found {
                listener,
                route,
                matched,
            } => (listener, route, matched),
            Lookup::Misdirected => return body::status(StatusCode::MISDIRECTED_REQUEST),
            Lookup::NotFound => return body::status(StatusCode::NOT_FOUND),
        };
    tracing::trace!(listener = %listener.name, route = %r.name, "matched");
    dispatch(ctx, table, r, matched, raw, host, req).await
}

/// Request state as filters shape it.
pub(crate) struct Shaped<'a> {
    pub out: Outgoing,
    pub response_mods: Vec<&'a HeaderMod>,
    pub cors: Option<&'a ir::Cors>,
}

async fn dispatch(
    ctx: &ConnCtx,
    table: &BindTable,
    r: &RouteTable,
    matched: usize,
    raw_host: String,
    host: String,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let origin = origin.as_deref();
    let upgrade = forward::is_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
    let (parts, incoming) = req.into_parts();
    let scheme = if table.https { "https" } else { "http" };
    let mut out = Outgoing::new(parts, raw_host, incoming);

    let backend = match &r.action {
        ActionRt::Forward { backends, total } => match choose(backends, *total) {
            Some(b) => Some(b),
            None => return body::status(StatusCode::INTERNAL_SERVER_ERROR),
        },
        _ => None,
    };
    if let Some(b) = backend {
        out.forwarded_for(&ctx.peer_ip, scheme);
        let mirrors = r.filters.iter().chain(&b.filters);
        let wants_copy = r.retry.is_some()
            || mirrors
                .into_iter()
                .any(|f| matches!(f, FilterRt::Mirror { .. }));
        if wants_copy {
            if let Err(status) = out.buffer_body(ctx.shared.max_buffered_body).await {
                return body::status(status);
            }
        }
    }
    let mut s = Shaped {
        out,
        response_mods: vec![],
        cors: None,
    };
    if let Some(resp) = apply_filters(ctx, &r.filters, &mut s, matched, origin) {
        return resp;
    }
    let resp = match (&r.action, backend) {
        (ActionRt::Direct(status), _) => body::status(*status),
        (ActionRt::Redirect(rd), _) => {
            let input = RedirectInput {
                scheme,
                host: &host,
                bind_port: table.port,
                path: s.out.original_path(),
                query: s.out.original_query(),
                matched,
            };
            match HeaderValue::from_str(&filters::redirect_location(rd, &input)) {
                Ok(location) => {
                    let status = StatusCode::from_u16(rd.status_code).unwrap_or(StatusCode::FOUND);
                    let mut resp = body::status(status);
                    resp.headers_mut().insert(header::LOCATION, location);
                    resp
                }
                Err(_) => body::status(StatusCode::BAD_REQUEST),
            }
        }
        (ActionRt::Forward { .. }, Some(b)) => match b.cluster.clone() {
            None => body::status(StatusCode::INTERNAL_SERVER_ERROR),
            Some(cluster) => {
                if let Some(resp) = apply_filters(ctx, &b.filters, &mut s, matched, origin) {
                    return resp;
                }
                forward::forward(ctx, r, &cluster, &mut s.out, upgrade).await
            }
        },
        (ActionRt::Forward { .. }, None) => body::status(StatusCode::INTERNAL_SERVER_ERROR),
    };
    finish(resp, &s, origin)
}

/// Weighted random choice; `None` when nothing has weight.
fn choose(
    backends: &[crate::compile::BackendRt],
    total: u64,
) -> Option<&crate::compile::BackendRt> {
    if total == 0 {
        return None;
    }
    if let [only] = backends {
        return Some(only);
    }
    let mut n = rand::rng().random_range(0..total);
    for b in backends {
        let w = u64::from(b.weight);
        if n < w {
            return Some(b);
        }
        n -= w;
    }
    None
}

/// Runs request-side filters in order. Returns a response when a filter answers itself
/// (CORS preflight).
fn apply_filters<'a>(
    ctx: &ConnCtx,
    filters: &'a [FilterRt],
    s: &mut Shaped<'a>,
    matched: usize,
    origin: Option<&str>,
) -> Option<Response<ProxyBody>> {
    for f in filters {
        match f {
            FilterRt::RequestHeaders(m) => m.apply(&mut s.out.headers),
            FilterRt::ResponseHeaders(m) => s.response_mods.push(m),
            FilterRt::UrlRewrite(u) => {
                if let Some(h) = &u.hostname {
                    s.out.host = h.clone();
                }
                match &u.path {
                    None => {}
                    Some(ir::PathModifier::ReplaceFullPath(p)) => s.out.set_path(p.clone()),
                    Some(ir::PathModifier::ReplacePrefixMatch(p)) => {
                        let new = replace_prefix(s.out.original_path(), matched, p);
                        s.out.set_path(new);
                    }
                }
            }
            FilterRt::Mirror { cluster, fraction } => {
                if let Some(c) = cluster {
                    if rand::rng().random::<f64>() < *fraction {
                        forward::mirror(ctx, c.clone(), &s.out);
                    }
                }
            }
            FilterRt::Cors(c) => {
                s.cors = Some(c);
                let preflight = s.out.method == http::Method::OPTIONS
                    && s.out
                        .headers
                        .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
                if let (true, Some(origin)) = (preflight, origin) {
                    let method = s.out.headers.get(header::ACCESS_CONTROL_REQUEST_METHOD);
                    let method = method.and_then(|v| v.to_str().ok()).unwrap_or("");
                    let req_headers = s.out.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
                    let req_headers = req_headers.and_then(|v| v.to_str().ok());
                    let mut resp = body::status(StatusCode::NO_CONTENT);
                    if let Some(h) = filters::preflight_headers(c, origin, method, req_headers) {
                        resp.headers_mut().extend(h);
                    }
                    return Some(resp);
                }
            }
        }
    }
    None
}

/// Response-side work: header modifiers then CORS headers.
fn finish(
    mut resp: Response<ProxyBody>,
    s: &Shaped<'_>,
    origin: Option<&str>,
) -> Response<ProxyBody> {
    for m in &s.response_mods {
        m.apply(resp.headers_mut());
    }
    if let (Some(c), Some(o)) = (s.cors, origin) {
        filters::response_headers(c, o, resp.headers_mut());
    }
    resp
}

/// Never-firing default for optional durations.
pub(crate) fn ms(v: Option<u64>) -> Option<Duration> {
    v.filter(|&ms| ms > 0).map(Duration::from_millis)
}
