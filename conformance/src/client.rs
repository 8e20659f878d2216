//! The HTTP client: hyper 1 over HTTP/1.1, HTTPS (HTTP/1.1 over TLS), h2 over TLS (ALPN) and
//! h2c with prior knowledge. One connection per request; redirects are never followed.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Https1,
    H2,
    H2c,
}

impl Protocol {
    /// The suite's `protocol` field (with `scheme` as a fallback).
    pub fn parse(protocol: Option<&str>, scheme: &str) -> Option<Protocol> {
        match protocol {
            Some("HTTP") => Some(Protocol::Http1),
            Some("HTTPS") => Some(Protocol::Https1),
            Some("H2") => Some(Protocol::H2),
            Some("H2C_PRIOR_KNOWLEDGE") => Some(Protocol::H2c),
            Some(_) => None,
            None if scheme == "https" => Some(Protocol::Https1),
            None => Some(Protocol::Http1),
        }
    }
}

/// Client-side TLS settings.
#[derive(Debug, Clone, Default)]
pub struct TlsClient {
    pub sni: String,
    /// PEM certificates to trust (the Gateway's self-signed cert, or a CA).
    pub trust_pems: Vec<String>,
    /// PEM cert + key to present when asked.
    pub client_cert: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    /// Host header / :authority.
    pub authority: String,
    pub method: String,
    /// Request-URI: path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub tls: Option<TlsClient>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The server sent a CertificateRequest during the handshake.
    pub client_cert_requested: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("request timed out")]
    Timeout,
}

impl ClientError {
    /// Failed before any HTTP exchange (TCP or TLS level).
    pub fn is_transport(&self) -> bool {
        matches!(self, ClientError::Connect(_) | ClientError::Tls(_))
    }
}

/// Records whether the server asked for a client certificate; presents one if configured.
#[derive(Debug)]
struct RecordingResolver {
    key: Option<Arc<CertifiedKey>>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        self.key.clone()
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// webpki refuses wildcards directly under a public suffix (`*.org`), which the suite's Gateway
/// certificate uses and Go's client accepts. The chain is still verified by webpki; only a
/// name mismatch is re-checked with Go's rule (`*` = exactly one left-most label).
#[derive(Debug)]
struct GoNameVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

/// Go's `crypto/x509` host matching for one SAN.
pub fn go_name_matches(pattern: &str, host: &str) -> bool {
    let (p, h) = (
        pattern.to_ascii_lowercase(),
        host.trim_end_matches('.').to_ascii_lowercase(),
    );
    match p.strip_prefix("*.") {
        Some(suffix) => h
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => p == h,
    }
}

impl ServerCertVerifier for GoNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                },
            )) => {
                let host = match &expected {
                    ServerName::DnsName(d) => d.as_ref().to_string(),
                    _ => String::new(),
                };
                let ok = presented.iter().any(|p| {
                    p.strip_prefix("DnsName(\"")
                        .and_then(|r| r.strip_suffix("\")"))
                        .is_some_and(|pat| go_name_matches(pat, &host))
                });
                if ok {
                    Ok(rustls::client::danger::ServerCertVerified::assertion())
                } else {
                    Err(rustls::CertificateError::NotValidForNameContext {
                        expected,
                        presented,
                    }
                    .into())
                }
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Tls(format!("bad certificate PEM: {e}")))
}

/// Builds the rustls client config; `alpn` like `[b"h2"]`.
pub fn client_config(
    tls: &TlsClient,
    alpn: &[&[u8]],
    asked: Arc<AtomicBool>,
) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in &tls.trust_pems {
        for c in certs_from_pem(pem)? {
            roots
                .add(c)
                .map_err(|e| ClientError::Tls(format!("bad trust anchor: {e}")))?;
        }
    }
    let inner =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| ClientError::Tls(format!("verifier: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = Arc::new(GoNameVerifier { inner });
    let key = match &tls.client_cert {
        Some((cert_pem, key_pem)) => {
            let chain = certs_from_pem(cert_pem)?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| ClientError::Tls(format!("bad client key: {e}")))?;
            let signer = rustls::crypto::ring::sign::any_supported_type(&key)
                .map_err(|e| ClientError::Tls(format!("client key: {e}")))?;
            Some(Arc::new(CertifiedKey::new(chain, signer)))
        }
        None => None,
    };
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(RecordingResolver { key, asked }));
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// TCP connect + TLS handshake.
pub async fn tls_connect(
    addr: SocketAddr,
    tls: &TlsClient,
    alpn: &[&[u8]],
) -> Result<
    (
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        Arc<AtomicBool>,
    ),
    (ClientError, bool),
> {
    let asked = Arc::new(AtomicBool::new(false));
    let cfg = client_config(tls, alpn, asked.clone()).map_err(|e| (e, false))?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| (ClientError::Connect(e.to_string()), false))?;
    let name = ServerName::try_from(tls.sni.clone()).map_err(|e| {
        (
            ClientError::Tls(format!("bad SNI {:?}: {e}", tls.sni)),
            false,
        )
    })?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            (
                ClientError::Tls(e.to_string()),
                asked.load(Ordering::SeqCst),
            )
        })?;
    Ok((stream, asked))
}

