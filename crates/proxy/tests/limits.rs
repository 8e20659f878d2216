//! Configured request limits (`ProxyOptions::limits`): header bytes and count → 431, URI
//! length → 414, over HTTP/1.1 and h2c, and the per-bind connection cap (excess connections
//! closed at accept and counted).

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trellis_proxy::{Limits, Proxy, ProxyOptions};

async fn gateway(
    limits: Limits,
) -> (
    Proxy,
    Backend,
    u16,
    Arc<Mutex<prometheus_client::registry::Registry>>,
) {
    let b = backend("b").await;
    let port = free_port();
    let registry = Arc::new(Mutex::new(prometheus_client::registry::Registry::default()));
    let p = Proxy::new(ProxyOptions {
        limits,
        registry: Some(registry.clone()),
        ..Default::default()
    });
    p.apply(simple(
        port,
        vec![route("r", prefix("/"), to("b"))],
        vec![cluster("b", &[&b])],
    ))
    .await
    .unwrap();
    (p, b, port, registry)
}

const SMALL: Limits = Limits {
    max_request_header_bytes: 16 * 1024,
    max_request_headers: 10,
    max_uri_bytes: 100,
    max_connections_per_bind: 100_000,
};

/// `n` headers of `size` bytes each (plus Host).
fn headers(n: usize, size: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("x-pad-{i}"), "a".repeat(size)))
        .collect()
}

async fn status(c: &Client, port: u16, path: &str, hs: &[(String, String)]) -> u16 {
    let hs: Vec<(&str, &str)> = hs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    send(c, port, "GET", path, None, &hs).await.status.as_u16()
}

#[tokio::test]
async fn configured_limits_apply_to_http1_and_h2c() {
    let (_p, b, port, _) = gateway(SMALL).await;
    for (proto, c) in [("http/1.1", client()), ("h2c", h2c_client())] {
        // Within every limit: 9 headers + Host, 99-byte target, ~9 KiB of headers.
        let ok_path = format!("/{}", "u".repeat(98));
        assert_eq!(
            status(&c, port, &ok_path, &headers(8, 1000)).await,
            200,
            "{proto}"
        );
        let long = format!("/{}", "u".repeat(100));
        assert_eq!(status(&c, port, &long, &[]).await, 414, "{proto} long URI");
        assert_eq!(
            status(&c, port, "/many", &headers(11, 1)).await,
            431,
            "{proto} count"
        );
        assert_eq!(
            status(&c, port, "/big", &headers(5, 4000)).await,
            431,
            "{proto} bytes"
        );
    }
    let seen = b.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|p| p.starts_with("/uuu")), "{seen:?}");
}

/// The default header count (100, hyper's own, so the listener leaves it unset) still holds.
#[tokio::test]
async fn default_header_count_applies() {
    let (_p, b, port, _) = gateway(Limits::default()).await;
    for (proto, c) in [("http/1.1", client()), ("h2c", h2c_client())] {
        // Plus Host, X-Forwarded-For and -Proto: 100 at the backend (hyper, same limit).
        assert_eq!(
            status(&c, port, "/ok", &headers(97, 1)).await,
            200,
            "{proto}"
        );
        assert_eq!(
            status(&c, port, "/many", &headers(100, 1)).await,
            431,
            "{proto}"
        );
    }
    assert_eq!(b.seen(), ["/ok", "/ok"], "the proxy refused /many itself");
}

/// A refused HTTP/1 request closes its connection (`Connection: close`, then EOF).
#[tokio::test]
async fn refused_requests_close_the_connection() {
    let (_p, _b, port, _) = gateway(SMALL).await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let raw = format!(
        "GET /{} HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
        "u".repeat(200)
    );
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got))
        .await
        .expect("connection not closed")
        .unwrap();
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 414"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert_eq!(text.matches("http/1.1 ").count(), 1, "{text}");
}

#[tokio::test]
async fn connections_beyond_the_bind_limit_are_closed_at_accept() {
    let limits = Limits {
        max_connections_per_bind: 2,
        ..Limits::default()
    };
    let (_p, _b, port, registry) = gateway(limits).await;
    // Two open keep-alive connections hold both slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    // The third is closed without an answer.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = s.write_all(b"GET /third HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let mut got = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
    assert!(r.is_ok(), "the connection over the limit stayed open");
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry.lock().unwrap()).unwrap();
    assert!(
        text.contains("trellis_proxy_connections_rejected_total{bind=") && text.contains("} 1\n"),
        "{text}"
    );
    // A freed slot serves again.
    drop(held.pop());
    let served = eventually_async(|| async { try_get(port).await == Some(200) }).await;
    assert!(served, "no connection accepted after one closed");
}

async fn try_get(port: u16) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(b"GET /again HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut got))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(got.get(9..12)?).parse().ok()
}

async fn eventually_async<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
