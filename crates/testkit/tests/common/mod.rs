//! Helpers shared by the integration tests: start an echo on 127.0.0.1:0 and talk to it with
//! real clients (hyper HTTP/1.1 and h2c, rustls HTTPS). Every network wait is bounded.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use trellis_testkit::echo::{spawn, EchoHandle, EchoOptions};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs `fut`, failing the test if it takes longer than [`LIMIT`].
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut)
        .await
        .expect("operation timed out")
}

pub async fn start(options: EchoOptions) -> EchoHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    spawn(listener, options)
}

pub fn options() -> EchoOptions {
    EchoOptions::new("gateway-conformance-infra", "infra-backend-v1-abc-xyz")
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("echo body is JSON")
    }
}

pub fn get(uri: &str) -> http::request::Builder {
    Request::builder().method("GET").uri(uri)
}

/// One HTTP/1.1 request on a new connection over `io`.
pub async fn http1_over<I>(io: I, req: Request<Empty<Bytes>>) -> Result<Reply, BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(req).await?;
    collect(response).await
}

/// One HTTP/2 request (prior knowledge) on a new connection over `io`. `req`'s URI must be
/// absolute: its authority becomes `:authority`.
pub async fn h2_over<I>(io: I, req: Request<Empty<Bytes>>) -> Result<Reply, BoxError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let response = sender.send_request(req).await?;
    collect(response).await
}

pub async fn http1(addr: SocketAddr, req: Request<Empty<Bytes>>) -> Result<Reply, BoxError> {
    bounded(async { http1_over(TcpStream::connect(addr).await?, req).await }).await
}

pub async fn h2c(addr: SocketAddr, req: Request<Empty<Bytes>>) -> Result<Reply, BoxError> {
    bounded(async { h2_over(TcpStream::connect(addr).await?, req).await }).await
}

async fn collect(response: http::Response<hyper::body::Incoming>) -> Result<Reply, BoxError> {
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A self-signed certificate for `names`: (cert PEM, key PEM, cert DER).
pub fn self_signed(names: &[&str]) -> (String, String, Vec<u8>) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names).expect("rcgen");
    (
        certified.cert.pem(),
        certified.signing_key.serialize_pem(),
        certified.cert.der().to_vec(),
    )
}

/// A rustls client trusting `server_cert_der`, offering `alpn`, optionally with a client cert.
pub fn tls_connector(
    server_cert_der: &[u8],
    alpn: &[&[u8]],
    client_auth: Option<(&str, &str)>,
) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(server_cert_der.to_vec()))
        .expect("trust anchor");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match client_auth {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("client cert")],
                PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("client key"),
            )
            .expect("client auth"),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

pub async fn tls_connect(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    sni: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_string())?;
    Ok(connector.connect(name, tcp).await?)
}
