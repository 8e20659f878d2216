//! A minimal unary gRPC client over h2c (hyper's HTTP/2 client), for `grpc` cases: it sends
//! an empty `EchoRequest` with the case's `:authority` and metadata and reports the status the
//! way grpc-go's client would (HTTP status mapping, Trailers-Only, missing trailers).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::full_method;
use super::proto::{EchoRequest, EchoResponse};
use super::wire::{decode_message, frame, is_grpc_content_type, unframe, GrpcCode};

/// Largest response body read (grpc-go's default receive limit).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// One unary call: which method, with which `:authority` and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// `/<service>/<method>`, e.g. [`full_method`]`("Echo")`.
    pub full_method: String,
    /// `:authority`; `None` = the dial target `<ip>:<port>` (grpc-go's default).
    pub authority: Option<String>,
    /// Outgoing metadata; keys are lowercased, as grpc-go's `metadata.New` does.
    pub metadata: Vec<(String, String)>,
}

impl GrpcCall {
    /// A call of `GrpcEcho/<method>` (`"Echo"`, `"EchoTwo"`, `"EchoThree"`).
    pub fn echo(method: &str) -> Self {
        GrpcCall {
            full_method: full_method(method),
            authority: None,
            metadata: Vec::new(),
        }
    }

    pub fn with_authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }
}

/// The outcome of a call that reached a server (any status, as grpc-go reports it).
#[derive(Debug, Clone)]
pub struct GrpcReply {
    pub code: GrpcCode,
    /// `grpc-message` (percent-decoded) or a description of why the code was derived.
    pub message: String,
    /// The decoded response, on [`GrpcCode::OK`] only.
    pub response: Option<EchoResponse>,
    pub http_status: u16,
    pub headers: HeaderMap,
    pub trailers: HeaderMap,
}

/// What a `grpc` case expects (`response` of the case).
#[derive(Debug, Clone, Copy)]
pub struct GrpcExpectation<'a> {
    pub code: GrpcCode,
    /// Checked on OK only: the echoed `fully_qualified_method` must equal it.
    pub full_method: &'a str,
    /// Checked on OK when non-empty: the echoed `context.namespace`.
    pub namespace: &'a str,
    /// Checked on OK: the echoed `context.pod` must start with it (`""` accepts any).
    pub backend: &'a str,
}

impl GrpcReply {
    /// Upstream's `compareResponse`; the error says what differs.
    pub fn check(&self, expected: &GrpcExpectation<'_>) -> Result<(), String> {
        if self.code != expected.code {
            return Err(format!(
                "status {} ({}), want {}",
                self.code, self.message, expected.code
            ));
        }
        if self.code != GrpcCode::OK {
            return Ok(());
        }
        let Some(response) = &self.response else {
            return Err("OK without a decoded response".to_string());
        };
        if response.fully_qualified_method() != expected.full_method {
            return Err(format!(
                "method {:?}, want {:?}",
                response.fully_qualified_method(),
                expected.full_method
            ));
        }
        if !expected.namespace.is_empty() && response.namespace() != expected.namespace {
            return Err(format!(
                "namespace {:?}, want {:?}",
                response.namespace(),
                expected.namespace
            ));
        }
        if !response.pod().starts_with(expected.backend) {
            return Err(format!(
                "pod {:?} does not start with {:?}",
                response.pod(),
                expected.backend
            ));
        }
        Ok(())
    }
}

/// A call that did not get a status from a server.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("invalid call: {0}")]
    InvalidCall(String),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP/2 handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: hyper::Error,
    },
    #[error("HTTP/2 request failed: {0}")]
    Request(hyper::Error),
    #[error("reading the response body: {0}")]
    Body(String),
    #[error("deadline exceeded")]
    Timeout,
}

impl GrpcError {
    /// The status grpc-go's client would report for this failure: Unavailable when no
    /// connection could be made, DeadlineExceeded on timeout, Internal for a broken stream.
    pub fn code(&self) -> GrpcCode {
        match self {
            GrpcError::InvalidCall(_) => GrpcCode::INTERNAL,
            GrpcError::Connect { .. } | GrpcError::Handshake { .. } => GrpcCode::UNAVAILABLE,
            GrpcError::Request(err) if err.is_closed() => GrpcCode::UNAVAILABLE,
            GrpcError::Request(_) | GrpcError::Body(_) => GrpcCode::INTERNAL,
            GrpcError::Timeout => GrpcCode::DEADLINE_EXCEEDED,
        }
    }
}

