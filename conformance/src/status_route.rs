//! Route status checks (see [`crate::status`] for the rules): `gateway_and_routes_accepted`
//! (any route kind), `route_condition`, `route_parents`, `route_no_accepted_parents`,
//! `route_latest_observed_generation` and `generation_changed`.

use crate::status::{
    arr, current, field, gateway, has, has_all, obj, object_key, opt_field, s, CheckCtx, Cond,
    NsName, ObjStatus, Snapshot, GATEWAY_GROUP, R,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
struct RouteRef {
    #[serde(default = "http_route")]
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

fn http_route() -> String {
    "HTTPRoute".into()
}

fn parent_matches(p: &Value, gw: &NsName, route_ns: &str, controller: &str, kind: &str) -> bool {
    let gw_ns = gw.namespace.as_deref().unwrap_or("default");
    let ns_ok = match s(p, "/parentRef/namespace") {
        Some(ns) => ns == gw_ns,
        None => route_ns == gw_ns,
    };
    s(p, "/controllerName") == Some(controller)
        && s(p, "/parentRef/group") == Some(GATEWAY_GROUP)
        && s(p, "/parentRef/kind") == Some(kind)
        && s(p, "/parentRef/name") == Some(gw.name.as_str())
        && ns_ok
}

pub(crate) fn gateway_and_routes_accepted(c: &Value, snap: &Snapshot, ctx: &CheckCtx) -> R {
    let gw_ref: NsName = field(c, "gateway")?;
    let gw = gateway(snap, &gw_ref)?;
    let gw_what = object_key("Gateway", gw_ref.namespace.as_deref(), &gw_ref.name);
    let addr_required: Option<bool> = opt_field(c, "gateway_address_required")?;
    if addr_required.unwrap_or(true) && arr(&gw.status, "/addresses").is_empty() {
        return Err(format!("{gw_what}: no status address"));
    }
    current(arr(&gw.status, "/conditions"), gw.generation, &gw_what)?;
    let route_kind: Option<String> = opt_field(c, "route_kind")?;
    let route_kind = route_kind.unwrap_or_else(http_route);
    let routes: Vec<NsName> = opt_field(c, "routes")?.unwrap_or_default();
    let want: Vec<Cond> = opt_field(c, "route_parent_conditions")?.unwrap_or_default();
    for r in &routes {
        let ns = r.namespace.as_deref().unwrap_or("default");
        let what = object_key(&route_kind, Some(ns), &r.name);
        let route = obj(snap, &route_kind, Some(ns), &r.name)?;
        let candidates: Vec<&Value> = arr(&route.status, "/parents")
            .iter()
            .filter(|p| {
                parent_matches(p, &gw_ref, ns, &ctx.placeholders.controller_name, "Gateway")
            })
            .collect();
        if candidates.is_empty() {
            return Err(format!(
                "{what}: no parent status for {gw_what} with controllerName {} and explicit parentRef group/kind",
                ctx.placeholders.controller_name
            ));
        }
        let mut first_err = None;
        let ok = candidates.iter().any(|p| {
            let conds = arr(p, "/conditions");
            match current(conds, route.generation, &what).and_then(|_| has_all(conds, &want, &what))
            {
                Ok(()) => true,
                Err(e) => {
                    first_err.get_or_insert(e);
                    false
                }
            }
        });
        if !ok {
            return Err(first_err.unwrap_or_default());
        }
    }
    let listener_conds: Vec<Cond> = opt_field(c, "all_listeners_conditions")?.unwrap_or_default();
    if !listener_conds.is_empty() {
        let listeners = arr(&gw.status, "/listeners");
        if listeners.is_empty() {
            return Err(format!("{gw_what}: no listener status"));
        }
        for l in listeners {
            let what = format!("{gw_what} listener {}", s(l, "/name").unwrap_or("?"));
            let conds = arr(l, "/conditions");
            current(conds, gw.generation, &what)?;
            has_all(conds, &listener_conds, &what)?;
        }
    }
    Ok(())
}

fn route_of<'a>(
    c: &Value,
    snap: &'a Snapshot,
) -> Result<(RouteRef, &'a ObjStatus, String), String> {
    let r: RouteRef = field(c, "route")?;
    let ns = r.namespace.clone().unwrap_or_else(|| "default".into());
    let what = object_key(&r.kind, Some(&ns), &r.name);
    let o = obj(snap, &r.kind, Some(&ns), &r.name)?;
    Ok((r, o, what))
}

pub(crate) fn route_condition(c: &Value, snap: &Snapshot) -> R {
    let (_, route, what) = route_of(c, snap)?;
    let parent: NsName = field(c, "parent")?;
    let want: Cond = field(c, "condition")?;
    let parents = arr(&route.status, "/parents");
    for p in parents {
        current(arr(p, "/conditions"), route.generation, &what)?;
    }
    let named: Vec<&Value> = parents
        .iter()
        .filter(|p| {
            s(p, "/parentRef/name") == Some(parent.name.as_str())
                && s(p, "/parentRef/namespace")
                    .is_none_or(|ns| Some(ns) == parent.namespace.as_deref())
        })
        .collect();
    if named.is_empty() {
        return Err(format!("{what}: no parent status for {}", parent.name));
    }
    let mut first_err = String::new();
    for p in named {
        match has(
            arr(p, "/conditions"),
            &want,
            &format!("{what} parent {}", parent.name),
        ) {
            Ok(()) => return Ok(()),
            Err(e) if first_err.is_empty() => first_err = e,
            Err(_) => {}
        }
    }
    Err(first_err)
}

#[derive(Debug, Deserialize)]
struct ParentRefExpect {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ParentExpect {
    parent_ref: ParentRefExpect,
    #[serde(default)]
    controller_name: Option<String>,
    #[serde(default)]
    conditions: Vec<Cond>,
}

pub(crate) fn route_parents(c: &Value, snap: &Snapshot, ctx: &CheckCtx) -> R {
    let (_, route, what) = route_of(c, snap)?;
    let ns_required: bool = opt_field(c, "namespace_required")?.unwrap_or(false);
    let want: Vec<ParentExpect> = field(c, "parents")?;
    let actual = arr(&route.status, "/parents");
    for w in &want {
        let controller = w
            .controller_name
            .as_deref()
            .map(|n| ctx.placeholders.apply(n))
            .unwrap_or_else(|| ctx.placeholders.controller_name.clone());
        let found = actual.iter().any(|p| {
            let ns_ok = match s(p, "/parentRef/namespace") {
                Some(ns) => Some(ns) == w.parent_ref.namespace.as_deref(),
                None => !ns_required,
            };
            s(p, "/controllerName") == Some(controller.as_str())
                && s(p, "/parentRef/group")
                    == Some(w.parent_ref.group.as_deref().unwrap_or(GATEWAY_GROUP))
                && s(p, "/parentRef/kind")
                    == Some(w.parent_ref.kind.as_deref().unwrap_or("Gateway"))
                && s(p, "/parentRef/name") == Some(w.parent_ref.name.as_str())
                && ns_ok
                && current(arr(p, "/conditions"), route.generation, &what).is_ok()
                && has_all(arr(p, "/conditions"), &w.conditions, &what).is_ok()
        });
        if !found {
            return Err(format!(
                "{what}: no parent entry for {} {} with conditions [{}]",
                w.parent_ref.kind.as_deref().unwrap_or("Gateway"),
                w.parent_ref.name,
                w.conditions
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

pub(crate) fn route_no_accepted_parents(c: &Value, snap: &Snapshot) -> R {
    let (_, route, what) = route_of(c, snap)?;
    let parents = arr(&route.status, "/parents");
    match parents {
        [] => Ok(()),
        [p] => {
            let conds = arr(p, "/conditions");
            current(conds, route.generation, &what)?;
            has(
                conds,
                &Cond {
                    type_: "Accepted".into(),
                    status: "False".into(),
                    reason: None,
                },
                &what,
            )
        }
        _ => Err(format!(
            "{what}: {} parent entries, want none or one not accepted",
            parents.len()
        )),
    }
}

pub(crate) fn route_latest_observed_generation(c: &Value, snap: &Snapshot) -> R {
    let (_, route, what) = route_of(c, snap)?;
    let parents = arr(&route.status, "/parents");
    if parents.is_empty() {
        return Err(format!("{what}: no parent status"));
    }
    parents
        .iter()
        .try_for_each(|p| current(arr(p, "/conditions"), route.generation, &what))
}

pub(crate) fn generation_changed(c: &Value, snap: &Snapshot, ctx: &CheckCtx) -> R {
    let t: RouteRef = field(c, "target")?;
    let key = object_key(&t.kind, t.namespace.as_deref(), &t.name);
    let o = obj(snap, &t.kind, t.namespace.as_deref(), &t.name)?;
    let before = ctx
        .generations_before
        .get(&key)
        .ok_or_else(|| format!("{key}: generation before the step unknown"))?;
    match o.generation {
        Some(g) if g > *before => Ok(()),
        g => Err(format!(
            "{key}: generation {g:?} did not change from {before}"
        )),
    }
}
