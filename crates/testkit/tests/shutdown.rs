//! `EchoHandle::shutdown`: stops accepting, closes open connections, idempotent.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn closes_connections_and_stops_accepting() {
    let echo = start(options()).await;
    let addr = echo.local_addr;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /keep HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = bounded(tcp.read(&mut buf)).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    echo.shutdown();
    echo.shutdown();
    bounded(echo.stopped()).await;

    // The kept-alive connection is closed by the server.
    let rest = bounded(async {
        let mut sink = Vec::new();
        tcp.read_to_end(&mut sink).await.map(|_| sink)
    })
    .await;
    assert!(rest.map(|r| r.is_empty()).unwrap_or(true));

    // New connections are refused once the listener is gone (bounded wait: the accept loop
    // notices the shutdown asynchronously).
    let refused = bounded(async {
        loop {
            match TcpStream::connect(addr).await {
                Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    let () = refused;
}

#[tokio::test]
async fn shutdown_interrupts_a_delay() {
    interrupted_delay().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_interrupts_a_delay_multi_threaded() {
    interrupted_delay().await;
}

async fn interrupted_delay() {
    let echo = start(options()).await;
    let addr = echo.local_addr;
    let pending = tokio::spawn(async move {
        http1(addr, get("/?delay=1h").body(Default::default()).unwrap()).await
    });
    // Wait until the request has arrived, then stop the server.
    bounded(async {
        while echo.request_log().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    echo.shutdown();
    let result = bounded(pending).await.unwrap();
    assert!(result.map(|r| !r.status.is_success()).unwrap_or(true));
}
