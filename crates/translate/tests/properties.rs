//! Property tests: on generated snapshots, translation never panics, always yields an IR that
//! passes `validate()`, is deterministic, and gives every HTTPRoute a status.

use proptest::prelude::*;
use serde_json::{json, Value};
use trellis_model::{ResourceSet, SourcedObject};
use trellis_translate::{translate, Options};

fn hostname() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec![
        "a.example.com",
        "*.example.com",
        "*.a.example.com",
        "b.org",
        "*",
        "",
        "A.EXAMPLE.COM",
    ]))
    .prop_map(|h| h.map(str::to_string))
}

fn listener() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["HTTP", "HTTPS", "TCP", "http"]),
        prop::sample::select(vec![80i64, 443, 0, 70000]),
        hostname(),
        prop::sample::select(vec!["Same", "All", "Selector", "None", "Bogus"]),
        any::<bool>(),
    )
        .prop_map(|(protocol, port, host, from, kinds)| {
            let mut l = json!({
                "name": format!("l-{protocol}-{port}-{}", host.clone().unwrap_or_default().replace('*', "w")),
                "port": port,
                "protocol": protocol,
                "allowedRoutes": {"namespaces": {"from": from, "selector": {"matchLabels": {"x": "y"}}}},
                "tls": {"certificateRefs": [{"name": "cert"}]},
            });
            if let Some(h) = host {
                l["hostname"] = json!(h);
            }
            if kinds {
                l["allowedRoutes"]["kinds"] = json!([{"kind": "HTTPRoute"}, {"kind": "Other"}]);
            }
            l
        })
}

fn rule() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["Exact", "PathPrefix", "RegularExpression", "Weird"]),
        prop::sample::select(vec!["/", "/a", "/a/", "((", "relative", "/a/b.*"]),
        prop::sample::select(vec!["svc", "missing", "other-ns"]),
        prop::option::of(0i64..3),
        prop::sample::select(vec!["none", "redirect", "rewrite", "mirror", "bad", "both"]),
        prop::option::of(prop::sample::select(vec!["1s", "0s", "1.5s", "500ms", "1h2m3s4ms"])),
    )
        .prop_map(|(ptype, value, backend, weight, filter, timeout)| {
            let mut backend_ref = json!({"name": backend, "port": 8080});
            if backend == "other-ns" {
                backend_ref["namespace"] = json!("other");
            }
            if let Some(w) = weight {
                backend_ref["weight"] = json!(w);
            }
            let redirect = json!({"type": "RequestRedirect", "requestRedirect": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"}}});
            let rewrite = json!({"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"}}});
            let filters = match filter {
                "redirect" => json!([redirect]),
                "rewrite" => json!([rewrite]),
                "mirror" => json!([{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "svc", "port": 8080}, "percent": 50}}]),
                "bad" => json!([{"type": "ExtensionRef"}]),
                "both" => json!([redirect, rewrite]),
                _ => json!([]),
            };
            let mut r = json!({
                "matches": [{"path": {"type": ptype, "value": value}, "headers": [{"name": "X", "value": "v"}]}],
                "filters": filters,
                "backendRefs": [backend_ref],
            });
            if let Some(t) = timeout {
                r["timeouts"] = json!({"request": t});
            }
            r
        })
}

fn snapshot() -> impl Strategy<Value = Vec<Value>> {
    (
        prop::collection::vec(prop::collection::vec(listener(), 0..4), 1..3),
        prop::collection::vec((prop::collection::vec(rule(), 0..3), prop::collection::vec(hostname(), 0..2), any::<bool>()), 0..4),
    )
        .prop_map(|(gateways, routes)| {
            let mut docs = vec![
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "c"}, "spec": {"controllerName": "trellis.dev/gateway-controller"}}),
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "default"}, "spec": {"ports": [{"port": 8080}]}}),
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "other"}, "spec": {"ports": [{"port": 8080}]}}),
            ];
            for (i, listeners) in gateways.iter().enumerate() {
                docs.push(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": format!("g{i}"), "namespace": "default"},
                    "spec": {"gatewayClassName": "c", "listeners": listeners}}));
            }
            for (i, (rules, hosts, cross)) in routes.iter().enumerate() {
                let hosts: Vec<String> = hosts.iter().flatten().cloned().collect();
                let ns = if *cross { "other" } else { "default" };
                docs.push(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                    "metadata": {"name": format!("r{i}"), "namespace": ns},
                    "spec": {"parentRefs": [{"name": "g0", "namespace": "default"}, {"name": "g1", "namespace": "default", "port": 80}],
                             "hostnames": hosts, "rules": rules}}));
            }
            docs
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn translation_is_total_valid_and_deterministic(docs in snapshot()) {
        let objects: Vec<SourcedObject> = docs
            .into_iter()
            .enumerate()
            .map(|(i, value)| SourcedObject { source: format!("gen#{i}"), value })
            .collect();
        let (set, _) = ResourceSet::from_objects(objects);
        let a = translate(&set, &Options::default());
        prop_assert!(a.ir.validate().is_ok(), "{:?}", a.ir.validate());
        prop_assert_eq!(&a, &translate(&set, &Options::default()));
        let routes = a.statuses.iter().filter(|s| s.kind == "HTTPRoute").count();
        prop_assert_eq!(routes, set.http_routes.len());
    }
}
