//! L4 data plane through real sockets: TCP forwarding with weights, refusal and connection
//! draining across config swaps; UDP sessions; TLS passthrough by SNI and TLS termination.

mod common;

use common::free_port;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use trellis_ir as ir;
use trellis_proxy::{Proxy, ProxyOptions};
use trellis_testkit::backend::{BackendIdentity, TlsListener};
use trellis_testkit::{tcp_echo, tls_client, udp_echo};

const T: Duration = Duration::from_secs(5);

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ident(service: &str) -> BackendIdentity {
    BackendIdentity::new("ns", service, format!("{service}-0-0"))
}

async fn tcp_backend(
    service: &str,
    tls: Option<&rcgen::CertifiedKey<rcgen::KeyPair>>,
) -> (SocketAddr, Option<SocketAddr>) {
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = match tls {
        Some(k) => Some(TlsListener {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            cert_pem: k.cert.pem(),
            key_pem: k.signing_key.serialize_pem(),
        }),
        None => None,
    };
    let h = tcp_echo::spawn(ident(service), plain, tls).unwrap();
    (h.local_addr, h.tls_addr)
}

async fn udp_backend(service: &str) -> SocketAddr {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp_echo::spawn(ident(service), s).local_addr
}

fn cluster(name: &str, addr: SocketAddr, protocol: ir::UpstreamProtocol) -> ir::Cluster {
    ir::Cluster {
        name: name.into(),
        protocol,
        endpoints: vec![ir::Endpoint::Socket(addr)],
        tls: None,
    }
}

fn route(hostname: Option<&str>, backends: &[(u32, Option<&str>)]) -> ir::L4Route {
    ir::L4Route {
        name: format!("ns/{}", hostname.unwrap_or("r")),
        hostname: hostname.map(String::from),
        certificates: vec![],
        backends: backends
            .iter()
            .map(|(weight, c)| ir::L4Backend {
                weight: *weight,
                cluster: c.map(String::from),
            })
            .collect(),
    }
}

fn bind(port: u16, protocol: ir::L4Protocol, routes: Vec<ir::L4Route>) -> ir::L4Bind {
    ir::L4Bind {
        name: format!("127.0.0.1:{port}/{protocol:?}"),
        address: "127.0.0.1".parse().unwrap(),
        port,
        protocol,
        listeners: vec!["ns/gw/l".into()],
        routes,
    }
}

fn config(l4_binds: Vec<ir::L4Bind>, clusters: Vec<ir::Cluster>) -> Arc<ir::Config> {
    Arc::new(ir::Config {
        l4_binds,
        clusters,
        ..Default::default()
    })
}

