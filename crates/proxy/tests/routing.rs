//! Routing, actions and filters seen from a real client through real sockets.

mod common;

use common::*;
use std::sync::Arc;
use trellis_ir as ir;

fn header(name: &str, value: &str, kind: ir::ValueMatchKind) -> ir::ValueMatch {
    ir::ValueMatch {
        name: name.into(),
        kind,
        value: value.into(),
    }
}

#[tokio::test]
async fn listener_vhost_and_route_precedence() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let port = free_port();
    let mut exact = route("exact", ir::PathMatch::Exact("/x".into()), to("b"));
    exact.matches.method = Some("GET".into());
    let mut by_header = route("hdr", prefix("/"), to("c"));
    by_header.matches.headers = vec![header("version", "two", ir::ValueMatchKind::Exact)];
    let mut by_query = route("query", prefix("/"), to("c"));
    by_query.matches.query_params = vec![header(
        "animal",
        "wh.+",
        ir::ValueMatchKind::RegularExpression,
    )];
    let regex = route(
        "re",
        ir::PathMatch::RegularExpression("/v[0-9]+".into()),
        to("b"),
    );
    let cfg = ir::Config {
        binds: vec![http_bind(
            port,
            vec![
                listener(
                    Some("only.example"),
                    vec![vhost(
                        "only.example",
                        vec![route("o", prefix("/"), to("c"))],
                    )],
                ),
                listener(
                    None,
                    vec![
                        vhost(
                            "foo.example",
                            vec![exact, route("foo", prefix("/foo"), to("b"))],
                        ),
                        vhost("*.wild.example", vec![route("w", prefix("/"), to("b"))]),
                        vhost(
                            "*",
                            vec![
                                regex,
                                by_header,
                                by_query,
                                route("all", prefix("/any"), to("a")),
                            ],
                        ),
                    ],
                ),
            ],
        )],
        clusters: vec![
            cluster("a", &[&a]),
            cluster("b", &[&b]),
            cluster("c", &[&c]),
        ],
        ..Default::default()
    };
    let p = proxy();
    let report = p.apply(Arc::new(cfg)).await.unwrap();
    assert!(report.bind_errors.is_empty());

    let cases: &[(&str, Option<&str>, &str, u16)] = &[
        ("/x", Some("foo.example"), "b", 200),
        ("/foo/bar", Some("FOO.example:8080"), "b", 200),
        ("/foobar", Some("foo.example"), "", 404),
        ("/", Some("a.b.wild.example"), "b", 200),
        ("/any/thing", Some("wild.example"), "a", 200),
        ("/anything", Some("other"), "", 404),
        ("/v12", None, "b", 200),
        ("/v12/x", None, "", 404),
        ("/?animal=whale", None, "c", 200),
        ("/?animal=dog", None, "", 404),
        ("/", Some("only.example"), "c", 200),
    ];
    for (path, host, want, status) in cases {
        let ans = get(port, path, *host).await;
        assert_eq!(ans.status.as_u16(), *status, "{path} {host:?}");
        assert_eq!(ans.backend(), *want, "{path} {host:?}");
    }
    let ans = send(&client(), port, "POST", "/x", Some("foo.example"), &[]).await;
    assert_eq!(ans.status.as_u16(), 404, "method match");
    let ans = send(&client(), port, "GET", "/", None, &[("Version", "two")]).await;
    assert_eq!(ans.backend(), "c");
    p.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test]
