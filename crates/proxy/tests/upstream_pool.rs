//! The HTTP/1 upstream pool seen from a raw backend: connections are reused across requests
//! (sequential and concurrent, small, large and chunked bodies), a pooled connection the
//! backend closed is replaced without failing the request, a backend that answers before
//! reading the request body still gets all of it, and a connection whose response the client
//! dropped early is never reused.

mod common;

use common::{client, free_port, prefix, route, send, send_body, simple, to};
use hyper::body::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use trellis_ir as ir;

#[derive(Clone, Copy)]
enum Mode {
    /// Keep-alive; the body is `ok`, or 64 KiB for `/big`, or chunked for `/chunked`.
    KeepAlive,
    /// One response per connection, then close without saying so (no `Connection: close`).
    CloseAfterOne,
    /// Answers as soon as the head is read, then reads the request body.
    AnswerEarly,
}

struct Raw {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Request body bytes read.
    body_bytes: Arc<AtomicUsize>,
}

impl Raw {
    async fn start(mode: Mode) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let body_bytes = Arc::new(AtomicUsize::new(0));
        let (count, bytes) = (accepted.clone(), body_bytes.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(s, mode, bytes.clone()));
            }
        });
        Raw {
            addr,
            accepted,
            body_bytes,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn cluster(&self) -> ir::Cluster {
        ir::Cluster {
            tls: None,
            name: "raw".into(),
            protocol: ir::UpstreamProtocol::Http1,
            endpoints: vec![ir::Endpoint::Socket(self.addr)],
        }
    }
}

/// Reads one request head; returns it and any bytes after it.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            buf.drain(..i + 4);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

async fn serve(mut s: TcpStream, mode: Mode, body_bytes: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    while let Some(head) = read_head(&mut s, &mut buf).await {
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        if let Mode::AnswerEarly = mode {
            if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nearly")
                .await
                .is_err()
            {
                return;
            }
        }
        // Consume the request body (slowly when answering early).
        let want = content_length(&head);
        if let Mode::AnswerEarly = mode {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while buf.len() < want {
            let mut chunk = [0u8; 65536];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..want);
        body_bytes.fetch_add(want, Ordering::SeqCst);
        if let Mode::AnswerEarly = mode {
            continue;
        }
        let resp: Vec<u8> = match path.as_str() {
            "/big" => {
                let mut r = b"HTTP/1.1 200 OK\r\ncontent-length: 65536\r\n\r\n".to_vec();
                r.extend(std::iter::repeat_n(b'b', 65536));
                r
            }
            "/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec(),
            "/empty" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
        };
        if s.write_all(&resp).await.is_err() {
            return;
        }
        if let Mode::CloseAfterOne = mode {
            return;
        }
    }
}

async fn gateway(raw: &Raw) -> (trellis_proxy::Proxy, u16) {
    let port = free_port();
    let p = common::proxy();
    p.apply(simple(
        port,
        vec![route("all", prefix("/"), to("raw"))],
        vec![raw.cluster()],
    ))
    .await
    .unwrap();
    (p, port)
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let raw = Raw::start(Mode::KeepAlive).await;
    let (_p, port) = gateway(&raw).await;
    let c = client();
    for i in 0..30 {
        let (path, body): (&str, &[u8]) = match i % 4 {
            0 => ("/", b"ok"),
            1 => ("/chunked", b"abcde"),
            2 => ("/empty", b""),
            _ => ("/post", b"ok"),
        };
        let a = if path == "/post" {
            send_body(
                &c,
                port,
                "POST",
                path,
                None,
                &[],
                Bytes::from(vec![b'x'; 3000]),
            )
            .await
        } else {
            send(&c, port, "GET", path, None, &[]).await
        };
        assert!(a.status.is_success(), "request {i} {path}: {}", a.status);
        assert_eq!(&a.body[..], body, "request {i} {path}");
    }
    let big = send(&c, port, "GET", "/big", None, &[]).await;
    assert_eq!(big.body.len(), 65536);
    assert_eq!(
        raw.accepted(),
        1,
        "every request should reuse the first connection"
    );
}

#[tokio::test]
async fn concurrent_requests_reuse_connections() {
    let raw = Raw::start(Mode::KeepAlive).await;
    let (_p, port) = gateway(&raw).await;
    let c = client();
    for _ in 0..10 {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let c = c.clone();
            set.spawn(async move { send(&c, port, "GET", "/big", None, &[]).await });
        }
        while let Some(a) = set.join_next().await {
            let a = a.unwrap();
            assert_eq!(a.status, 200);
            assert_eq!(a.body.len(), 65536);
        }
    }
    // 160 requests, at most 16 at a time.
    assert!(
        raw.accepted() <= 16,
        "{} upstream connections",
        raw.accepted()
    );
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_backend_is_replaced() {
    let raw = Raw::start(Mode::CloseAfterOne).await;
    let (_p, port) = gateway(&raw).await;
    let c = client();
    for i in 0..20 {
        // Give the backend's close time to arrive, as with an idle keep-alive timeout.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let a = send(&c, port, "GET", "/", None, &[]).await;
        assert_eq!(a.status, 200, "request {i}");
        assert_eq!(&a.body[..], b"ok");
    }
    assert_eq!(raw.accepted(), 20);
}

#[tokio::test]
async fn an_early_answer_still_gets_the_whole_request_body() {
    let raw = Raw::start(Mode::AnswerEarly).await;
    let (_p, port) = gateway(&raw).await;
    let c = client();
    const BODY: usize = 4 << 20;
    for i in 0..3 {
        // Larger than the proxy buffers for retries: streamed while the answer comes back.
        let a = send_body(
            &c,
            port,
            "POST",
            "/",
            None,
            &[],
            Bytes::from(vec![b'x'; BODY]),
        )
        .await;
        assert_eq!(a.status, 200, "request {i}");
        assert_eq!(&a.body[..], b"early");
        let g = send(&c, port, "GET", "/", None, &[]).await;
        assert_eq!(g.status, 200, "follow-up {i}");
        assert_eq!(&g.body[..], b"early");
    }
    // The uploads were finished after the answers, not cut off.
    let all = common::eventually(|| raw.body_bytes.load(Ordering::SeqCst) == 3 * BODY).await;
    assert!(
        all,
        "{} of {} body bytes arrived",
        raw.body_bytes.load(Ordering::SeqCst),
        3 * BODY
    );
}

#[tokio::test]
async fn a_response_dropped_early_does_not_poison_the_pool() {
    let raw = Raw::start(Mode::KeepAlive).await;
    let (_p, port) = gateway(&raw).await;
    for _ in 0..3 {
        // Read the head of a 64 KiB answer and hang up.
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 64];
        s.read_exact(&mut head).await.unwrap();
        assert!(head.starts_with(b"HTTP/1.1 200"));
        drop(s);
        let a = send(&client(), port, "GET", "/", None, &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(&a.body[..], b"ok");
    }
}
