//! gRPC clients get gRPC errors: an error the proxy answers itself (no route, invalid backend,
//! no endpoints, upstream failure, timeout) to a request whose content-type is
//! `application/grpc*` becomes a Trailers-Only response: HTTP 200, `content-type:
//! application/grpc`, `grpc-status` and `grpc-message`, headers ending the stream.

use crate::body::ProxyBody;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

/// Marks a response the proxy generated (set by `body::status`); upstream responses pass
/// through untouched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalReply;

/// Whether the request is a gRPC call.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The gRPC status for a local HTTP error status.
pub(crate) fn code_for(status: StatusCode) -> u32 {
    match status.as_u16() {
        404 => 12,                   // UNIMPLEMENTED: no route for this method
        400 | 500 => 13,             // INTERNAL: malformed request or invalid route/backend
        401 => 16,                   // UNAUTHENTICATED
        403 => 7,                    // PERMISSION_DENIED
        413 => 8,                    // RESOURCE_EXHAUSTED
        408 | 504 => 4,              // DEADLINE_EXCEEDED
        421 | 429 | 502 | 503 => 14, // UNAVAILABLE: no endpoints, upstream failure
        _ => 2,                      // UNKNOWN
    }
}

/// Rewrites a local error response to a gRPC request; anything else is returned unchanged.
pub(crate) fn local_reply(grpc: bool, resp: Response<ProxyBody>) -> Response<ProxyBody> {
    let status = resp.status();
    if !grpc || status.as_u16() < 400 || resp.extensions().get::<LocalReply>().is_none() {
        return resp;
    }
    let mut out = crate::body::status(StatusCode::OK);
    let headers = out.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(code_for(status)));
    let message = format!(
        "trellis: HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("error")
    );
    if let Ok(v) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_errors_to_grpc_requests_are_rewritten() {
        let local = crate::body::status(StatusCode::NOT_FOUND);
        let r = local_reply(true, local);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "12");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/grpc");

        let r = local_reply(false, crate::body::status(StatusCode::NOT_FOUND));
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        let mut upstream = Response::new(crate::body::empty());
        *upstream.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(
            local_reply(true, upstream).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );

        let redirect = crate::body::status(StatusCode::FOUND);
        assert_eq!(local_reply(true, redirect).status(), StatusCode::FOUND);
    }

    #[test]
    fn status_mapping() {
        assert_eq!(code_for(StatusCode::SERVICE_UNAVAILABLE), 14);
        assert_eq!(code_for(StatusCode::INTERNAL_SERVER_ERROR), 13);
        assert_eq!(code_for(StatusCode::GATEWAY_TIMEOUT), 4);
        assert_eq!(code_for(StatusCode::IM_A_TEAPOT), 2);
    }

    #[test]
    fn grpc_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&h));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_grpc(&h));
    }
}