async fn weights_and_invalid_backends() {
    let (a, b) = (backend("a").await, backend("b").await);
    let port = free_port();
    let wb = |w: u32, c: Option<&str>| ir::WeightedBackend {
        weight: w,
        cluster: c.map(String::from),
        filters: vec![],
    };
    let routes = vec![
        route(
            "w",
            prefix("/weighted"),
            ir::Action::Forward(vec![wb(0, Some("b")), wb(3, Some("a"))]),
        ),
        route(
            "zero",
            prefix("/zero"),
            ir::Action::Forward(vec![wb(0, Some("a"))]),
        ),
        route("none", prefix("/none"), ir::Action::Forward(vec![])),
        route(
            "invalid",
            prefix("/invalid"),
            ir::Action::Forward(vec![wb(1, None)]),
        ),
        route("empty", prefix("/empty"), to("empty")),
        route(
            "direct",
            prefix("/direct"),
            ir::Action::DirectResponse { status: 418 },
        ),
        route(
            "split",
            prefix("/split"),
            ir::Action::Forward(vec![wb(1, Some("a")), wb(1, Some("b"))]),
        ),
    ];
    let clusters = vec![
        cluster("a", &[&a]),
        cluster("b", &[&b]),
        cluster("empty", &[]),
    ];
    let p = proxy();
    p.apply(simple(port, routes, clusters)).await.unwrap();
    for _ in 0..20 {
        assert_eq!(get(port, "/weighted", None).await.backend(), "a");
    }
    assert_eq!(get(port, "/zero", None).await.status, 500);
    assert_eq!(get(port, "/none", None).await.status, 500);
    assert_eq!(get(port, "/invalid", None).await.status, 500);
    assert_eq!(get(port, "/empty", None).await.status, 503);
    assert_eq!(get(port, "/direct", None).await.status, 418);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..60 {
        seen.insert(get(port, "/split", None).await.backend());
    }
    assert_eq!(seen.len(), 2, "both backends of an even split get traffic");
}

#[tokio::test]
async fn header_modifiers_rewrite_and_forwarded_headers() {
    let a = backend("a").await;
    let port = free_port();
    let hm = ir::HeaderModifier {
        set: vec![ir::Header {
            name: "X-Set".into(),
            value: "set".into(),
        }],
        add: vec![ir::Header {
            name: "X-Add".into(),
            value: "added".into(),
        }],
        remove: vec!["X-Remove".into()],
    };
    let resp_hm = ir::HeaderModifier {
        set: vec![ir::Header {
            name: "X-Resp".into(),
            value: "r".into(),
        }],
        remove: vec!["X-Backend".into()],
        ..Default::default()
    };
    let mut r = route("mods", prefix("/prefix/one"), to("a"));
    r.filters = vec![
        ir::Filter::RequestHeaderModifier(hm),
        ir::Filter::ResponseHeaderModifier(resp_hm),
        ir::Filter::UrlRewrite(ir::UrlRewrite {
            hostname: Some("rewritten.example".into()),
            path: Some(ir::PathModifier::ReplacePrefixMatch("/".into())),
        }),
    ];
    let mut full = route("full", prefix("/full"), to("a"));
    full.filters = vec![ir::Filter::UrlRewrite(ir::UrlRewrite {
        hostname: None,
        path: Some(ir::PathModifier::ReplaceFullPath("/one".into())),
    })];
    let backend_mod = ir::HeaderModifier {
        set: vec![ir::Header {
            name: "X-Backend-Filter".into(),
            value: "yes".into(),
        }],
        ..Default::default()
    };
    let per_backend = route(
        "per-backend",
        prefix("/per-backend"),
        ir::Action::Forward(vec![ir::WeightedBackend {
            weight: 1,
            cluster: Some("a".into()),
            filters: vec![ir::Filter::RequestHeaderModifier(backend_mod)],
        }]),
    );
    let p = proxy();
    p.apply(simple(
        port,
        vec![r, full, per_backend, route("raw", prefix("/"), to("a"))],
        vec![cluster("a", &[&a])],
    ))
    .await
    .unwrap();

    let hdrs = [("X-Set", "old"), ("X-Add", "first"), ("X-Remove", "gone")];
    let ans = send(
        &client(),
        port,
        "GET",
        "/prefix/one/two?q=1",
        Some("orig.example"),
        &hdrs,
    )
    .await;
    assert_eq!(ans.status, 200);
    let j = ans.json();
    assert_eq!(j["path"], "/two?q=1");
    assert_eq!(j["host"], "rewritten.example");
    assert_eq!(j["headers"]["x-set"], serde_json::json!(["set"]));
    assert_eq!(j["headers"]["x-add"], serde_json::json!(["first", "added"]));
    assert!(j["headers"]["x-remove"].is_null());
    assert_eq!(
        j["headers"]["x-forwarded-proto"],
        serde_json::json!(["http"])
    );
    assert_eq!(
        j["headers"]["x-forwarded-for"],
        serde_json::json!(["127.0.0.1"])
    );
    assert_eq!(ans.headers["x-resp"], "r");
    assert!(!ans.headers.contains_key("x-backend"));

    // An earlier proxy's X-Forwarded-For gets the client appended.
    let chained = send(
        &client(),
        port,
        "GET",
        "/full/x",
        None,
        &[("x-forwarded-for", "10.0.0.1")],
    )
    .await
    .json();
    assert_eq!(
        chained["headers"]["x-forwarded-for"],
        serde_json::json!(["10.0.0.1, 127.0.0.1"])
    );

    assert_eq!(get(port, "/full/a/b", None).await.json()["path"], "/one");
    let j = get(port, "/per-backend", None).await.json();
    assert_eq!(j["headers"]["x-backend-filter"], serde_json::json!(["yes"]));
    assert!(get(port, "/", None).await.json()["headers"]["x-backend-filter"].is_null());
    // The request-URI is forwarded byte for byte and the Host is preserved.
    let ans = get(port, "/a/../b//c?x=%2F&y", Some("keep.example:81")).await;
    assert_eq!(ans.json()["path"], "/a/../b//c?x=%2F&y");
    assert_eq!(ans.json()["host"], "keep.example:81");
}

