//! Hostile TLS clients on an HTTPS bind: silent after connecting, a record header that never
//! completes, plain text instead of a ClientHello. Each is closed within the TLS handshake
//! timeout, and a real TLS client is served afterwards.

mod common;

use common::*;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trellis_ir as ir;
use trellis_proxy::{Proxy, ProxyOptions};

const HANDSHAKE: Duration = Duration::from_secs(1);

async fn https_gateway() -> (Proxy, u16, CertificateDer<'static>) {
    let b = backend("b").await;
    let k = rcgen::generate_simple_self_signed(vec!["a.example.com".to_string()]).unwrap();
    let port = free_port();
    let mut l = listener(
        None,
        vec![vhost("*", vec![route("r", prefix("/"), to("b"))])],
    );
    l.certificates = vec![ir::Certificate {
        name: "default/cert".into(),
        cert_pem: k.cert.pem(),
        key_pem: k.signing_key.serialize_pem(),
    }];
    let mut bind = http_bind(port, vec![l]);
    bind.protocol = ir::BindProtocol::Https;
    let p = Proxy::new(ProxyOptions {
        tls_handshake_timeout: HANDSHAKE,
        ..Default::default()
    });
    p.apply(Arc::new(ir::Config {
        binds: vec![bind],
        clusters: vec![cluster("b", &[&b])],
        ..Default::default()
    }))
    .await
    .unwrap();
    (p, port, k.cert.der().clone())
}

/// Sends `bytes`, then waits (at most 5 × the handshake timeout) for the server to close.
async fn closed_after(port: u16, bytes: &[u8]) -> Option<Duration> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let started = Instant::now();
    s.write_all(bytes).await.unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < HANDSHAKE * 5 {
        match tokio::time::timeout(HANDSHAKE * 5, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {} // e.g. a TLS alert; keep reading until the close
            Err(_) => return None,
        }
    }
    None
}

/// A full TLS handshake and one request succeed.
async fn assert_tls_healthy(port: u16, trust: &CertificateDer<'static>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("a.example.com").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("TLS handshake after the attack");
    tls.write_all(b"GET /ok HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&out[..out.len().min(200)])
    );
}

#[tokio::test]
async fn silent_tls_client_is_closed_within_the_handshake_timeout() {
    let (_p, port, trust) = https_gateway().await;
    let after = closed_after(port, b"").await;
    assert!(after.is_some(), "a silent TLS client is still connected");
    assert_tls_healthy(port, &trust).await;
}

#[tokio::test]
async fn unfinished_client_hello_is_closed_within_the_handshake_timeout() {
    let (_p, port, trust) = https_gateway().await;
    // A handshake record header announcing 16 KiB, then nothing.
    let after = closed_after(port, &[0x16, 0x03, 0x01, 0x40, 0x00, 0x01]).await;
    assert!(after.is_some(), "a half ClientHello holds the connection");
    assert_tls_healthy(port, &trust).await;
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_closed() {
    let (_p, port, trust) = https_gateway().await;
    let after = closed_after(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(after.is_some(), "plain HTTP on the TLS port left open");
    assert_tls_healthy(port, &trust).await;
}
