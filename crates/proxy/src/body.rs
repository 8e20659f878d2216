//! The one body type used on both sides of the proxy.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request and response bodies: streamed from hyper or built locally.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

pub(crate) fn empty() -> ProxyBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn full(b: Bytes) -> ProxyBody {
    Full::new(b).map_err(|never| match never {}).boxed()
}

pub(crate) fn incoming(b: hyper::body::Incoming) -> ProxyBody {
    b.map_err(BoxError::from).boxed()
}

/// An empty-bodied response with `status`.
pub(crate) fn status(status: http::StatusCode) -> http::Response<ProxyBody> {
    let mut r = http::Response::new(empty());
    *r.status_mut() = status;
    r.extensions_mut().insert(crate::grpc::LocalReply);
    r
}
