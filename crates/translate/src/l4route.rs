//! TCPRoute, UDPRoute and TLSRoute: attachment to TCP / UDP / TLS listeners (parentRef
//! sectionName and port, allowed kinds and namespaces, TLS hostname intersection), backend
//! resolution (ReferenceGrants, weights) and route statuses. [`crate::l4build`] turns the
//! placements into the IR's `l4_binds`.

use crate::backends::{self, Clusters, RefError};
use crate::conditions::{Cond, Stamp};
use crate::filters::Ctx;
use crate::gateway::GatewayState;
use crate::grpcroute::RouteKind;
use crate::parents::{parent_status, resolved_refs, Attachment, ParentIndex, Targets};
use crate::{ObjectStatus, Options};
use serde_json::json;
use std::collections::BTreeSet;
use trellis_ir as ir;
use trellis_model::{L4Route, ObjectKey, ResourceSet};

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
                let at = Attachment {
                    gw: &gateways[gi],
                    origin,
                    pref,
                    kind,
                    route_ns: &key.namespace,
                };
                let (conds, listeners) = attach(resources, &at, route, r.ref_error.as_ref());
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
                parents.push(parent_status(
                    pref,
                    &options.controller_name,
                    &conds,
                    &stamp,
                ));
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

/// Conditions of one parent entry and the listeners it attaches to (with the effective SNI
/// hostnames for TLSRoutes; TCP and UDP routes have no hostnames).
fn attach(
    resources: &ResourceSet,
    at: &Attachment,
    route: &L4Route,
    ref_error: Option<&RefError>,
) -> (Vec<Cond>, Targets) {
    let resolved = resolved_refs(ref_error);
    let hostnames = (at.kind == RouteKind::Tls).then_some(route.spec.hostnames.as_slice());
    match at.targets(resources, hostnames) {
        Ok(targets) => {
            let accepted = Cond::new("Accepted", true, "Accepted", "route is accepted");
            (vec![accepted, resolved], targets)
        }
        Err((reason, message)) => {
            let accepted = Cond::new("Accepted", false, reason, message);
            (vec![accepted, resolved], Vec::new())
        }
    }
}
