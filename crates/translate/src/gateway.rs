//! Gateways of our classes: addresses, listener validation and the Gateway status.

use crate::addresses::{self, AddressPlan};
use crate::conditions::{Cond, Stamp};
use crate::frontend;
use crate::listeners::{self, ListenerState};
use crate::listenerset::{self, ListenerSetState};
use crate::refs::{permitted, From, To};
use crate::{ObjectStatus, Options};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use trellis_model::{Gateway, ObjectKey, ResourceSet, GATEWAY_GROUP};

/// One Gateway being translated.
#[derive(Debug)]
pub struct GatewayState<'a> {
    pub key: ObjectKey,
    pub gateway: &'a Gateway,
    pub stamp: Stamp,
    /// The Gateway's own listeners, then those of its ListenerSets (see [`ListenerState::origin`]).
    pub listeners: Vec<ListenerState>,
    /// ListenerSets naming this Gateway, by precedence (allowed or not).
    pub listener_sets: Vec<ListenerSetState<'a>>,
    pub addresses: AddressPlan,
    pub accepted: Cond,
    pub programmed: Cond,
    /// Only when `spec.tls.backend.clientCertificateRef` is set.
    pub resolved: Option<Cond>,
    /// Some frontend validation uses `AllowInsecureFallback`.
    pub insecure_frontend: bool,
}

impl GatewayState<'_> {
    pub fn is_programmed(&self) -> bool {
        self.programmed.status
    }
}

/// Validates every Gateway whose class is one of `ours`, in key order.
pub fn prepare<'a>(
    resources: &'a ResourceSet,
    ours: &BTreeSet<String>,
    options: &Options,
) -> Vec<GatewayState<'a>> {
    let mine: Vec<(&ObjectKey, &Gateway)> = resources
        .gateways
        .iter()
        .filter(|(_, g)| ours.contains(&g.spec.gateway_class_name))
        .collect();
    let mut plans = addresses::assign(&mine, options.address_pool);
    mine.into_iter()
        .map(|(key, gw)| {
            let ns = key.namespace.as_str();
            let mut listeners: Vec<ListenerState> = gw
                .spec
                .listeners
                .iter()
                .map(|l| listeners::validate(resources, ns, l))
                .collect();
            listeners::mark_conflicts(&mut listeners);
            let listener_sets = listenerset::extend(resources, key, gw, &mut listeners);
            let insecure = frontend::apply(resources, ns, gw.spec.tls.as_ref(), &mut listeners);
            let plan = plans.remove(key).unwrap_or_default();
            let accepted = accepted(resources, gw, &plan, &listeners);
            let programmed = if !accepted.status {
                Cond::new(
                    "Programmed",
                    false,
                    "Invalid",
                    "the Gateway is not accepted",
                )
            } else if let Some(m) = &plan.unusable {
                Cond::new("Programmed", false, "AddressNotUsable", m.clone())
            } else if plan.unassigned || plan.addresses.is_empty() {
                Cond::new(
                    "Programmed",
                    false,
                    "AddressNotAssigned",
                    "no address could be assigned",
                )
            } else {
                Cond::new(
                    "Programmed",
                    true,
                    "Programmed",
                    "the Gateway is programmed",
                )
            };
            GatewayState {
                key: key.clone(),
                gateway: gw,
                stamp: Stamp::of(&gw.metadata),
                resolved: backend_client_certificate(resources, ns, gw),
                insecure_frontend: insecure,
                listeners,
                listener_sets,
                addresses: plan,
                accepted,
                programmed,
            }
        })
        .collect()
}

fn accepted(
    resources: &ResourceSet,
    gw: &Gateway,
    plan: &AddressPlan,
    listeners: &[ListenerState],
) -> Cond {
    if let Some(p) = gw
        .spec
        .infrastructure
        .as_ref()
        .and_then(|i| i.parameters_ref.as_ref())
    {
        let ok = p.group.is_empty()
            && p.kind == "ConfigMap"
            && resources
                .config_map(gw.metadata.namespace(), &p.name)
                .is_some();
        if !ok {
            return Cond::new(
                "Accepted",
                false,
                "InvalidParameters",
                format!(
                    "infrastructure.parametersRef {}/{} {} is not supported or not found",
                    p.group, p.kind, p.name
                ),
            );
        }
    }
    if let Some(m) = &plan.unsupported {
        return Cond::new("Accepted", false, "UnsupportedAddress", m.clone());
    }
    let valid = |l: &&ListenerState| l.accepted.status && l.resolved.status && !l.conflicted.status;
    let own: Vec<&ListenerState> = listeners.iter().filter(|l| l.origin.is_none()).collect();
    let n_valid = own.iter().filter(|l| valid(l)).count();
    if n_valid == own.len() {
        Cond::new("Accepted", true, "Accepted", "the Gateway is accepted")
    } else if n_valid == 0 {
        Cond::new(
            "Accepted",
            false,
            "ListenersNotValid",
            "no listener is valid",
        )
    } else {
        Cond::new(
            "Accepted",
            true,
            "ListenersNotValid",
            "some listeners are invalid; see their conditions",
        )
    }
}

