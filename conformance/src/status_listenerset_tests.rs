//! ListenerSet checks: each passes on a correct status and fails on a wrong one.

use crate::status::tests::{cond, eval, CTRL};
use crate::status::{Snapshot, Verdict};
use serde_json::{json, Value};

const G: &str = "gateway.networking.k8s.io";

fn ls_listener(name: &str, routes: i64, programmed: &str, g: i64) -> Value {
    json!({"name": name, "attachedRoutes": routes, "supportedKinds": [{"group": G, "kind": "HTTPRoute"}, {"kind": "GRPCRoute"}],
        "conditions": [cond("Accepted", "True", "Accepted", g), cond("ResolvedRefs", "True", "ResolvedRefs", g),
                       cond("Programmed", programmed, "Programmed", g)]})
}

/// ListenerSet `ls` (generation 1, conditions observed at `ls_obs`) with `listeners`, the
/// Gateway `gw` with `attached` (None = field absent), and an HTTPRoute in `route_ns`.
fn snap(
    ls_obs: i64,
    listeners: Vec<Value>,
    attached: Option<i64>,
    route_ns: &str,
    route_parent: Value,
) -> Snapshot {
    let mut gw_status = json!({"conditions": [cond("Accepted", "True", "Accepted", 1)]});
    if let Some(n) = attached {
        gw_status["attachedListenerSets"] = json!(n);
    }
    Snapshot::from_json(&json!({"objects": [
        {"kind": "ListenerSet", "namespace": "infra", "name": "ls", "generation": 1,
         "status": {"conditions": [cond("Accepted", "True", "Accepted", ls_obs), cond("Programmed", "True", "Programmed", ls_obs)],
                    "listeners": listeners}},
        {"kind": "Gateway", "namespace": "infra", "name": "gw", "generation": 1, "status": gw_status},
        {"kind": "HTTPRoute", "namespace": route_ns, "name": "r", "generation": 1,
         "status": {"parents": [route_parent]}}
    ]}))
    .unwrap()
}

fn ls_parent(ns: Option<&str>, reason: &str) -> Value {
    let mut p = json!({"group": G, "kind": "ListenerSet", "name": "ls"});
    if let Some(ns) = ns {
        p["namespace"] = json!(ns);
    }
    json!({"parentRef": p, "controllerName": CTRL, "conditions": [cond("Accepted", "True", reason, 1)]})
}

fn good() -> Snapshot {
    snap(
        1,
        vec![
            ls_listener("a", 2, "True", 1),
            ls_listener("b", 1, "True", 1),
        ],
        Some(1),
        "infra",
        ls_parent(None, "Accepted"),
    )
}

fn fails(v: Verdict, needle: &str) {
    match v {
        Verdict::Fail(m) => assert!(m.contains(needle), "{m}"),
        v => panic!("expected a failure containing {needle:?}, got {v:?}"),
    }
}

const LS: &str = r#"{"name": "ls", "namespace": "infra"}"#;

fn ls() -> Value {
    serde_json::from_str(LS).unwrap()
}

#[test]
fn listenerset_condition_needs_current_conditions() {
    let c = |t: &str, s: &str, r: Value| {
        json!({"check": "listenerset_condition", "listenerset": ls(),
        "condition": {"type": t, "status": s, "reason": r}})
    };
    assert_eq!(
        eval(c("Accepted", "True", json!("Accepted")), &good()),
        Verdict::Pass
    );
    assert_eq!(
        eval(c("Programmed", "True", Value::Null), &good()),
        Verdict::Pass
    );
    fails(
        eval(c("Accepted", "False", json!("NotAllowed")), &good()),
        "got Accepted=True/Accepted",
    );
    let stale = snap(0, vec![], None, "infra", ls_parent(None, "Accepted"));
    fails(
        eval(c("Accepted", "True", Value::Null), &stale),
        "observedGeneration 0, want 1",
    );
}

#[test]
fn listenerset_listener_conditions_by_name_or_all() {
    let c = |names: Value| {
        json!({"check": "listenerset_listener_conditions", "listenerset": ls(), "listeners": names,
        "conditions": [{"type": "Programmed", "status": "True", "reason": null}]})
    };
    assert_eq!(eval(c(json!(["a"])), &good()), Verdict::Pass);
    assert_eq!(eval(c(Value::Null), &good()), Verdict::Pass);
    fails(
        eval(c(json!(["a", "zz"])), &good()),
        "no listener status zz",
    );
    let one_down = snap(
        1,
        vec![
            ls_listener("a", 2, "True", 1),
            ls_listener("b", 1, "False", 1),
        ],
        None,
        "infra",
        ls_parent(None, "Accepted"),
    );
    assert_eq!(eval(c(json!(["a"])), &one_down), Verdict::Pass);
    fails(
        eval(c(Value::Null), &one_down),
        "listener b: expected Programmed=True",
    );
}

