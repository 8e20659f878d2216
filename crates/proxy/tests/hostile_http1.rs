//! Hostile HTTP/1 clients written byte by byte on a raw socket: ambiguous framing, malformed
//! headers, oversized heads, slowloris and pipelining. Every case also checks that a normal
//! request still succeeds afterwards (and, for slowloris, while the attack is in progress).

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trellis_proxy::{Proxy, ProxyOptions};

/// A proxy on a fresh port forwarding everything to one echo backend.
async fn gateway(header_read: Duration) -> (Arc<Proxy>, Backend, u16) {
    let b = backend("b").await;
    let port = free_port();
    let p = Proxy::new(ProxyOptions {
        header_read_timeout: header_read,
        ..Default::default()
    });
    p.apply(simple(
        port,
        vec![route("r", prefix("/"), to("b"))],
        vec![cluster("b", &[&b])],
    ))
    .await
    .unwrap();
    (Arc::new(p), b, port)
}

/// What came back on one raw connection.
struct Raw {
    bytes: Vec<u8>,
    /// The server closed the connection (EOF or reset) within the read window.
    closed: bool,
}

impl Raw {
    /// Status codes of every response head in the bytes, in order.
    fn statuses(&self) -> Vec<u16> {
        let text = String::from_utf8_lossy(&self.bytes);
        text.match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
            .collect()
    }
    fn first_status(&self) -> Option<u16> {
        self.statuses().first().copied()
    }
    /// The start of the answer, for failure messages.
    fn head(&self) -> String {
        String::from_utf8_lossy(&self.bytes[..self.bytes.len().min(300)]).into_owned()
    }
}

/// Writes `raw` (ignoring write errors: the server may close early), then reads until EOF or
/// `window` passes.
async fn exchange(port: u16, raw: &[u8], window: Duration) -> Raw {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = s.write_all(raw).await;
    read_all(&mut s, window).await
}

async fn read_all(s: &mut TcpStream, window: Duration) -> Raw {
    let deadline = Instant::now() + window;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Raw {
                    bytes,
                    closed: true,
                }
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => {
                return Raw {
                    bytes,
                    closed: false,
                }
            }
        }
    }
}

async fn assert_healthy(port: u16) {
    let ans = get(port, "/healthy", None).await;
    assert_eq!(ans.status, 200, "a normal request fails after the attack");
}

const WINDOW: Duration = Duration::from_secs(3);

/// Sends each request on its own connection; expects `status` and a closed connection, the
/// smuggled path never reaching the backend, and the proxy still serving.
async fn expect_rejected(port: u16, b: &Backend, cases: &[(&str, Vec<u8>)], status: u16) {
    for (what, raw) in cases {
        let r = exchange(port, raw, WINDOW).await;
        assert_eq!(r.first_status(), Some(status), "{what}: got {:?}", r.head());
        assert!(r.closed, "{what}: connection left open after {status}");
        assert!(
            !b.seen().iter().any(|p| p.contains("smuggled")),
            "{what}: a smuggled request reached the backend: {:?}",
            b.seen()
        );
        assert_healthy(port).await;
    }
}

fn req(head: &str, body: &str) -> Vec<u8> {
    format!("{head}\r\n\r\n{body}").into_bytes()
}

const SMUGGLED: &str = "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

/// hyper alone would follow RFC 9112's other option (Transfer-Encoding wins, then close); the
/// proxy's stream tracker (`sniff.rs`) sees both headers, in either order, and refuses.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_rejected_with_400() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let cl = format!("Content-Length: {}", SMUGGLED.len());
    let te = "Transfer-Encoding: chunked";
    let cases = [
        (
            "CL then TE",
            req(
                &format!("POST /cl-te HTTP/1.1\r\nHost: a\r\n{cl}\r\n{te}"),
                SMUGGLED,
            ),
        ),
        (
            "TE then CL",
            req(
                &format!("POST /cl-te HTTP/1.1\r\nHost: a\r\n{te}\r\n{cl}"),
                SMUGGLED,
            ),
        ),
    ];
    expect_rejected(port, &b, &cases, 400).await;
    assert!(!b.seen().iter().any(|p| p == "/cl-te"), "{:?}", b.seen());
}

