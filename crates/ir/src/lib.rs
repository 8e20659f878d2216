//! The intermediate representation (IR): the data plane's entire configuration as plain,
//! serializable data. The translator produces it; the proxy consumes it and nothing else.
//! It knows nothing of Kubernetes: names are opaque strings used for logs and metrics.
//!
//! Start at [`Config`]. Ordering is meaningful: the translator emits listeners, virtual hosts
//! and routes already sorted by Gateway API precedence, so the proxy takes the first match.

mod l4;
mod redact;
mod upstream_tls;
mod validate;

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub use l4::{L4Backend, L4Bind, L4Protocol, L4Route};
pub use redact::{redacted_json, REDACTED};
pub use upstream_tls::{SubjectAltName, UpstreamTls};
pub use validate::ValidationError;

/// Everything the proxy serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// One entry per socket to bind (address + port).
    pub binds: Vec<Bind>,
    /// Backend clusters, referenced by name from routes.
    pub clusters: Vec<Cluster>,
    /// TCP, UDP and TLS (SNI-routed) sockets of TCPRoutes, UDPRoutes and TLSRoutes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l4_binds: Vec<L4Bind>,
}

/// A socket the proxy listens on. Several Gateway listeners may share it (same port, different
/// hostnames); the request's SNI / Host picks one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bind {
    /// Stable identity, e.g. `127.10.0.1:80`; used to diff binds across configs.
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: BindProtocol,
    /// Sorted most specific first: exact hostnames, then wildcards by descending length, then the
    /// listener without hostname. The first whose hostname matches the request wins
    /// (listener isolation).
    pub listeners: Vec<HttpListener>,
    /// Client-certificate validation for HTTPS binds (Gateway `spec.tls.frontend`, which is set
    /// per port, so every listener of the bind shares it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_validation: Option<ClientValidation>,
}

/// Which client certificates an HTTPS bind accepts.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientValidation {
    /// PEM CA certificates; a client certificate must chain to one of them.
    pub ca_pem: String,
    /// `AllowInsecureFallback`: ask for a certificate, but also accept clients without a valid one.
    #[serde(default)]
    pub allow_insecure_fallback: bool,
}

impl std::fmt::Debug for ClientValidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientValidation")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("allow_insecure_fallback", &self.allow_insecure_fallback)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindProtocol {
    /// Plain HTTP/1.1 and h2c with prior knowledge.
    Http,
    /// TLS termination, then HTTP/1.1 or h2 chosen by ALPN.
    Https,
}

/// One Gateway listener (or several identical ones merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpListener {
    /// `namespace/gateway/listener-name`.
    pub name: String,
    /// `None` matches every host. `*.example.com` matches any subdomain (one or more labels).
    pub hostname: Option<String>,
    /// Certificates for HTTPS binds; chosen by SNI against `hostname`, the first is the fallback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    /// Sorted most specific first like listeners: exact, wildcard by length, then `*`.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// PEM-encoded certificate chain and private key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// `namespace/secret-name`, for logs.
    pub name: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Routes for one effective hostname (route hostnames intersected with the listener's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualHost {
    /// Exact (`foo.example.com`), wildcard (`*.example.com`) or `*` for any host.
    pub hostname: String,
    /// Sorted by Gateway API precedence; the first entry whose match holds wins.
    pub routes: Vec<Route>,
}

/// One match of one rule of one route: rules with N matches become N entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// `namespace/route-name/rule-index/match-index` (rule name appended when set), for logs.
    pub name: String,
    #[serde(rename = "match")]
    pub matches: RouteMatch,
    /// Applied in order before the action. Redirect is expressed as the action, not a filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Timeouts::is_empty")]
    pub timeouts: Timeouts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteMatch {
    pub path: PathMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// All must hold. Names are lower-case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ValueMatch>,
    /// All must hold. Names are case-sensitive; the first value of a repeated parameter counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<ValueMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathMatch {
    Exact(String),
    /// Segment-wise: `/foo` matches `/foo` and `/foo/bar`, not `/foobar`.
    Prefix(String),
    /// Full match (anchored).
    RegularExpression(String),
}

