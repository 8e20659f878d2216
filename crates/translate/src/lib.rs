//! Pure translation: [`translate`] turns a [`ResourceSet`] into the proxy's IR plus the Gateway
//! API status of every object. No I/O; user mistakes become status conditions.
//!
//! Flow (start at [`translate`]): [`gatewayclass`] picks our classes → [`gateway`] validates
//! Gateways ([`addresses`], [`listeners`]) → [`httproute`] attaches routes (GRPCRoutes via
//! [`grpcroute`]; [`rules`]; TLS/TCP/UDPRoutes via [`l4route`] and [`l4build`];
//! [`filters`], [`backends`] with [`backend_tls`], [`refs`], [`hostnames`]) → [`build`] assembles
//! the IR sorted by
//! [`precedence`]. [`render_yaml`] prints a translation deterministically.

pub mod addresses;
pub mod backend_tls;
pub mod backends;
pub mod build;
pub mod conditions;
pub mod duration;
pub mod filters;
pub mod frontend;
pub mod gateway;
pub mod gatewayclass;
pub mod grpcroute;
pub mod hostnames;
pub mod httproute;
pub mod l4build;
pub mod l4route;
pub mod listeners;
pub mod listenerset;
pub mod parents;
pub mod precedence;
pub mod refs;
mod render;
pub mod rules;
mod tokens;

pub use render::render_yaml;

use serde::{Deserialize, Serialize};
use trellis_model::ResourceSet;

/// Knobs that are not part of the resources.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// GatewayClasses with this `controllerName` are ours.
    pub controller_name: String,
    /// Gateways without `spec.addresses` get an address from this IPv4 pool (base, prefix length).
    pub address_pool: (std::net::Ipv4Addr, u8),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            controller_name: "trellis.dev/gateway-controller".to_string(),
            address_pool: (std::net::Ipv4Addr::new(127, 10, 0, 0), 16),
        }
    }
}

/// The status of one object, shaped exactly as the API server's `status` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub generation: i64,
    pub status: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translation {
    pub ir: trellis_ir::Config,
    /// GatewayClasses, Gateways, routes, ListenerSets, then BackendTLSPolicies, each kind sorted by
    /// namespace/name.
    pub statuses: Vec<ObjectStatus>,
}

/// Translates a snapshot. Only GatewayClasses whose `controllerName` is
/// `options.controller_name`, their Gateways and the HTTP/GRPCRoutes attached to those get statuses.
pub fn translate(resources: &ResourceSet, options: &Options) -> Translation {
    let (ours, mut statuses) = gatewayclass::translate(resources, options);
    let mut gateways = gateway::prepare(resources, &ours, options);
    let mut clusters = backends::Clusters::new();
    let (route_statuses, mut placements) =
        httproute::translate(resources, options, &mut gateways, &mut clusters);
    // TLS/TCP/UDP routes keep clusters of their own (raw TCP / UDP upstreams).
    let mut l4_clusters = backends::Clusters::new();
    let (l4_statuses, l4_placements) =
        l4route::translate(resources, options, &mut gateways, &mut l4_clusters);
    statuses.extend(gateways.iter().map(gateway::status));
    statuses.extend(route_statuses);
    statuses.extend(l4_statuses);
    statuses.extend(gateways.iter().flat_map(|g| {
        g.listener_sets
            .iter()
            .enumerate()
            .map(move |(i, s)| s.status(g, i))
    }));
    statuses.extend(backend_tls::statuses(
        resources,
        options,
        &gateways,
        &placements,
    ));
    backend_tls::apply_client_certificates(resources, &gateways, &mut placements, &mut clusters);
    let mut ir = build::config(&gateways, placements, clusters);
    ir.l4_binds = l4build::binds(&gateways, l4_placements);
    ir.clusters
        .extend(l4build::clusters(&ir.l4_binds, l4_clusters));
    if let Err(e) = ir.validate() {
        tracing::error!(error = %e, "translator produced an invalid IR");
    }
    Translation { ir, statuses }
}