async fn apply(p: &Proxy, cfg: Arc<ir::Config>) {
    let report = p.apply(cfg).await.unwrap();
    assert!(report.bind_errors.is_empty(), "{:?}", report.bind_errors);
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Reads until EOF or error; true when the proxy closed without sending anything.
async fn closed_silently(port: u16) -> bool {
    let mut s = tokio::net::TcpStream::connect(addr(port)).await.unwrap();
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(T, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn tcp_weights_per_connection_and_refusal() {
    let (a, _) = tcp_backend("a", None).await;
    let (b, _) = tcp_backend("b", None).await;
    let (z, _) = tcp_backend("z", None).await;
    let port = free_port();
    let tcp = ir::UpstreamProtocol::Tcp;
    let p = Proxy::new(ProxyOptions::default());
    apply(
        &p,
        config(
            vec![bind(
                port,
                ir::L4Protocol::Tcp,
                vec![route(
                    None,
                    &[(3, Some("a")), (1, Some("b")), (0, Some("z"))],
                )],
            )],
            vec![
                cluster("a", a, tcp),
                cluster("b", b, tcp),
                cluster("z", z, tcp),
            ],
        ),
    )
    .await;
    // The full conversation works through the proxy.
    let conv = tcp_echo::tcp_echo_conversation(addr(port), None, T)
        .await
        .unwrap();
    assert!(!conv.assertions.is_tls);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..400 {
        let r = tcp_echo::tcp_echo_once(addr(port), T).await.unwrap();
        *seen.entry(r.service).or_default() += 1;
    }
    assert_eq!(seen.get("z"), None, "weight 0 never picked: {seen:?}");
    let share_a = seen["a"] as f64 / 400.0;
    assert!((0.65..0.85).contains(&share_a), "{seen:?}");

    // Every backend invalid: connections are closed, never forwarded.
    apply(
        &p,
        config(
            vec![bind(
                port,
                ir::L4Protocol::Tcp,
                vec![route(None, &[(1, None)])],
            )],
            vec![],
        ),
    )
    .await;
    assert!(closed_silently(port).await);
}

/// `TEST` on an open echo connection; returns the backend's service.
async fn test(io: &mut BufReader<tokio::net::TcpStream>) -> String {
    io.get_mut().write_all(b"TEST\n").await.unwrap();
    let mut l = String::new();
    io.read_line(&mut l).await.unwrap();
    serde_json::from_str::<tcp_echo::TcpAssertions>(&l)
        .unwrap()
        .service
}

#[tokio::test]
async fn tcp_connections_survive_swaps_and_removed_binds_stop_accepting() {
    let (a, _) = tcp_backend("a", None).await;
    let (b, _) = tcp_backend("b", None).await;
    let port = free_port();
    let tcp = ir::UpstreamProtocol::Tcp;
    let clusters = vec![cluster("a", a, tcp), cluster("b", b, tcp)];
    let to = |c: &str| {
        config(
            vec![bind(
                port,
                ir::L4Protocol::Tcp,
                vec![route(None, &[(1, Some(c))])],
            )],
            clusters.clone(),
        )
    };
    let p = Proxy::new(ProxyOptions {
        drain_timeout: Duration::from_secs(10),
        ..Default::default()
    });
    apply(&p, to("a")).await;
    let s = tokio::net::TcpStream::connect(addr(port)).await.unwrap();
    let mut old = BufReader::new(s);
    let mut line = String::new();
    old.read_line(&mut line).await.unwrap();
    assert_eq!(line, tcp_echo::WELCOME);
    assert_eq!(test(&mut old).await, "a");

    // Same socket, new route: the open connection keeps its backend, new ones get the new one.
    apply(&p, to("b")).await;
    assert_eq!(test(&mut old).await, "a");
    assert_eq!(
        tcp_echo::tcp_echo_once(addr(port), T)
            .await
            .unwrap()
            .service,
        "b"
    );

    // Bind removed: no new connections, the open one still works while draining.
    apply(&p, config(vec![], vec![])).await;
    assert!(tokio::net::TcpStream::connect(addr(port)).await.is_err());
    assert_eq!(test(&mut old).await, "a");
}

#[tokio::test]
async fn tcp_idle_connections_are_closed() {
    let (a, _) = tcp_backend("a", None).await;
    let port = free_port();
    let p = Proxy::new(ProxyOptions {
        l4_tcp_idle_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    apply(
        &p,
        config(
            vec![bind(
                port,
                ir::L4Protocol::Tcp,
                vec![route(None, &[(1, Some("a"))])],
            )],
            vec![cluster("a", a, ir::UpstreamProtocol::Tcp)],
        ),
    )
    .await;
    let mut s = BufReader::new(tokio::net::TcpStream::connect(addr(port)).await.unwrap());
    let mut line = String::new();
    s.read_line(&mut line).await.unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(T, s.read_to_end(&mut rest)).await;
    assert!(matches!(n, Ok(Ok(0))), "{n:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn udp_sessions_keep_their_backend() {
    let a = udp_backend("a").await;
    let b = udp_backend("b").await;
    let port = free_udp_port();
    let udp = ir::UpstreamProtocol::Udp;
    let p = Proxy::new(ProxyOptions {
        l4_udp_idle_timeout: Duration::from_millis(500),
        l4_udp_max_sessions: 200,
        ..Default::default()
    });
    apply(
        &p,
        config(
            vec![bind(
                port,
                ir::L4Protocol::Udp,
                vec![route(None, &[(1, Some("a")), (1, Some("b"))])],
            )],
            vec![cluster("a", a, udp), cluster("b", b, udp)],
        ),
    )
    .await;
    // One client socket = one session = one backend.
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(addr(port)).await.unwrap();
    let mut first = None;
    let mut buf = vec![0u8; 2048];
    for i in 0..10 {
        client.send(format!("ping {i}").as_bytes()).await.unwrap();
        let n = tokio::time::timeout(T, client.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let reply = udp_echo::UdpEchoReply::from_datagram(&buf[..n]).unwrap();
        assert_eq!(reply.request, format!("ping {i}"));
        assert_eq!(*first.get_or_insert(reply.service.clone()), reply.service);
    }
    // New sockets are new sessions: both backends get some.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..100 {
        let r = udp_echo::udp_echo(addr(port), b"x", T, 1024).await.unwrap();
        *seen
            .entry(udp_echo::UdpEchoReply::from_datagram(&r).unwrap().service)
            .or_default() += 1;
    }
    assert!(seen.get("a").is_some_and(|n| *n > 20), "{seen:?}");
    assert!(seen.get("b").is_some_and(|n| *n > 20), "{seen:?}");
}

#[tokio::test]
async fn udp_sessions_are_capped_and_expire() {
    let a = udp_backend("a").await;
    let port = free_udp_port();
    let p = Proxy::new(ProxyOptions {
        l4_udp_idle_timeout: Duration::from_millis(500),
        l4_udp_max_sessions: 5,
        ..Default::default()
    });
    apply(
        &p,
        config(
            vec![bind(
                port,
                ir::L4Protocol::Udp,
                vec![route(None, &[(1, Some("a"))])],
            )],
            vec![cluster("a", a, ir::UpstreamProtocol::Udp)],
        ),
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..6 {
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(addr(port)).await.unwrap();
        clients.push(c);
    }
    let mut buf = [0u8; 1024];
    for c in &clients[..5] {
        c.send(b"x").await.unwrap();
        tokio::time::timeout(T, c.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
    }
    let over = &clients[5];
    over.send(b"x").await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(200), over.recv(&mut buf)).await;
    assert!(r.is_err(), "a sixth session was opened: {r:?}");
    // Idle sessions expire and make room.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    over.send(b"x").await.unwrap();
    tokio::time::timeout(T, over.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
}

fn cert(name: &str) -> rcgen::CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap()
}

#[tokio::test]
async fn tls_passthrough_by_sni_and_termination() {
    let abc = cert("abc.example.com");
    let (_, abc_tls) = tcp_backend("abc", Some(&abc)).await;
    let wild = cert("other.example.com");
    let (_, wild_tls) = tcp_backend("wild", Some(&wild)).await;
    let (plain, _) = tcp_backend("plain", None).await;
    let term = cert("tls.example.com");
    let port = free_port();
    let tcp = ir::UpstreamProtocol::Tcp;
    let mut terminate = route(Some("tls.example.com"), &[(1, Some("plain"))]);
    terminate.certificates = vec![ir::Certificate {
        name: "ns/term".into(),
        cert_pem: term.cert.pem(),
        key_pem: term.signing_key.serialize_pem(),
    }];
    let p = Proxy::new(ProxyOptions::default());
    apply(
        &p,
        config(
            vec![bind(
                port,
                ir::L4Protocol::Tls,
                vec![
                    route(Some("abc.example.com"), &[(1, Some("abc"))]),
                    terminate,
                    route(Some("bad.example.com"), &[(1, None)]),
                    route(Some("*.example.com"), &[(1, Some("wild"))]),
                ],
            )],
            vec![
                cluster("abc", abc_tls.unwrap(), tcp),
                cluster("wild", wild_tls.unwrap(), tcp),
                cluster("plain", plain, tcp),
            ],
        ),
    )
    .await;
    // Passthrough: the backend terminates TLS and saw the client's SNI.
    let c =
        tcp_echo::tcp_echo_conversation(addr(port), Some(("abc.example.com", &abc.cert.pem())), T)
            .await
            .unwrap();
    assert!(c.assertions.is_tls);
    assert_eq!(c.assertions.service, "abc");
    assert_eq!(c.assertions.tls.unwrap().server_name, "abc.example.com");
    let c = tcp_echo::tcp_echo_conversation(
        addr(port),
        Some(("other.example.com", &wild.cert.pem())),
        T,
    )
    .await
    .unwrap();
    assert_eq!(c.assertions.service, "wild");
    // Termination: the Gateway's certificate, plaintext to the backend.
    let c =
        tcp_echo::tcp_echo_conversation(addr(port), Some(("tls.example.com", &term.cert.pem())), T)
            .await
            .unwrap();
    assert!(!c.assertions.is_tls);
    assert_eq!(c.assertions.service, "plain");
    // No route for the SNI, or no valid backend: closed during the handshake.
    for sni in ["nomatch.org", "bad.example.com"] {
        let r = tls_client::tls_connection_rejected(addr(port), sni, None, T).await;
        assert!(r.is_rejected(), "{sni}: {r:?}");
    }
    // Not TLS at all: closed.
    let mut s = tokio::net::TcpStream::connect(addr(port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(
        tokio::time::timeout(T, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    ));
}

#[tokio::test]
async fn tls_routes_share_a_port_with_https_listeners() {
    let abc = cert("abc.example.com");
    let (_, abc_tls) = tcp_backend("abc", Some(&abc)).await;
    let web = cert("web.example.org");
    let port = free_port();
    let mut l = common::listener(Some("web.example.org"), vec![]);
    l.certificates = vec![ir::Certificate {
        name: "ns/web".into(),
        cert_pem: web.cert.pem(),
        key_pem: web.signing_key.serialize_pem(),
    }];
    let mut https = common::http_bind(port, vec![l]);
    https.protocol = ir::BindProtocol::Https;
    let cfg = ir::Config {
        binds: vec![https],
        l4_binds: vec![bind(
            port,
            ir::L4Protocol::Tls,
            vec![
                route(Some("abc.example.com"), &[(1, Some("abc"))]),
                // Less specific than the HTTPS listener for web.example.org.
                route(Some("*.example.org"), &[(1, Some("abc"))]),
            ],
        )],
        clusters: vec![cluster("abc", abc_tls.unwrap(), ir::UpstreamProtocol::Tcp)],
    };
    let p = Proxy::new(ProxyOptions::default());
    apply(&p, Arc::new(cfg)).await;
    let c =
        tcp_echo::tcp_echo_conversation(addr(port), Some(("abc.example.com", &abc.cert.pem())), T)
            .await
            .unwrap();
    assert_eq!(c.assertions.tls.unwrap().server_name, "abc.example.com");
    // The HTTPS listener still terminates its own hostname (404: it has no routes).
    let config = tls_client::client_config(Some(&web.cert.pem()), &[b"http/1.1"]).unwrap();
    let mut s = tls_client::tls_connect(addr(port), "web.example.org", config, T)
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: web.example.org\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}