#[tokio::test]
async fn redirects_build_location() {
    let port = free_port();
    let rd = |scheme: Option<&str>, host: Option<&str>, port: Option<u16>, path, code| {
        ir::Action::Redirect(ir::Redirect {
            scheme: scheme.map(String::from),
            hostname: host.map(String::from),
            port,
            path,
            status_code: code,
        })
    };
    let routes = vec![
        route(
            "s",
            prefix("/scheme"),
            rd(Some("https"), None, None, None, 302),
        ),
        route(
            "h",
            prefix("/host"),
            rd(None, Some("example.org"), None, None, 301),
        ),
        route("p", prefix("/port"), rd(None, None, Some(8083), None, 302)),
        route(
            "pre",
            prefix("/original-prefix"),
            rd(
                None,
                None,
                None,
                Some(ir::PathModifier::ReplacePrefixMatch("/replacement".into())),
                302,
            ),
        ),
        route(
            "full",
            prefix("/full"),
            rd(
                None,
                None,
                None,
                Some(ir::PathModifier::ReplaceFullPath("/f".into())),
                307,
            ),
        ),
    ];
    let p = proxy();
    p.apply(simple(port, routes, vec![])).await.unwrap();
    let cases: &[(&str, u16, String)] = &[
        ("/scheme?a=1", 302, "https://gw.example/scheme?a=1".into()),
        ("/host", 301, format!("http://example.org:{port}/host")),
        ("/port", 302, "http://gw.example:8083/port".into()),
        (
            "/original-prefix/lemon",
            302,
            format!("http://gw.example:{port}/replacement/lemon"),
        ),
        ("/full/x", 307, format!("http://gw.example:{port}/f")),
    ];
    for (path, status, location) in cases {
        let ans = get(port, path, Some("GW.example:1234")).await;
        assert_eq!(ans.status.as_u16(), *status, "{path}");
        assert_eq!(ans.headers["location"], location.as_str(), "{path}");
    }
}

