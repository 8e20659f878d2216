//! Router compile + lookup with arbitrary IR-ish tables and requests (hostnames, paths,
//! regexes, header / query matches, methods). Must never panic; a lookup is deterministic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use trellis_ir as ir;

#[derive(Debug, Arbitrary)]
enum Path {
    Exact(String),
    Prefix(String),
    Regex(String),
}

#[derive(Debug, Arbitrary)]
struct Value {
    name: String,
    regex: bool,
    value: String,
}

#[derive(Debug, Arbitrary)]
struct Route {
    path: Path,
    method: Option<String>,
    headers: Vec<Value>,
    query: Vec<Value>,
}

#[derive(Debug, Arbitrary)]
struct Vhost {
    hostname: String,
    routes: Vec<Route>,
}

#[derive(Debug, Arbitrary)]
struct Listener {
    hostname: Option<String>,
    vhosts: Vec<Vhost>,
}

#[derive(Debug, Arbitrary)]
struct Request {
    host: String,
    method: String,
    /// Request-target: path and query.
    target: String,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    listeners: Vec<Listener>,
    requests: Vec<Request>,
}

fn value_match(v: Value) -> ir::ValueMatch {
    ir::ValueMatch {
        name: v.name,
        kind: if v.regex {
            ir::ValueMatchKind::RegularExpression
        } else {
            ir::ValueMatchKind::Exact
        },
        value: v.value,
    }
}

fn bind(listeners: Vec<Listener>) -> ir::Bind {
    let mut n = 0;
    let listeners = listeners
        .into_iter()
        .enumerate()
        .map(|(li, l)| ir::HttpListener {
            name: format!("l{li}"),
            hostname: l.hostname,
            certificates: vec![],
            virtual_hosts: l
                .vhosts
                .into_iter()
                .map(|v| ir::VirtualHost {
                    hostname: v.hostname,
                    routes: v
                        .routes
                        .into_iter()
                        .map(|r| {
                            n += 1;
                            ir::Route {
                                name: format!("r{n}"),
                                matches: ir::RouteMatch {
                                    path: match r.path {
                                        Path::Exact(p) => ir::PathMatch::Exact(p),
                                        Path::Prefix(p) => ir::PathMatch::Prefix(p),
                                        Path::Regex(p) => ir::PathMatch::RegularExpression(p),
                                    },
                                    method: r.method,
                                    headers: r.headers.into_iter().map(value_match).collect(),
                                    query_params: r.query.into_iter().map(value_match).collect(),
                                },
                                filters: vec![],
                                action: ir::Action::DirectResponse { status: 200 },
                                timeouts: Default::default(),
                                retry: None,
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    ir::Bind {
        name: "fuzz".into(),
        address: std::net::IpAddr::from([127, 0, 0, 1]),
        port: 80,
        protocol: ir::BindProtocol::Http,
        listeners,
        client_validation: None,
    }
}

fuzz_target!(|input: Input| {
    let bind = bind(input.listeners);
    let Ok(m) = trellis_proxy::RouteMatcher::new(&bind) else {
        return;
    };
    for r in input.requests {
        let Ok(method) = http::Method::from_bytes(r.method.as_bytes()) else {
            continue;
        };
        let Ok(uri) = r.target.parse::<http::Uri>() else {
            continue;
        };
        let mut headers = http::HeaderMap::new();
        for (k, v) in r.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_bytes(v.as_bytes()),
            ) {
                headers.append(k, v);
            }
        }
        let first = m.find(&r.host, &method, &uri, &headers).map(str::to_string);
        let again = m.find(&r.host, &method, &uri, &headers).map(str::to_string);
        assert_eq!(first, again, "lookup is not deterministic");
    }
});