impl Default for PathMatch {
    fn default() -> Self {
        PathMatch::Prefix("/".to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueMatch {
    pub name: String,
    pub kind: ValueMatchKind,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueMatchKind {
    Exact,
    /// Full match (anchored).
    RegularExpression,
}

/// What a matched request turns into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Weighted choice among backends. An empty list or all weights zero answers 500.
    Forward(Vec<WeightedBackend>),
    Redirect(Redirect),
    /// Answer locally with this status and an empty body (e.g. 500 when the rule is invalid).
    DirectResponse {
        status: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedBackend {
    pub weight: u32,
    /// Name of a [`Cluster`]. `None` means the reference is invalid: requests picked for it get 500.
    pub cluster: Option<String>,
    /// Filters for requests sent to this backend only (after the route's filters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Filter {
    RequestHeaderModifier(HeaderModifier),
    ResponseHeaderModifier(HeaderModifier),
    UrlRewrite(UrlRewrite),
    RequestMirror(Mirror),
    Cors(Cors),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderModifier {
    /// Replace (or add) these headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Header>,
    /// Append values (keeps existing values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<Header>,
    /// Header names to remove (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathModifier {
    ReplaceFullPath(String),
    /// Replace the part of the path matched by the route's Prefix match.
    ReplacePrefixMatch(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// `http` / `https`; `None` keeps the request's scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Explicit port. When `None`, the port follows the Gateway API rules: derived from the
    /// redirect scheme when it is set, otherwise the listener port; default ports are omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    pub status_code: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mirror {
    /// `None`: the reference is invalid and nothing is mirrored.
    pub cluster: Option<String>,
    /// Fraction of requests mirrored, 0.0..=1.0.
    pub fraction: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cors {
    /// Exact origins, `*`, or wildcard-host origins such as `https://*.example.com`.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Whole request, client view, including retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_ms: Option<u64>,
    /// One attempt to a backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_request_ms: Option<u64>,
}

impl Timeouts {
    pub fn is_empty(&self) -> bool {
        self.request_ms.is_none() && self.backend_request_ms.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// HTTP statuses that trigger a retry; connection errors always do.
    pub codes: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
}

/// A set of endpoints reached the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// e.g. `service/namespace/name:port` or `backend/namespace/name`.
    pub name: String,
    pub protocol: UpstreamProtocol,
    /// Ready endpoints, round-robin. Empty: requests answer 503.
    pub endpoints: Vec<Endpoint>,
    /// Originate TLS to the endpoints (BackendTLSPolicy); plain text when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2 with prior knowledge (`appProtocol: kubernetes.io/h2c`).
    H2c,
    /// HTTP/1.1 that is expected to carry WebSocket upgrades (`kubernetes.io/ws`).
    WebSocket,
    /// Raw TCP (TCPRoute, TLSRoute backends); never used for HTTP.
    Tcp,
    /// UDP datagrams (UDPRoute backends).
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Endpoint {
    /// `ip:port` (IPv6 in brackets).
    Socket(std::net::SocketAddr),
    /// Resolved at connect time.
    Host {
        host: String,
        port: u16,
    },
    Unix(String),
}

/// Bounds on what one client may send, enforced by the proxy before routing. Global today
/// (`trellis run` flags); kept in the IR so a per-Gateway setting can carry the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Limits {
    /// Request line plus headers (HTTP/1), header list (HTTP/2); larger heads get 431.
    /// At least 8 KiB (hyper's smallest read buffer).
    pub max_request_header_bytes: usize,
    /// Header fields per request; more get 431.
    pub max_request_headers: usize,
    /// Request-target length; longer get 414.
    pub max_uri_bytes: usize,
    /// Open client connections per bind; connections beyond it are closed at accept.
    pub max_connections_per_bind: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_header_bytes: 64 * 1024,
            max_request_headers: 100,
            max_uri_bytes: 8 * 1024,
            max_connections_per_bind: 100_000,
        }
    }
}