/// Sends one request on a fresh connection. On a TLS failure the error says whether a client
/// certificate had been requested (second element).
pub async fn send(req: &Request, timeout: Duration) -> Result<Response, (ClientError, bool)> {
    match tokio::time::timeout(timeout, send_inner(req)).await {
        Ok(r) => r,
        Err(_) => Err((ClientError::Timeout, false)),
    }
}

async fn send_inner(req: &Request) -> Result<Response, (ClientError, bool)> {
    let plain = |e: ClientError| (e, false);
    match req.protocol {
        Protocol::Http1 => {
            let tcp = tokio::net::TcpStream::connect(req.addr)
                .await
                .map_err(|e| plain(ClientError::Connect(e.to_string())))?;
            http1(TokioIo::new(tcp), req, false).await.map_err(plain)
        }
        Protocol::H2c => {
            let tcp = tokio::net::TcpStream::connect(req.addr)
                .await
                .map_err(|e| plain(ClientError::Connect(e.to_string())))?;
            http2(TokioIo::new(tcp), req, "http", false)
                .await
                .map_err(plain)
        }
        Protocol::Https1 | Protocol::H2 => {
            let tls = req.tls.clone().unwrap_or_else(|| TlsClient {
                sni: host_only(&req.authority).to_string(),
                ..Default::default()
            });
            let alpn: &[&[u8]] = if req.protocol == Protocol::H2 {
                &[b"h2"]
            } else {
                &[b"http/1.1"]
            };
            let (stream, asked) = tls_connect(req.addr, &tls, alpn).await?;
            let asked = asked.load(Ordering::SeqCst);
            let io = TokioIo::new(stream);
            // TLS 1.3 reports a rejected client certificate only after the handshake.
            let r = if req.protocol == Protocol::H2 {
                http2(io, req, "https", asked).await
            } else {
                http1(io, req, asked).await
            };
            r.map_err(|e| (e, asked))
        }
    }
}

/// `host` of `host[:port]` (IPv6 brackets kept).
pub fn host_only(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .split(']')
            .next()
            .map_or(authority, |h| &authority[..=h.len()]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            authority
        }
    })
}

fn build(
    req: &Request,
    uri: String,
    with_host: bool,
) -> Result<http::Request<Empty<Bytes>>, ClientError> {
    let method = http::Method::from_bytes(req.method.as_bytes())
        .map_err(|e| ClientError::Http(format!("method: {e}")))?;
    let mut b = http::Request::builder().method(method).uri(uri);
    if with_host {
        b = b.header(http::header::HOST, &req.authority);
    }
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Empty::new())
        .map_err(|e| ClientError::Http(e.to_string()))
}

async fn read(
    resp: http::Response<hyper::body::Incoming>,
    asked: bool,
) -> Result<Response, ClientError> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Http(format!("reading body: {e}")))?
        .to_bytes();
    Ok(Response {
        status,
        headers,
        body,
        client_cert_requested: asked,
    })
}

async fn http1<T>(io: TokioIo<T>, req: &Request, asked: bool) -> Result<Response, ClientError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    tokio::spawn(conn);
    let r = build(req, req.path.clone(), true)?;
    let resp = send
        .send_request(r)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    read(resp, asked).await
}

async fn http2<T>(
    io: TokioIo<T>,
    req: &Request,
    scheme: &str,
    asked: bool,
) -> Result<Response, ClientError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    tokio::spawn(conn);
    let r = build(
        req,
        format!("{scheme}://{}{}", req.authority, req.path),
        false,
    )?;
    let resp = send
        .send_request(r)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    read(resp, asked).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_only_strips_ports() {
        assert_eq!(host_only("foo.com:8080"), "foo.com");
        assert_eq!(host_only("foo.com"), "foo.com");
        assert_eq!(host_only("127.0.0.1:80"), "127.0.0.1");
        assert_eq!(host_only("[::1]:80"), "[::1]");
    }

    #[test]
    fn go_wildcards_match_one_label() {
        assert!(go_name_matches("*.org", "example.org"));
        assert!(go_name_matches(
            "*.wildcard.org",
            "Third-Example.wildcard.org"
        ));
        assert!(!go_name_matches("*.org", "a.b.org"));
        assert!(!go_name_matches("*.org", "org"));
        assert!(go_name_matches("abc.example.com", "abc.example.com"));
        assert!(!go_name_matches("abc.example.com", "x.example.com"));
    }

    #[test]
    fn protocols_parse() {
        assert_eq!(
            Protocol::parse(Some("H2C_PRIOR_KNOWLEDGE"), "http"),
            Some(Protocol::H2c)
        );
        assert_eq!(Protocol::parse(None, "https"), Some(Protocol::Https1));
        assert_eq!(Protocol::parse(Some("GRPC"), "http"), None);
    }
}