#[tokio::test]
async fn mirror_receives_a_copy() {
    let (a, m) = (backend("a").await, backend("mirror").await);
    let port = free_port();
    let mut r = route("m", prefix("/"), to("a"));
    r.filters = vec![ir::Filter::RequestMirror(ir::Mirror {
        cluster: Some("m".into()),
        fraction: 1.0,
    })];
    let mut never = route("n", prefix("/never"), to("a"));
    never.filters = vec![ir::Filter::RequestMirror(ir::Mirror {
        cluster: Some("m".into()),
        fraction: 0.0,
    })];
    let p = proxy();
    p.apply(simple(
        port,
        vec![never, r],
        vec![cluster("a", &[&a]), cluster("m", &[&m])],
    ))
    .await
    .unwrap();
    let id = format!("/mirror?id={}", unique());
    let ans = get(port, &id, None).await;
    assert_eq!(ans.backend(), "a");
    assert!(
        eventually(|| m.seen().contains(&id)).await,
        "mirror saw {:?}",
        m.seen()
    );
    assert_eq!(get(port, "/never", None).await.backend(), "a");
    let id2 = format!("/mirror?id={}", unique());
    get(port, &id2, None).await;
    assert!(eventually(|| m.seen().contains(&id2)).await);
    assert!(
        !m.seen().iter().any(|s| s == "/never"),
        "fraction 0 never mirrors"
    );
}

#[tokio::test]
async fn cors_preflight_and_simple_requests() {
    let a = backend("a").await;
    let port = free_port();
    let mut r = route("cors", prefix("/"), to("a"));
    r.filters = vec![ir::Filter::Cors(ir::Cors {
        allow_origins: vec!["https://www.foo.com".into(), "https://*.bar.com".into()],
        allow_credentials: true,
        allow_methods: vec!["GET".into(), "OPTIONS".into()],
        allow_headers: vec!["x-header-1".into()],
        expose_headers: vec!["x-header-3".into()],
        max_age_seconds: Some(3600),
    })];
    let p = proxy();
    p.apply(simple(port, vec![r], vec![cluster("a", &[&a])]))
        .await
        .unwrap();
    let c = client();
    let pre = [
        ("Origin", "https://x.y.bar.com"),
        ("Access-Control-Request-Method", "GET"),
    ];
    let ans = send(&c, port, "OPTIONS", "/cors", None, &pre).await;
    assert_eq!(ans.status, 204);
    assert!(ans.body.is_empty(), "answered by the proxy");
    assert_eq!(
        ans.headers["access-control-allow-origin"],
        "https://x.y.bar.com"
    );
    assert_eq!(ans.headers["access-control-allow-methods"], "GET, OPTIONS");
    assert_eq!(ans.headers["access-control-allow-headers"], "x-header-1");
    assert_eq!(ans.headers["access-control-max-age"], "3600");
    assert_eq!(ans.headers["access-control-allow-credentials"], "true");
    let bad = [
        ("Origin", "https://foobar.com"),
        ("Access-Control-Request-Method", "GET"),
    ];
    let ans = send(&c, port, "OPTIONS", "/cors", None, &bad).await;
    assert!(!ans.headers.contains_key("access-control-allow-origin"));
    let ans = send(
        &c,
        port,
        "GET",
        "/cors",
        None,
        &[("Origin", "https://www.foo.com")],
    )
    .await;
    assert_eq!(ans.backend(), "a");
    assert_eq!(
        ans.headers["access-control-allow-origin"],
        "https://www.foo.com"
    );
    assert_eq!(ans.headers["access-control-expose-headers"], "x-header-3");
}

#[tokio::test]
async fn h2c_clients_and_h2c_upstreams() {
    let a = backend("a").await;
    let port = free_port();
    let mut h2 = cluster("h2", &[&a]);
    h2.protocol = ir::UpstreamProtocol::H2c;
    let routes = vec![
        route("h2", prefix("/h2"), to("h2")),
        route("h1", prefix("/"), to("a")),
    ];
    let p = proxy();
    p.apply(simple(port, routes, vec![cluster("a", &[&a]), h2]))
        .await
        .unwrap();
    // HTTP/2 prior knowledge to the proxy; :authority reaches an HTTP/1 backend as Host.
    let ans = send(&h2c_client(), port, "GET", "/h1?x", None, &[]).await;
    assert_eq!(ans.status, 200);
    assert_eq!(ans.json()["proto"], "HTTP/1.1");
    assert_eq!(ans.json()["host"], format!("127.0.0.1:{port}"));
    assert_eq!(ans.json()["path"], "/h1?x");
    // HTTP/1.1 to the proxy, HTTP/2 to the backend.
    let ans = get(port, "/h2/y", Some("h.example")).await;
    assert_eq!(ans.json()["proto"], "HTTP/2.0");
    assert_eq!(ans.json()["host"], "h.example");
}

