//! Where a route's `parentRefs` can point (Gateways of our classes and the ListenerSets they
//! took in), which of the parent's listeners a route attaches to, and the route's parent
//! status entries. Shared by every route kind.

use crate::backends::RefError;
use crate::conditions::{Cond, Stamp};
use crate::gateway::GatewayState;
use crate::grpcroute::RouteKind;
use crate::hostnames;
use crate::listeners::ListenerState;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use trellis_model::{ObjectKey, ParentReference, ResourceSet, GATEWAY_GROUP};

pub struct ParentIndex {
    gateways: BTreeMap<ObjectKey, usize>,
    /// ListenerSet → (gateway, set index).
    sets: BTreeMap<ObjectKey, (usize, usize)>,
}

impl ParentIndex {
    pub fn new(gateways: &[GatewayState]) -> Self {
        let sets = gateways
            .iter()
            .enumerate()
            .flat_map(|(gi, g)| {
                g.listener_sets
                    .iter()
                    .enumerate()
                    .map(move |(si, s)| (s.key.clone(), (gi, si)))
            })
            .collect();
        ParentIndex {
            gateways: gateways
                .iter()
                .enumerate()
                .map(|(i, g)| (g.key.clone(), i))
                .collect(),
            sets,
        }
    }

    /// The gateway index and listener origin (`None`: the Gateway's own listeners, `Some(i)`:
    /// its i-th ListenerSet's) a parentRef of a route in `route_ns` names, when it is ours.
    pub fn resolve(
        &self,
        pref: &ParentReference,
        route_ns: &str,
    ) -> Option<(usize, Option<usize>)> {
        let group = pref.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = pref.kind.as_deref().unwrap_or("Gateway");
        let key = ObjectKey::new(
            pref.namespace.as_deref().unwrap_or(route_ns),
            pref.name.as_str(),
        );
        match (group, kind) {
            (GATEWAY_GROUP, "Gateway") => self.gateways.get(&key).map(|&gi| (gi, None)),
            (GATEWAY_GROUP, "ListenerSet") => self.sets.get(&key).map(|&(gi, si)| (gi, Some(si))),
            _ => None,
        }
    }
}

/// The listeners a route attaches to on one parent, each with its effective hostnames.
pub type Targets = Vec<(usize, Vec<String>)>;

/// One route (of `kind`, in `route_ns`) against one parentRef resolved to `(gw, origin)`.
pub struct Attachment<'a, 'g> {
    pub gw: &'a GatewayState<'g>,
    pub origin: Option<usize>,
    pub pref: &'a ParentReference,
    pub kind: RouteKind,
    pub route_ns: &'a str,
}

impl Attachment<'_, '_> {
    /// The listeners the route attaches to, or the spec's reason why none: sectionName and
    /// port, then allowed kinds and namespaces, then hostnames. `hostnames: None` is for kinds
    /// without hostnames (TCP, UDP): every allowed listener, no intersection.
    pub fn targets(
        &self,
        resources: &ResourceSet,
        hostnames: Option<&[String]>,
    ) -> Result<Targets, (&'static str, &'static str)> {
        let gw = self.gw;
        // Listeners' allowedRoutes `Same` means the namespace of their Gateway or ListenerSet.
        let owner_ns = match self.origin {
            None => &gw.key.namespace,
            Some(si) => &gw.listener_sets[si].key.namespace,
        };
        let pref = self.pref;
        let candidates: Vec<(usize, &ListenerState)> = gw
            .listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| l.origin == self.origin)
            .filter(|(_, l)| pref.section_name.as_ref().is_none_or(|s| *s == l.spec.name))
            .filter(|(_, l)| pref.port.is_none_or(|p| p == l.spec.port))
            .collect();
        if candidates.is_empty() {
            return Err((
                "NoMatchingParent",
                "no listener matches the parentRef sectionName/port",
            ));
        }
        let allowed: Vec<(usize, &ListenerState)> = candidates
            .into_iter()
            .filter(|(_, l)| {
                l.accepts(self.kind) && namespace_allowed(resources, l, owner_ns, self.route_ns)
            })
            .collect();
        if allowed.is_empty() {
            return Err((
                "NotAllowedByListeners",
                "no listener allows this route (kind or namespace)",
            ));
        }
        let Some(hostnames) = hostnames else {
            return Ok(allowed.into_iter().map(|(i, _)| (i, Vec::new())).collect());
        };
        let targets: Targets = allowed
            .into_iter()
            .filter_map(|(i, l)| {
                hostnames::intersect(l.spec.hostname.as_deref(), hostnames).map(|h| (i, h))
            })
            .collect();
        if targets.is_empty() {
            return Err((
                "NoMatchingListenerHostname",
                "no listener hostname matches the route hostnames",
            ));
        }
        Ok(targets)
    }
}

/// Whether a listener's `allowedRoutes.namespaces` admits routes from `route_ns`; `owner_ns`
/// is the namespace of the listener's Gateway or ListenerSet.
pub fn namespace_allowed(
    resources: &ResourceSet,
    l: &ListenerState,
    owner_ns: &str,
    route_ns: &str,
) -> bool {
    let namespaces = l
        .spec
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "Same" => owner_ns == route_ns,
        "All" => true,
        "Selector" => namespaces
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|s| s.matches(&resources.namespace_labels(route_ns))),
        _ => false,
    }
}

/// A route parent's `ResolvedRefs` condition from its first backend reference problem.
pub fn resolved_refs(ref_error: Option<&RefError>) -> Cond {
    match ref_error {
        None => Cond::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "all references are resolved",
        ),
        Some(e) => Cond::new("ResolvedRefs", false, e.reason, e.message.clone()),
    }
}

/// One entry of a route's `status.parents`: the parentRef as written (group and kind made
/// explicit), our controller and the stamped conditions.
pub fn parent_status(
    pref: &ParentReference,
    controller: &str,
    conds: &[Cond],
    stamp: &Stamp,
) -> Value {
    let mut parent_ref = serde_json::to_value(pref).unwrap_or(Value::Null);
    parent_ref["group"] = json!(pref.group.as_deref().unwrap_or(GATEWAY_GROUP));
    parent_ref["kind"] = json!(pref.kind.as_deref().unwrap_or("Gateway"));
    json!({
        "parentRef": parent_ref,
        "controllerName": controller,
        "conditions": conds.iter().map(|c| c.stamp(stamp)).collect::<Vec<Value>>(),
    })
}
