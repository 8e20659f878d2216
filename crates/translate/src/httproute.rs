//! HTTPRoute and GRPCRoute attachment to Gateway listeners and their status.

use crate::backends::Clusters;
use crate::conditions::{Cond, Stamp};
use crate::gateway::GatewayState;
use crate::grpcroute::{self, RouteKind};
use crate::hostnames;
use crate::listeners::ListenerState;
use crate::parents::ParentIndex;
use crate::precedence::SortKey;
use crate::rules::{self, RouteRules};
use crate::{ObjectStatus, Options};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use trellis_ir as ir;
use trellis_model::{HttpRoute, ObjectKey, ParentReference, ResourceSet, GATEWAY_GROUP};

/// Routes of one HTTPRoute placed on one listener under one effective hostname.
pub struct Placement {
    pub gateway: usize,
    pub listener: usize,
    pub hostname: String,
    pub routes: Vec<(SortKey, ir::Route)>,
}

/// Attaches every HTTPRoute and GRPCRoute; counts attached routes on `gateways`' listeners.
pub fn translate(
    resources: &ResourceSet,
    options: &Options,
    gateways: &mut [GatewayState],
    clusters: &mut Clusters,
) -> (Vec<ObjectStatus>, Vec<Placement>) {
    let parent_index = ParentIndex::new(gateways);
    let mut attached: BTreeSet<(usize, usize, RouteKind, ObjectKey)> = BTreeSet::new();
    let mut statuses = Vec::new();
    let mut placements = Vec::new();
    let grpc: Vec<(&ObjectKey, HttpRoute)> = resources
        .grpc_routes
        .iter()
        .map(|(k, r)| (k, grpcroute::to_http(r)))
        .collect();
    let all = resources
        .http_routes
        .iter()
        .map(|(k, r)| (k, r, RouteKind::Http))
        .chain(grpc.iter().map(|(k, r)| (*k, r, RouteKind::Grpc)));
    for (key, route, route_kind) in all {
        let stamp = Stamp::of(&route.metadata);
        let mut rules: Option<RouteRules> = None;
        let mut parents = Vec::new();
        for pref in &route.spec.parent_refs {
            let Some((gi, origin)) = parent_index.resolve(pref, &key.namespace) else {
                continue;
            };
            let rules = rules
                .get_or_insert_with(|| rules::translate(resources, route, route_kind, clusters));
            let (conds, targets) = attach(
                resources,
                &gateways[gi],
                key,
                route,
                route_kind,
                (pref, origin),
                rules,
            );
            for (li, hosts) in targets {
                attached.insert((gi, li, route_kind, key.clone()));
                for hostname in hosts {
                    placements.push(Placement {
                        gateway: gi,
                        listener: li,
                        hostname,
                        routes: rules.routes.clone(),
                    });
                }
            }
            parents.push(json!({
                "parentRef": parent_ref_status(pref),
                "controllerName": options.controller_name,
                "conditions": conds.iter().map(|c| c.stamp(&stamp)).collect::<Vec<Value>>(),
            }));
        }
        statuses.push(ObjectStatus {
            api_version: route.api_version.clone(),
            kind: route_kind.name().into(),
            namespace: Some(key.namespace.clone()),
            name: key.name.clone(),
            generation: stamp.generation,
            status: json!({ "parents": parents }),
        });
    }
    for (gi, li, _, _) in attached {
        gateways[gi].listeners[li].attached_routes += 1;
    }
    (statuses, placements)
}

/// The parentRef as written, with group and kind made explicit.
pub(crate) fn parent_ref_status(p: &ParentReference) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    v["group"] = json!(p.group.as_deref().unwrap_or(GATEWAY_GROUP));
    v["kind"] = json!(p.kind.as_deref().unwrap_or("Gateway"));
    v
}

pub(crate) fn namespace_allowed(
    resources: &ResourceSet,
    l: &ListenerState,
    gw_ns: &str,
    route_ns: &str,
) -> bool {
    let namespaces = l
        .spec
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "Same" => gw_ns == route_ns,
        "All" => true,
        "Selector" => namespaces
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|s| s.matches(&resources.namespace_labels(route_ns))),
        _ => false,
    }
}

type Targets = Vec<(usize, Vec<String>)>;

/// Conditions of one parent entry and the listeners (with effective hostnames) it attaches to.
fn attach(
    resources: &ResourceSet,
    gw: &GatewayState,
    key: &ObjectKey,
    route: &HttpRoute,
    route_kind: RouteKind,
    (pref, origin): (&ParentReference, Option<usize>),
    rules: &RouteRules,
) -> (Vec<Cond>, Targets) {
    // Listeners' allowedRoutes `Same` means the namespace of their Gateway or ListenerSet.
    let owner_ns = match origin {
        None => &gw.key.namespace,
        Some(si) => &gw.listener_sets[si].key.namespace,
    };
    let resolved = match &rules.ref_error {
        None => Cond::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "all references are resolved",
        ),
        Some(e) => Cond::new("ResolvedRefs", false, e.reason, e.message.clone()),
    };
    let reject = |reason: &'static str, message: &str| {
        (
            vec![
                Cond::new("Accepted", false, reason, message),
                resolved.clone(),
            ],
            Vec::new(),
        )
    };
    let candidates: Vec<(usize, &ListenerState)> = gw
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| l.origin == origin)
        .filter(|(_, l)| pref.section_name.as_ref().is_none_or(|s| *s == l.spec.name))
        .filter(|(_, l)| pref.port.is_none_or(|p| p == l.spec.port))
        .collect();
    if candidates.is_empty() {
        return reject(
            "NoMatchingParent",
            "no listener matches the parentRef sectionName/port",
        );
    }
    let allowed: Vec<(usize, &ListenerState)> = candidates
        .into_iter()
        .filter(|(_, l)| {
            l.accepts(route_kind) && namespace_allowed(resources, l, owner_ns, &key.namespace)
        })
        .collect();
    if allowed.is_empty() {
        return reject(
            "NotAllowedByListeners",
            "no listener allows this route (kind or namespace)",
        );
    }
    let targets: Targets = allowed
        .into_iter()
        .filter_map(|(i, l)| {
            hostnames::intersect(l.spec.hostname.as_deref(), &route.spec.hostnames).map(|h| (i, h))
        })
        .collect();
    if targets.is_empty() {
        return reject(
            "NoMatchingListenerHostname",
            "no listener hostname matches the route hostnames",
        );
    }
    if rules.rule_count > 0 && rules.invalid_rules == rules.rule_count {
        return reject("UnsupportedValue", &rules.invalid.join("; "));
    }
    let mut conds = vec![
        Cond::new("Accepted", true, "Accepted", "route is accepted"),
        resolved,
    ];
    if rules.invalid_rules > 0 {
        conds.push(Cond::new(
            "PartiallyInvalid",
            true,
            "UnsupportedValue",
            rules.invalid.join("; "),
        ));
    }
    (conds, targets)
}
