//! `trellis run` limit flags reach the proxy: a small `--max-uri-bytes` gives 414 and a small
//! `--max-request-headers` gives 431 on the real binary.

mod common;

use common::{config, free_port, Killed};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trellis_testkit::echo::{self, EchoOptions};

/// Status of one request on its own connection, `None` when there is no answer.
async fn status(port: u16, path: &str, extra_headers: usize) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n");
    for i in 0..extra_headers {
        raw.push_str(&format!("x-h-{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    s.write_all(raw.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(out.get(9..12)?).parse().ok()
}

#[tokio::test]
async fn limit_flags_reach_the_proxy() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = echo::spawn(listener, EchoOptions::new("default", "echo-0"));
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(port, backend.local_addr.port());
    std::fs::write(dir.path().join("gw.yaml"), yaml).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["run", "--config"])
        .arg(dir.path())
        .args(["--admin", "off", "--max-uri-bytes", "50"])
        .args(["--max-request-headers", "6"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("trellis run starts");
    let _child = Killed(child);
    let start = Instant::now();
    while status(port, "/ready", 0).await != Some(200) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gateway never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Host + Connection + 4 = 6 headers pass, 7 do not.
    assert_eq!(status(port, "/four", 4).await, Some(200));
    assert_eq!(status(port, "/five", 5).await, Some(431));
    assert_eq!(
        status(port, &format!("/{}", "u".repeat(49)), 0).await,
        Some(200)
    );
    assert_eq!(
        status(port, &format!("/{}", "u".repeat(50)), 0).await,
        Some(414)
    );
}
