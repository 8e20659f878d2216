//! `/retry/…`: status answers, TCP resets, per-uuid and per-instance counters.

mod common;

use common::*;
use http::StatusCode;
use http_body_util::Empty;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn response_code_then_echo() {
    let echo = start(options()).await;
    let path = "/retry/code?uuid=u1&succeedAfter=2&responseCode=503";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = http1(echo.local_addr, get(path).body(Empty::new()).unwrap())
            .await
            .unwrap();
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [503, 503, 200]);
    // Another uuid has its own counter.
    let other = "/retry/code?uuid=u2&succeedAfter=1&responseCode=500";
    let reply = http1(echo.local_addr, get(other).body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let reply = http1(echo.local_addr, get(path).body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.json()["path"], path);
    echo.shutdown();
}

#[tokio::test]
async fn counters_are_per_instance() {
    let a = start(options()).await;
    let b = start(options()).await;
    let path = "/retry/x?uuid=same&succeedAfter=1&responseCode=502";
    for echo in [&a, &b] {
        let reply = http1(echo.local_addr, get(path).body(Empty::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    }
    a.shutdown();
    b.shutdown();
}

/// Sends one HTTP/1.1 request; returns what was read before EOF, or the read error together
/// with the bytes read before it.
async fn raw_request(
    addr: std::net::SocketAddr,
    path: &str,
) -> Result<Vec<u8>, (std::io::Error, Vec<u8>)> {
    let mut tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| (e, Vec::new()))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: retry.example\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| (e, Vec::new()))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(err) => return Err((err, out)),
        }
    }
}

#[tokio::test]
async fn without_response_code_the_connection_is_reset() {
    reset_then_echo().await;
}

// The conformance runner uses a multi-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_works_on_a_multi_threaded_runtime() {
    reset_then_echo().await;
}

async fn reset_then_echo() {
    let echo = start(options()).await;
    let path = "/retry/reset?uuid=r1&succeedAfter=2";
    for _ in 0..2 {
        let (err, before) = bounded(raw_request(echo.local_addr, path))
            .await
            .expect_err("connection must be reset");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        assert!(
            before.is_empty(),
            "no response before the reset: {before:?}"
        );
    }
    let ok = bounded(raw_request(echo.local_addr, path)).await.unwrap();
    let text = String::from_utf8_lossy(&ok);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("\"path\":\"/retry/reset?uuid=r1&succeedAfter=2\""),
        "{text}"
    );
    assert_eq!(echo.request_log(), vec![path; 3]);
    echo.shutdown();
}

#[tokio::test]
async fn reset_also_fails_an_h2c_client() {
    let echo = start(options()).await;
    let path = "http://h2.example/retry/reset?uuid=h&succeedAfter=1";
    let first = h2c(echo.local_addr, get(path).body(Empty::new()).unwrap()).await;
    assert!(first.is_err(), "first attempt must fail: {first:?}");
    let second = h2c(echo.local_addr, get(path).body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(second.status, StatusCode::OK);
    echo.shutdown();
}

#[tokio::test]
async fn missing_parameters_are_a_bad_request() {
    let echo = start(options()).await;
    for path in [
        "/retry/x?succeedAfter=1",
        "/retry/x?uuid=a",
        "/retry/x?uuid=a&succeedAfter=1&delayRetry=x",
    ] {
        let reply = http1(echo.local_addr, get(path).body(Empty::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
    }
    echo.shutdown();
}
