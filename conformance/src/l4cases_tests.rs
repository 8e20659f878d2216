//! The L4 case executors against real testkit servers on 127.0.0.1.

use super::*;
use crate::backends::Backends;
use crate::certs::CertStore;
use crate::exec::{run_case, Timing};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use trellis_testkit::backend::{BackendIdentity, ServerHandle, TlsListener};

const INFRA: &str = "gateway-conformance-infra";

fn case(kind: &str, request: Value, response: Value, distribution: Option<Value>) -> Case {
    serde_json::from_value(json!({"name": "t", "kind": kind, "request": request,
        "response": response, "distribution": distribution}))
    .unwrap()
}

async fn check(c: &Case, certs: &CertStore, case_timeout: u64) -> Result<(), String> {
    let backends = Backends::default();
    let timing = Timing {
        case_timeout: Duration::from_secs(case_timeout),
        request_timeout: Duration::from_secs(2),
        consecutive: 3,
    };
    let env = CaseEnv {
        ip: Ipv4Addr::LOCALHOST.into(),
        certs,
        backends: &backends,
        timing: &timing,
    };
    run_case(c, &env).await
}

async fn tcp_echo_server(pod: &str, tls: Option<(String, String)>) -> ServerHandle {
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = match tls {
        Some((cert_pem, key_pem)) => Some(TlsListener {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            cert_pem,
            key_pem,
        }),
        None => None,
    };
    tcp_echo::spawn(BackendIdentity::new(INFRA, "", pod), plain, tls).unwrap()
}

async fn udp_echo_server(service: &str, pod: &str) -> ServerHandle {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp_echo::spawn(BackendIdentity::new(INFRA, service, pod), s)
}

/// A port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tcp_resp(backend: &str, tls: bool, sni: Option<&str>) -> Value {
    json!({"backend": backend, "namespace": INFRA, "backend_is_tls": tls, "backend_tls_server_name": sni})
}

#[tokio::test]
async fn tcp_echo_checks_the_first_complete_conversation() {
    let certs = CertStore::generate().unwrap();
    let h = tcp_echo_server("tcp-backend-abc-def", None).await;
    let req = json!({"scheme": "tcp", "port": h.local_addr.port()});
    let ok = case(
        "tcp_echo",
        req.clone(),
        tcp_resp("tcp-backend", false, None),
        None,
    );
    check(&ok, &certs, 30).await.unwrap();
    // A wrong backend fails at once, without retrying for 30 s.
    let started = Instant::now();
    let wrong = case(
        "tcp_echo",
        req.clone(),
        tcp_resp("tcp-other", false, None),
        None,
    );
    let e = check(&wrong, &certs, 30).await.unwrap_err();
    assert!(e.contains("does not start with"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let not_tls = case("tcp_echo", req, tcp_resp("tcp-backend", true, None), None);
    assert!(check(&not_tls, &certs, 30)
        .await
        .unwrap_err()
        .contains("IS_TLS"));
    // Nothing listening: retried until the case timeout.
    let started = Instant::now();
    let gone = json!({"scheme": "tcp", "port": closed_port()});
    let e = check(
        &case("tcp_echo", gone, tcp_resp("tcp-backend", false, None), None),
        &certs,
        2,
    )
    .await
    .unwrap_err();
    assert!(e.contains("not passed within"), "{e}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    h.shutdown();
}

#[tokio::test]
async fn tls_tcp_echo_dials_with_sni_and_ca_c() {
    let certs = CertStore::generate().unwrap();
    let pair = certs
        .secret(INFRA, "tls-passthrough-checks-certificate")
        .unwrap();
    let h = tcp_echo_server(
        "tcp-backend-a-b",
        Some((pair.cert_pem.clone(), pair.key_pem.clone())),
    )
    .await;
    let req = json!({"scheme": "tls", "port": h.tls_addr.unwrap().port(), "tls": {"sni": "abc.example.com",
        "trust": {"kind": "ConfigMap", "ref": format!("{INFRA}/tls-checks-ca-certificate"), "key": "ca.crt"}}});
    let ok = case(
        "tls_tcp_echo",
        req.clone(),
        tcp_resp("tcp-backend", true, Some("abc.example.com")),
        None,
    );
    check(&ok, &certs, 30).await.unwrap();
    let wrong_sni = case(
        "tls_tcp_echo",
        req,
        tcp_resp("tcp-backend", true, Some("other.example.com")),
        None,
    );
    let e = check(&wrong_sni, &certs, 30).await.unwrap_err();
    assert!(e.contains("SNI"), "{e}");
    h.shutdown();
}

#[tokio::test]
async fn tls_connection_rejected_wants_the_peer_to_close() {
    let certs = CertStore::generate().unwrap();
    // Accepts and closes at once, like a Gateway with no route for the SNI.
    let closer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closer.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = closer.accept().await {
            drop(s);
        }
    });
    let req = |port: u16| json!({"scheme": "tls", "port": port, "tls": {"sni": "example.com", "trust": "system roots (irrelevant)"}});
    check(
        &case("tls_connection_rejected", req(port), json!({}), None),
        &certs,
        30,
    )
    .await
    .unwrap();
    // Connection refused is not a rejection by the Gateway.
    let e = check(
        &case(
            "tls_connection_rejected",
            req(closed_port()),
            json!({}),
            None,
        ),
        &certs,
        2,
    )
    .await
    .unwrap_err();
    assert!(e.contains("not closed by the Gateway"), "{e}");
}

#[tokio::test]
async fn tcp_connect_polls_until_a_connection_opens() {
    let certs = CertStore::generate().unwrap();
    let h = tcp_echo_server("x-a-b", None).await;
    let c = |port: u16| {
        case(
            "tcp_connect",
            json!({"port": port, "poll_interval_ms": 100, "timeout_s": 1}),
            json!({}),
            None,
        )
    };
    check(&c(h.local_addr.port()), &certs, 30).await.unwrap();
    let started = Instant::now();
    assert!(check(&c(closed_port()), &certs, 30).await.is_err());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "{took:?}"
    );
    h.shutdown();
}

