//! BackendTLSPolicy status checks (README-extra-families.md "New checks"):
//! `backendtlspolicy_condition` / `_accepted` and `backendtlspolicy_latest_observed_generation`.

use crate::status::{
    arr, current, field, has, obj, object_key, s, CheckCtx, Cond, NsName, Snapshot, R,
};
use serde_json::Value;

/// `None` when `kind` is not a check of this module.
pub fn evaluate(kind: &str, c: &Value, snap: &Snapshot, _ctx: &CheckCtx) -> Option<R> {
    Some(match kind {
        "backendtlspolicy_condition" | "backendtlspolicy_accepted" => policy_condition(c, snap),
        "backendtlspolicy_latest_observed_generation" => policy_latest(c, snap),
        _ => return None,
    })
}

fn ns_of(r: &NsName) -> &str {
    r.namespace.as_deref().unwrap_or("default")
}

fn policy_condition(c: &Value, snap: &Snapshot) -> R {
    let p: NsName = field(c, "policy")?;
    let ancestor: NsName = field(c, "ancestor")?;
    let want: Cond = field(c, "condition")?;
    let what = object_key("BackendTLSPolicy", Some(ns_of(&p)), &p.name);
    let o = obj(snap, "BackendTLSPolicy", Some(ns_of(&p)), &p.name)?;
    let ancestors = arr(&o.status, "/ancestors");
    for a in ancestors {
        current(arr(a, "/conditions"), o.generation, &what)?;
    }
    let matching: Vec<&Value> = ancestors
        .iter()
        .filter(|a| {
            s(a, "/ancestorRef/name") == Some(ancestor.name.as_str())
                && s(a, "/ancestorRef/namespace")
                    .is_none_or(|ns| Some(ns) == ancestor.namespace.as_deref())
        })
        .collect();
    if matching.is_empty() {
        return Err(format!("{what}: no ancestor status for {}", ancestor.name));
    }
    let mut first = String::new();
    for a in matching {
        match has(arr(a, "/conditions"), &want, &what) {
            Ok(()) => return Ok(()),
            Err(e) if first.is_empty() => first = e,
            Err(_) => {}
        }
    }
    Err(first)
}

fn policy_latest(c: &Value, snap: &Snapshot) -> R {
    let p: NsName = field(c, "policy")?;
    let what = object_key("BackendTLSPolicy", Some(ns_of(&p)), &p.name);
    let o = obj(snap, "BackendTLSPolicy", Some(ns_of(&p)), &p.name)?;
    arr(&o.status, "/ancestors")
        .iter()
        .try_for_each(|a| current(arr(a, "/conditions"), o.generation, &what))
}
