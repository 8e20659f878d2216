//! Applying configurations: swaps under load, drains, bind errors, invalid configs;
//! timeouts and retries.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use trellis_ir as ir;

#[tokio::test]
async fn config_swap_under_load_loses_nothing() {
    let (a, b) = (backend("a").await, backend("b").await);
    let port = free_port();
    let cfg = |name: &str| {
        simple(
            port,
            vec![route("r", prefix("/"), to(name))],
            vec![cluster("a", &[&a]), cluster("b", &[&b])],
        )
    };
    let p = Arc::new(proxy());
    p.apply(cfg("a")).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let c = client();
            let (mut ok, mut seen) = (0, std::collections::HashSet::new());
            while !stop.load(Ordering::Relaxed) {
                let ans = send(&c, port, "GET", "/x?delay_ms=5", None, &[]).await;
                assert_eq!(ans.status, 200);
                seen.insert(ans.backend());
                ok += 1;
            }
            (ok, seen)
        }));
    }
    for i in 0..20 {
        p.apply(cfg(if i % 2 == 0 { "b" } else { "a" }))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut backends = std::collections::HashSet::new();
    for w in workers {
        let (ok, seen) = w.await.expect("no failed request during swaps");
        assert!(ok > 0);
        backends.extend(seen);
    }
    assert_eq!(backends.len(), 2, "both configurations served traffic");
}

#[tokio::test]
async fn removed_bind_drains_in_flight_requests() {
    let a = backend("a").await;
    let (port, other) = (free_port(), free_port());
    let routes = || vec![route("r", prefix("/"), to("a"))];
    let both = ir::Config {
        binds: vec![
            http_bind(port, vec![listener(None, vec![vhost("*", routes())])]),
            http_bind(other, vec![listener(None, vec![vhost("*", routes())])]),
        ],
        clusters: vec![cluster("a", &[&a])],
        ..Default::default()
    };
    let p = proxy();
    p.apply(Arc::new(both)).await.unwrap();
    let slow = tokio::spawn(async move { get(port, "/slow?delay_ms=500", None).await });
    assert!(eventually(|| a.seen().iter().any(|s| s.starts_with("/slow"))).await);
    p.apply(simple(other, routes(), vec![cluster("a", &[&a])]))
        .await
        .unwrap();
    // In flight on the removed bind: finishes normally.
    assert_eq!(slow.await.unwrap().status, 200);
    // The socket is gone.
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
    assert_eq!(get(other, "/", None).await.status, 200);
    // And it can come back.
    p.apply(simple(port, routes(), vec![cluster("a", &[&a])]))
        .await
        .unwrap();
    assert_eq!(get(port, "/", None).await.status, 200);
}

#[tokio::test]
async fn bind_errors_are_reported_and_bad_configs_rejected() {
    let a = backend("a").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let port = free_port();
    let good = |r: ir::Route| ir::Config {
        binds: vec![
            http_bind(
                busy,
                vec![listener(
                    None,
                    vec![vhost("*", vec![route("r", prefix("/"), to("a"))])],
                )],
            ),
            http_bind(port, vec![listener(None, vec![vhost("*", vec![r])])]),
        ],
        clusters: vec![cluster("a", &[&a])],
        ..Default::default()
    };
    let p = proxy();
    let report = p
        .apply(Arc::new(good(route("r", prefix("/"), to("a")))))
        .await
        .unwrap();
    assert_eq!(report.bind_errors.len(), 1);
    assert_eq!(report.bind_errors[0].0, format!("127.0.0.1:{busy}"));
    assert_eq!(get(port, "/", None).await.status, 200);

    let bad_regex = route("bad", ir::PathMatch::RegularExpression("(".into()), to("a"));
    assert!(p.apply(Arc::new(good(bad_regex))).await.is_err());
    let unknown = route("unknown", prefix("/"), to("nope"));
    assert!(p.apply(Arc::new(good(unknown))).await.is_err());
    assert_eq!(
        get(port, "/", None).await.status,
        200,
        "old config still serves"
    );
}

#[tokio::test]
async fn timeouts_answer_504() {
    let a = backend("a").await;
    let port = free_port();
    let mut req_t = route("req", prefix("/request"), to("a"));
    req_t.timeouts.request_ms = Some(1000);
    let mut be_t = route("be", prefix("/backend"), to("a"));
    be_t.timeouts.backend_request_ms = Some(1000);
    let mut off = route("off", prefix("/off"), to("a"));
    off.timeouts.request_ms = Some(0);
    let p = proxy();
    p.apply(simple(
        port,
        vec![req_t, be_t, off],
        vec![cluster("a", &[&a])],
    ))
    .await
    .unwrap();
    assert_eq!(get(port, "/request?delay_ms=5000", None).await.status, 504);
    assert_eq!(get(port, "/backend?delay_ms=5000", None).await.status, 504);
    assert_eq!(get(port, "/request", None).await.status, 200);
    assert_eq!(get(port, "/off?delay_ms=200", None).await.status, 200);
}