#[tokio::test]
async fn udp_echo_compares_service_and_namespace() {
    let certs = CertStore::generate().unwrap();
    let h = udp_echo_server("udp-echo-one", "udp-echo-one-a-b").await;
    let req = json!({"port": h.local_addr.port(), "payload": "gateway-api-conformance-udp-echo",
        "attempt_deadline_s": 1, "read_buffer_bytes": 1024, "poll_interval_s": 0.2, "timeout_s": 1});
    let resp = |svc: Value, ns: Value, any: Value| json!({"service": svc, "namespace": ns, "any_reply": any});
    let ok = case(
        "udp_echo",
        req.clone(),
        resp("udp-echo-one".into(), INFRA.into(), false.into()),
        None,
    );
    check(&ok, &certs, 30).await.unwrap();
    let any = case(
        "udp_echo",
        req.clone(),
        resp(Value::Null, Value::Null, true.into()),
        None,
    );
    check(&any, &certs, 30).await.unwrap();
    let wrong = case(
        "udp_echo",
        req.clone(),
        resp("udp-echo-two".into(), INFRA.into(), false.into()),
        None,
    );
    let e = check(&wrong, &certs, 30).await.unwrap_err();
    assert!(e.contains("want \"udp-echo-two\""), "{e}");
    let wrong_ns = case(
        "udp_echo",
        req,
        resp(Value::Null, "other".into(), Value::Null),
        None,
    );
    assert!(check(&wrong_ns, &certs, 30).await.is_err());
    h.shutdown();
}

#[tokio::test]
async fn udp_dns_passes_on_any_reply() {
    let certs = CertStore::generate().unwrap();
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let h = dns::spawn(s, Ipv4Addr::LOCALHOST);
    let c = |port: u16| {
        case(
            "udp_dns",
            json!({"port": port, "question": {"name": "foo.bar.com.", "type": "A"},
        "poll_interval_s": 0.2, "timeout_s": 1}),
            json!({}),
            None,
        )
    };
    check(&c(h.local_addr.port()), &certs, 30).await.unwrap();
    // A UDP echo answers with JSON, not DNS: never a valid reply.
    let echo = udp_echo_server("x", "x-a-b").await;
    assert!(check(&c(echo.local_addr.port()), &certs, 30).await.is_err());
    h.shutdown();
    echo.shutdown();
}

