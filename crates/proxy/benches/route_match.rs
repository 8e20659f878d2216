//! Route lookup cost: listener → virtual host → first matching route, on a mid-sized table.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
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

criterion_group!(benches, bench);
criterion_main!(benches);
