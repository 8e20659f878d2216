//! The runner's HTTP client against real local servers: HTTP/1.1, h2c, HTTPS and h2 over TLS
//! trusting the suite's self-signed Gateway certificate, and client-certificate requests.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;
use trellis_conformance::certs::CertStore;
use trellis_conformance::client::{send, Protocol, Request, TlsClient};

const INFRA: &str = "gateway-conformance-infra";

/// Answers `<version> <host> <path>` (Host header or :authority).
async fn serve(listener: tokio::net::TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let host = req
                    .headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
                    .or_else(|| req.uri().authority().map(|a| a.to_string()))
                    .unwrap_or_default();
                let body = format!(
                    "{:?} {host} {}",
                    req.version(),
                    req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("")
                );
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .header("x-multi", "a")
                        .header("x-multi", "b")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap(),
                )
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(cfg) => {
                    if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                }
            }
        });
    }
}

fn server_config(certs: &CertStore, client_ca: Option<&str>) -> Arc<rustls::ServerConfig> {
    let pair = certs
        .secret(INFRA, "tls-validity-checks-certificate")
        .unwrap();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key).unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(cfg)
}

async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(serve(l, tls));
    addr
}

fn request(protocol: Protocol, addr: std::net::SocketAddr, tls: Option<TlsClient>) -> Request {
    Request {
        protocol,
        addr,
        authority: "example.org".into(),
        method: "GET".into(),
        path: "/p?q=1".into(),
        headers: vec![("X-Echo-Set-Header".into(), String::new())],
        tls,
    }
}

fn trust(certs: &CertStore) -> TlsClient {
    TlsClient {
        sni: "example.org".into(),
        trust_pems: vec![certs
            .secret(INFRA, "tls-validity-checks-certificate")
            .unwrap()
            .cert_pem
            .clone()],
        client_cert: None,
    }
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn plain_http1_and_h2c() {
    let addr = start(None).await;
    let r = send(&request(Protocol::Http1, addr, None), T)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "HTTP/1.1 example.org /p?q=1");
    assert_eq!(r.headers.get_all("x-multi").iter().count(), 2);
    let r = send(&request(Protocol::H2c, addr, None), T).await.unwrap();
    assert_eq!(r.body, "HTTP/2.0 example.org /p?q=1");
}

#[tokio::test]
async fn https_and_h2_trust_the_self_signed_gateway_cert() {
    let certs = CertStore::generate().unwrap();
    let addr = start(Some(server_config(&certs, None))).await;
    let r = send(&request(Protocol::Https1, addr, Some(trust(&certs))), T)
        .await
        .unwrap();
    assert_eq!(r.body, "HTTP/1.1 example.org /p?q=1");
    assert!(!r.client_cert_requested);
    let r = send(&request(Protocol::H2, addr, Some(trust(&certs))), T)
        .await
        .unwrap();
    assert_eq!(r.body, "HTTP/2.0 example.org /p?q=1");
    // A name outside the certificate's SANs (*.org, *.wildcard.org) is rejected.
    let mut bad = trust(&certs);
    bad.sni = "example.com".into();
    let (e, _) = send(&request(Protocol::Https1, addr, Some(bad)), T)
        .await
        .unwrap_err();
    assert!(e.is_transport(), "{e}");
    // Trusting another certificate fails the handshake.
    let mut other = trust(&certs);
    other.trust_pems = vec![certs
        .config_map_ca(INFRA, "tls-checks-ca-certificate")
        .unwrap()
        .to_string()];
    assert!(send(&request(Protocol::Https1, addr, Some(other)), T)
        .await
        .is_err());
}

#[tokio::test]
async fn client_certificates_are_requested_and_presented() {
    let certs = CertStore::generate().unwrap();
    let ca = certs
        .config_map_ca(INFRA, "tls-validity-checks-ca-certificate")
        .unwrap();
    let addr = start(Some(server_config(&certs, Some(ca)))).await;
    // Without a certificate the server refuses, but it did ask.
    let r = send(&request(Protocol::Https1, addr, Some(trust(&certs))), T).await;
    let (_, asked) = r.unwrap_err();
    assert!(asked, "the server's CertificateRequest was not recorded");
    let client = certs
        .secret(INFRA, "tls-validity-checks-client-certificate")
        .unwrap();
    let mut with_cert = trust(&certs);
    with_cert.client_cert = Some((client.cert_pem.clone(), client.key_pem.clone()));
    let r = send(&request(Protocol::Https1, addr, Some(with_cert)), T)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.client_cert_requested);
}