#[tokio::test]
async fn retries_on_listed_codes_and_connection_errors() {
    let a = backend("a").await;
    let dead = free_port();
    let port = free_port();
    let retry = |attempts, codes: Vec<u16>| {
        Some(ir::Retry {
            attempts,
            codes,
            backoff_ms: Some(1),
        })
    };
    let mut r = route("retry", prefix("/flaky"), to("a"));
    r.retry = retry(3, vec![500]);
    let mut no = route("noretry", prefix("/status"), to("a"));
    no.retry = retry(3, vec![503]);
    let mut conn = route("conn", prefix("/dead"), to("mixed"));
    conn.retry = retry(1, vec![]);
    let mixed = ir::Cluster {
        tls: None,
        name: "mixed".into(),
        protocol: ir::UpstreamProtocol::Http1,
        endpoints: vec![
            ir::Endpoint::Socket(format!("127.0.0.1:{dead}").parse().unwrap()),
            ir::Endpoint::Socket(a.addr),
        ],
    };
    let unreachable = ir::Cluster {
        tls: None,
        name: "down".into(),
        endpoints: vec![mixed.endpoints[0].clone()],
        ..mixed.clone()
    };
    let p = proxy();
    let routes = vec![r, no, conn, route("down", prefix("/down"), to("down"))];
    p.apply(simple(
        port,
        routes,
        vec![cluster("a", &[&a]), mixed, unreachable],
    ))
    .await
    .unwrap();
    let k = unique();
    assert_eq!(
        get(port, &format!("/flaky/{k}?fail=2"), None).await.status,
        200
    );
    let k = unique();
    assert_eq!(
        get(port, &format!("/flaky/{k}?fail=4"), None).await.status,
        500
    );
    assert_eq!(
        a.seen()
            .iter()
            .filter(|s| s.starts_with(&format!("/flaky/{k}")))
            .count(),
        4
    );
    // A small body is buffered and replayed on each attempt.
    let k = unique();
    let path = format!("/flaky/{k}?fail=1");
    let body = bytes::Bytes::from_static(b"payload");
    let ans = send_body(&client(), port, "POST", &path, None, &[], body).await;
    assert_eq!(ans.status, 200);
    assert_eq!(ans.json()["body"], "payload");
    assert_eq!(ans.json()["method"], "POST");
    assert_eq!(get(port, "/status/500", None).await.status, 500);
    assert_eq!(a.seen().iter().filter(|s| *s == "/status/500").count(), 1);
    // Round-robin hits the dead endpoint on one of two requests; the retry covers it.
    for _ in 0..4 {
        assert_eq!(get(port, "/dead", None).await.status, 200);
    }
    assert_eq!(get(port, "/down", None).await.status, 503);
}

#[tokio::test]
async fn shutdown_finishes_in_flight_then_closes() {
    let a = backend("a").await;
    let port = free_port();
    let p = Arc::new(proxy());
    p.apply(simple(
        port,
        vec![route("r", prefix("/"), to("a"))],
        vec![cluster("a", &[&a])],
    ))
    .await
    .unwrap();
    let slow = tokio::spawn(async move { get(port, "/slow?delay_ms=300", None).await });
    assert!(eventually(|| a.seen().iter().any(|s| s.starts_with("/slow"))).await);
    p.shutdown(Duration::from_secs(5)).await;
    assert_eq!(slow.await.unwrap().status, 200);
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());
}

#[tokio::test]
async fn binds_on_any_loopback_address() {
    use http_body_util::{BodyExt, Empty};
    let a = backend("a").await;
    let port = free_port();
    let mut bind = http_bind(
        port,
        vec![listener(
            None,
            vec![vhost("*", vec![route("r", prefix("/"), to("a"))])],
        )],
    );
    bind.address = "127.10.3.4".parse().unwrap();
    bind.name = format!("127.10.3.4:{port}");
    let p = proxy();
    let report = p
        .apply(Arc::new(ir::Config {
            binds: vec![bind],
            clusters: vec![cluster("a", &[&a])],
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(report.bind_errors.is_empty(), "{:?}", report.bind_errors);
    let tcp = tokio::net::TcpStream::connect(("127.10.3.4", port))
        .await
        .unwrap();
    let (mut s, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("/")
        .header("host", "x")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = s.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["headers"]["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(
        p.local_addrs().await[0].1.to_string(),
        format!("127.10.3.4:{port}")
    );
}
