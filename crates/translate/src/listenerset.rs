//! ListenerSets: listeners other teams add to a Gateway that allows them
//! (`spec.allowedListeners`, default `None`). Their listeners join the Gateway's list after its
//! own ones (`origin` = the set's index), so binds, route attachment and client validation treat
//! them alike. Conflicts follow listener precedence: the Gateway's listeners first, then sets by
//! creation time and namespace/name, in list order; the later listener of a conflicting pair
//! loses (Accepted=False, Conflicted=True) and the earlier one keeps serving.

use crate::conditions::{Cond, Stamp};
use crate::gateway::{listener_status, GatewayState};
use crate::listeners::{self, ListenerState};
use crate::ObjectStatus;
use serde_json::json;
use trellis_model::{Gateway, ListenerSet, ObjectKey, ResourceSet, GATEWAY_GROUP};

/// One ListenerSet attached (or refused) by its parent Gateway.
#[derive(Debug)]
pub struct ListenerSetState<'a> {
    pub key: ObjectKey,
    pub set: &'a ListenerSet,
    pub stamp: Stamp,
    /// Why the Gateway does not take this set, when it does not.
    pub not_allowed: Option<String>,
}

/// The Gateway a ListenerSet names, when the reference is to a Gateway.
fn parent_key(key: &ObjectKey, set: &ListenerSet) -> Option<ObjectKey> {
    let p = &set.spec.parent_ref;
    let group = p.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = p.kind.as_deref().unwrap_or("Gateway");
    (group == GATEWAY_GROUP && kind == "Gateway").then(|| {
        ObjectKey::new(
            p.namespace.as_deref().unwrap_or(&key.namespace),
            p.name.as_str(),
        )
    })
}

/// `None` when the Gateway's `allowedListeners` admits sets from `set_ns`.
fn refusal(resources: &ResourceSet, gw: &Gateway, gw_ns: &str, set_ns: &str) -> Option<String> {
    let namespaces = gw
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let from = namespaces.and_then(|n| n.from.as_deref()).unwrap_or("None");
    let ok = match from {
        "Same" => gw_ns == set_ns,
        "All" => true,
        "Selector" => namespaces
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|s| s.matches(&resources.namespace_labels(set_ns))),
        _ => false,
    };
    (!ok).then(|| {
        format!("the Gateway's allowedListeners (from: {from}) does not allow ListenerSets from namespace {set_ns}")
    })
}

/// Validates the sets whose parent is `gw_key` and appends their listeners to `listeners`
/// (which already holds the Gateway's own, conflicts marked). Returns the sets by precedence.
pub fn extend<'a>(
    resources: &'a ResourceSet,
    gw_key: &ObjectKey,
    gw: &Gateway,
    listeners: &mut Vec<ListenerState>,
) -> Vec<ListenerSetState<'a>> {
    let mut sets: Vec<(&ObjectKey, &ListenerSet)> = resources
        .listener_sets
        .iter()
        .filter(|(k, s)| parent_key(k, s).as_ref() == Some(gw_key))
        .collect();
    sets.sort_by(|a, b| {
        let created = |s: &ListenerSet| s.metadata.creation_timestamp.clone();
        created(a.1).cmp(&created(b.1)).then_with(|| a.0.cmp(b.0))
    });
    let mut out = Vec::with_capacity(sets.len());
    for (si, (key, set)) in sets.into_iter().enumerate() {
        let not_allowed = refusal(resources, gw, &gw_key.namespace, &key.namespace);
        if not_allowed.is_none() {
            for spec in &set.spec.listeners {
                let mut l =
                    listeners::validate_owned(resources, "ListenerSet", &key.namespace, spec);
                l.origin = Some(si);
                lose_conflicts(&mut l, listeners);
                listeners.push(l);
            }
        }
        out.push(ListenerSetState {
            key: key.clone(),
            set,
            stamp: Stamp::of(&set.metadata),
            not_allowed,
        });
    }
    out
}

/// HTTPS and TLS listeners may share a port (SNI picks), and UDP never clashes with the
/// TCP-based protocols (another socket); otherwise a port has one protocol.
fn compatible(a: &str, b: &str) -> bool {
    a == b
        || matches!((a, b), ("HTTPS", "TLS") | ("TLS", "HTTPS"))
        || ((a == "UDP") != (b == "UDP"))
}

/// Marks `l` when an earlier, accepted listener on its port conflicts with it.
fn lose_conflicts(l: &mut ListenerState, earlier: &[ListenerState]) {
    if !l.accepted.status {
        return;
    }
    let same_port: Vec<&ListenerState> = earlier
        .iter()
        .filter(|e| e.accepted.status && e.port == l.port)
        .collect();
    let host = |x: &ListenerState| x.spec.hostname.as_ref().map(|h| h.to_ascii_lowercase());
    let (reason, message) = if same_port
        .iter()
        .any(|e| !compatible(&e.spec.protocol, &l.spec.protocol))
    {
        (
            "ProtocolConflict",
            format!(
                "port {} is already used by a listener with another protocol",
                l.port
            ),
        )
    } else if same_port.iter().any(|e| host(e) == host(l)) {
        (
            "HostnameConflict",
            format!(
                "a listener with higher precedence already uses this hostname on port {}",
                l.port
            ),
        )
    } else {
        return;
    };
    l.conflicted = Cond::new("Conflicted", true, reason, message.clone());
    l.accepted = Cond::new("Accepted", false, reason, message);
}

impl ListenerSetState<'_> {
    /// Counted in the Gateway's `attachedListenerSets`.
    pub fn accepted(&self, gw: &GatewayState, si: usize) -> bool {
        self.conditions(gw, si).0.status
    }

    fn conditions(&self, gw: &GatewayState, si: usize) -> (Cond, Cond) {
        let both = |reason: &'static str, message: String| {
            (
                Cond::new("Accepted", false, reason, message.clone()),
                Cond::new("Programmed", false, reason, message),
            )
        };
        if let Some(m) = &self.not_allowed {
            return both("NotAllowed", m.clone());
        }
        if !gw.accepted.status {
            return both(
                "ParentNotAccepted",
                "the parent Gateway is not accepted".into(),
            );
        }
        let mine = gw.listeners.iter().filter(|l| l.origin == Some(si));
        let valid = mine
            .filter(|l| l.accepted.status && l.resolved.status && !l.conflicted.status)
            .count();
        if valid == 0 {
            return both("ListenersNotValid", "no listener is valid".into());
        }
        let accepted = Cond::new("Accepted", true, "Accepted", "the ListenerSet is accepted");
        let programmed = if gw.is_programmed() {
            Cond::new(
                "Programmed",
                true,
                "Programmed",
                "the ListenerSet is programmed",
            )
        } else {
            Cond::new(
                "Programmed",
                false,
                "Pending",
                "the parent Gateway is not programmed",
            )
        };
        (accepted, programmed)
    }

    pub fn status(&self, gw: &GatewayState, si: usize) -> ObjectStatus {
        let (accepted, programmed) = self.conditions(gw, si);
        let listeners: Vec<_> = gw
            .listeners
            .iter()
            .filter(|l| l.origin == Some(si))
            .map(|l| listener_status(l, &self.stamp, gw.is_programmed()))
            .collect();
        ObjectStatus {
            api_version: self.set.api_version.clone(),
            kind: "ListenerSet".into(),
            namespace: Some(self.key.namespace.clone()),
            name: self.key.name.clone(),
            generation: self.stamp.generation,
            status: json!({
                "conditions": [accepted.stamp(&self.stamp), programmed.stamp(&self.stamp)],
                "listeners": listeners,
            }),
        }
    }
}
