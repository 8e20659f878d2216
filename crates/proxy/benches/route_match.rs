//! Route lookup cost: listener → virtual host → first matching route, on a mid-sized table,
//! then how it grows with 10 / 1,000 / 10,000 routes (`scale/...`): spread over one hostname
//! each, or all on one hostname. `cargo bench -p trellis-proxy --bench route_match`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;
use trellis_ir as ir;
use trellis_proxy::RouteMatcher;

fn route(name: String, path: ir::PathMatch, headers: Vec<ir::ValueMatch>) -> ir::Route {
    ir::Route {
        name,
        matches: ir::RouteMatch {
            path,
            headers,
            ..Default::default()
        },
        filters: vec![],
        action: ir::Action::DirectResponse { status: 200 },
        timeouts: Default::default(),
        retry: None,
    }
}

fn bind() -> ir::Bind {
    let mut vhosts = Vec::new();
    for h in 0..50 {
        let mut routes = Vec::new();
        for r in 0..20 {
            let exact = ir::PathMatch::Exact(format!("/exact/{r}"));
            routes.push(route(format!("{h}/exact/{r}"), exact, vec![]));
            let header = ir::ValueMatch {
                name: "version".into(),
                kind: ir::ValueMatchKind::Exact,
                value: format!("v{r}"),
            };
            let p = ir::PathMatch::Prefix(format!("/api/{r}"));
            routes.push(route(format!("{h}/hdr/{r}"), p, vec![header]));
            let re = ir::PathMatch::RegularExpression(format!("/re/{r}/[a-z]+"));
            routes.push(route(format!("{h}/re/{r}"), re, vec![]));
        }
        routes.push(route(
            format!("{h}/root"),
            ir::PathMatch::Prefix("/".into()),
            vec![],
        ));
        vhosts.push(ir::VirtualHost {
            hostname: format!("host{h}.example.com"),
            routes,
        });
    }
    vhosts.push(ir::VirtualHost {
        hostname: "*.example.com".into(),
        routes: vec![route(
            "wild".into(),
            ir::PathMatch::Prefix("/".into()),
            vec![],
        )],
    });
    ir::Bind {
        name: "bench".into(),
        address: "127.0.0.1".parse().unwrap(),
        port: 80,
        protocol: ir::BindProtocol::Http,
        client_validation: None,
        listeners: vec![ir::HttpListener {
            name: "l".into(),
            hostname: None,
            certificates: vec![],
            virtual_hosts: vhosts,
        }],
    }
}

fn bench(c: &mut Criterion) {
    let m = RouteMatcher::new(&bind()).unwrap();
    let get = http::Method::GET;
    let mut headers = http::HeaderMap::new();
    headers.insert("version", http::HeaderValue::from_static("v19"));
    let cases = [
        ("exact_first", "host7.example.com", "/exact/0"),
        ("header_last", "HOST7.example.com:8080", "/api/19/x"),
        ("regex", "host7.example.com", "/re/10/abc"),
        ("fallthrough_root", "host7.example.com", "/nothing/here"),
        ("wildcard_vhost", "other.example.com", "/"),
    ];
    for (name, host, path) in cases {
        let uri: http::Uri = path.parse().unwrap();
        assert!(m.find(host, &get, &uri, &headers).is_some(), "{name}");
        c.bench_function(name, |b| {
            b.iter(|| {
                m.find(black_box(host), &get, black_box(&uri), &headers)
                    .map(str::len)
            })
        });
    }
}

/// Route `i` of the scale tables: every 10th a regex path, every 7th also a header match,
/// every 3rd an exact path, the rest prefixes. Returns the route and a request it serves.
fn scale_route(i: usize) -> (ir::Route, String, Option<String>) {
    let (path, req_path) = if i % 10 == 3 {
        let p = ir::PathMatch::RegularExpression(format!("/re{i}/[a-z]+"));
        (p, format!("/re{i}/abc"))
    } else if i.is_multiple_of(3) {
        (ir::PathMatch::Exact(format!("/e{i}")), format!("/e{i}"))
    } else {
        (ir::PathMatch::Prefix(format!("/p{i}")), format!("/p{i}/x"))
    };
    let mut headers = vec![];
    let mut tenant = None;
    if i % 7 == 5 {
        headers.push(ir::ValueMatch {
            name: "x-tenant".into(),
            kind: ir::ValueMatchKind::Exact,
            value: format!("t{i}"),
        });
        tenant = Some(format!("t{i}"));
    }
    (route(format!("r{i}"), path, headers), req_path, tenant)
}

fn scale_bind(n: usize, one_host: bool) -> ir::Bind {
    let mut vhosts: Vec<ir::VirtualHost> = Vec::new();
    for i in 0..n {
        let (r, _, _) = scale_route(i);
        match one_host {
            true if !vhosts.is_empty() => vhosts[0].routes.push(r),
            true => vhosts.push(ir::VirtualHost {
                hostname: "one.example.com".into(),
                routes: vec![r],
            }),
            false => vhosts.push(ir::VirtualHost {
                hostname: format!("h{i}.example.com"),
                routes: vec![r],
            }),
        }
    }
    let mut b = bind();
    b.listeners[0].virtual_hosts = vhosts;
    b
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let get = http::Method::GET;
    for one_host in [false, true] {
        let layout = if one_host {
            "one_host"
        } else {
            "host_per_route"
        };
        for n in [10, 1_000, 10_000] {
            let m = RouteMatcher::new(&scale_bind(n, one_host)).unwrap();
            // The last route: the most work for a first-match scan. Route n-1 is a prefix
            // route for every n used here.
            let i = n - 1;
            let (_, path, tenant) = scale_route(i);
            let host = match one_host {
                true => "one.example.com".to_string(),
                false => format!("h{i}.example.com"),
            };
            let mut headers = http::HeaderMap::new();
            if let Some(t) = tenant {
                headers.insert("x-tenant", t.parse().unwrap());
            }
            let uri: http::Uri = path.parse().unwrap();
            let want = format!("r{i}");
            assert_eq!(m.find(&host, &get, &uri, &headers), Some(want.as_str()));
            g.bench_with_input(BenchmarkId::new(format!("{layout}/last"), n), &n, |b, _| {
                b.iter(|| {
                    m.find(black_box(&host), &get, black_box(&uri), &headers)
                        .map(str::len)
                })
            });
            let miss: http::Uri = "/nothing/here".parse().unwrap();
            g.bench_with_input(BenchmarkId::new(format!("{layout}/miss"), n), &n, |b, _| {
                b.iter(|| {
                    m.find(black_box(&host), &get, black_box(&miss), &headers)
                        .map(str::len)
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench, scale);
criterion_main!(benches);
