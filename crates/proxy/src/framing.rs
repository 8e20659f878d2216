//! Request checks before routing: strict HTTP/1 framing (RFC 9112 §6: no Content-Length with
//! Transfer-Encoding, chunked as the only transfer coding), a single Host (RFC 9112 §3.2), and
//! the configured limits hyper does not enforce itself (URI length, HTTP/2 header count).
//! hyper already rejects malformed heads (obs-fold, bad names/values, differing lengths).

use crate::body::{self, ProxyBody};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use trellis_ir::Limits;

/// Why a request is refused: the status to answer with.
pub(crate) fn check<B>(
    req: &Request<B>,
    limits: &Limits,
    cl_and_te: bool,
) -> Result<(), StatusCode> {
    let headers = req.headers();
    let h1 = req.version() <= Version::HTTP_11;
    // hyper drops Content-Length when both are sent; the stream tracker saw it (`sniff.rs`).
    if cl_and_te
        || (h1
            && headers.contains_key(header::TRANSFER_ENCODING)
            && headers.contains_key(header::CONTENT_LENGTH))
    {
        return Err(StatusCode::BAD_REQUEST);
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(StatusCode::BAD_REQUEST);
    }
    if h1 {
        transfer_codings(headers.get_all(header::TRANSFER_ENCODING))?;
    }
    // hyper enforces the count for HTTP/1 (`max_headers`), not for HTTP/2.
    if headers.len() > limits.max_request_headers {
        return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    if target_len(req) > limits.max_uri_bytes {
        return Err(StatusCode::URI_TOO_LONG);
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400 (HTTP/1.0 may omit it).
    if host.is_none() && req.version() == Version::HTTP_11 {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(())
}

/// `chunked` must be the one and only transfer coding. hyper has already refused a request
/// whose last coding is not `chunked`; a coding before it (e.g. `gzip, chunked`) would reach
/// the backend decoded of its chunking but still gzip with no header saying so: 501, as RFC
/// 9112 §6.1 asks for codings the server does not implement.
fn transfer_codings(values: header::GetAll<'_, HeaderValue>) -> Result<(), StatusCode> {
    let mut chunked = 0;
    for v in values {
        let v = v.to_str().map_err(|_| StatusCode::BAD_REQUEST)?;
        for coding in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if coding.eq_ignore_ascii_case("chunked") {
                chunked += 1;
            } else {
                return Err(StatusCode::NOT_IMPLEMENTED);
            }
        }
    }
    if chunked > 1 {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(())
}

/// Length of the request-target as sent: origin-form, or absolute-form for HTTP/1 proxies'
/// clients; `:path` for HTTP/2.
fn target_len<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let pq = uri.path_and_query().map_or(0, |p| p.as_str().len());
    match (
        req.version() <= Version::HTTP_11,
        uri.scheme(),
        uri.authority(),
    ) {
        (true, Some(s), Some(a)) => s.as_str().len() + 3 + a.as_str().len() + pq,
        _ => pq,
    }
}

/// The answer to a refused request. HTTP/1 connections are closed after it: the body (and
/// whatever follows it) was not read, so nothing after it can be trusted as a next request.
pub(crate) fn reject(status: StatusCode, version: Version) -> Response<ProxyBody> {
    let mut resp = body::status(status);
    if version <= Version::HTTP_11 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().version(version).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    fn status(r: &Request<()>) -> Option<u16> {
        check(r, &Limits::default(), false)
            .err()
            .map(|s| s.as_u16())
    }

    #[test]
    fn framing_and_host() {
        let v11 = Version::HTTP_11;
        assert_eq!(status(&req(v11, "/", &[("host", "a")])), None);
        let te = [("host", "a"), ("transfer-encoding", "chunked")];
        assert_eq!(status(&req(v11, "/", &te)), None);
        let both = [("transfer-encoding", "chunked"), ("content-length", "3")];
        assert_eq!(status(&req(v11, "/", &both)), Some(400));
        let twice = [
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ];
        assert_eq!(status(&req(v11, "/", &twice)), Some(400));
        let gzip = [("transfer-encoding", "gzip, chunked")];
        assert_eq!(status(&req(v11, "/", &gzip)), Some(501));
        let hosts = [("host", "a"), ("host", "a")];
        assert_eq!(status(&req(v11, "/", &hosts)), Some(400));
        assert_eq!(
            status(&req(v11, "/", &[])),
            Some(400),
            "HTTP/1.1 needs Host"
        );
        assert_eq!(status(&req(Version::HTTP_10, "/", &[])), None);
        assert_eq!(
            status(&req(Version::HTTP_2, "/", &[])),
            None,
            ":authority instead"
        );
        assert_eq!(status(&req(Version::HTTP_2, "/", &hosts)), Some(400));
        let r = req(v11, "/", &[("host", "a")]);
        assert_eq!(
            check(&r, &Limits::default(), true),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_request_headers: 2,
            max_uri_bytes: 20,
            ..Limits::default()
        };
        let s = |r: &Request<()>| check(r, &limits, false).err().map(|s| s.as_u16());
        let three = [("a", "1"), ("b", "2"), ("b", "3")];
        assert_eq!(s(&req(Version::HTTP_2, "/", &three)), Some(431));
        assert_eq!(s(&req(Version::HTTP_2, "/", &three[..2])), None);
        let host = [("host", "a")];
        assert_eq!(
            s(&req(Version::HTTP_11, "/0123456789012345678", &host)),
            None
        );
        assert_eq!(
            s(&req(Version::HTTP_11, "/01234567890123456789", &host)),
            Some(414)
        );
        // Absolute-form counts scheme and authority: 4 + 3 + 9 + 5 = 21 bytes.
        assert_eq!(
            s(&req(Version::HTTP_11, "http://a.example/1234", &host)),
            Some(414)
        );
        assert_eq!(s(&req(Version::HTTP_2, "http://a.example/1234", &[])), None);
        let closed = reject(StatusCode::BAD_REQUEST, Version::HTTP_11);
        assert_eq!(closed.headers()[header::CONNECTION], "close");
        assert!(reject(StatusCode::BAD_REQUEST, Version::HTTP_2)
            .headers()
            .get(header::CONNECTION)
            .is_none());
    }
}
