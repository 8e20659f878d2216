//! Passive ejection with real sockets: a killed endpoint leaves the round-robin after N failed
//! connects (no retry configured, so each failure is a client-visible 503) and comes back after
//! the back-off; a cluster's last endpoint is never ejected.

mod common;

use common::{client, cluster, free_port, prefix, route, send, simple, to};
use http::Response;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use trellis_ir as ir;
use trellis_proxy::{OutlierDetection, Proxy, ProxyOptions};

/// A backend that can be killed (listener and open connections gone: connects are refused)
/// and revived on the same address.
struct Killable {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    tasks: Option<JoinSet<()>>,
}

impl Killable {
    async fn start() -> Killable {
        let mut k = Killable {
            addr: "127.0.0.1:0".parse().unwrap(),
            hits: Arc::default(),
            tasks: None,
        };
        k.revive().await;
        k
    }

    async fn revive(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.addr = listener.local_addr().unwrap();
        let hits = self.hits.clone();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let hits = hits.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        async { Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new()))) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Aborting the accept task drops its `JoinSet` of connections too.
    async fn kill(&mut self) {
        if let Some(mut t) = self.tasks.take() {
            t.shutdown().await;
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

const FAILURES: u32 = 3;

async fn gateway(
    backends: &[&Killable],
    base_ejection: Duration,
) -> (
    Proxy,
    u16,
    Arc<Mutex<prometheus_client::registry::Registry>>,
) {
    let registry = Arc::new(Mutex::new(prometheus_client::registry::Registry::default()));
    let p = Proxy::new(ProxyOptions {
        registry: Some(registry.clone()),
        outlier: OutlierDetection {
            consecutive_failures: FAILURES,
            base_ejection,
            max_ejection: base_ejection * 4,
        },
        ..Default::default()
    });
    let port = free_port();
    let mut c = cluster("c", &[]);
    c.endpoints = backends
        .iter()
        .map(|b| ir::Endpoint::Socket(b.addr))
        .collect();
    p.apply(simple(
        port,
        vec![route("r", prefix("/"), to("c"))],
        vec![c],
    ))
    .await
    .unwrap();
    (p, port, registry)
}

/// Sends `n` requests one after the other; returns how many were not 200.
async fn failures(port: u16, n: usize) -> usize {
    let c = client();
    let mut failed = 0;
    for _ in 0..n {
        if send(&c, port, "GET", "/", None, &[]).await.status != 200 {
            failed += 1;
        }
    }
    failed
}

#[tokio::test]
async fn a_dead_endpoint_is_ejected_then_readmitted_after_the_back_off() {
    let (a, b) = (Killable::start().await, Killable::start().await);
    let mut dead = Killable::start().await;
    let back_off = Duration::from_secs(2);
    let (_p, port, registry) = gateway(&[&a, &b, &dead], back_off).await;
    assert_eq!(failures(port, 30).await, 0);
    assert_eq!(dead.hits(), 10, "round-robin over three");

    dead.kill().await;
    // The ejection happens after this instant, so it bounds the back-off from below.
    let killed_at = Instant::now();
    // Let the proxy's pool notice its connections to the dead backend closed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let failed = failures(port, 60).await;
    assert!(
        (1..=FAILURES as usize).contains(&failed),
        "{failed} failed requests; at most {FAILURES} expected before ejection"
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry.lock().unwrap()).unwrap();
    assert!(
        text.contains("trellis_proxy_endpoint_ejections_total{cluster=\"c\"} 1"),
        "{text}"
    );

    // Revived at once, it still gets nothing while ejected.
    dead.revive().await;
    let before = dead.hits();
    assert_eq!(failures(port, 20).await, 0);
    if killed_at.elapsed() < back_off {
        assert_eq!(dead.hits(), before, "an ejected endpoint got traffic");
    }
    // After the back-off it is picked again.
    let mut back = false;
    for _ in 0..100 {
        assert_eq!(failures(port, 3).await, 0);
        if dead.hits() > before {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the endpoint never came back after its back-off");
    assert!(
        killed_at.elapsed() >= back_off,
        "readmitted before its back-off"
    );
}

#[tokio::test]
async fn the_last_endpoint_of_a_cluster_is_never_ejected() {
    let mut only = Killable::start().await;
    let (_p, port, _) = gateway(&[&only], Duration::from_secs(600)).await;
    assert_eq!(failures(port, 2).await, 0);
    only.kill().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        failures(port, 3 * FAILURES as usize).await,
        3 * FAILURES as usize
    );
    only.revive().await;
    // Not ejected for ten minutes: served at once.
    assert_eq!(failures(port, 3).await, 0);
}
