//! Gateway, listener and GatewayClass status checks (see [`crate::status`] for the rules).

use crate::manifests::{kind_of, name_of, namespace_of};
use crate::status::{
    arr, current, field, gateway, has, has_all, obj, object_key, opt_field, s, CheckCtx, Cond,
    NsName, Snapshot, GATEWAY_GROUP, R,
};
use serde::Deserialize;
use serde_json::Value;

pub(crate) fn gateway_condition(c: &Value, snap: &Snapshot) -> R {
    let g: NsName = field(c, "gateway")?;
    let gw = gateway(snap, &g)?;
    let what = object_key("Gateway", g.namespace.as_deref(), &g.name);
    let conds = arr(&gw.status, "/conditions");
    current(conds, gw.generation, &what)?;
    has(conds, &field(c, "condition")?, &what)
}

pub(crate) fn listener_conditions(c: &Value, snap: &Snapshot) -> R {
    let g: NsName = field(c, "gateway")?;
    let gw = gateway(snap, &g)?;
    let gw_what = object_key("Gateway", g.namespace.as_deref(), &g.name);
    let name: Option<String> = opt_field(c, "listener")?;
    let want: Vec<Cond> = field(c, "conditions")?;
    let listeners = arr(&gw.status, "/listeners");
    let selected: Vec<&Value> = listeners
        .iter()
        .filter(|l| name.as_deref().is_none_or(|n| s(l, "/name") == Some(n)))
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "{gw_what}: no listener status {}",
            name.as_deref().unwrap_or("")
        ));
    }
    let mut first_err = String::new();
    for l in selected {
        let what = format!("{gw_what} listener {}", s(l, "/name").unwrap_or("?"));
        let conds = arr(l, "/conditions");
        match current(conds, gw.generation, &what).and_then(|_| has_all(conds, &want, &what)) {
            Ok(()) => return Ok(()),
            Err(e) if first_err.is_empty() => first_err = e,
            Err(_) => {}
        }
    }
    Err(first_err)
}

pub(crate) fn gateway_latest(c: &Value, snap: &Snapshot) -> R {
    let g: NsName = field(c, "gateway")?;
    let gw = gateway(snap, &g)?;
    let what = object_key("Gateway", g.namespace.as_deref(), &g.name);
    let conds = arr(&gw.status, "/conditions");
    if conds.is_empty() {
        return Err(format!("{what}: no conditions"));
    }
    current(conds, gw.generation, &what)
}

