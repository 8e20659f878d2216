//! Route checks with the L4 route kinds (TCPRoute, UDPRoute, TLSRoute) and ListenerSet
//! parents: each passes on a correct status and fails on a wrong one.

use super::tests::{cond, eval, CTRL};
use super::*;
use serde_json::json;

const G: &str = "gateway.networking.k8s.io";

fn listener(name: &str, kind: &str, programmed: &str) -> Value {
    json!({"name": name, "attachedRoutes": 1, "supportedKinds": [{"group": G, "kind": kind}],
        "conditions": [cond("Accepted", "True", "Accepted", 1), cond("ResolvedRefs", "True", "ResolvedRefs", 1),
                       cond("Programmed", programmed, "Programmed", 1)]})
}

/// A Gateway `gw` with one listener, and a route of `kind` whose parents are `parents`.
fn snap(kind: &str, listeners: Vec<Value>, route_gen: i64, parents: Value) -> Snapshot {
    Snapshot::from_json(&json!({"objects": [
        {"kind": "Gateway", "namespace": "infra", "name": "gw", "generation": 1,
         "status": {"addresses": [{"type": "IPAddress", "value": "127.0.0.9"}],
                    "conditions": [cond("Accepted", "True", "Accepted", 1), cond("Programmed", "True", "Programmed", 1)],
                    "listeners": listeners}},
        {"kind": kind, "namespace": "infra", "name": "r", "generation": route_gen, "status": {"parents": parents}}
    ]}))
    .unwrap()
}

fn parent(kind: &str, name: &str, ns: Option<&str>, conds: Vec<Value>) -> Value {
    let mut p = json!({"group": G, "kind": kind, "name": name});
    if let Some(ns) = ns {
        p["namespace"] = json!(ns);
    }
    json!({"parentRef": p, "controllerName": CTRL, "conditions": conds})
}

fn accepted(g: i64) -> Vec<Value> {
    vec![
        cond("Accepted", "True", "Accepted", g),
        cond("ResolvedRefs", "True", "ResolvedRefs", g),
    ]
}

fn accepted_check(kind: &str, with_listeners: bool) -> Value {
    let mut c = json!({"check": "gateway_and_routes_accepted", "gateway": {"name": "gw", "namespace": "infra"},
        "route_kind": kind, "routes": [{"name": "r", "namespace": "infra"}],
        "route_parent_conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
        "gateway_address_required": true});
    if with_listeners {
        c["all_listeners_conditions"] =
            json!([{"type": "Programmed", "status": "True", "reason": null}]);
    }
    c
}

fn fails(v: Verdict, needle: &str) {
    match v {
        Verdict::Fail(m) => assert!(m.contains(needle), "{m}"),
        v => panic!("expected a failure containing {needle:?}, got {v:?}"),
    }
}

#[test]
fn gateway_and_routes_accepted_with_tcp_and_udp_routes() {
    for kind in ["TCPRoute", "UDPRoute"] {
        let ok = snap(
            kind,
            vec![listener("l4", kind, "True")],
            1,
            json!([parent("Gateway", "gw", None, accepted(1))]),
        );
        assert_eq!(eval(accepted_check(kind, true), &ok), Verdict::Pass);
        // A listener that is not Programmed fails (these helpers check every listener).
        let unprogrammed = snap(
            kind,
            vec![listener("l4", kind, "False")],
            1,
            json!([parent("Gateway", "gw", None, accepted(1))]),
        );
        fails(
            eval(accepted_check(kind, true), &unprogrammed),
            "expected Programmed=True",
        );
        // The route must be looked up by its own kind.
        fails(
            eval(accepted_check("HTTPRoute", true), &ok),
            "HTTPRoute infra/r has no status yet",
        );
        let stale = snap(
            kind,
            vec![listener("l4", kind, "True")],
            2,
            json!([parent("Gateway", "gw", None, accepted(1))]),
        );
        fails(
            eval(accepted_check(kind, true), &stale),
            "observedGeneration 1, want 2",
        );
        let rejected = snap(
            kind,
            vec![listener("l4", kind, "True")],
            1,
            json!([parent(
                "Gateway",
                "gw",
                None,
                vec![cond("Accepted", "False", "NotAllowedByListeners", 1)]
            )]),
        );
        fails(
            eval(accepted_check(kind, true), &rejected),
            "got Accepted=False/NotAllowedByListeners",
        );
    }
}

#[test]
fn tls_route_helper_does_not_look_at_listeners() {
    let s = snap(
        "TLSRoute",
        vec![listener("tls", "TLSRoute", "False")],
        1,
        json!([parent("Gateway", "gw", None, accepted(1))]),
    );
    assert_eq!(eval(accepted_check("TLSRoute", false), &s), Verdict::Pass);
    let implicit_kind = snap(
        "TLSRoute",
        vec![],
        1,
        json!([{"parentRef": {"name": "gw"}, "controllerName": CTRL, "conditions": accepted(1)}]),
    );
    fails(
        eval(accepted_check("TLSRoute", false), &implicit_kind),
        "explicit parentRef group/kind",
    );
}

