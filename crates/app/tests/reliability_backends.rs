//! Backend faults through the whole stack (files → translate → proxy): one of three backends
//! dies under load behind a route with `retry`, and each kind of upstream failure answers its
//! own status (refused 503, reset 502, timeout 504).

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use trellis_testkit::echo::EchoHandle;
use trellis_testkit::fixtures::{backend_yaml, gateway_yaml};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_backends_killed_under_load_keeps_999_permille() {
    let pods: Vec<EchoHandle> = vec![
        echo("pod-0").await,
        echo("pod-1").await,
        echo("pod-2").await,
    ];
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = pods.iter().map(|p| p.local_addr.port()).collect();
    let cfg = format!(
        "{}{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{group: trellis.dev, kind: Backend, name: three}}]
    retry: {{attempts: 2, codes: [502, 503, 504]}}
",
        gateway_yaml(port),
        backend_yaml("three", &ports)
    );
    std::fs::write(dir.path().join("all.yaml"), cfg).unwrap();
    let app = start(dir.path()).await;
    let client = client();
    wait_served(&client, port, "/", 200, None, Duration::from_secs(10)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let served_by = Arc::new(Mutex::new(std::collections::HashMap::<String, u64>::new()));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, ok, failures, served_by) = (
            stop.clone(),
            ok.clone(),
            failures.clone(),
            served_by.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut c = common::client();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if worker == 3 {
                    c = common::client();
                }
                // A small delay keeps requests in flight on the backend that dies.
                match get(&c, port, "/load?delay=5ms").await {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        let pod = r.body["pod"].as_str().unwrap_or("").to_string();
                        *served_by.lock().unwrap().entry(pod).or_default() += 1;
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status)),
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    pods[1].shutdown();
    let killed_at = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let ok = ok.load(Ordering::Relaxed);
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    let total = ok + failures.len() as u64;
    let served_by = served_by.lock().unwrap().clone();
    eprintln!(
        "backend killed: {ok}/{total} ok ({killed_at} before the kill), {} failed (first {:?}), served by {served_by:?}",
        failures.len(),
        failures.first()
    );
    assert!(
        served_by.len() == 3,
        "all three pods served before the kill"
    );
    assert!(ok - killed_at > 100, "too little load after the kill");
    assert!(
        ok * 1000 >= total * 999,
        "{} of {total} requests failed (first: {:?})",
        failures.len(),
        failures.first()
    );
    app.shutdown().await;
}

/// Accepts connections, reads the request, then resets (RST) without answering.
async fn resetting_backend() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.set_zero_linger();
                drop(s);
            });
        }
    });
    port
}

/// Accepts connections and reads forever without answering.
async fn hanging_backend() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return,
                        _ => {}
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reset_and_timeout_map_to_503_502_504() {
    let port = free_port();
    let refused = free_port();
    let (reset, hang) = (resetting_backend().await, hanging_backend().await);
    let rule = |path: &str, name: &str| {
        format!(
            "  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{group: trellis.dev, kind: Backend, name: {name}}}]
    timeouts: {{request: 3s, backendRequest: 500ms}}
"
        )
    };
    let cfg = format!(
        "{}{}{}{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: faults, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
{}{}{}",
        gateway_yaml(port),
        backend_yaml("refused", &[refused]),
        backend_yaml("reset", &[reset]),
        backend_yaml("hang", &[hang]),
        rule("/refused", "refused"),
        rule("/reset", "reset"),
        rule("/hang", "hang"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.yaml"), cfg).unwrap();
    let app = start(dir.path()).await;
    let client = client();
    wait_served(
        &client,
        port,
        "/refused",
        503,
        None,
        Duration::from_secs(10),
    )
    .await;
    for (path, want) in [("/refused", 503), ("/reset", 502), ("/hang", 504)] {
        for _ in 0..3 {
            let r = get(&client, port, path).await.unwrap();
            assert_eq!(r.status, want, "{path}");
        }
    }
    app.shutdown().await;
}
