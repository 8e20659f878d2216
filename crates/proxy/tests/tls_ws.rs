//! HTTPS with SNI certificate selection and misdirected requests; WebSocket splicing.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::net::TcpStream;
use trellis_ir as ir;

struct Cert {
    ir: ir::Certificate,
    der: CertificateDer<'static>,
}

fn cert(name: &str, sans: &[&str]) -> Cert {
    let k =
        rcgen::generate_simple_self_signed(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    Cert {
        ir: ir::Certificate {
            name: name.into(),
            cert_pem: k.cert.pem(),
            key_pem: k.signing_key.serialize_pem(),
        },
        der: k.cert.der().clone(),
    }
}

/// TLS-connects with `sni`, trusting only `trust`; returns the peer certificate and ALPN.
async fn handshake(
    port: u16,
    sni: &str,
    trust: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
}

/// One request over an established TLS stream, HTTP/2 when ALPN chose it.
async fn request(
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    host: &str,
) -> (http::StatusCode, serde_json::Value) {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let req = http::Request::builder().uri(format!("https://{host}/path"));
    let resp = if h2 {
        let (mut s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        s.send_request(req.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap()
    } else {
        let (mut s, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let req = req
            .header("host", host)
            .body(Empty::<Bytes>::new())
            .unwrap();
        s.send_request(req).await.unwrap()
    };
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn https_picks_certificate_by_sni_and_detects_misdirection() {
    let (a, b) = (backend("a").await, backend("b").await);
    let port = free_port();
    let c1 = cert("one", &["one.example", "unknown.example"]);
    let c2 = cert("wild", &["*.two.example"]);
    let mut l1 = listener(
        Some("one.example"),
        vec![vhost(
            "one.example",
            vec![route("r1", prefix("/"), to("a"))],
        )],
    );
    l1.certificates = vec![c1.ir.clone()];
    let mut l2 = listener(
        Some("*.two.example"),
        vec![vhost(
            "*.two.example",
            vec![route("r2", prefix("/"), to("b"))],
        )],
    );
    l2.certificates = vec![c2.ir.clone()];
    let mut bind = http_bind(port, vec![l1, l2]);
    bind.protocol = ir::BindProtocol::Https;
    let cfg = ir::Config {
        binds: vec![bind],
        clusters: vec![cluster("a", &[&a]), cluster("b", &[&b])],
        ..Default::default()
    };
    let p = proxy();
    assert!(p.apply(Arc::new(cfg)).await.unwrap().bind_errors.is_empty());

    for alpn in [&[b"h2".as_slice()][..], &[b"http/1.1".as_slice()][..]] {
        let tls = handshake(port, "one.example", &c1.der, alpn)
            .await
            .expect("cert one for one.example");
        let (status, body) = request(tls, "one.example").await;
        assert_eq!(status, 200);
        assert_eq!(body["backend"], "a");
        let tls = handshake(port, "x.two.example", &c2.der, alpn)
            .await
            .expect("wildcard cert");
        let (status, body) = request(tls, "x.two.example").await;
        assert_eq!(
            (status.as_u16(), body["backend"].as_str()),
            (200, Some("b"))
        );
    }
    // SNI picked listener one; Host names listener two.
    let tls = handshake(port, "one.example", &c1.der, &[b"h2"])
        .await
        .unwrap();
    assert_eq!(request(tls, "y.two.example").await.0, 421);
    // Unknown SNI gets the fallback (first listener's) certificate, which covers that name.
    let tls = handshake(port, "unknown.example", &c1.der, &[b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(request(tls, "unknown.example").await.0, 404);
}

#[tokio::test]
async fn websocket_upgrade_is_spliced() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let a = backend("ws").await;
    let port = free_port();
    let mut ws = cluster("ws", &[&a]);
    ws.protocol = ir::UpstreamProtocol::WebSocket;
    let p = proxy();
    p.apply(simple(
        port,
        vec![route("ws", prefix("/"), to("ws"))],
        vec![ws],
    ))
    .await
    .unwrap();
    let (mut s, resp) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .expect("upgrade through the proxy");
    assert_eq!(resp.status(), 101);
    s.send(Message::text("hello")).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap(), Message::text("hello"));
    s.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    // The tunnel survives a configuration change that keeps the bind.
    let a2 = backend("other").await;
    let mut ws2 = cluster("ws", &[&a2]);
    ws2.protocol = ir::UpstreamProtocol::WebSocket;
    p.apply(simple(
        port,
        vec![route("ws", prefix("/"), to("ws"))],
        vec![ws2],
    ))
    .await
    .unwrap();
    s.send(Message::text("again")).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap(), Message::text("again"));
}

#[tokio::test]
async fn tunnels_on_a_removed_bind_live_until_the_drain_deadline() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let a = backend("ws").await;
    let (port, other) = (free_port(), free_port());
    let p = proxy();
    let cfg = |port| {
        simple(
            port,
            vec![route("ws", prefix("/"), to("ws"))],
            vec![cluster("ws", &[&a])],
        )
    };
    p.apply(cfg(port)).await.unwrap();
    let (mut s, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .unwrap();
    // Removing the bind (30 s default drain) closes the socket but not the tunnel.
    p.apply(cfg(other)).await.unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
    s.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap(),
        Message::text("still here")
    );
    // A short shutdown deadline ends it.
    p.shutdown(std::time::Duration::from_millis(200)).await;
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), s.next()).await;
    assert!(
        matches!(end, Ok(None) | Ok(Some(Err(_)))),
        "tunnel closed: {end:?}"
    );
}