/// The same on a kept-alive connection, after requests whose bodies (sized and chunked) look
/// like heads with both headers: only the real second head is refused.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_rejected_after_other_requests() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let decoy = "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut raw = req(
        &format!(
            "POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: {}",
            decoy.len()
        ),
        decoy,
    );
    raw.extend(req(
        "POST /second HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked",
        &format!("{:x}\r\n{decoy}\r\n0\r\n\r\n", decoy.len()),
    ));
    raw.extend(req(
        &format!(
            "POST /third HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: {}",
            SMUGGLED.len()
        ),
        SMUGGLED,
    ));
    let r = exchange(port, &raw, WINDOW).await;
    assert_eq!(
        r.statuses(),
        [200, 200, 400],
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert!(r.closed, "connection left open after the 400");
    assert_eq!(b.seen(), ["/first", "/second"]);
    assert_healthy(port).await;
}

/// RFC 9112 §6.1 minimum for CL+TE: process by Transfer-Encoding alone and close afterwards,
/// so nothing after the chunked body is read as a next request.
#[tokio::test]
async fn content_length_with_transfer_encoding_never_smuggles() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let head = format!(
        "POST /cl-te HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nTransfer-Encoding: chunked",
        SMUGGLED.len()
    );
    let r = exchange(port, &req(&head, SMUGGLED), WINDOW).await;
    assert!(r.closed, "connection kept alive after CL+TE");
    assert!(
        r.statuses().len() <= 1,
        "second response: {:?}",
        r.statuses()
    );
    assert!(!b.seen().iter().any(|p| p.contains("smuggled")));
    assert_healthy(port).await;
}

#[tokio::test]
async fn differing_content_lengths_are_rejected() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let cases = [
        (
            "two headers",
            req(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 41",
                SMUGGLED,
            ),
        ),
        (
            "one list",
            req(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 41",
                SMUGGLED,
            ),
        ),
        (
            "sign",
            req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5", SMUGGLED),
        ),
    ];
    expect_rejected(port, &b, &cases, 400).await;
}

#[tokio::test]
async fn obfuscated_transfer_encoding_is_rejected() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let te = |v: &str| req(&format!("POST / HTTP/1.1\r\nHost: a\r\n{v}"), SMUGGLED);
    let cases = [
        ("xchunked", te("Transfer-Encoding: xchunked")),
        ("quoted", te("Transfer-Encoding: \"chunked\"")),
        ("not final", te("Transfer-Encoding: chunked, identity")),
        ("space before colon", te("Transfer-Encoding : chunked")),
        ("vertical tab", te("Transfer-Encoding:\x0bchunked")),
        (
            "second header not chunked",
            te("Transfer-Encoding: chunked\r\nTransfer-Encoding: x"),
        ),
        (
            "chunked twice",
            te("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
        ),
        (
            "chunked twice in a list",
            te("Transfer-Encoding: chunked, chunked"),
        ),
        (
            "HTTP/1.0",
            req(
                "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked",
                SMUGGLED,
            ),
        ),
    ];
    expect_rejected(port, &b, &cases, 400).await;
}

/// RFC 9112 §6.1: a transfer coding the proxy does not implement gets 501 (forwarding the body
/// un-chunked but still gzip-coded, with no header saying so, would corrupt it).
#[tokio::test]
async fn unimplemented_transfer_coding_gets_501() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let head = "POST /gzip HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked";
    expect_rejected(port, &b, &[("gzip, chunked", req(head, SMUGGLED))], 501).await;
    assert!(!b.seen().iter().any(|p| p == "/gzip"));
}

#[tokio::test]
async fn obs_fold_continuation_is_rejected() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let cases = [
        (
            "folded value",
            req("GET /fold HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b", ""),
        ),
        (
            "folded transfer-encoding",
            req(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked",
                SMUGGLED,
            ),
        ),
    ];
    expect_rejected(port, &b, &cases, 400).await;
    assert!(!b.seen().iter().any(|p| p == "/fold"));
}