fn route_condition(kind: &str, parent: &str, c: Value) -> Value {
    json!({"check": "route_condition", "route": {"kind": kind, "name": "r", "namespace": "infra"},
        "parent": {"name": parent, "namespace": "infra", "kind": "ListenerSet"}, "condition": c})
}

#[test]
fn route_condition_with_a_listenerset_parent() {
    let refused = vec![
        cond("Accepted", "True", "Accepted", 1),
        cond("ResolvedRefs", "False", "RefNotPermitted", 1),
    ];
    let s = snap(
        "UDPRoute",
        vec![],
        1,
        json!([
            parent("Gateway", "gw", None, accepted(1)),
            parent("ListenerSet", "ls", None, refused)
        ]),
    );
    let want = json!({"type": "ResolvedRefs", "status": "False", "reason": "RefNotPermitted"});
    assert_eq!(
        eval(route_condition("UDPRoute", "ls", want.clone()), &s),
        Verdict::Pass
    );
    fails(
        eval(route_condition("UDPRoute", "gw", want.clone()), &s),
        "got ResolvedRefs=True/ResolvedRefs",
    );
    fails(
        eval(route_condition("UDPRoute", "other", want.clone()), &s),
        "no parent status for other",
    );
    // A parentRef namespace that differs does not name this parent.
    let elsewhere = snap(
        "TCPRoute",
        vec![],
        1,
        json!([parent(
            "ListenerSet",
            "ls",
            Some("other-ns"),
            vec![cond("ResolvedRefs", "False", "RefNotPermitted", 1)]
        )]),
    );
    fails(
        eval(route_condition("TCPRoute", "ls", want.clone()), &elsewhere),
        "no parent status for ls",
    );
    // Every parent entry must be current, even one for another parent.
    let stale_other = snap(
        "TCPRoute",
        vec![],
        2,
        json!([
            parent("Gateway", "gw", None, accepted(1)),
            parent(
                "ListenerSet",
                "ls",
                None,
                vec![cond("ResolvedRefs", "False", "RefNotPermitted", 2)]
            )
        ]),
    );
    fails(
        eval(route_condition("TCPRoute", "ls", want), &stale_other),
        "observedGeneration 1, want 2",
    );
}

#[test]
fn route_parents_compare_kind_group_namespace_and_controller() {
    let check = json!({"check": "route_parents", "route": {"kind": "TCPRoute", "name": "r", "namespace": "infra"},
        "namespace_required": true,
        "parents": [{"parent_ref": {"group": G, "kind": "ListenerSet", "name": "ls", "namespace": "infra"},
                     "controller_name": "{GATEWAY_CONTROLLER_NAME}",
                     "conditions": [{"type": "Accepted", "status": "True", "reason": null}]}]});
    let ok = snap(
        "TCPRoute",
        vec![],
        1,
        json!([
            parent("Gateway", "gw", Some("infra"), accepted(1)),
            parent("ListenerSet", "ls", Some("infra"), accepted(1))
        ]),
    );
    assert_eq!(eval(check.clone(), &ok), Verdict::Pass);
    let only_gateway = snap(
        "TCPRoute",
        vec![],
        1,
        json!([parent("Gateway", "ls", Some("infra"), accepted(1))]),
    );
    fails(
        eval(check.clone(), &only_gateway),
        "no parent entry for ListenerSet ls",
    );
    let no_ns = snap(
        "TCPRoute",
        vec![],
        1,
        json!([parent("ListenerSet", "ls", None, accepted(1))]),
    );
    fails(eval(check.clone(), &no_ns), "no parent entry");
    let mut lenient = check.clone();
    lenient["namespace_required"] = json!(false);
    assert_eq!(eval(lenient, &no_ns), Verdict::Pass);
    let mut other_ctrl = ok.clone();
    other_ctrl.objects[1].status["parents"][1]["controllerName"] = json!("example.com/other");
    fails(eval(check.clone(), &other_ctrl), "no parent entry");
    let mut not_accepted = ok;
    not_accepted.objects[1].status["parents"][1]["conditions"][0]["status"] = json!("False");
    fails(eval(check, &not_accepted), "Accepted=True/*");
}

#[test]
fn poll_budgets() {
    let base = std::time::Duration::from_secs(60);
    assert_eq!(poll_budget("route_condition", base), Some(base));
    assert_eq!(poll_budget("listenerset_condition", base), Some(base * 3));
    assert_eq!(
        poll_budget("backendtlspolicy_latest_observed_generation", base),
        None
    );
}
