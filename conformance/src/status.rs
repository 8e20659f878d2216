//! Status expectations: evaluation of every check type on one `/status` snapshot (pure), and
//! the polling loop. Every condition read must carry `observedGeneration == generation`.

use crate::features::kubernetes_only;
use crate::manifests::{ConfigDir, Placeholders};
use crate::status_gateway::*;
use crate::status_route::*;
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

/// Evaluators of the check families kept in their own modules: each returns `None` for a
/// check type it does not know. Add a family by appending its `evaluate` here.
type ExtraChecks = fn(&str, &Value, &Snapshot, &CheckCtx) -> Option<R>;
const EXTRA_CHECKS: &[ExtraChecks] = &[
    crate::status_listenerset::evaluate,
    crate::status_extra::evaluate,
];

/// Checks read once, without polling (README-extra-families.md marks them "immediate").
pub const IMMEDIATE_CHECKS: &[&str] = &["backendtlspolicy_latest_observed_generation"];

/// How long a check of this kind polls, given the base budget (upstream's 60 s): `None` for an
/// immediate check, three times the base for `listenerset_condition` (upstream: 180 s).
pub fn poll_budget(kind: &str, base: std::time::Duration) -> Option<std::time::Duration> {
    if IMMEDIATE_CHECKS.contains(&kind) {
        None
    } else if kind == "listenerset_condition" {
        Some(base * 3)
    } else {
        Some(base)
    }
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
        other => match EXTRA_CHECKS.iter().find_map(|f| f(other, check, snap, ctx)) {
            Some(r) => r,
            None => return Verdict::Unsupported(format!("unsupported check {kind:?}")),
        },
    };
    match result {
        Ok(()) => Verdict::Pass,
        Err(e) => Verdict::Fail(format!("{kind}: {e}")),
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "status_l4_tests.rs"]
mod l4_tests;
