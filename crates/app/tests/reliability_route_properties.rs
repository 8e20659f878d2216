//! Property: adding an unrelated HTTPRoute (one whose only match is a path no request uses)
//! never changes which route a request takes. Generated HTTPRoutes go through the real
//! translator, then the proxy's route lookup (`trellis_proxy::RouteMatcher`).

use proptest::prelude::*;
use serde_json::{json, Value};
use trellis_model::{ResourceSet, SourcedObject};
use trellis_proxy::RouteMatcher;
use trellis_translate::{translate, Options};

const HOSTNAMES: &[&str] = &["a.example.com", "*.example.com", "b.example.com", "*.org"];
const PATHS: &[&str] = &["/", "/a", "/a/b", "/b"];

fn base() -> Vec<Value> {
    vec![
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
               "metadata": {"name": "trellis"},
               "spec": {"controllerName": "trellis.dev/gateway-controller"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "gw", "namespace": "default"},
               "spec": {"gatewayClassName": "trellis",
                        "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
                        "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}),
        json!({"apiVersion": "trellis.dev/v1alpha1", "kind": "Backend",
               "metadata": {"name": "b", "namespace": "default"},
               "spec": {"endpoints": [{"address": "127.0.0.1", "port": 9}]}}),
    ]
}

fn rule() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["Exact", "PathPrefix"]),
        prop::sample::select(PATHS.to_vec()),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["GET", "POST"])),
    )
        .prop_map(|(kind, path, header, method)| {
            let mut m = json!({"path": {"type": kind, "value": path}});
            if header {
                m["headers"] = json!([{"name": "x-v", "value": "1"}]);
            }
            if let Some(method) = method {
                m["method"] = json!(method);
            }
            json!({"matches": [m], "backendRefs": [{"group": "trellis.dev", "kind": "Backend", "name": "b"}]})
        })
}

fn hostnames() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(HOSTNAMES.to_vec(), 0..=2)
}

fn http_route(name: &str, second: u32, hosts: &[&str], rules: Vec<Value>) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": name, "namespace": "default",
                        "creationTimestamp": format!("2024-01-01T00:00:{second:02}Z")},
           "spec": {"parentRefs": [{"name": "gw"}], "hostnames": hosts, "rules": rules}})
}

fn routes() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec((hostnames(), prop::collection::vec(rule(), 1..=3)), 1..=4).prop_map(
        |rs| {
            rs.into_iter()
                .enumerate()
                .map(|(i, (hosts, rules))| http_route(&format!("r{i}"), i as u32, &hosts, rules))
                .collect()
        },
    )
}

/// An HTTPRoute no generated request can match: its only path is under `/zz`.
fn unrelated() -> impl Strategy<Value = Value> {
    (hostnames(), any::<bool>(), 0u32..60).prop_map(|(hosts, exact, second)| {
        let path = if exact {
            json!({"type": "Exact", "value": "/zz-unrelated"})
        } else {
            json!({"type": "PathPrefix", "value": "/zz"})
        };
        let rule = json!({"matches": [{"path": path}],
                          "backendRefs": [{"group": "trellis.dev", "kind": "Backend", "name": "b"}]});
        http_route("unrelated", second, &hosts, vec![rule])
    })
}

#[derive(Debug, Clone)]
struct Req {
    host: &'static str,
    path: &'static str,
    method: http::Method,
    header: bool,
}

fn request() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec![
            "a.example.com",
            "b.example.com",
            "c.example.com",
            "x.org",
            "other",
        ]),
        prop::sample::select(vec!["/", "/a", "/a/b", "/a/b/c", "/b", "/bb", "/c"]),
        prop::sample::select(vec![http::Method::GET, http::Method::POST]),
        any::<bool>(),
    )
        .prop_map(|(host, path, method, header)| Req {
            host,
            path,
            method,
            header,
        })
}

/// The route `req` takes under `objects`, or `None` (404 / no listener).
fn matched(objects: &[Value], req: &Req) -> Option<String> {
    let sourced = objects
        .iter()
        .enumerate()
        .map(|(i, v)| SourcedObject {
            source: format!("gen.yaml#{i}"),
            value: v.clone(),
        })
        .collect();
    let (set, _) = ResourceSet::from_objects(sourced);
    let t = translate(&set, &Options::default());
    let bind = t.ir.binds.iter().find(|b| b.port == 80)?;
    let m = RouteMatcher::new(bind).expect("translated IR compiles");
    let mut headers = http::HeaderMap::new();
    if req.header {
        headers.insert("x-v", http::HeaderValue::from_static("1"));
    }
    let uri: http::Uri = req.path.parse().unwrap();
    m.find(req.host, &req.method, &uri, &headers)
        .map(str::to_string)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn unrelated_route_does_not_change_the_match(
        routes in routes(),
        extra in unrelated(),
        reqs in prop::collection::vec(request(), 1..8),
    ) {
        let mut before = base();
        before.extend(routes);
        let mut after = before.clone();
        after.push(extra);
        for req in &reqs {
            let (was, now) = (matched(&before, req), matched(&after, req));
            prop_assert_eq!(&was, &now, "request {:?}", req);
        }
    }
}
