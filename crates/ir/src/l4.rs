//! L4 configuration: TCP and UDP sockets forwarding to one route's weighted backends, and TLS
//! sockets that pick a route by the ClientHello SNI, then pass the TLS bytes through or
//! terminate TLS and forward the plaintext over TCP.

use crate::Certificate;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One L4 socket (address + port + transport).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct L4Bind {
    /// Stable identity, e.g. `127.10.0.1:9300/tcp`; used to diff binds across configs.
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: L4Protocol,
    /// Gateway listeners served by this socket (`namespace/gateway/listener`), for status.
    pub listeners: Vec<String>,
    /// TCP / UDP: the first route is the one bound (the others lost the conflict), none means
    /// connections are refused. TLS: sorted most specific hostname first; the first route
    /// whose hostname matches the SNI wins, no match closes the connection.
    pub routes: Vec<L4Route>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L4Protocol {
    Tcp,
    Udp,
    /// TCP carrying TLS, routed by SNI.
    Tls,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct L4Route {
    /// `namespace/route-name` (plus `/rule-index` when needed), for logs.
    pub name: String,
    /// TLS only: exact (`a.example.com`), wildcard (`*.example.com`) or `*` for any SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// TLS only. Empty: passthrough (the client's TLS bytes are spliced to the backend).
    /// Otherwise TLS is terminated with these (the first is used) and plaintext is forwarded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    /// Weighted choice per connection (TCP, TLS) or per session (UDP). A pick with no cluster,
    /// or all weights zero, refuses the connection.
    pub backends: Vec<L4Backend>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct L4Backend {
    pub weight: u32,
    /// Name of a [`crate::Cluster`]; `None` when the reference is invalid.
    pub cluster: Option<String>,
}
