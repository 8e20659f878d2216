//! backendRefs → clusters: Services (with their EndpointSlices) and `trellis.dev` Backends.

use crate::filters::Ctx;
use crate::grpcroute::RouteKind;
use crate::refs::{permitted, From, To};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use trellis_ir::{Cluster, Endpoint, UpstreamProtocol};
use trellis_model::{
    BackendObjectReference, EndpointSlice, IntOrString, ResourceSet, Service, ServicePort,
    GATEWAY_GROUP, TRELLIS_GROUP,
};

/// Why a reference does not resolve: a ResolvedRefs reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError {
    pub reason: &'static str,
    pub message: String,
}

fn err(reason: &'static str, message: String) -> RefError {
    RefError { reason, message }
}

/// Clusters built so far, by name (so output order is deterministic).
pub type Clusters = BTreeMap<String, Cluster>;

/// Resolves a backend reference from a route in `ctx.route_ns`; returns the cluster name and
/// records the cluster. GRPCRoute backends get their own h2c clusters (`grpc/...`), so an
/// HTTP/1 cluster of the same Service is unaffected.
pub fn resolve(
    ctx: &Ctx,
    r: &BackendObjectReference,
    clusters: &mut Clusters,
) -> Result<String, RefError> {
    let (resources, route_ns) = (ctx.resources, ctx.route_ns);
    let grpc = ctx.route_kind == RouteKind::Grpc;
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Service");
    let ns = r.namespace.as_deref().unwrap_or(route_ns);
    match (group, kind) {
        ("", "Service") | (TRELLIS_GROUP, "Backend") => {}
        _ => {
            return Err(err(
                "InvalidKind",
                format!("backendRef kind {group}/{kind} is not supported"),
            ))
        }
    }
    let from = From {
        group: GATEWAY_GROUP,
        kind: ctx.route_kind.name(),
        namespace: route_ns,
    };
    let to = To {
        group,
        kind,
        namespace: ns,
        name: &r.name,
    };
    if !permitted(resources, &from, &to) {
        return Err(err(
            "RefNotPermitted",
            format!("no ReferenceGrant allows access to {kind} {ns}/{}", r.name),
        ));
    }
    if kind == "Backend" {
        return backend_cluster(resources, ns, &r.name, ctx.route_kind, clusters);
    }
    let service = resources.service(ns, &r.name).ok_or_else(|| {
        err(
            "BackendNotFound",
            format!("Service {ns}/{} not found", r.name),
        )
    })?;
    let port = r.port.ok_or_else(|| {
        err(
            "BackendNotFound",
            format!("backendRef to Service {ns}/{} needs a port", r.name),
        )
    })?;
    let sp = service
        .spec
        .ports
        .iter()
        .find(|p| p.port == port)
        .ok_or_else(|| {
            err(
                "BackendNotFound",
                format!("Service {ns}/{} has no port {port}", r.name),
            )
        })?;
    let l4 = l4_protocol(ctx.route_kind);
    // BackendTLSPolicy applies to HTTP and gRPC traffic only.
    let tls = l4
        .is_none()
        .then(|| crate::backend_tls::for_port(resources, ns, service, sp))
        .flatten();
    let (name, protocol) = if let Some((prefix, l4)) = l4 {
        // Bytes, not requests: appProtocol does not matter.
        (format!("{prefix}/{ns}/{}:{port}", r.name), l4)
    } else if grpc {
        (
            service_cluster_name(true, ns, &r.name, port),
            UpstreamProtocol::H2c,
        )
    } else {
        let https = tls.is_some() && is_https(sp.app_protocol.as_deref());
        let protocol = protocol(sp.app_protocol.as_deref());
        let protocol = protocol
            .or(https.then_some(UpstreamProtocol::Http1))
            .ok_or_else(|| {
                err(
                    "UnsupportedProtocol",
                    format!("appProtocol {:?} is not supported", sp.app_protocol),
                )
            })?;
        (service_cluster_name(false, ns, &r.name, port), protocol)
    };
    if !clusters.contains_key(&name) {
        let endpoints = service_endpoints(resources, ns, service, sp);
        clusters.insert(
            name.clone(),
            Cluster {
                tls,
                name: name.clone(),
                protocol,
                endpoints,
            },
        );
    }
    Ok(name)
}

/// Name of the cluster of a Service port: gRPC backends get their own (h2c) clusters.
pub fn service_cluster_name(grpc: bool, ns: &str, service: &str, port: i64) -> String {
    let prefix = if grpc { "grpc" } else { "service" };
    format!("{prefix}/{ns}/{service}:{port}")
}

/// `appProtocol` naming HTTP over TLS: usable only with a BackendTLSPolicy, which says how.
fn is_https(app_protocol: Option<&str>) -> bool {
    matches!(
        app_protocol,
        Some("HTTPS" | "https" | "kubernetes.io/https")
    )
}

/// `appProtocol` → upstream protocol; `None` when unsupported.
fn protocol(app_protocol: Option<&str>) -> Option<UpstreamProtocol> {
    match app_protocol {
        None | Some("" | "http" | "HTTP" | "kubernetes.io/http") => Some(UpstreamProtocol::Http1),
        Some("kubernetes.io/h2c") => Some(UpstreamProtocol::H2c),
        Some("kubernetes.io/ws") => Some(UpstreamProtocol::WebSocket),
        Some(_) => None,
    }
}