#[tokio::test]
async fn invalid_header_names_and_values_are_rejected() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let h = |line: &[u8]| {
        let mut v = b"GET /bad HTTP/1.1\r\nHost: a\r\n".to_vec();
        v.extend_from_slice(line);
        v.extend_from_slice(b"\r\n\r\n");
        v
    };
    let cases = [
        ("space in name", h(b"Bad Name: x")),
        ("empty name", h(b": x")),
        ("NUL in value", h(b"X-Nul: a\x00b")),
        ("CR in value", h(b"X-Cr: a\rb")),
        ("control in name", h(b"X-\x01: v")),
        ("DEL in name", h(b"X\x7f: v")),
        ("separator in name", h(b"X(y): v")),
        ("no colon", h(b"X-No-Colon")),
    ];
    expect_rejected(port, &b, &cases, 400).await;
    assert!(b.seen().iter().all(|p| p == "/healthy"), "{:?}", b.seen());
}

/// Routing uses Host: two different ones are ambiguous (RFC 9112 §3.2: 400).
#[tokio::test]
async fn duplicate_host_headers_are_rejected() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let cases = [
        (
            "two hosts",
            req("GET /two-hosts HTTP/1.1\r\nHost: a\r\nHost: b", ""),
        ),
        (
            "the same host twice",
            req("GET /two-hosts HTTP/1.1\r\nHost: a\r\nHost: a", ""),
        ),
    ];
    expect_rejected(port, &b, &cases, 400).await;
    assert!(!b.seen().iter().any(|p| p == "/two-hosts"));
}

/// RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400; HTTP/1.0 may omit it.
#[tokio::test]
async fn http11_without_host_is_rejected() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let cases = [
        ("no host", req("GET /no-host HTTP/1.1", "")),
        (
            "absolute form, no host",
            req("GET http://a/no-host HTTP/1.1", ""),
        ),
    ];
    expect_rejected(port, &b, &cases, 400).await;
    assert!(!b.seen().iter().any(|p| p.contains("no-host")));
    let r = exchange(port, &req("GET /old HTTP/1.0", ""), WINDOW).await;
    assert!(
        r.head().starts_with("HTTP/1.0 200"),
        "HTTP/1.0: {:?}",
        r.head()
    );
}

fn big_headers(total: usize) -> Vec<u8> {
    let mut head = String::from("GET /big HTTP/1.1\r\nHost: a");
    let mut i = 0;
    while head.len() < total {
        head.push_str(&format!("\r\nX-Pad-{i}: {}", "a".repeat(4000)));
        i += 1;
    }
    req(&head, "")
}

/// hyper's own bound (its ~400 KiB read buffer).
#[tokio::test]
async fn headers_over_1_mib_get_431() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    expect_rejected(port, &b, &[("1 MiB", big_headers(1 << 20))], 431).await;
}

/// A proxy-sized limit (the default `max_request_header_bytes` is 64 KiB; Envoy's is 60 KiB):
/// 96 KiB of headers must not be forwarded, 60 KiB are.
#[tokio::test]
async fn headers_over_96_kib_get_431() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    expect_rejected(port, &b, &[("96 KiB", big_headers(96 << 10))], 431).await;
    assert!(!b.seen().iter().any(|p| p == "/big"));
    let r = exchange(port, &big_headers(60 << 10), WINDOW).await;
    assert_eq!(r.first_status(), Some(200), "{}", r.head());
}

#[tokio::test]
async fn too_many_headers_get_431() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let mut head = String::from("GET /many HTTP/1.1\r\nHost: a");
    for i in 0..200 {
        head.push_str(&format!("\r\nX-H-{i}: v"));
    }
    expect_rejected(port, &b, &[("200 headers", req(&head, ""))], 431).await;
}

/// Beyond the default 8 KiB `max_uri_bytes`; 8 000 bytes pass.
#[tokio::test]
async fn oversized_uri_gets_414() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let head = format!("GET /{} HTTP/1.1\r\nHost: a", "u".repeat(10_000));
    expect_rejected(port, &b, &[("10 kB URI", req(&head, ""))], 414).await;
    let ok = format!(
        "GET /{} HTTP/1.1\r\nHost: a\r\nConnection: close",
        "u".repeat(8_000)
    );
    let r = exchange(port, &req(&ok, ""), WINDOW).await;
    assert_eq!(r.first_status(), Some(200), "{}", r.head());
}

