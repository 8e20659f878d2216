//! Status expectations: evaluation of every check type on one `/status` snapshot (pure), and
//! the polling loop. Every condition read must carry `observedGeneration == generation`.

use crate::features::kubernetes_only;
use crate::manifests::{ConfigDir, Placeholders};
use crate::status_gateway::*;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// One object of `/status`.
#[derive(Debug, Clone, Deserialize)]
pub struct ObjStatus {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub status: Value,
}

/// The parsed `/status` document.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: Option<u64>,
    pub objects: Vec<ObjStatus>,
}

impl Snapshot {
    pub fn from_json(v: &Value) -> Result<Snapshot, String> {
        let objects = v
            .get("objects")
            .ok_or("/status has no \"objects\"")?
            .clone();
        let objects: Vec<ObjStatus> =
            serde_json::from_value(objects).map_err(|e| format!("/status objects: {e}"))?;
        Ok(Snapshot {
            version: v.get("version").and_then(Value::as_u64),
            objects,
        })
    }

    /// `namespace` None = cluster-scoped.
    pub fn get(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&ObjStatus> {
        self.objects.iter().find(|o| {
            o.kind == kind
                && o.name == name
                && match namespace {
                    None => true,
                    Some(ns) => o.namespace.as_deref().unwrap_or("default") == ns,
                }
        })
    }
}

/// Everything a check may need besides the snapshot.
pub struct CheckCtx<'a> {
    pub placeholders: &'a Placeholders,
    pub config: &'a ConfigDir,
    /// `Kind ns/name` -> generation seen before the current step (for `generation_changed`).
    pub generations_before: &'a HashMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    Fail(String),
    /// Not evaluated (Kubernetes-only); the note is reported.
    Skipped(String),
    /// The runner does not know this check: the test fails loudly.
    Unsupported(String),
}

pub fn object_key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{kind} {}/{name}", namespace.unwrap_or("-"))
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Cond {
    #[serde(rename = "type")]
    pub(crate) type_: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

impl std::fmt::Display for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={}/{}",
            self.type_,
            self.status,
            self.reason.as_deref().unwrap_or("*")
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NsName {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) namespace: Option<String>,
}

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

pub(crate) type R = Result<(), String>;

pub(crate) fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Every condition carries the object's current generation.
pub(crate) fn current(conds: &[Value], generation: Option<i64>, what: &str) -> R {
    let gen = generation.ok_or_else(|| format!("{what}: /status has no generation"))?;
    for c in conds {
        let og = c.get("observedGeneration").and_then(Value::as_i64);
        if og != Some(gen) {
            return Err(format!(
                "{what}: condition {} has observedGeneration {}, want {gen}",
                s(c, "/type").unwrap_or("?"),
                og.map_or("none".to_string(), |g| g.to_string())
            ));
        }
    }
    Ok(())
}

pub(crate) fn has(conds: &[Value], want: &Cond, what: &str) -> R {
    let Some(c) = conds
        .iter()
        .find(|c| s(c, "/type") == Some(want.type_.as_str()))
    else {
        return Err(format!("{what}: no {} condition, want {want}", want.type_));
    };
    let status = s(c, "/status").unwrap_or("");
    let reason = s(c, "/reason").unwrap_or("");
    if status != want.status || want.reason.as_deref().is_some_and(|r| r != reason) {
        return Err(format!(
            "{what}: expected {want}, got {}={status}/{reason}",
            want.type_
        ));
    }
    Ok(())
}

pub(crate) fn has_all(conds: &[Value], want: &[Cond], what: &str) -> R {
    want.iter().try_for_each(|w| has(conds, w, what))
}

pub(crate) fn field<T: for<'de> Deserialize<'de>>(check: &Value, name: &str) -> Result<T, String> {
    serde_json::from_value(check.get(name).cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("malformed check field {name}: {e}"))
}

pub(crate) fn opt_field<T: for<'de> Deserialize<'de>>(
    check: &Value,
    name: &str,
) -> Result<Option<T>, String> {
    match check.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => field(check, name).map(Some),
    }
}

pub(crate) fn obj<'a>(
    snap: &'a Snapshot,
    kind: &str,
    ns: Option<&str>,
    name: &str,
) -> Result<&'a ObjStatus, String> {
    snap.get(kind, ns, name)
        .ok_or_else(|| format!("{} has no status yet", object_key(kind, ns, name)))
}

pub(crate) fn gateway<'a>(snap: &'a Snapshot, g: &NsName) -> Result<&'a ObjStatus, String> {
    obj(
        snap,
        "Gateway",
        Some(g.namespace.as_deref().unwrap_or("default")),
        &g.name,
    )
}

/// Evaluates one status expectation against one snapshot.
pub fn evaluate(check: &Value, snap: &Snapshot, ctx: &CheckCtx) -> Verdict {
    let kind = check.get("check").and_then(Value::as_str).unwrap_or("");
    if let Some(why) = kubernetes_only(kind) {
        return Verdict::Skipped(format!("{kind} not checked ({why})"));
    }
    let result = match kind {
        "gateway_and_routes_accepted" => gateway_and_routes_accepted(check, snap, ctx),
        "route_condition" => route_condition(check, snap),
        "route_parents" => route_parents(check, snap, ctx),
        "route_no_accepted_parents" => route_no_accepted_parents(check, snap),
        "route_latest_observed_generation" => route_latest_observed_generation(check, snap),
        "gateway_condition" => gateway_condition(check, snap),
        "listener_conditions" => listener_conditions(check, snap),
        "gateway_latest_observed_generation" => gateway_latest(check, snap),
        "gateway_address_assigned" => gateway_address_assigned(check, snap),
        "gateway_listeners" => gateway_listeners(check, snap),
        "gateway_zero_attached_routes" => gateway_zero_attached_routes(check, snap),
        "namespace_ready" => namespace_ready(check, snap, ctx),
        "generation_changed" => generation_changed(check, snap, ctx),
        "status_addresses" => status_addresses(check, snap, ctx),
        "spec_addresses_count" => spec_addresses_count(check, ctx),
        "gatewayclass_accepted_any" => gatewayclass(check, snap, true),
        "gatewayclass_latest_observed_generation" => gatewayclass(check, snap, false),
        other => match crate::status_extra::evaluate(other, check, snap, ctx) {
            Some(r) => r,
            None => return Verdict::Unsupported(format!("unsupported check {kind:?}")),
        },
    };
    match result {
        Ok(()) => Verdict::Pass,
        Err(e) => Verdict::Fail(format!("{kind}: {e}")),
    }
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

fn gateway_and_routes_accepted(c: &Value, snap: &Snapshot, ctx: &CheckCtx) -> R {
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

fn route_condition(c: &Value, snap: &Snapshot) -> R {
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

fn route_parents(c: &Value, snap: &Snapshot, ctx: &CheckCtx) -> R {
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

fn route_no_accepted_parents(c: &Value, snap: &Snapshot) -> R {
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

fn route_latest_observed_generation(c: &Value, snap: &Snapshot) -> R {
    let (_, route, what) = route_of(c, snap)?;
    let parents = arr(&route.status, "/parents");
    if parents.is_empty() {
        return Err(format!("{what}: no parent status"));
    }
    parents
        .iter()
        .try_for_each(|p| current(arr(p, "/conditions"), route.generation, &what))
}

fn generation_changed(c: &Value, snap: &Snapshot, ctx: &CheckCtx) -> R {
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

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
