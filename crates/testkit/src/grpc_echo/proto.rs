//! The messages of upstream's `conformance/echo-basic/grpcecho.proto` (package
//! `gateway_api_conformance.echo_basic.grpcecho`), written out by hand for `prost` so no
//! `protoc` is needed. Field numbers are the `.proto`'s.

/// One request header (gRPC metadata entry) as the server saw it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Header {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// The deployment the server runs in (`NAMESPACE`, `INGRESS_NAME`, `SERVICE_NAME`, `POD_NAME`).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Context {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub ingress: String,
    #[prost(string, tag = "3")]
    pub service_name: String,
    #[prost(string, tag = "4")]
    pub pod: String,
}

/// The TLS connection between client and server (TLS listener only).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TlsAssertions {
    /// E.g. `TLSv1.3`.
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub negotiated_protocol: String,
    /// The SNI the server received.
    #[prost(string, tag = "3")]
    pub server_name: String,
    #[prost(string, tag = "4")]
    pub cipher_suite: String,
    /// PEM certificates the client sent.
    #[prost(string, repeated, tag = "5")]
    pub peer_certificates: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Assertions {
    /// E.g. `/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo`.
    #[prost(string, tag = "1")]
    pub fully_qualified_method: String,
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<Header>,
    /// The `:authority` of the request.
    #[prost(string, tag = "3")]
    pub authority: String,
    #[prost(message, optional, tag = "4")]
    pub context: Option<Context>,
    #[prost(message, optional, tag = "5")]
    pub tls_assertions: Option<TlsAssertions>,
}

#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct EchoRequest {}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EchoResponse {
    #[prost(message, optional, tag = "1")]
    pub assertions: Option<Assertions>,
    #[prost(message, optional, tag = "2")]
    pub request: Option<EchoRequest>,
}

impl EchoResponse {
    /// `assertions.fully_qualified_method`, or `""`.
    pub fn fully_qualified_method(&self) -> &str {
        self.assertions
            .as_ref()
            .map_or("", |a| a.fully_qualified_method.as_str())
    }

    /// `assertions.context.namespace`, or `""`.
    pub fn namespace(&self) -> &str {
        self.context().map_or("", |c| c.namespace.as_str())
    }

    /// `assertions.context.pod`, or `""`.
    pub fn pod(&self) -> &str {
        self.context().map_or("", |c| c.pod.as_str())
    }

    /// `assertions.authority`, or `""`.
    pub fn authority(&self) -> &str {
        self.assertions
            .as_ref()
            .map_or("", |a| a.authority.as_str())
    }

    /// The values of request header `key` (lowercase) the server saw, in order.
    pub fn header_values(&self, key: &str) -> Vec<&str> {
        self.assertions
            .iter()
            .flat_map(|a| a.headers.iter())
            .filter(|h| h.key == key)
            .map(|h| h.value.as_str())
            .collect()
    }

    fn context(&self) -> Option<&Context> {
        self.assertions.as_ref().and_then(|a| a.context.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    // Tag bytes are (field number << 3) | wire type 2: they pin the `.proto`'s field numbers.
    #[test]
    fn field_numbers_match_grpcecho_proto() {
        let response = EchoResponse {
            assertions: Some(Assertions {
                fully_qualified_method: "m".into(),
                headers: vec![Header {
                    key: "k".into(),
                    value: "v".into(),
                }],
                authority: "a".into(),
                context: Some(Context {
                    namespace: "n".into(),
                    ingress: "i".into(),
                    service_name: "s".into(),
                    pod: "p".into(),
                }),
                tls_assertions: Some(TlsAssertions {
                    version: "1".into(),
                    negotiated_protocol: "2".into(),
                    server_name: "3".into(),
                    cipher_suite: "4".into(),
                    peer_certificates: vec!["5".into()],
                }),
            }),
            request: Some(EchoRequest {}),
        };
        let expected: Vec<u8> = [
            &[0x0a, 45][..],                          // assertions (1), 45 bytes
            &[0x0a, 1, b'm'],                         //   fully_qualified_method (1)
            &[0x12, 6, 0x0a, 1, b'k', 0x12, 1, b'v'], //   headers (2): key (1), value (2)
            &[0x1a, 1, b'a'],                         //   authority (3)
            &[
                0x22, 12, 0x0a, 1, b'n', 0x12, 1, b'i', 0x1a, 1, b's', 0x22, 1, b'p',
            ], // context (4)
            &[
                0x2a, 15, 0x0a, 1, b'1', 0x12, 1, b'2', 0x1a, 1, b'3', 0x22, 1, b'4', 0x2a, 1, b'5',
            ], // tls (5)
            &[0x12, 0],                               // request (2), empty
        ]
        .concat();
        assert_eq!(response.encode_to_vec(), expected);
        assert_eq!(EchoResponse::decode(expected.as_slice()).unwrap(), response);
    }
}
