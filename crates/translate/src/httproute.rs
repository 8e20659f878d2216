//! HTTPRoute and GRPCRoute attachment to Gateway listeners and their status.

use crate::backends::Clusters;
use crate::conditions::{Cond, Stamp};
use crate::gateway::GatewayState;
use crate::grpcroute::{self, RouteKind};
use crate::parents::{parent_status, resolved_refs, Attachment, ParentIndex, Targets};
use crate::precedence::SortKey;
use crate::rules::{self, RouteRules};
use crate::{ObjectStatus, Options};
use serde_json::json;
use std::collections::BTreeSet;
use trellis_ir as ir;
use trellis_model::{HttpRoute, ObjectKey, ResourceSet};

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
            let at = Attachment {
                gw: &gateways[gi],
                origin,
                pref,
                kind: route_kind,
                route_ns: &key.namespace,
            };
            let (conds, targets) = attach(resources, &at, route, rules);
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
            parents.push(parent_status(
                pref,
                &options.controller_name,
                &conds,
                &stamp,
            ));
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

/// Conditions of one parent entry and the listeners (with effective hostnames) it attaches to.
fn attach(
    resources: &ResourceSet,
    at: &Attachment,
    route: &HttpRoute,
    rules: &RouteRules,
) -> (Vec<Cond>, Targets) {
    let resolved = resolved_refs(rules.ref_error.as_ref());
    let reject = |reason: &'static str, message: &str| {
        (
            vec![
                Cond::new("Accepted", false, reason, message),
                resolved.clone(),
            ],
            Vec::new(),
        )
    };
    let targets = match at.targets(resources, Some(&route.spec.hostnames)) {
        Ok(t) => t,
        Err((reason, message)) => return reject(reason, message),
    };
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