#[tokio::test]
async fn tcp_distributions_sample_one_shot_conversations() {
    let certs = CertStore::generate().unwrap();
    let h = tcp_echo_server("tcp-backend-v1-abc-def", None).await;
    let req = json!({"scheme": "tcp", "port": h.local_addr.port()});
    let weights = |w: Value| {
        json!({"type": "backend_weights", "requests": 20, "concurrency": 4,
        "tolerance": 0.05, "max_attempts": 1, "per_request_timeout_s": 2, "expected_weights": w})
    };
    let all_v1 = case(
        "tcp_echo",
        req.clone(),
        json!({}),
        Some(weights(
            json!({"tcp-backend-v1": 1.0, "tcp-backend-v2": 0.0}),
        )),
    );
    check(&all_v1, &certs, 30).await.unwrap();
    let split = case(
        "tcp_echo",
        req.clone(),
        json!({}),
        Some(weights(
            json!({"tcp-backend-v1": 0.7, "tcp-backend-v2": 0.3}),
        )),
    );
    let e = check(&split, &certs, 30).await.unwrap_err();
    assert!(e.contains("tcp-backend-v1: share 1.000, want 0.7"), "{e}");
    let single = |required: &str, forbidden: &str| {
        json!({"type": "single_backend_samples", "samples": 10,
        "per_request_timeout_s": 2, "retry": false, "required_pod_prefix": required, "forbidden_pod_prefix": forbidden})
    };
    let ok = case(
        "tcp_echo",
        req.clone(),
        json!({}),
        Some(single("tcp-backend-v1-", "tcp-backend-v2-")),
    );
    check(&ok, &certs, 30).await.unwrap();
    let bad = case(
        "tcp_echo",
        req,
        json!({}),
        Some(single("tcp-backend-v2-", "tcp-backend-v1-")),
    );
    assert!(check(&bad, &certs, 30)
        .await
        .unwrap_err()
        .contains("forbidden"));
    h.shutdown();
}

#[tokio::test]
async fn udp_distributions_sample_datagrams() {
    let certs = CertStore::generate().unwrap();
    let h = udp_echo_server("udp-backend-v1", "udp-backend-v1-abc-def").await;
    let req = json!({"port": h.local_addr.port(), "payload": "gateway-api-conformance-udp-weight\n",
        "attempt_deadline_s": 2, "read_buffer_bytes": 4096, "poll_interval_s": 0.2, "timeout_s": 2});
    let weights = json!({"type": "backend_weights", "requests": 20, "concurrency": 4, "tolerance": 0.05,
        "max_attempts": 1, "per_request_timeout_s": 2, "expected_weights": {"udp-backend-v1": 1.0}});
    check(
        &case("udp_echo", req.clone(), json!({}), Some(weights)),
        &certs,
        30,
    )
    .await
    .unwrap();
    let single = |b: &str| {
        json!({"type": "single_backend_samples", "samples": 5, "per_request_timeout_s": 2,
        "retry": true, "required_backend": b})
    };
    check(
        &case(
            "udp_echo",
            req.clone(),
            json!({}),
            Some(single("udp-backend-v1")),
        ),
        &certs,
        30,
    )
    .await
    .unwrap();
    let started = Instant::now();
    let e = check(
        &case("udp_echo", req, json!({}), Some(single("udp-backend-v2"))),
        &certs,
        30,
    )
    .await
    .unwrap_err();
    assert!(e.contains("want only"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a wrong backend fails at once"
    );
    h.shutdown();
}

#[tokio::test]
async fn eventually_ticks_retries_on_the_tick_and_stops_on_fail() {
    let mut n = 0;
    let started = Instant::now();
    eventually_ticks(Duration::from_secs(5), Duration::from_millis(100), |_| {
        n += 1;
        let k = n;
        async move {
            if k < 3 {
                Attempt::Retry(format!("try {k}"))
            } else {
                Attempt::Pass
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(n, 3);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let e = eventually_ticks(
        Duration::from_secs(5),
        Duration::from_millis(100),
        |_| async { Attempt::Fail("wrong".into()) },
    )
    .await
    .unwrap_err();
    assert_eq!(e, "wrong");
    let e = poll(
        Duration::from_millis(50),
        Duration::from_millis(300),
        |_| async { Attempt::Retry("nope".into()) },
    )
    .await
    .unwrap_err();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn every_l4_kind_is_supported_and_every_suite_case_parses() {
    for k in L4_KINDS {
        assert!(crate::exec::SUPPORTED_KINDS.contains(k), "{k}");
    }
    let suite = crate::suite::Suite::load(&crate::suite::default_suite_dir()).unwrap();
    let mut n = 0;
    for t in &suite.tests {
        for c in t
            .cases
            .iter()
            .filter(|c| L4_KINDS.contains(&c.kind.as_str()))
        {
            L4Request::from_case(c).unwrap_or_else(|e| panic!("{} / {}: {e}", t.dir, c.name));
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} L4 cases");
}
