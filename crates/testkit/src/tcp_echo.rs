//! The TCP line echo of the conformance suite (upstream `echo-basic/tcpserver`, contract in
//! `shared/conformance/README-extra-families.md`) and the client side of the `tcp_echo`,
//! `tls_tcp_echo`, `tcp_connect` cases and of TCP weight samples.
//!
//! Server ([`spawn`]): on connect it sends [`WELCOME`], then answers lines `PING` → `PONG`,
//! `IS_TLS` → `true`/`false`, `TEST` → one [`TcpAssertions`] JSON line; other lines get no reply.
//! Client: [`tcp_echo_conversation`] (the 4-step conversation, plain or TLS),
//! [`tcp_echo_once`] (welcome + `TEST`, for distributions), [`tcp_connect`].

mod client;
mod server;

use serde::{Deserialize, Serialize};

pub use client::{
    tcp_connect, tcp_echo_conversation, tcp_echo_once, TcpConversation, TcpEchoError,
    TcpExpectation,
};
pub use server::spawn;

/// The first line the server sends on every connection.
pub const WELCOME: &str = "Gateway API Test TCP Server\n";

/// The `TEST` reply, field names as upstream's Go `TCPAssertions`. Unknown fields are ignored
/// and missing ones default, so replies of other echo versions decode too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TcpAssertions {
    pub namespace: String,
    pub ingress: String,
    pub service: String,
    pub pod: String,
    /// Port of the plaintext listener, as a string.
    pub tcpport: String,
    /// Port of the TLS listener, when the server has one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tlsport: String,
    #[serde(rename = "isTLS")]
    pub is_tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TcpTlsAssertions>,
}

/// The `tls` object of [`TcpAssertions`] (Go's `tls.VersionName` / `tls.CipherSuiteName` /
/// `CurveID.String` wording, e.g. `TLS 1.3`, `TLS_AES_128_GCM_SHA256`, `X25519`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TcpTlsAssertions {
    pub version: String,
    /// The SNI the server received.
    pub server_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub negotiated_protocol: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub curves: String,
    pub cipher_suite: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_follows_upstream() {
        let plain = TcpAssertions {
            namespace: "ns".into(),
            pod: "tcp-backend-a-b".into(),
            tcpport: "3000".into(),
            ..TcpAssertions::default()
        };
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"namespace":"ns","ingress":"","service":"","pod":"tcp-backend-a-b","tcpport":"3000","isTLS":false}"#
        );
        let tls = TcpAssertions {
            tlsport: "8443".into(),
            is_tls: true,
            tls: Some(TcpTlsAssertions {
                version: "TLS 1.3".into(),
                server_name: "abc.example.com".into(),
                cipher_suite: "TLS_AES_128_GCM_SHA256".into(),
                ..TcpTlsAssertions::default()
            }),
            ..plain
        };
        let json = serde_json::to_string(&tls).unwrap();
        assert!(json.ends_with(
            r#""tcpport":"3000","tlsport":"8443","isTLS":true,"tls":{"version":"TLS 1.3","serverName":"abc.example.com","cipherSuite":"TLS_AES_128_GCM_SHA256"}}"#
        ), "{json}");
        let back: TcpAssertions = serde_json::from_str(&json).unwrap();
        assert_eq!(back, tls);
        // Tolerant decoding: unknown fields ignored, missing ones default.
        let other: TcpAssertions = serde_json::from_str(r#"{"pod":"x","extra":1}"#).unwrap();
        assert_eq!(other.pod, "x");
    }
}
