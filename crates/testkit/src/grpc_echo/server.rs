//! The gRPC echo server: HTTP/2 only (h2c on the plaintext listener, h2 via ALPN on the TLS
//! one), answering unary `Echo` / `EchoTwo` as upstream's Go server does.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use super::proto::{Assertions, Context, EchoRequest, EchoResponse, Header, TlsAssertions};
use super::wire::{encode_message, frame, is_grpc_content_type, unframe, GrpcCode};
use super::SERVICE;
use crate::backend::{serve_listeners, Accepted, BackendIdentity, ServerHandle, TlsListener};
use crate::echo::tls::{cert_pem, cipher_name, version_name};
use crate::echo::TlsConfigError;

/// grpc-go's default maximum received message size.
const MAX_REQUEST: usize = 4 * 1024 * 1024;

type Frames = futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>;
/// Trailers-only responses need a body that is already at its end (`Full` of nothing), so the
/// headers go out with END_STREAM; normal ones carry a message and then trailers.
type GrpcBody = Either<Full<Bytes>, StreamBody<Frames>>;

struct ConnCtx {
    identity: Arc<BackendIdentity>,
    tls: Option<TlsAssertions>,
}

/// Serves the gRPC echo over h2c on `plain` and, when given, over TLS (ALPN `h2`) on `tls`,
/// until [`ServerHandle::shutdown`]. Must be called inside a Tokio runtime.
pub fn spawn(
    identity: BackendIdentity,
    plain: TcpListener,
    tls: Option<TlsListener>,
) -> Result<ServerHandle, TlsConfigError> {
    let identity = Arc::new(identity);
    serve_listeners("grpc echo", plain, tls, (&[b"h2"], true), move |conn| {
        let identity = identity.clone();
        async move {
            match conn {
                Accepted::Plain(stream) => {
                    let ctx = Arc::new(ConnCtx {
                        identity,
                        tls: None,
                    });
                    run_h2(stream, ctx).await
                }
                Accepted::Tls(tls) => {
                    let ctx = Arc::new(ConnCtx {
                        identity,
                        tls: Some(tls_assertions(tls.get_ref().1)),
                    });
                    run_h2(tls, ctx).await
                }
            }
        }
    })
}

async fn run_h2<I>(io: I, ctx: Arc<ConnCtx>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, ctx.clone()));
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service);
    if let Err(err) = conn.await {
        tracing::debug!(error = %err, "grpc echo: connection ended with error");
    }
}

async fn handle(
    req: Request<Incoming>,
    ctx: Arc<ConnCtx>,
) -> Result<Response<GrpcBody>, Infallible> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if !is_grpc_content_type(&content_type) {
        let message = format!("invalid gRPC request content-type {content_type:?}");
        return Ok(status_only(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GrpcCode::INTERNAL,
            &message,
        ));
    }
    if req.method() != Method::POST {
        let message = format!("invalid gRPC request method {:?}", req.method().as_str());
        return Ok(status_only(
            StatusCode::METHOD_NOT_ALLOWED,
            GrpcCode::INTERNAL,
            &message,
        ));
    }
    let path = req.uri().path().to_string();
    let method = match route(&path) {
        Ok(method) => method,
        Err(message) => {
            return Ok(status_only(
                StatusCode::OK,
                GrpcCode::UNIMPLEMENTED,
                &message,
            ))
        }
    };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            let message = format!("reading the request: {err}");
            return Ok(status_only(
                StatusCode::OK,
                GrpcCode::RESOURCE_EXHAUSTED,
                &message,
            ));
        }
    };
    let request = match decode_request(&body) {
        Ok(request) => request,
        Err(message) => return Ok(status_only(StatusCode::OK, GrpcCode::INTERNAL, &message)),
    };
    let connection = if ctx.tls.is_some() {
        "TLS"
    } else {
        "plaintext"
    };
    tracing::info!(method = %path, "Received over {connection}: {request:?}");
    let (authority, headers) = metadata(&parts);
    let response = EchoResponse {
        assertions: Some(Assertions {
            fully_qualified_method: format!("/{SERVICE}/{method}"),
            headers,
            authority,
            context: Some(Context {
                namespace: ctx.identity.namespace.clone(),
                ingress: ctx.identity.ingress.clone(),
                service_name: ctx.identity.service.clone(),
                pod: ctx.identity.pod.clone(),
            }),
            tls_assertions: ctx.tls.clone(),
        }),
        request: None,
    };
    Ok(ok_response(&response.encode_to_vec()))
}