/// The request line counts towards the 64 KiB head limit (as in Envoy): a 70 kB target is
/// refused by it, with 431, before the URI check.
#[tokio::test]
async fn uri_beyond_the_head_limit_gets_431() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let head = format!("GET /{} HTTP/1.1\r\nHost: a", "u".repeat(70_000));
    expect_rejected(port, &b, &[("70 kB URI", req(&head, ""))], 431).await;
}

/// Headers trickle in one byte per 100 ms: the connection must end (408 or close) within the
/// header read timeout, and other clients are served meanwhile.
#[tokio::test]
async fn slowloris_is_cut_off_by_header_read_timeout() {
    let timeout = Duration::from_secs(1);
    let (_p, _b, port) = gateway(timeout).await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "GET /slow HTTP/1.1\r\nHost: a\r\nX-Slow: {}\r\n\r\n",
        "s".repeat(200)
    );
    let started = Instant::now();
    let mut cut_after = None;
    for (i, byte) in head.bytes().enumerate() {
        if s.write_all(&[byte]).await.is_err() {
            cut_after = Some(started.elapsed());
            break;
        }
        if i == 3 {
            // During the attack: others are served.
            assert_healthy(port).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Stop writing as soon as the server has answered or closed.
        let mut probe = [0u8; 1];
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(1), s.peek(&mut probe)).await
        {
            cut_after = Some(started.elapsed());
            break;
        }
    }
    let cut_after = cut_after.expect("the slow client got through all its headers");
    let r = read_all(&mut s, WINDOW).await;
    assert!(r.closed, "slow connection not closed: {:?}", r.head());
    let statuses = r.statuses();
    assert!(
        statuses.is_empty() || statuses == [408],
        "unexpected answer to a slow client: {statuses:?}"
    );
    // Generous bound: the cut happens at about `timeout`, far before the 20 s of trickling.
    assert!(
        cut_after < timeout * 5,
        "slow client cut only after {cut_after:?}"
    );
    assert_healthy(port).await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_p, b, port) = gateway(Duration::from_secs(5)).await;
    let mut raw = Vec::new();
    for i in 0..10 {
        raw.extend_from_slice(
            format!(
                "GET /pipe/{i}?delay_ms={} HTTP/1.1\r\nHost: a\r\n\r\n",
                (10 - i) * 5
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(b"GET /pipe/last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = exchange(port, &raw, Duration::from_secs(10)).await;
    assert!(r.closed);
    assert_eq!(r.statuses(), vec![200; 11]);
    let text = String::from_utf8_lossy(&r.bytes);
    let order: Vec<usize> = (0..10)
        .map(|i| {
            text.find(&format!("\"/pipe/{i}?"))
                .unwrap_or_else(|| panic!("no answer for /pipe/{i}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert!(text.find("/pipe/last").unwrap() > order[9]);
    assert_eq!(b.seen().len(), 11);
    assert_healthy(port).await;
}

/// A client that connects and never sends a byte must not hold its connection forever.
#[tokio::test]
async fn silent_connection_is_closed_by_the_header_read_timeout() {
    let timeout = Duration::from_secs(1);
    let (_p, _b, port) = gateway(timeout).await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Generous: 5 × the timeout.
    let r = read_all(&mut s, timeout * 5).await;
    assert!(
        r.closed,
        "a silent connection is still open after {:?}",
        timeout * 5
    );
    assert_healthy(port).await;
}

/// After one answered request, an idle keep-alive connection is closed in bounded time too.
#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let timeout = Duration::from_secs(1);
    let (_p, _b, port) = gateway(timeout).await;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /once HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let r = read_all(&mut s, timeout * 5).await;
    assert_eq!(r.first_status(), Some(200));
    assert!(
        r.closed,
        "an idle keep-alive connection is still open after {:?}",
        timeout * 5
    );
}
