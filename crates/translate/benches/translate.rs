//! Translator cost at 10 / 1,000 / 10,000 HTTPRoutes (one Gateway, one Backend; every route its
//! own hostname and path, every 10th a regex path, every 7th a header match — the same shape as
//! `bench/scale.py`). `typing` is `ResourceSet::from_objects`, `translate` the pure translation.
//! `cargo bench -p trellis-translate --bench translate`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::{json, Value};
use std::time::Duration;
use trellis_model::{ResourceSet, SourcedObject};
use trellis_translate::{translate, Options};

fn route(i: usize) -> Value {
    let mut m = json!({"path": {"type": "PathPrefix", "value": format!("/p{i}")}});
    if i % 10 == 3 {
        m = json!({"path": {"type": "RegularExpression", "value": format!("/re{i}/[a-z]+")}});
    }
    if i % 7 == 5 {
        m["headers"] = json!([{"name": "x-tenant", "value": format!("t{i}")}]);
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": format!("r{i}"), "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": "scale"}],
            "hostnames": [format!("h{i}.scale.test")],
            "rules": [{"matches": [m],
                       "backendRefs": [{"group": "trellis.dev", "kind": "Backend", "name": "upstream"}]}]
        }
    })
}

fn objects(n: usize) -> Vec<SourcedObject> {
    let fixed = [
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
               "metadata": {"name": "trellis"},
               "spec": {"controllerName": "trellis.dev/gateway-controller"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "scale", "namespace": "default"},
               "spec": {"gatewayClassName": "trellis",
                        "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
                        "listeners": [{"name": "http", "protocol": "HTTP", "port": 18085}]}}),
        json!({"apiVersion": "trellis.dev/v1alpha1", "kind": "Backend",
               "metadata": {"name": "upstream", "namespace": "default"},
               "spec": {"endpoints": [{"address": "127.0.0.1", "port": 18080}]}}),
    ];
    let mut out: Vec<SourcedObject> = fixed
        .into_iter()
        .enumerate()
        .map(|(i, value)| SourcedObject {
            source: format!("gateway.yaml#{i}"),
            value,
        })
        .collect();
    for i in 0..n {
        let mut value = route(i);
        // The file provider fills these in; the translator reads them for statuses.
        value["metadata"]["generation"] = json!(1);
        value["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        out.push(SourcedObject {
            source: format!("routes.yaml#{i}"),
            value,
        });
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("translator");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for n in [10, 1_000, 10_000] {
        let objs = objects(n);
        let (set, diags) = ResourceSet::from_objects(objs.clone());
        assert!(diags.is_empty(), "{diags:?}");
        let t = translate(&set, &Options::default());
        let routes: usize =
            t.ir.binds
                .iter()
                .flat_map(|b| &b.listeners)
                .flat_map(|l| &l.virtual_hosts)
                .map(|v| v.routes.len())
                .sum();
        assert_eq!(routes, n, "every route attached");
        g.bench_with_input(BenchmarkId::new("typing", n), &n, |b, _| {
            b.iter(|| ResourceSet::from_objects(black_box(objs.clone())))
        });
        g.bench_with_input(BenchmarkId::new("translate", n), &n, |b, _| {
            b.iter(|| translate(black_box(&set), &Options::default()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
