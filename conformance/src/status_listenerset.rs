//! ListenerSet status checks (README-extra-families.md "New checks"): `listenerset_condition`,
//! `listenerset_listener_conditions`, `listenerset_listeners`, `routes_and_parent_accepted`
//! and `gateway_attached_listenersets`.

use crate::status::{
    arr, current, field, has, has_all, obj, object_key, opt_field, s, CheckCtx, Cond, NsName,
    ObjStatus, Snapshot, GATEWAY_GROUP, R,
};
use crate::status_gateway::{listeners_exactly, ListenerExpect};
use serde_json::Value;

/// `None` when `kind` is not a check of this module.
pub fn evaluate(kind: &str, c: &Value, snap: &Snapshot, _ctx: &CheckCtx) -> Option<R> {
    Some(match kind {
        "listenerset_condition" => listenerset_condition(c, snap),
        "listenerset_listener_conditions" => listenerset_listener_conditions(c, snap),
        "listenerset_listeners" => listenerset_listeners(c, snap),
        "routes_and_parent_accepted" => routes_and_parent_accepted(c, snap),
        "gateway_attached_listenersets" => gateway_attached_listenersets(c, snap),
        _ => return None,
    })
}

fn ns_of(r: &NsName) -> &str {
    r.namespace.as_deref().unwrap_or("default")
}

fn listenerset<'a>(c: &Value, snap: &'a Snapshot) -> Result<(&'a ObjStatus, String), String> {
    let l: NsName = field(c, "listenerset")?;
    let what = object_key("ListenerSet", Some(ns_of(&l)), &l.name);
    let o = obj(snap, "ListenerSet", Some(ns_of(&l)), &l.name)?;
    current(arr(&o.status, "/conditions"), o.generation, &what)?;
    Ok((o, what))
}

fn listenerset_condition(c: &Value, snap: &Snapshot) -> R {
    let (o, what) = listenerset(c, snap)?;
    has(
        arr(&o.status, "/conditions"),
        &field(c, "condition")?,
        &what,
    )
}

fn listenerset_listener_conditions(c: &Value, snap: &Snapshot) -> R {
    let (o, what) = listenerset(c, snap)?;
    let names: Option<Vec<String>> = opt_field(c, "listeners")?;
    let want: Vec<Cond> = field(c, "conditions")?;
    let listeners = arr(&o.status, "/listeners");
    let selected: Vec<&Value> = match &names {
        None => listeners.iter().collect(),
        Some(ns) => ns
            .iter()
            .map(|n| {
                listeners
                    .iter()
                    .find(|l| s(l, "/name") == Some(n.as_str()))
                    .ok_or_else(|| format!("{what}: no listener status {n}"))
            })
            .collect::<Result<_, _>>()?,
    };
    for l in selected {
        has_all(
            arr(l, "/conditions"),
            &want,
            &format!("{what} listener {}", s(l, "/name").unwrap_or("?")),
        )?;
    }
    Ok(())
}

fn listenerset_listeners(c: &Value, snap: &Snapshot) -> R {
    let (o, what) = listenerset(c, snap)?;
    let want: Vec<ListenerExpect> = field(c, "listeners")?;
    listeners_exactly(arr(&o.status, "/listeners"), &want, o.generation, &what)
}

fn routes_and_parent_accepted(c: &Value, snap: &Snapshot) -> R {
    let parent: NsName = field(c, "parent")?;
    let parent_ns = ns_of(&parent).to_string();
    let p_group = s(&c["parent"], "/group").unwrap_or(GATEWAY_GROUP);
    let p_kind = s(&c["parent"], "/kind").unwrap_or("ListenerSet");
    let route_kind: String = opt_field(c, "route_kind")?.unwrap_or_else(|| "HTTPRoute".into());
    let routes: Vec<NsName> = field(c, "routes")?;
    let want: Vec<Cond> = opt_field(c, "route_parent_conditions")?.unwrap_or_default();
    for r in &routes {
        let what = object_key(&route_kind, Some(ns_of(r)), &r.name);
        let route = obj(snap, &route_kind, Some(ns_of(r)), &r.name)?;
        let ok = arr(&route.status, "/parents").iter().any(|p| {
            let ns_ok = match s(p, "/parentRef/namespace") {
                Some(ns) => ns == parent_ns,
                None => ns_of(r) == parent_ns,
            };
            s(p, "/parentRef/group") == Some(p_group)
                && s(p, "/parentRef/kind") == Some(p_kind)
                && s(p, "/parentRef/name") == Some(parent.name.as_str())
                && ns_ok
                && current(arr(p, "/conditions"), route.generation, &what).is_ok()
                && has_all(arr(p, "/conditions"), &want, &what).is_ok()
        });
        if !ok {
            return Err(format!(
                "{what}: no parent entry for {p_kind} {parent_ns}/{} with current conditions [{}]",
                parent.name,
                want.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let what = object_key("ListenerSet", Some(&parent_ns), &parent.name);
    let ls = obj(snap, "ListenerSet", Some(&parent_ns), &parent.name)?;
    current(arr(&ls.status, "/conditions"), ls.generation, &what)?;
    let lc: Vec<Cond> = opt_field(c, "all_listeners_conditions")?.unwrap_or_default();
    for l in arr(&ls.status, "/listeners") {
        has_all(
            arr(l, "/conditions"),
            &lc,
            &format!("{what} listener {}", s(l, "/name").unwrap_or("?")),
        )?;
    }
    Ok(())
}

fn gateway_attached_listenersets(c: &Value, snap: &Snapshot) -> R {
    let g: NsName = field(c, "gateway")?;
    let want: i64 = field(c, "count")?;
    let what = object_key("Gateway", Some(ns_of(&g)), &g.name);
    let gw = obj(snap, "Gateway", Some(ns_of(&g)), &g.name)?;
    current(arr(&gw.status, "/conditions"), gw.generation, &what)?;
    let got = gw
        .status
        .get("attachedListenerSets")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: attachedListenerSets {got}, want {want}"))
    }
}

#[cfg(test)]
#[path = "status_listenerset_tests.rs"]
mod tests;