#[tokio::test]
async fn upstream_connections_are_pooled_and_metrics_counted() {
    let a = backend("a").await;
    let port = free_port();
    let registry = Arc::new(std::sync::Mutex::new(
        prometheus_client::registry::Registry::default(),
    ));
    let opts = trellis_proxy::ProxyOptions {
        registry: Some(registry.clone()),
        ..Default::default()
    };
    let p = trellis_proxy::Proxy::new(opts);
    let routes = vec![
        route("e", prefix("/empty"), to("e")),
        route("r", prefix("/"), to("a")),
    ];
    p.apply(simple(
        port,
        routes.clone(),
        vec![cluster("a", &[&a]), cluster("e", &[])],
    ))
    .await
    .unwrap();
    for _ in 0..5 {
        assert_eq!(get(port, "/", None).await.status, 200);
    }
    // A new configuration with the same endpoint keeps its pool.
    p.apply(simple(
        port,
        routes,
        vec![cluster("a", &[&a]), cluster("e", &[])],
    ))
    .await
    .unwrap();
    for _ in 0..5 {
        assert_eq!(get(port, "/", None).await.status, 200);
    }
    assert_eq!(a.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(get(port, "/empty", None).await.status, 503);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry.lock().unwrap()).unwrap();
    assert!(
        text.contains("trellis_proxy_requests_total{class=\"2xx\"} 10"),
        "{text}"
    );
    assert!(
        text.contains("trellis_proxy_requests_total{class=\"5xx\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn hostile_input_gets_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = backend("a").await;
    let port = free_port();
    let p = proxy();
    p.apply(simple(
        port,
        vec![route("r", prefix("/"), to("a"))],
        vec![cluster("a", &[&a])],
    ))
    .await
    .unwrap();
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n"[..],
        b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00\x01garbage\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(raw).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await;
        let n = read.expect("an answer").unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 400"), "{raw:?} -> {text}");
    }
    assert_eq!(get(port, "/", None).await.status, 200, "still serving");
}

#[tokio::test]
async fn unix_and_hostname_endpoints() {
    let a = backend("a").await;
    let dir =
        std::env::temp_dir().join(format!("trellis-proxy-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("b.sock");
    let unix = tokio::net::UnixListener::bind(&sock).unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = unix.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let body = format!("unix {}", req.uri());
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(body)),
                        ))
                    },
                );
                let io = hyper_util::rt::TokioIo::new(s);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    let port = free_port();
    let clusters = vec![
        ir::Cluster {
            tls: None,
            name: "unix".into(),
            protocol: ir::UpstreamProtocol::Http1,
            endpoints: vec![ir::Endpoint::Unix(sock.to_string_lossy().into_owned())],
        },
        ir::Cluster {
            tls: None,
            name: "named".into(),
            protocol: ir::UpstreamProtocol::Http1,
            endpoints: vec![ir::Endpoint::Host {
                host: "localhost".into(),
                port: a.addr.port(),
            }],
        },
    ];
    let routes = vec![
        route("u", prefix("/unix"), to("unix")),
        route("n", prefix("/"), to("named")),
    ];
    let p = proxy();
    p.apply(simple(port, routes, clusters)).await.unwrap();
    let ans = get(port, "/unix/x?y", None).await;
    assert_eq!(ans.status, 200);
    assert_eq!(ans.body, "unix /unix/x?y");
    let ans = get(port, "/named", None).await;
    assert_eq!(ans.status, 200);
    assert_eq!(ans.backend(), "a");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn http10_without_host_reaches_the_catch_all() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = backend("a").await;
    let port = free_port();
    let p = proxy();
    p.apply(simple(
        port,
        vec![route("r", prefix("/"), to("a"))],
        vec![cluster("a", &[&a])],
    ))
    .await
    .unwrap();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /old HTTP/1.0\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    read.expect("HTTP/1.0 closes after the answer").unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["host"], a.addr.to_string());
    assert_eq!(json["path"], "/old");
}
