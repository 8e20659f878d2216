//! TCPRoute, UDPRoute and TLSRoute: attachment to TCP / UDP / TLS listeners (parentRef
//! sectionName and port, allowed kinds and namespaces, TLS hostname intersection), backend
//! resolution (ReferenceGrants, weights) and route statuses. [`crate::l4build`] turns the
//! placements into the IR's `l4_binds`.

use crate::backends::{self, Clusters, RefError};
use crate::conditions::{Cond, Stamp};
use crate::filters::Ctx;
use crate::gateway::GatewayState;
use crate::grpcroute::RouteKind;
use crate::hostnames;
use crate::httproute::{namespace_allowed, parent_ref_status};
use crate::listeners::ListenerState;
use crate::parents::ParentIndex;
use crate::{ObjectStatus, Options};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use trellis_ir as ir;
use trellis_model::{L4Route, ObjectKey, ParentReference, ResourceSet};

/// One L4 route attached to one listener.
#[derive(Debug, Clone)]
pub struct L4Placement {
    pub gateway: usize,
    pub listener: usize,
    /// `(creationTimestamp, namespace/name)`: on a TCP or UDP listener the oldest route wins.
    pub age: (String, ObjectKey),
    /// TLS only: the effective SNI hostnames (route ∩ listener).
    pub hostnames: Vec<String>,
    pub backends: Vec<ir::L4Backend>,
}

/// Backends of a route (all rules merged: one connection has no request to match on).
struct Resolved {
    backends: Vec<ir::L4Backend>,
    ref_error: Option<RefError>,
}

fn resolve(
    resources: &ResourceSet,
    key: &ObjectKey,
    route: &L4Route,
    kind: RouteKind,
    clusters: &mut Clusters,
) -> Resolved {
    let ctx = Ctx {
        resources,
        route_ns: &key.namespace,
        route_kind: kind,
        prefix_matches_only: false,
    };
    let mut out = Resolved {
        backends: Vec::new(),
        ref_error: None,
    };
    for b in route.spec.rules.iter().flat_map(|r| &r.backend_refs) {
        let cluster = match backends::resolve(&ctx, &b.backend, clusters) {
            Ok(c) => Some(c),
            Err(e) => {
                out.ref_error.get_or_insert(e);
                None
            }
        };
        out.backends.push(ir::L4Backend {
            weight: u32::try_from(b.weight.unwrap_or(1)).unwrap_or(0),
            cluster,
        });
    }
    out
}

/// Attaches every TLSRoute, TCPRoute and UDPRoute (statuses in that order, each by
/// namespace/name); counts attached routes on `gateways`' listeners.
pub fn translate(
    resources: &ResourceSet,
    options: &Options,
    gateways: &mut [GatewayState],
    clusters: &mut Clusters,
) -> (Vec<ObjectStatus>, Vec<L4Placement>) {
    let parents_index = ParentIndex::new(gateways);
    let mut attached: BTreeSet<(usize, usize, RouteKind, ObjectKey)> = BTreeSet::new();
    let mut statuses = Vec::new();
    let mut placements = Vec::new();
    let all = [
        (&resources.tls_routes, RouteKind::Tls),
        (&resources.tcp_routes, RouteKind::Tcp),
        (&resources.udp_routes, RouteKind::Udp),
    ];
    for (routes, kind) in all {
        for (key, route) in routes {
            let stamp = Stamp::of(&route.metadata);
            let mut resolved: Option<Resolved> = None;
            let mut parents = Vec::new();
            for pref in &route.spec.parent_refs {
                let Some((gi, origin)) = parents_index.resolve(pref, &key.namespace) else {
                    continue;
                };
                let r =
                    resolved.get_or_insert_with(|| resolve(resources, key, route, kind, clusters));
                let target = Target {
                    gw: &gateways[gi],
                    origin,
                    route,
                    route_ns: &key.namespace,
                    kind,
                };
                let (conds, listeners) = target.attach(resources, pref, r.ref_error.as_ref());
                for (li, hostnames) in listeners {
                    attached.insert((gi, li, kind, key.clone()));
                    placements.push(L4Placement {
                        gateway: gi,
                        listener: li,
                        age: (
                            route
                                .metadata
                                .creation_timestamp
                                .clone()
                                .unwrap_or_default(),
                            key.clone(),
                        ),
                        hostnames,
                        backends: r.backends.clone(),
                    });
                }
                parents.push(json!({
                    "parentRef": parent_ref_status(pref),
                    "controllerName": options.controller_name,
                    "conditions": conds.iter().map(|c| c.stamp(&stamp)).collect::<Vec<Value>>(),
                }));
            }
            statuses.push(ObjectStatus {
                api_version: route.api_version.clone(),
                kind: kind.name().into(),
                namespace: Some(key.namespace.clone()),
                name: key.name.clone(),
                generation: stamp.generation,
                status: json!({ "parents": parents }),
            });
        }
    }
    // Every attached route counts, also those that lose a TCP/UDP listener to an older one
    // (the conformance suite expects that).
    for (gi, li, _, _) in attached {
        gateways[gi].listeners[li].attached_routes += 1;
    }
    (statuses, placements)
}

/// One route against one parent (a Gateway, or one of its ListenerSets).
struct Target<'a, 'g> {
    gw: &'a GatewayState<'g>,
    origin: Option<usize>,
    route: &'a L4Route,
    route_ns: &'a str,
    kind: RouteKind,
}

type Attached = Vec<(usize, Vec<String>)>;

impl Target<'_, '_> {
    /// Conditions of the parent entry and the listeners (with TLS hostnames) it attaches to.
    fn attach(
        &self,
        resources: &ResourceSet,
        pref: &ParentReference,
        ref_error: Option<&RefError>,
    ) -> (Vec<Cond>, Attached) {
        let resolved = match ref_error {
            None => Cond::new(
                "ResolvedRefs",
                true,
                "ResolvedRefs",
                "all references are resolved",
            ),
            Some(e) => Cond::new("ResolvedRefs", false, e.reason, e.message.clone()),
        };
        let reject = |reason: &'static str, message: &str| {
            let accepted = Cond::new("Accepted", false, reason, message);
            (vec![accepted, resolved.clone()], Vec::new())
        };
        let gw = self.gw;
        let owner_ns = match self.origin {
            None => &gw.key.namespace,
            Some(si) => &gw.listener_sets[si].key.namespace,
        };
        let candidates: Vec<(usize, &ListenerState)> = gw
            .listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| l.origin == self.origin)
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
                l.accepts(self.kind) && namespace_allowed(resources, l, owner_ns, self.route_ns)
            })
            .collect();
        if allowed.is_empty() {
            return reject(
                "NotAllowedByListeners",
                "no listener allows this route (kind or namespace)",
            );
        }
        let targets: Attached = if self.kind == RouteKind::Tls {
            let targets: Attached = allowed
                .into_iter()
                .filter_map(|(i, l)| {
                    hostnames::intersect(l.spec.hostname.as_deref(), &self.route.spec.hostnames)
                        .map(|h| (i, h))
                })
                .collect();
            if targets.is_empty() {
                return reject(
                    "NoMatchingListenerHostname",
                    "no listener hostname matches the route hostnames",
                );
            }
            targets
        } else {
            allowed.into_iter().map(|(i, _)| (i, Vec::new())).collect()
        };
        let accepted = Cond::new("Accepted", true, "Accepted", "route is accepted");
        (vec![accepted, resolved], targets)
    }
}
