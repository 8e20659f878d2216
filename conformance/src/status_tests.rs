use super::*;
use serde_json::json;

pub(crate) const CTRL: &str = "trellis.dev/gateway-controller";

pub(crate) fn cond(t: &str, s: &str, r: &str, g: i64) -> Value {
    json!({"type": t, "status": s, "reason": r, "observedGeneration": g, "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

fn ready_listener(name: &str, g: i64, routes: i64) -> Value {
    json!({"name": name, "attachedRoutes": routes,
        "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}, {"kind": "GRPCRoute"}],
        "conditions": [cond("Accepted", "True", "Accepted", g), cond("ResolvedRefs", "True", "ResolvedRefs", g), cond("Programmed", "True", "Programmed", g)]})
}

fn snapshot(route_gen: i64, route_obs: i64) -> Snapshot {
    let doc = json!({"version": 3, "objects": [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "namespace": "infra", "name": "gw", "generation": 2,
         "status": {"addresses": [{"type": "IPAddress", "value": "127.10.0.7"}],
                    "conditions": [cond("Accepted", "True", "Accepted", 2), cond("Programmed", "True", "Programmed", 2)],
                    "listeners": [ready_listener("http", 2, 1)]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "namespace": "infra", "name": "r", "generation": route_gen,
         "status": {"parents": [{"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
                                 "controllerName": CTRL,
                                 "conditions": [cond("Accepted", "True", "Accepted", route_obs), cond("ResolvedRefs", "False", "BackendNotFound", route_obs)]}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "name": "trellis", "generation": 1,
         "status": {"conditions": [cond("Accepted", "True", "Accepted", 1)]}}
    ], "diagnostics": []});
    Snapshot::from_json(&doc).unwrap()
}

pub(crate) fn eval(check: Value, snap: &Snapshot) -> Verdict {
    let ph = Placeholders::default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConfigDir::new(dir.path());
    config
        .add_text("g.yaml", "kind: Gateway\nmetadata: {name: gw, namespace: infra}\nspec: {addresses: [{value: a}, {value: b}]}\n---\nkind: Gateway\nmetadata: {name: skipped, namespace: infra, annotations: {gateway-api/skip-this-for-readiness: \"true\"}}\n".into())
        .unwrap();
    let before: HashMap<String, i64> = [("HTTPRoute infra/r".to_string(), 1)].into_iter().collect();
    let ctx = CheckCtx {
        placeholders: &ph,
        config: &config,
        generations_before: &before,
    };
    evaluate(&check, snap, &ctx)
}

fn accepted_check() -> Value {
    json!({"check": "gateway_and_routes_accepted", "gateway": {"name": "gw", "namespace": "infra"},
        "route_kind": "HTTPRoute", "routes": [{"name": "r", "namespace": "infra"}],
        "route_parent_conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
        "all_listeners_conditions": [{"type": "Programmed", "status": "True", "reason": null}],
        "gateway_address_required": true})
}

#[test]
fn gateway_and_routes_accepted_passes_and_checks_generation() {
    assert_eq!(eval(accepted_check(), &snapshot(1, 1)), Verdict::Pass);
    match eval(accepted_check(), &snapshot(2, 1)) {
        Verdict::Fail(m) => assert!(m.contains("observedGeneration 1, want 2"), "{m}"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn route_condition_reports_expected_and_actual() {
    let check = json!({"check": "route_condition", "route": {"kind": "HTTPRoute", "name": "r", "namespace": "infra"},
        "parent": {"name": "gw", "namespace": "infra"}, "condition": {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"}});
    match eval(check.clone(), &snapshot(1, 1)) {
        Verdict::Fail(m) => {
            assert!(m.contains("expected ResolvedRefs=True/ResolvedRefs"), "{m}");
            assert!(m.contains("got ResolvedRefs=False/BackendNotFound"), "{m}");
        }
        v => panic!("{v:?}"),
    }
    let mut ok = check;
    ok["condition"] = json!({"type": "ResolvedRefs", "status": "False", "reason": null});
    assert_eq!(eval(ok, &snapshot(1, 1)), Verdict::Pass);
}

#[test]
fn listeners_checks() {
    let check = json!({"check": "gateway_listeners", "gateway": {"name": "gw", "namespace": "infra"},
        "listeners": [{"name": "http", "supported_kinds": [{"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}],
                       "supported_kinds_must_be_empty": false,
                       "conditions": [{"type": "Accepted", "status": "True", "reason": null}], "attached_routes": 1}]});
    assert_eq!(eval(check.clone(), &snapshot(1, 1)), Verdict::Pass);
    let mut wrong = check;
    wrong["listeners"][0]["attached_routes"] = json!(2);
    assert!(
        matches!(eval(wrong, &snapshot(1, 1)), Verdict::Fail(m) if m.contains("attachedRoutes 1, want 2"))
    );
    let zero = json!({"check": "gateway_zero_attached_routes", "gateway": {"name": "gw", "namespace": "infra"}});
    assert!(matches!(eval(zero, &snapshot(1, 1)), Verdict::Fail(_)));
    let lc = json!({"check": "listener_conditions", "gateway": {"name": "gw", "namespace": "infra"}, "listener": "http",
        "conditions": [{"type": "ResolvedRefs", "status": "True", "reason": null}]});
    assert_eq!(eval(lc, &snapshot(1, 1)), Verdict::Pass);
}

#[test]
fn gateway_level_checks() {
    let gw = json!({"name": "gw", "namespace": "infra"});
    assert_eq!(
        eval(
            json!({"check": "gateway_latest_observed_generation", "gateway": gw}),
            &snapshot(1, 1)
        ),
        Verdict::Pass
    );
    assert_eq!(
        eval(
            json!({"check": "gateway_address_assigned", "gateway": gw}),
            &snapshot(1, 1)
        ),
        Verdict::Pass
    );
    assert_eq!(
        eval(
            json!({"check": "gateway_condition", "gateway": gw, "condition": {"type": "Programmed", "status": "True", "reason": "Programmed"}}),
            &snapshot(1, 1)
        ),
        Verdict::Pass
    );
    assert!(matches!(
        eval(
            json!({"check": "gateway_condition", "gateway": gw, "condition": {"type": "Accepted", "status": "False", "reason": "UnsupportedAddress"}}),
            &snapshot(1, 1)
        ),
        Verdict::Fail(_)
    ));
    assert_eq!(
        eval(
            json!({"check": "namespace_ready", "namespace": "infra"}),
            &snapshot(1, 1)
        ),
        Verdict::Pass
    );
    assert_eq!(
        eval(
            json!({"check": "spec_addresses_count", "gateway": gw, "count": 2}),
            &snapshot(1, 1)
        ),
        Verdict::Pass
    );
    assert!(matches!(
        eval(
            json!({"check": "status_addresses", "gateway": gw}),
            &snapshot(1, 1)
        ),
        Verdict::Fail(_)
    ));
    assert_eq!(
        eval(
            json!({"check": "gatewayclass_accepted_any", "gatewayclass": "trellis"}),
            &snapshot(1, 1)
        ),
        Verdict::Pass
    );
}

#[test]
fn generation_changed_and_route_generation() {
    let t = json!({"check": "generation_changed", "target": {"kind": "HTTPRoute", "name": "r", "namespace": "infra"}});
    assert_eq!(eval(t.clone(), &snapshot(2, 2)), Verdict::Pass);
    assert!(matches!(eval(t, &snapshot(1, 1)), Verdict::Fail(_)));
    let rl = json!({"check": "route_latest_observed_generation", "route": {"kind": "HTTPRoute", "name": "r", "namespace": "infra"}});
    assert_eq!(eval(rl.clone(), &snapshot(2, 2)), Verdict::Pass);
    assert!(matches!(eval(rl, &snapshot(2, 1)), Verdict::Fail(_)));
}

#[test]
fn route_parents_and_no_accepted_parents() {
    let rp = json!({"check": "route_parents", "route": {"kind": "HTTPRoute", "name": "r", "namespace": "infra"}, "namespace_required": false,
        "parents": [{"parent_ref": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "infra"},
                     "controller_name": "{GATEWAY_CONTROLLER_NAME}", "conditions": [{"type": "Accepted", "status": "True", "reason": null}]}]});
    assert_eq!(eval(rp.clone(), &snapshot(1, 1)), Verdict::Pass);
    let mut req = rp;
    req["namespace_required"] = json!(true);
    assert!(matches!(eval(req, &snapshot(1, 1)), Verdict::Fail(_)));
    let na = json!({"check": "route_no_accepted_parents", "route": {"kind": "HTTPRoute", "name": "r", "namespace": "infra"}});
    assert!(matches!(eval(na, &snapshot(1, 1)), Verdict::Fail(_)));
}

#[test]
fn unknown_and_kubernetes_only_checks() {
    assert!(
        matches!(eval(json!({"check": "frobnicate"}), &snapshot(1, 1)), Verdict::Unsupported(m) if m.contains("unsupported check"))
    );
    assert!(matches!(
        eval(
            json!({"check": "generated_resources_metadata"}),
            &snapshot(1, 1)
        ),
        Verdict::Skipped(_)
    ));
    assert!(matches!(
        eval(json!({"check": "gateway_condition", "gateway": {"name": "nope", "namespace": "infra"}, "condition": {"type": "Accepted", "status": "True"}}), &snapshot(1, 1)),
        Verdict::Fail(m) if m.contains("no status yet")
    ));
}

#[test]
fn every_check_type_in_the_claimed_suite_is_known() {
    let suite = crate::suite::Suite::load(&crate::suite::default_suite_dir()).unwrap();
    let snap = Snapshot::default();
    for t in suite
        .tests
        .iter()
        .filter(|t| crate::features::skip_reason(t, None).is_none())
    {
        let checks = t
            .status_expectations
            .iter()
            .chain(t.steps.iter().flat_map(|s| s.then.iter()));
        for c in checks {
            assert!(
                !matches!(eval(c.clone(), &snap), Verdict::Unsupported(_)),
                "{}: {c}",
                t.dir
            );
        }
    }
}

#[test]
fn extra_family_checks() {
    let doc = json!({"objects": [
        {"kind": "BackendTLSPolicy", "namespace": "infra", "name": "p", "generation": 1,
         "status": {"ancestors": [{"ancestorRef": {"name": "gw"}, "controllerName": CTRL,
                                   "conditions": [cond("Accepted", "True", "Accepted", 1)]}]}},
        {"kind": "Gateway", "namespace": "infra", "name": "gw", "generation": 1,
         "status": {"attachedListenerSets": 1, "conditions": [cond("Accepted", "True", "Accepted", 1)]}}
    ]});
    let snap = Snapshot::from_json(&doc).unwrap();
    let pc = json!({"check": "backendtlspolicy_condition", "policy": {"name": "p", "namespace": "infra"},
        "ancestor": {"name": "gw", "namespace": "infra"}, "condition": {"type": "Accepted", "status": "True", "reason": null}});
    assert_eq!(eval(pc, &snap), Verdict::Pass);
    let ls = json!({"check": "gateway_attached_listenersets", "gateway": {"name": "gw", "namespace": "infra"}, "count": 2});
    assert!(
        matches!(eval(ls, &snap), Verdict::Fail(m) if m.contains("attachedListenerSets 1, want 2"))
    );
}