/// `Echo` / `EchoTwo`, or the Unimplemented message grpc-go would send.
fn route(path: &str) -> Result<&'static str, String> {
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.rsplit_once('/')) else {
        return Err(format!("malformed method name: {path:?}"));
    };
    if service != SERVICE {
        return Err(format!("unknown service {service}"));
    }
    match method {
        "Echo" => Ok("Echo"),
        "EchoTwo" => Ok("EchoTwo"),
        "EchoThree" => Err("method EchoThree not implemented".to_string()),
        other => Err(format!("unknown method {other} for service {service}")),
    }
}

fn decode_request(body: &[u8]) -> Result<EchoRequest, String> {
    let messages = unframe(body).map_err(str::to_string)?;
    let [message] = messages.as_slice() else {
        return Err(format!(
            "expected one request message, got {}",
            messages.len()
        ));
    };
    EchoRequest::decode(*message).map_err(|e| format!("grpc: error unmarshalling request: {e}"))
}

/// The request's metadata as grpc-go's `metadata.FromIncomingContext` has it: `:authority`
/// (from `Host` when absent), `content-type`, `user-agent` and every non-reserved header;
/// other pseudo-headers, `te`, `grpc-timeout`, `grpc-encoding` and the like are left out.
/// `-bin` values are reported as received (base64), not decoded.
fn metadata(parts: &http::request::Parts) -> (String, Vec<Header>) {
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| header_str(&parts.headers, header::HOST.as_str()))
        .unwrap_or_default();
    let mut headers = vec![Header {
        key: ":authority".to_string(),
        value: authority.clone(),
    }];
    for (name, value) in &parts.headers {
        let key = name.as_str();
        if key == "host" || is_reserved(key) {
            continue;
        }
        headers.push(Header {
            key: key.to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        });
    }
    (authority, headers)
}

/// grpc-go's `isReservedHeader` minus its whitelist (`content-type` and `user-agent` are kept
/// in the metadata the echo reports).
fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        "grpc-message-type"
            | "grpc-encoding"
            | "grpc-message"
            | "grpc-status"
            | "grpc-timeout"
            | "grpc-status-details-bin"
            | "te"
            | "connection"
    )
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn ok_response(message: &[u8]) -> Response<GrpcBody> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = vec![
        Ok(Frame::data(frame(message))),
        Ok(Frame::trailers(trailers)),
    ];
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let mut response = Response::new(Either::Right(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A Trailers-Only response: the status in the headers, no body.
fn status_only(http: StatusCode, code: GrpcCode, message: &str) -> Response<GrpcBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::new())));
    *response.status_mut() = http;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(code.0));
    if let Ok(value) = HeaderValue::from_str(&encode_message(message)) {
        headers.insert("grpc-message", value);
    }
    response
}

fn tls_assertions(conn: &rustls::ServerConnection) -> TlsAssertions {
    TlsAssertions {
        version: conn
            .protocol_version()
            .map(version_name)
            .unwrap_or_default(),
        negotiated_protocol: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default(),
        server_name: conn.server_name().unwrap_or_default().to_string(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| cipher_name(s.suite()))
            .unwrap_or_default(),
        peer_certificates: conn
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|der| cert_pem(der.as_ref()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_grpc_go() {
        let full = |m: &str| format!("/{SERVICE}/{m}");
        assert_eq!(route(&full("Echo")), Ok("Echo"));
        assert_eq!(route(&full("EchoTwo")), Ok("EchoTwo"));
        assert_eq!(
            route(&full("EchoThree")),
            Err("method EchoThree not implemented".to_string())
        );
        assert!(route(&full("Nope"))
            .unwrap_err()
            .starts_with("unknown method Nope"));
        assert!(route("/other.Svc/Echo")
            .unwrap_err()
            .starts_with("unknown service"));
        assert!(route("nonsense").is_err());
    }
}
