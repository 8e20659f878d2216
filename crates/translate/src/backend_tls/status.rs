//! BackendTLSPolicy status (an `ancestors` entry per Gateway whose routes use a targeted
//! Service port) and the Gateway's backend client certificate, which gives each Gateway its
//! own copy of the TLS clusters it uses.

use super::{check, conflicted};
use crate::backends::{service_cluster_name, Clusters};
use crate::conditions::{Cond, Stamp};
use crate::gateway::GatewayState;
use crate::httproute::Placement;
use crate::listeners::load_tls_secret;
use crate::{ObjectStatus, Options};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use trellis_ir as ir;
use trellis_model::{ResourceSet, GATEWAY_GROUP};

/// Cluster names a route references (backends and mirrors), mutable so they can be renamed.
fn cluster_refs(route: &mut ir::Route) -> Vec<&mut Option<String>> {
    fn mirrors<'a>(filters: &'a mut [ir::Filter], out: &mut Vec<&'a mut Option<String>>) {
        for f in filters {
            if let ir::Filter::RequestMirror(m) = f {
                out.push(&mut m.cluster);
            }
        }
    }
    let mut out = Vec::new();
    mirrors(&mut route.filters, &mut out);
    if let ir::Action::Forward(backends) = &mut route.action {
        for b in backends {
            out.push(&mut b.cluster);
            mirrors(&mut b.filters, &mut out);
        }
    }
    out
}

/// Names of the clusters each Gateway's placed routes use, indexed like `gateways`.
fn clusters_by_gateway(n: usize, placements: &[Placement]) -> Vec<BTreeSet<String>> {
    let mut used = vec![BTreeSet::new(); n];
    for p in placements {
        let Some(set) = used.get_mut(p.gateway) else {
            continue;
        };
        for (_, route) in &p.routes {
            let mut route = route.clone();
            set.extend(
                cluster_refs(&mut route)
                    .into_iter()
                    .filter_map(|c| c.clone()),
            );
        }
    }
    used
}

/// One status per BackendTLSPolicy, sorted by namespace/name. Call before
/// [`apply_client_certificates`], which renames clusters.
pub fn statuses(
    resources: &ResourceSet,
    options: &Options,
    gateways: &[GatewayState],
    placements: &[Placement],
) -> Vec<ObjectStatus> {
    let used = clusters_by_gateway(gateways.len(), placements);
    let mut out = Vec::new();
    for (key, policy) in &resources.backend_tls_policies {
        let ns = key.namespace.as_str();
        let stamp = Stamp::of(&policy.metadata);
        let checked = check(resources, ns, policy);
        // (Service name, port name, port) of every port the policy's targetRefs name.
        let mut ports = Vec::new();
        for t in &policy.spec.target_refs {
            if !t.group.is_empty() || t.kind != "Service" {
                continue;
            }
            let Some(svc) = resources.service(ns, &t.name) else {
                continue;
            };
            let section = t.section_name.as_deref().filter(|s| !s.is_empty());
            for sp in &svc.spec.ports {
                let port_name = sp.name.as_deref().unwrap_or("");
                if section.is_none_or(|s| s == port_name) {
                    ports.push((t.name.as_str(), port_name, sp.port));
                }
            }
        }
        let mut ancestors = Vec::new();
        for (gi, gw) in gateways.iter().enumerate() {
            let uses = |svc: &str, port: i64| {
                [false, true]
                    .iter()
                    .any(|grpc| used[gi].contains(&service_cluster_name(*grpc, ns, svc, port)))
            };
            let in_use: Vec<_> = ports.iter().filter(|(s, _, p)| uses(s, *p)).collect();
            if in_use.is_empty() {
                continue;
            }
            let all_conflicted = in_use
                .iter()
                .all(|(svc, port_name, _)| conflicted(resources, key, policy, svc, port_name));
            let accepted = if all_conflicted {
                Cond::new(
                    "Accepted",
                    false,
                    "Conflicted",
                    "an older policy (or one first by name) targets the same Service port",
                )
            } else {
                checked.accepted.clone()
            };
            ancestors.push(json!({
                "ancestorRef": {
                    "group": GATEWAY_GROUP,
                    "kind": "Gateway",
                    "namespace": gw.key.namespace,
                    "name": gw.key.name,
                },
                "controllerName": options.controller_name,
                "conditions": [accepted.stamp(&stamp), checked.resolved.stamp(&stamp)],
            }));
        }
        out.push(ObjectStatus {
            api_version: policy.api_version.clone(),
            kind: "BackendTLSPolicy".into(),
            namespace: Some(ns.to_string()),
            name: key.name.clone(),
            generation: stamp.generation,
            status: json!({ "ancestors": ancestors }),
        });
    }
    out
}

/// The certificate a Gateway presents to backends (`spec.tls.backend.clientCertificateRef`),
/// when the reference resolved (the Gateway's ResolvedRefs condition says why otherwise).
fn client_certificate(resources: &ResourceSet, gw: &GatewayState) -> Option<ir::Certificate> {
    if !gw.resolved.as_ref().is_some_and(|c| c.status) {
        return None;
    }
    let r = gw
        .gateway
        .spec
        .tls
        .as_ref()?
        .get("backend")?
        .get("clientCertificateRef")?;
    let name = r.get("name").and_then(Value::as_str)?;
    let ns = r
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(&gw.key.namespace);
    load_tls_secret(resources, ns, name).ok()
}

/// Gives every Gateway with a backend client certificate its own copy (`<cluster>@ns/gateway`)
/// of each TLS cluster its routes use, carrying that certificate.
pub fn apply_client_certificates(
    resources: &ResourceSet,
    gateways: &[GatewayState],
    placements: &mut [Placement],
    clusters: &mut Clusters,
) {
    let certs: Vec<Option<ir::Certificate>> = gateways
        .iter()
        .map(|g| client_certificate(resources, g))
        .collect();
    for p in placements {
        let Some(Some(cert)) = certs.get(p.gateway) else {
            continue;
        };
        let gw = &gateways[p.gateway].key;
        for (_, route) in &mut p.routes {
            for slot in cluster_refs(route) {
                let Some(name) = slot.as_ref() else {
                    continue;
                };
                let Some(base) = clusters.get(name).filter(|c| c.tls.is_some()) else {
                    continue;
                };
                let own = format!("{name}@{gw}");
                if !clusters.contains_key(&own) {
                    let mut c = base.clone();
                    c.name = own.clone();
                    if let Some(tls) = &mut c.tls {
                        tls.client_certificate = Some(cert.clone());
                    }
                    clusters.insert(own.clone(), c);
                }
                *slot = Some(own);
            }
        }
    }
}