pub(crate) fn gateway_address_assigned(c: &Value, snap: &Snapshot) -> R {
    let g: NsName = field(c, "gateway")?;
    let gw = gateway(snap, &g)?;
    let ok = arr(&gw.status, "/addresses")
        .iter()
        .any(|a| s(a, "/value").is_some_and(|v| !v.is_empty()) && s(a, "/type") != Some(""));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: no status address",
            object_key("Gateway", g.namespace.as_deref(), &g.name)
        ))
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Kind {
    #[serde(default)]
    group: Option<String>,
    kind: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListenerExpect {
    name: String,
    #[serde(default)]
    supported_kinds: Vec<Kind>,
    #[serde(default)]
    supported_kinds_must_be_empty: bool,
    #[serde(default)]
    conditions: Vec<Cond>,
    #[serde(default)]
    attached_routes: Option<i64>,
}

/// Shared by `gateway_listeners` (and ListenerSets, same rule).
pub(crate) fn listeners_exactly(
    listeners: &[Value],
    want: &[ListenerExpect],
    generation: Option<i64>,
    owner: &str,
) -> R {
    if listeners.len() != want.len() {
        return Err(format!(
            "{owner}: {} listener statuses, want {}",
            listeners.len(),
            want.len()
        ));
    }
    for w in want {
        let what = format!("{owner} listener {}", w.name);
        let l = listeners
            .iter()
            .find(|l| s(l, "/name") == Some(w.name.as_str()))
            .ok_or_else(|| format!("{what}: missing"))?;
        let kinds = arr(l, "/supportedKinds");
        if w.supported_kinds_must_be_empty && !kinds.is_empty() {
            return Err(format!(
                "{what}: supportedKinds {} must be empty",
                Value::Array(kinds.to_vec())
            ));
        }
        for k in &w.supported_kinds {
            let group = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
            let found = kinds.iter().any(|a| {
                s(a, "/kind") == Some(k.kind.as_str())
                    && s(a, "/group").unwrap_or(GATEWAY_GROUP) == group
            });
            if !found {
                return Err(format!("{what}: supportedKinds lacks {group}/{}", k.kind));
            }
        }
        if let Some(n) = w.attached_routes {
            let got = l.get("attachedRoutes").and_then(Value::as_i64).unwrap_or(0);
            if got != n {
                return Err(format!("{what}: attachedRoutes {got}, want {n}"));
            }
        }
        let conds = arr(l, "/conditions");
        current(conds, generation, &what)?;
        has_all(conds, &w.conditions, &what)?;
    }
    Ok(())
}

pub(crate) fn gateway_listeners(c: &Value, snap: &Snapshot) -> R {
    let g: NsName = field(c, "gateway")?;
    let gw = gateway(snap, &g)?;
    let want: Vec<ListenerExpect> = field(c, "listeners")?;
    let what = object_key("Gateway", g.namespace.as_deref(), &g.name);
    listeners_exactly(arr(&gw.status, "/listeners"), &want, gw.generation, &what)
}

pub(crate) fn gateway_zero_attached_routes(c: &Value, snap: &Snapshot) -> R {
    let g: NsName = field(c, "gateway")?;
    let gw = gateway(snap, &g)?;
    let what = object_key("Gateway", g.namespace.as_deref(), &g.name);
    match arr(&gw.status, "/listeners") {
        [] => Ok(()),
        [l] if l.get("attachedRoutes").and_then(Value::as_i64).unwrap_or(0) == 0 => Ok(()),
        [l] => Err(format!(
            "{what}: listener {} has attachedRoutes {}, want 0",
            s(l, "/name").unwrap_or("?"),
            l.get("attachedRoutes").unwrap_or(&Value::Null)
        )),
        ls => Err(format!(
            "{what}: {} listener statuses, want at most one",
            ls.len()
        )),
    }
}

pub(crate) fn namespace_ready(c: &Value, snap: &Snapshot, ctx: &CheckCtx) -> R {
    let ns: String = field(c, "namespace")?;
    for g in ctx
        .config
        .objects()
        .filter(|o| kind_of(o) == "Gateway" && namespace_of(o).unwrap_or("default") == ns)
    {
        if s(
            g,
            "/metadata/annotations/gateway-api~1skip-this-for-readiness",
        ) == Some("true")
        {
            continue;
        }
        let name = name_of(g);
        let what = object_key("Gateway", Some(&ns), name);
        let gw = obj(snap, "Gateway", Some(&ns), name)?;
        let conds = arr(&gw.status, "/conditions");
        current(conds, gw.generation, &what)?;
        for t in ["Accepted", "Programmed"] {
            has(
                conds,
                &Cond {
                    type_: t.into(),
                    status: "True".into(),
                    reason: None,
                },
                &what,
            )?;
        }
    }
    Ok(())
}

pub(crate) fn status_addresses(c: &Value, snap: &Snapshot, ctx: &CheckCtx) -> R {
    let g: NsName = field(c, "gateway")?;
    let gw = gateway(snap, &g)?;
    let what = object_key("Gateway", g.namespace.as_deref(), &g.name);
    let addrs = arr(&gw.status, "/addresses");
    let usable = &ctx.placeholders.usable_address;
    match addrs {
        [a] if s(a, "/value") == Some(usable.as_str())
            && s(a, "/type").unwrap_or("IPAddress") == "IPAddress" =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{what}: status.addresses {}, want exactly [{{type: IPAddress, value: {usable}}}]",
            Value::Array(addrs.to_vec())
        )),
    }
}

pub(crate) fn spec_addresses_count(c: &Value, ctx: &CheckCtx) -> R {
    let g: NsName = field(c, "gateway")?;
    let want: usize = field(c, "count")?;
    let o = ctx
        .config
        .find("Gateway", &g.name, g.namespace.as_deref())
        .ok_or_else(|| format!("Gateway {} not in the manifests", g.name))?;
    let n = arr(o, "/spec/addresses").len();
    if n == want {
        Ok(())
    } else {
        Err(format!(
            "Gateway {}: {n} spec addresses, want {want}",
            g.name
        ))
    }
}

pub(crate) fn gatewayclass(c: &Value, snap: &Snapshot, accepted_any: bool) -> R {
    let name: String = field(c, "gatewayclass")?;
    let o = obj(snap, "GatewayClass", None, &name)?;
    let what = object_key("GatewayClass", None, &name);
    let conds = arr(&o.status, "/conditions");
    if conds.is_empty() {
        return Err(format!("{what}: no conditions"));
    }
    current(conds, o.generation, &what)?;
    if accepted_any && !conds.iter().any(|c| s(c, "/type") == Some("Accepted")) {
        return Err(format!("{what}: no Accepted condition"));
    }
    Ok(())
}
