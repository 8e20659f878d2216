//! Request handling: routing (`/health`, `/status/NNN`, `/retry/…`, `/ws`, everything else
//! echoes) and the echo JSON body.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Serialize;

use super::conn::ConnCtx;
use super::retry::{self, RetryOutcome};
use super::tls::TlsInfo;
use super::{duration, query, ws, EchoMode};

/// Returned by the service to make hyper drop the request without answering it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Abort {
    /// `/retry` without `responseCode`: the connection task then resets the TCP connection.
    #[error("connection reset requested by /retry")]
    Reset,
    /// The server shut down while the request was waiting (`delay`, `delayRetry`).
    #[error("echo server shutting down")]
    ShuttingDown,
}

type EchoResponse = Response<Full<Bytes>>;

pub(crate) async fn handle(
    req: Request<Incoming>,
    ctx: Arc<ConnCtx>,
) -> Result<EchoResponse, Abort> {
    let shared = &ctx.shared;
    let uri = request_uri(req.uri(), req.version());
    shared.record(&uri);
    tracing::info!(
        port = shared.local_port,
        "Echoing back request made to {uri} to client"
    );
    if req.uri().path() == "/ws" && shared.options.mode == EchoMode::Http && ws::is_upgrade(&req) {
        return Ok(ws::accept(req, ctx.shared.clone()));
    }
    let (req, body) = req.into_parts();
    drain(body).await;

    if shared.options.mode == EchoMode::H2cOnly && req.version != Version::HTTP_2 {
        return Ok(plain(
            StatusCode::BAD_REQUEST,
            "only HTTP/2 with prior knowledge is served here",
        ));
    }
    let path = req.uri.path();
    if path == "/health" {
        return Ok(plain(StatusCode::OK, "OK"));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        return Ok(match final_status(code) {
            Some(status) => plain(status, ""),
            None => plain(StatusCode::BAD_REQUEST, "invalid status code"),
        });
    }
    if path.starts_with("/retry/") {
        match retry::decide(&shared.retries, req.uri.query()) {
            RetryOutcome::Echo => {}
            RetryOutcome::BadRequest(message) => {
                return Ok(plain(StatusCode::BAD_REQUEST, &message))
            }
            RetryOutcome::Fail { delay, status } => {
                sleep_unless_stopped(&ctx, delay).await?;
                if let Some(status) = status {
                    return Ok(plain(status, ""));
                }
                ctx.reset_requested.store(true, Ordering::SeqCst);
                ctx.reset.notify_one();
                return Err(Abort::Reset);
            }
        }
    }
    echo(&req, &ctx, uri).await
}

async fn echo(req: &Parts, ctx: &ConnCtx, uri: String) -> Result<EchoResponse, Abort> {
    if let Some(delay) = query::get(req.uri.query(), "delay").filter(|d| !d.is_empty()) {
        match duration::parse_go_duration(&delay) {
            Ok(delay) => sleep_unless_stopped(ctx, delay).await?,
            Err(err) => return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())),
        }
    }
    let options = &ctx.shared.options;
    let body = EchoBody {
        path: uri,
        host: request_host(req),
        method: req.method.as_str().to_string(),
        proto: proto(req.version).to_string(),
        headers: super::headers::to_json_map(&req.headers),
        namespace: options.namespace.clone(),
        pod: options.pod.clone(),
        http_port: ctx.shared.local_port.to_string(),
        tls: ctx.tls.as_ref(),
    };
    let json = match serde_json::to_vec(&body) {
        Ok(json) => json,
        Err(err) => return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())),
    };
    let mut response = Response::new(Full::new(Bytes::from(json)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    for (name, value) in super::headers::echo_set_headers(&req.headers) {
        headers.insert(name, value);
    }
    Ok(response)
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
fn request_uri(uri: &Uri, version: Version) -> String {
    if version != Version::HTTP_2 && uri.scheme().is_some() {
        return uri.to_string();
    }
    match uri.path_and_query() {
        Some(pq) => pq.as_str().to_string(),
        None => uri.to_string(),
    }
}

/// HTTP/2: `:authority`, else Host. HTTP/1.x: the absolute-form authority, else Host.
fn request_host(req: &Parts) -> String {
    let host_header = req
        .headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    let authority = req.uri.authority().map(|a| a.as_str().to_string());
    let host = if req.version == Version::HTTP_2 || req.uri.scheme().is_some() {
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

/// Reads (and drops) up to 1 MiB of request body, so an unread body does not turn the close of
/// the connection into a reset; bounded in time for clients that stall.
async fn drain(body: Incoming) {
    let limited = http_body_util::Limited::new(body, 1 << 20);
    let _ = tokio::time::timeout(Duration::from_secs(10), limited.collect()).await;
}

/// Sleeps `delay`; a shutdown meanwhile aborts the request instead of answering it.
async fn sleep_unless_stopped(ctx: &ConnCtx, delay: Duration) -> Result<(), Abort> {
    if delay.is_zero() {
        return Ok(());
    }
    let mut stop = ctx.shared.shutdown.clone();
    tokio::select! {
        () = super::wait_stopped(&mut stop) => Err(Abort::ShuttingDown),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}

/// A status a final response can carry (200–599; hyper cannot send 1xx as the answer).
pub(crate) fn final_status(code: &str) -> Option<StatusCode> {
    let code: u16 = code.parse().ok()?;
    if !(200..=599).contains(&code) {
        return None;
    }
    StatusCode::from_u16(code).ok()
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
