//! gRPC over HTTP/2 details shared by server and client: status codes, the 5-byte message
//! framing and the percent-encoding of `grpc-message`.

use bytes::{BufMut, Bytes, BytesMut};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// A gRPC status code (`grpc-status`), with Go's names (`codes.Code.String()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrpcCode(pub u32);

const NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

impl GrpcCode {
    pub const OK: GrpcCode = GrpcCode(0);
    pub const CANCELED: GrpcCode = GrpcCode(1);
    pub const UNKNOWN: GrpcCode = GrpcCode(2);
    pub const DEADLINE_EXCEEDED: GrpcCode = GrpcCode(4);
    pub const PERMISSION_DENIED: GrpcCode = GrpcCode(7);
    pub const RESOURCE_EXHAUSTED: GrpcCode = GrpcCode(8);
    pub const UNIMPLEMENTED: GrpcCode = GrpcCode(12);
    pub const INTERNAL: GrpcCode = GrpcCode(13);
    pub const UNAVAILABLE: GrpcCode = GrpcCode(14);
    pub const UNAUTHENTICATED: GrpcCode = GrpcCode(16);

    /// Go's name (`OK`, `Unimplemented`, ...), or `Code(N)` for unknown numbers.
    pub fn name(self) -> String {
        match NAMES.get(self.0 as usize) {
            Some(name) => (*name).to_string(),
            None => format!("Code({})", self.0),
        }
    }

    /// The code for Go's name, as the conformance data writes it (`"OK"`, `"Unimplemented"`).
    pub fn from_name(name: &str) -> Option<GrpcCode> {
        NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| GrpcCode(i as u32))
    }

    /// grpc-go's mapping of a non-200 HTTP status (`HTTPStatusConvTab`, else Unknown).
    pub fn from_http_status(status: u16) -> GrpcCode {
        match status {
            400 => GrpcCode::INTERNAL,
            401 => GrpcCode::UNAUTHENTICATED,
            403 => GrpcCode::PERMISSION_DENIED,
            404 => GrpcCode::UNIMPLEMENTED,
            429 | 502 | 503 | 504 => GrpcCode::UNAVAILABLE,
            _ => GrpcCode::UNKNOWN,
        }
    }
}

impl std::fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// One length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, payload.
pub(crate) fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// Splits a request or response body into its messages. Compressed messages (flag 1) and
/// trailing partial frames are errors: the echo negotiates no compression.
pub(crate) fn unframe(mut body: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        if body.len() < 5 {
            return Err("truncated gRPC frame header");
        }
        if body[0] != 0 {
            return Err("compressed gRPC message without negotiated compression");
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let rest = &body[5..];
        if rest.len() < len {
            return Err("truncated gRPC message");
        }
        messages.push(&rest[..len]);
        body = &rest[len..];
    }
    Ok(messages)
}

/// Bytes the gRPC spec says to percent-encode in `grpc-message` (outside 0x20–0x7E, and `%`).
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

pub(crate) fn encode_message(message: &str) -> String {
    utf8_percent_encode(message, MESSAGE_ESCAPES).to_string()
}

pub(crate) fn decode_message(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

/// `application/grpc`, `application/grpc+proto`, `application/grpc;...` (grpc-go's rule).
pub(crate) fn is_grpc_content_type(value: &str) -> bool {
    match value.strip_prefix("application/grpc") {
        Some(rest) => rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut body = frame(b"abc").to_vec();
        body.extend_from_slice(&frame(b""));
        assert_eq!(unframe(&body).unwrap(), vec![&b"abc"[..], &b""[..]]);
        assert!(unframe(&body[..4]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn codes_use_go_names() {
        assert_eq!(GrpcCode::UNIMPLEMENTED.name(), "Unimplemented");
        assert_eq!(GrpcCode::from_name("OK"), Some(GrpcCode::OK));
        assert_eq!(GrpcCode::from_http_status(404), GrpcCode::UNIMPLEMENTED);
        assert_eq!(GrpcCode(99).name(), "Code(99)");
    }

    #[test]
    fn messages_are_percent_encoded() {
        let encoded = encode_message("100% ünknown\n");
        assert_eq!(encoded, "100%25 %C3%BCnknown%0A");
        assert_eq!(decode_message(&encoded), "100% ünknown\n");
        assert!(is_grpc_content_type("application/grpc+proto"));
        assert!(!is_grpc_content_type("application/grpcx"));
    }
}