/// `spec.tls.backend.clientCertificateRef`: the certificate presented to backends.
fn backend_client_certificate(resources: &ResourceSet, ns: &str, gw: &Gateway) -> Option<Cond> {
    let r = gw
        .spec
        .tls
        .as_ref()?
        .get("backend")?
        .get("clientCertificateRef")?;
    let s = |k: &str| r.get(k).and_then(Value::as_str);
    let (group, kind, name) = (
        s("group").unwrap_or(""),
        s("kind").unwrap_or("Secret"),
        s("name").unwrap_or(""),
    );
    let target_ns = s("namespace").unwrap_or(ns);
    let bad = |reason, message: String| Some(Cond::new("ResolvedRefs", false, reason, message));
    if !group.is_empty() || kind != "Secret" {
        return bad(
            "InvalidClientCertificateRef",
            format!("clientCertificateRef to {group}/{kind} is not supported"),
        );
    }
    let from = From {
        group: GATEWAY_GROUP,
        kind: "Gateway",
        namespace: ns,
    };
    let to = To {
        group: "",
        kind: "Secret",
        namespace: target_ns,
        name,
    };
    if !permitted(resources, &from, &to) {
        return bad(
            "RefNotPermitted",
            format!("no ReferenceGrant allows access to Secret {target_ns}/{name}"),
        );
    }
    match listeners::load_tls_secret(resources, target_ns, name) {
        Ok(_) => Some(Cond::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "all references are resolved",
        )),
        Err(m) => bad("InvalidClientCertificateRef", m),
    }
}

/// The Gateway's status, once routes have been counted.
pub fn status(state: &GatewayState) -> ObjectStatus {
    let stamp = &state.stamp;
    let mut conditions = vec![state.accepted.stamp(stamp), state.programmed.stamp(stamp)];
    if let Some(r) = &state.resolved {
        conditions.push(r.stamp(stamp));
    }
    if state.insecure_frontend {
        let c = Cond::new(
            "InsecureFrontendValidationMode",
            true,
            "ConfigurationChanged",
            "client certificate validation allows connections without a valid certificate",
        );
        conditions.push(c.stamp(stamp));
    }
    let addresses: Vec<Value> = state
        .addresses
        .addresses
        .iter()
        .map(|a| json!({"type": "IPAddress", "value": a.to_string()}))
        .collect();
    let listeners: Vec<Value> = state
        .listeners
        .iter()
        .filter(|l| l.origin.is_none())
        .map(|l| listener_status(l, stamp, state.is_programmed()))
        .collect();
    let mut status = json!({ "conditions": conditions, "listeners": listeners });
    if !addresses.is_empty() {
        status["addresses"] = Value::Array(addresses);
    }
    if !state.listener_sets.is_empty() {
        let attached = (0..state.listener_sets.len())
            .filter(|&i| state.listener_sets[i].accepted(state, i))
            .count();
        status["attachedListenerSets"] = json!(attached);
    }
    ObjectStatus {
        api_version: state.gateway.api_version.clone(),
        kind: "Gateway".into(),
        namespace: Some(state.key.namespace.clone()),
        name: state.key.name.clone(),
        generation: stamp.generation,
        status,
    }
}

/// One entry of `status.listeners` (Gateway or ListenerSet).
pub fn listener_status(l: &ListenerState, stamp: &Stamp, gateway_programmed: bool) -> Value {
    json!({
        "name": l.spec.name,
        "supportedKinds": l.supported_kinds,
        "attachedRoutes": l.attached_routes,
        "conditions": [
            l.accepted.stamp(stamp),
            l.programmed(gateway_programmed).stamp(stamp),
            l.resolved.stamp(stamp),
            l.conflicted.stamp(stamp),
        ],
    })
}