/// The cluster name prefix and protocol of L4 route kinds.
fn l4_protocol(kind: RouteKind) -> Option<(&'static str, UpstreamProtocol)> {
    match kind {
        RouteKind::Tcp | RouteKind::Tls => Some(("tcp", UpstreamProtocol::Tcp)),
        RouteKind::Udp => Some(("udp", UpstreamProtocol::Udp)),
        RouteKind::Http | RouteKind::Grpc => None,
    }
}

fn backend_cluster(
    resources: &ResourceSet,
    ns: &str,
    name: &str,
    route_kind: RouteKind,
    clusters: &mut Clusters,
) -> Result<String, RefError> {
    let backend = resources
        .backend(ns, name)
        .ok_or_else(|| err("BackendNotFound", format!("Backend {ns}/{name} not found")))?;
    let (cluster, protocol) = if let Some((prefix, l4)) = l4_protocol(route_kind) {
        (format!("{prefix}-backend/{ns}/{name}"), l4)
    } else if route_kind == RouteKind::Grpc {
        (format!("grpc-backend/{ns}/{name}"), UpstreamProtocol::H2c)
    } else {
        let protocol = protocol(backend.spec.app_protocol.as_deref()).ok_or_else(|| {
            err(
                "UnsupportedProtocol",
                format!(
                    "appProtocol {:?} is not supported",
                    backend.spec.app_protocol
                ),
            )
        })?;
        (format!("backend/{ns}/{name}"), protocol)
    };
    let mut endpoints = Vec::new();
    for e in &backend.spec.endpoints {
        if let Some(path) = &e.unix {
            endpoints.push(Endpoint::Unix(path.clone()));
            continue;
        }
        let (Some(address), Some(port)) = (&e.address, e.port.and_then(|p| u16::try_from(p).ok()))
        else {
            return Err(err(
                "UnsupportedValue",
                format!("Backend {ns}/{name}: endpoint needs address and port, or unix"),
            ));
        };
        endpoints.push(match address.parse::<IpAddr>() {
            Ok(ip) => Endpoint::Socket(SocketAddr::new(ip, port)),
            Err(_) => Endpoint::Host {
                host: address.clone(),
                port,
            },
        });
    }
    clusters.entry(cluster.clone()).or_insert_with(|| Cluster {
        tls: None,
        name: cluster.clone(),
        protocol,
        endpoints,
    });
    Ok(cluster)
}

/// Ready endpoints of one Service port. ExternalName Services resolve by DNS. A Service without
/// EndpointSlices of its own but with a selector shares the slices of Services with the same
/// selector (the same pods), as Kubernetes would populate them.
fn service_endpoints(
    resources: &ResourceSet,
    ns: &str,
    service: &Service,
    sp: &ServicePort,
) -> Vec<Endpoint> {
    if service.spec.type_.as_deref() == Some("ExternalName") {
        return match (&service.spec.external_name, u16::try_from(sp.port)) {
            (Some(host), Ok(port)) => vec![Endpoint::Host {
                host: host.clone(),
                port,
            }],
            _ => Vec::new(),
        };
    }
    let own: Vec<&EndpointSlice> = resources
        .endpoint_slices_for(ns, &service.metadata.name)
        .collect();
    let mut out = Vec::new();
    if !own.is_empty() {
        for slice in own {
            slice_endpoints(slice, sp, &mut out);
        }
        return out;
    }
    let Some(selector) = service.spec.selector.as_ref().filter(|s| !s.is_empty()) else {
        return out;
    };
    for (key, other) in &resources.services {
        if key.namespace != ns
            || key.name == service.metadata.name
            || other.spec.selector.as_ref() != Some(selector)
        {
            continue;
        }
        for slice in resources.endpoint_slices_for(ns, &key.name) {
            slice_endpoints(slice, sp, &mut out);
        }
    }
    out.dedup();
    out
}

/// Adds a slice's ready endpoints for the Service port: slice port matched by name, otherwise
/// the Service's numeric targetPort (or the port itself).
fn slice_endpoints(slice: &EndpointSlice, sp: &ServicePort, out: &mut Vec<Endpoint>) {
    let by_name = slice
        .ports
        .iter()
        .find(|p| p.name.as_deref().unwrap_or("") == sp.name.as_deref().unwrap_or(""))
        .and_then(|p| p.port);
    let target = match &sp.target_port {
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(_)) => None,
        None => Some(sp.port),
    };
    let by_number =
        target.filter(|t| slice.ports.is_empty() || slice.ports.iter().any(|p| p.port == Some(*t)));
    let Some(port) = by_name.or(by_number).and_then(|p| u16::try_from(p).ok()) else {
        return;
    };
    for e in &slice.endpoints {
        if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
            continue;
        }
        for a in &e.addresses {
            let endpoint = match (slice.address_type.as_str(), a.parse::<IpAddr>()) {
                (_, Ok(ip)) => Endpoint::Socket(SocketAddr::new(ip, port)),
                ("FQDN", Err(_)) => Endpoint::Host {
                    host: a.clone(),
                    port,
                },
                _ => continue,
            };
            if !out.contains(&endpoint) {
                out.push(endpoint);
            }
        }
    }
}