#[test]
fn listenerset_listeners_is_the_gateway_listeners_rule() {
    let want = |a_routes: i64, kind: &str| {
        json!({"check": "listenerset_listeners", "listenerset": ls(), "listeners": [
        {"name": "a", "supported_kinds": [{"group": G, "kind": kind}], "supported_kinds_must_be_empty": false,
         "conditions": [{"type": "Accepted", "status": "True", "reason": null}], "attached_routes": a_routes},
        {"name": "b", "supported_kinds": [{"kind": "GRPCRoute"}], "supported_kinds_must_be_empty": false,
         "conditions": [], "attached_routes": 1}]})
    };
    assert_eq!(eval(want(2, "HTTPRoute"), &good()), Verdict::Pass);
    fails(
        eval(want(3, "HTTPRoute"), &good()),
        "attachedRoutes 2, want 3",
    );
    fails(eval(want(2, "TCPRoute"), &good()), "supportedKinds lacks");
    let only_a = snap(
        1,
        vec![ls_listener("a", 2, "True", 1)],
        None,
        "infra",
        ls_parent(None, "Accepted"),
    );
    fails(
        eval(want(2, "HTTPRoute"), &only_a),
        "1 listener statuses, want 2",
    );
}

fn rpa(route_ns: &str) -> Value {
    json!({"check": "routes_and_parent_accepted",
        "parent": {"group": G, "kind": "ListenerSet", "name": "ls", "namespace": "infra"},
        "route_kind": "HTTPRoute", "routes": [{"name": "r", "namespace": route_ns}],
        "route_parent_conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
        "all_listeners_conditions": [{"type": "Programmed", "status": "True", "reason": null}]})
}

#[test]
fn routes_and_parent_accepted_checks_routes_and_listeners() {
    assert_eq!(eval(rpa("infra"), &good()), Verdict::Pass);
    let wrong_reason = snap(1, vec![], None, "infra", ls_parent(None, "Other"));
    fails(
        eval(rpa("infra"), &wrong_reason),
        "no parent entry for ListenerSet infra/ls",
    );
    let gw_parent = snap(
        1,
        vec![],
        None,
        "infra",
        json!({"parentRef": {"group": G, "kind": "Gateway", "name": "ls"}, "controllerName": CTRL,
               "conditions": [cond("Accepted", "True", "Accepted", 1)]}),
    );
    fails(eval(rpa("infra"), &gw_parent), "no parent entry");
    // A route in another namespace must name the ListenerSet's namespace.
    let cross_implicit = snap(1, vec![], None, "apps", ls_parent(None, "Accepted"));
    fails(eval(rpa("apps"), &cross_implicit), "no parent entry");
    let cross = snap(
        1,
        vec![],
        None,
        "apps",
        ls_parent(Some("infra"), "Accepted"),
    );
    assert_eq!(eval(rpa("apps"), &cross), Verdict::Pass);
    let listener_down = snap(
        1,
        vec![ls_listener("a", 1, "False", 1)],
        None,
        "infra",
        ls_parent(None, "Accepted"),
    );
    fails(
        eval(rpa("infra"), &listener_down),
        "listener a: expected Programmed=True",
    );
    let stale_ls = snap(0, vec![], None, "infra", ls_parent(None, "Accepted"));
    fails(
        eval(rpa("infra"), &stale_ls),
        "observedGeneration 0, want 1",
    );
}

#[test]
fn gateway_attached_listenersets_counts() {
    let c = |n: i64| json!({"check": "gateway_attached_listenersets", "gateway": {"name": "gw", "namespace": "infra"}, "count": n});
    assert_eq!(eval(c(1), &good()), Verdict::Pass);
    fails(eval(c(0), &good()), "attachedListenerSets 1, want 0");
    let absent = snap(1, vec![], None, "infra", ls_parent(None, "Accepted"));
    assert_eq!(
        eval(c(0), &absent),
        Verdict::Pass,
        "a missing field counts as 0"
    );
    fails(eval(c(1), &absent), "attachedListenerSets 0, want 1");
}
