//! SIGTERM under load against the real binary: every request the gateway accepted before the
//! signal completes, and `trellis run` exits 0.

mod common;

use common::{config, free_port, Killed};

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trellis_testkit::echo::{self, EchoOptions};

/// One HTTP/1.1 request on its own connection. `written` is set once the request is sent.
async fn request(
    port: u16,
    path: &str,
    written: Option<&Mutex<Option<Instant>>>,
) -> Result<u16, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let raw = format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
    s.write_all(raw.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    if let Some(w) = written {
        *w.lock().unwrap() = Some(Instant::now());
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .map_err(|_| "read timed out".to_string())?
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no response ({} bytes)", out.len()))
}

/// One load request: when it was sent and how it ended.
struct Outcome {
    path: String,
    sent: Option<Instant>,
    result: Result<u16, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_completes_accepted_requests_and_exits_0() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = echo::spawn(listener, EchoOptions::new("default", "echo-0"));
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gw.yaml"),
        config(port, backend.local_addr.port()),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(["run", "--config"])
        .arg(dir.path())
        .args(["--admin", "off", "--drain-seconds", "10"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("trellis run starts");
    let mut child = Killed(child);
    let pid = child.0.id();

    let start = Instant::now();
    while request(port, "/ready", None).await != Ok(200) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gateway never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Load: 6 clients in a loop, a new connection per request, plus 10 slow requests that are
    // in flight at the backend when the signal arrives.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let (stop, outcomes) = (stop.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let path = format!("/load/{worker}/{n}?delay=20ms");
                let sent = Mutex::new(None);
                let result = request(port, &path, Some(&sent)).await;
                let failed_to_connect = matches!(&result, Err(e) if e.starts_with("connect"));
                let sent = *sent.lock().unwrap();
                outcomes
                    .lock()
                    .unwrap()
                    .push(Outcome { path, sent, result });
                if failed_to_connect {
                    return;
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut slow = Vec::new();
    for i in 0..10 {
        slow.push(tokio::spawn(async move {
            request(port, &format!("/slow/{i}?delay=1500ms"), None).await
        }));
    }
    let start = Instant::now();
    while backend
        .request_log()
        .iter()
        .filter(|p| p.starts_with("/slow/"))
        .count()
        < 10
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "slow requests never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();

    let start = Instant::now();
    let code = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "trellis did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    for (i, s) in slow.into_iter().enumerate() {
        assert_eq!(
            s.await.unwrap(),
            Ok(200),
            "slow request {i} in flight at SIGTERM"
        );
    }
    assert_eq!(code, Some(0), "exit code after SIGTERM");

    // Every request that reached the backend (so the gateway accepted it) completed.
    let log = backend.request_log();
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let before: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.sent.is_some_and(|t| t < signalled))
        .collect();
    let accepted: Vec<&&Outcome> = before.iter().filter(|o| log.contains(&o.path)).collect();
    let lost: Vec<String> = accepted
        .iter()
        .filter(|o| o.result != Ok(200))
        .map(|o| format!("{} -> {:?}", o.path, o.result))
        .collect();
    let unanswered = before.iter().filter(|o| o.result != Ok(200)).count();
    eprintln!(
        "SIGTERM: {} load requests sent before the signal, {} reached the backend, {} of those \
         failed; {unanswered} sent before the signal got no 200 in all",
        before.len(),
        accepted.len(),
        lost.len()
    );
    assert!(accepted.len() > 20, "too little load before the signal");
    assert!(lost.is_empty(), "accepted requests lost: {lost:?}");
    backend.shutdown();
}
