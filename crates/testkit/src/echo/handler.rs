//! Request handling: routing (`/health`, `/status/NNN`, `/retry/…`, `/ws`, everything else
//! echoes) and the echo JSON body.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::Full;
use serde::Serialize;

use super::conn::ConnCtx;
use super::retry::{self, RetryOutcome};
use super::tls::TlsInfo;
use super::{duration, query, ws, EchoMode};

/// Returned by the service to make hyper drop the request; the connection task then resets
/// the TCP connection.
#[derive(Debug, thiserror::Error)]
#[error("connection reset requested by /retry")]
pub(crate) struct ResetRequested;

type EchoResponse = Response<Full<Bytes>>;

pub(crate) async fn handle<B>(
    req: Request<B>,
    ctx: Arc<ConnCtx>,
) -> Result<EchoResponse, ResetRequested>
where
    B: hyper::body::Body + Send + 'static,
{
    let shared = &ctx.shared;
    let uri = request_uri(&req);
    shared.record(&uri);
    tracing::info!(port = shared.local_port, "Echoing back request made to {uri} to client");

    if shared.options.mode == EchoMode::H2cOnly && req.version() != Version::HTTP_2 {
        return Ok(plain(StatusCode::BAD_REQUEST, "only HTTP/2 with prior knowledge is served here"));
    }
    let path = req.uri().path();
    if path == "/health" {
        return Ok(plain(StatusCode::OK, "OK"));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return Ok(match code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok()) {
            Some(status) => plain(status, ""),
            None => plain(StatusCode::BAD_REQUEST, "invalid status code"),
        });
    }
    if path == "/ws" && shared.options.mode == EchoMode::Http && ws::is_upgrade(&req) {
        return Ok(ws::accept(req, ctx.shared.clone()));
    }
    if path.starts_with("/retry/") {
        match retry::decide(&shared.retries, req.uri().query()) {
            RetryOutcome::Echo => {}
            RetryOutcome::BadRequest(message) => return Ok(plain(StatusCode::BAD_REQUEST, &message)),
            RetryOutcome::Fail { delay, status } => {
                sleep_unless_stopped(&ctx, delay).await;
                if let Some(status) = status {
                    return Ok(plain(status, ""));
                }
                ctx.reset_requested.store(true, Ordering::SeqCst);
                ctx.reset.notify_one();
                return Err(ResetRequested);
            }
        }
    }
    Ok(echo(&req, &ctx, uri).await)
}

async fn echo<B>(req: &Request<B>, ctx: &ConnCtx, uri: String) -> EchoResponse {
    if let Some(delay) = query::get(req.uri().query(), "delay").filter(|d| !d.is_empty()) {
        match duration::parse_go_duration(&delay) {
            Ok(delay) => sleep_unless_stopped(ctx, delay).await,
            Err(err) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
        }
    }
    let options = &ctx.shared.options;
    let body = EchoBody {
        path: uri,
        host: request_host(req),
        method: req.method().as_str().to_string(),
        proto: proto(req.version()).to_string(),
        headers: super::headers::to_json_map(req.headers()),
        namespace: options.namespace.clone(),
        pod: options.pod.clone(),
        http_port: ctx.shared.local_port.to_string(),
        tls: ctx.tls.as_ref(),
    };
    let json = match serde_json::to_vec(&body) {
        Ok(json) => json,
        Err(err) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(json)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    for (name, value) in super::headers::echo_set_headers(req.headers()) {
        headers.insert(name, value);
    }
    response
}

/// The echo JSON, field names as in upstream's Go echo.
#[derive(Serialize)]
struct EchoBody<'a> {
    path: String,
    host: String,
    method: String,
    proto: String,
    headers: BTreeMap<String, Vec<String>>,
    namespace: String,
    pod: String,
    #[serde(rename = "httpPort")]
    http_port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a TlsInfo>,
}

/// The request-URI as received: origin form (`/path?query`) for HTTP/1.1, `:path` for HTTP/2,
/// the whole URI for HTTP/1.1 absolute form and `*`.
fn request_uri<B>(req: &Request<B>) -> String {
    let uri = req.uri();
    if req.version() != Version::HTTP_2 && uri.scheme().is_some() {
        return uri.to_string();
    }
    match uri.path_and_query() {
        Some(pq) => pq.as_str().to_string(),
        None => uri.to_string(),
    }
}

/// HTTP/2: `:authority`, else Host. HTTP/1.x: the absolute-form authority, else Host.
fn request_host<B>(req: &Request<B>) -> String {
    let host_header = req
        .headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    let authority = req.uri().authority().map(|a| a.as_str().to_string());
    let host = if req.version() == Version::HTTP_2 || req.uri().scheme().is_some() {
        authority.or(host_header)
    } else {
        host_header.or(authority)
    };
    host.unwrap_or_default()
}

fn proto(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

async fn sleep_unless_stopped(ctx: &ConnCtx, delay: Duration) {
    if delay.is_zero() {
        return;
    }
    let mut stop = ctx.shared.shutdown.clone();
    tokio::select! {
        () = super::wait_stopped(&mut stop) => {}
        () = tokio::time::sleep(delay) => {}
    }
}

pub(crate) fn plain(status: StatusCode, text: &str) -> EchoResponse {
    let mut response = Response::new(Full::new(Bytes::from(text.to_string())));
    *response.status_mut() = status;
    if !text.is_empty() {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    response
}