/// An h2c connection to one address; calls may run concurrently (clone it freely).
#[derive(Debug, Clone)]
pub struct GrpcClient {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl GrpcClient {
    /// Dials `addr` and does the HTTP/2 (prior knowledge) handshake within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, GrpcError> {
        let dial = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|source| GrpcError::Connect { addr, source })?;
            let _ = tcp.set_nodelay(true);
            GrpcClient::over(tcp, addr).await
        };
        tokio::time::timeout(timeout, dial)
            .await
            .map_err(|_| GrpcError::Timeout)?
    }

    /// The HTTP/2 handshake over an established stream (e.g. TLS with ALPN `h2`); `target`
    /// is the dial target, the default `:authority`.
    pub async fn over<I>(io: I, target: SocketAddr) -> Result<Self, GrpcError>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .map_err(|source| GrpcError::Handshake {
                    addr: target,
                    source,
                })?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "grpc client: connection ended with error");
            }
        });
        Ok(GrpcClient {
            addr: target,
            sender,
        })
    }

    /// True once the connection is gone; make a new client then.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// One unary call with an empty `EchoRequest`, answered within `timeout`.
    pub async fn call(&self, call: &GrpcCall, timeout: Duration) -> Result<GrpcReply, GrpcError> {
        let request = build_request(self.addr, call, timeout)?;
        let mut sender = self.sender.clone();
        let exchange = async {
            sender.ready().await.map_err(GrpcError::Request)?;
            let response = sender
                .send_request(request)
                .await
                .map_err(GrpcError::Request)?;
            read_reply(response).await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| GrpcError::Timeout)?
    }
}

/// [`GrpcClient::connect`] then one [`GrpcClient::call`], on a fresh connection, within
/// `timeout` overall.
pub async fn grpc_unary(
    addr: SocketAddr,
    call: &GrpcCall,
    timeout: Duration,
) -> Result<GrpcReply, GrpcError> {
    let attempt = async {
        let client = GrpcClient::connect(addr, timeout).await?;
        client.call(call, timeout).await
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| GrpcError::Timeout)?
}

fn build_request(
    addr: SocketAddr,
    call: &GrpcCall,
    timeout: Duration,
) -> Result<Request<Full<Bytes>>, GrpcError> {
    let authority = call.authority.clone().unwrap_or_else(|| addr.to_string());
    let uri: Uri = format!("http://{authority}{}", call.full_method)
        .parse()
        .map_err(|e| GrpcError::InvalidCall(format!("authority or method: {e}")))?;
    let body = Full::new(frame(&EchoRequest {}.encode_to_vec()));
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .header(
            header::USER_AGENT,
            concat!("trellis-testkit-grpc/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            "grpc-timeout",
            format!("{}m", timeout.as_millis().clamp(1, 99_999_999)),
        )
        .body(body)
        .map_err(|e| GrpcError::InvalidCall(e.to_string()))?;
    let headers = request.headers_mut();
    for (key, value) in &call.metadata {
        let name = HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes())
            .map_err(|_| GrpcError::InvalidCall(format!("metadata key {key:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| GrpcError::InvalidCall(format!("metadata value {value:?}")))?;
        headers.append(name, value);
    }
    Ok(request)
}

async fn read_reply(
    response: http::Response<hyper::body::Incoming>,
) -> Result<GrpcReply, GrpcError> {
    let (parts, body) = response.into_parts();
    let http_status = parts.status.as_u16();
    let mut reply = GrpcReply {
        code: GrpcCode::UNKNOWN,
        message: String::new(),
        response: None,
        http_status,
        headers: parts.headers,
        trailers: HeaderMap::new(),
    };
    let content_type = reply
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // grpc-go: a non-200 status, or a non-gRPC content type, decides the code by HTTP status.
    if http_status != 200 || !is_grpc_content_type(&content_type) {
        reply.code = GrpcCode::from_http_status(http_status);
        reply.message = format!("HTTP status {http_status}, content-type {content_type:?}");
        return Ok(reply);
    }
    let collected = http_body_util::Limited::new(body, MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| GrpcError::Body(e.to_string()))?;
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    // Trailers-Only: the status is in the headers.
    let status_from = match &trailers {
        Some(trailers) => trailers,
        None => &reply.headers,
    };
    let Some(code) = status_from
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok())
    else {
        reply.code = GrpcCode::INTERNAL;
        reply.message = "server closed the stream without sending trailers".to_string();
        return Ok(reply);
    };
    reply.message = status_from
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(decode_message)
        .unwrap_or_default();
    reply.trailers = trailers.unwrap_or_default();
    reply.code = GrpcCode(code);
    if reply.code != GrpcCode::OK {
        return Ok(reply);
    }
    match unframe(&data).as_deref() {
        Ok([message]) => match EchoResponse::decode(*message) {
            Ok(decoded) => reply.response = Some(decoded),
            Err(err) => {
                reply.code = GrpcCode::INTERNAL;
                reply.message = format!("grpc: failed to unmarshal the received message: {err}");
            }
        },
        Ok(messages) => {
            reply.code = GrpcCode::INTERNAL;
            reply.message = format!("expected one response message, got {}", messages.len());
        }
        Err(err) => {
            reply.code = GrpcCode::INTERNAL;
            reply.message = err.to_string();
        }
    }
    Ok(reply)
}
