//! Assembling the IR: binds per (address, port), listeners and virtual hosts sorted most
//! specific first, routes sorted by precedence, and the referenced clusters.

use crate::backends::Clusters;
use crate::gateway::GatewayState;
use crate::hostnames::{specificity, wildcard_covers};
use crate::httproute::Placement;
use crate::listeners::Protocol;
use crate::precedence::SortKey;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use trellis_ir as ir;

/// Routes of one virtual host, with their precedence keys.
type VhostRoutes = BTreeMap<String, Vec<(SortKey, ir::Route)>>;

pub fn config(
    gateways: &[GatewayState],
    placements: Vec<Placement>,
    clusters: Clusters,
) -> ir::Config {
    // (gateway, listener) → hostname → routes.
    let mut vhosts: BTreeMap<(usize, usize), VhostRoutes> = BTreeMap::new();
    for p in placements {
        vhosts
            .entry((p.gateway, p.listener))
            .or_default()
            .entry(p.hostname)
            .or_default()
            .extend(p.routes);
    }
    let mut binds: BTreeMap<(IpAddr, u16), ir::Bind> = BTreeMap::new();
    for (gi, gw) in gateways.iter().enumerate() {
        if !gw.is_programmed() {
            continue;
        }
        for (li, l) in gw.listeners.iter().enumerate() {
            if !l.serves() {
                continue;
            }
            let protocol = match l.protocol {
                Protocol::Http => ir::BindProtocol::Http,
                Protocol::Https => ir::BindProtocol::Https,
                // L4 listeners become `l4_binds` (crate::l4build).
                Protocol::TlsPassthrough
                | Protocol::TlsTerminate
                | Protocol::Tcp
                | Protocol::Udp
                | Protocol::Unsupported => continue,
            };
            let mut virtual_hosts: Vec<ir::VirtualHost> = vhosts
                .get(&(gi, li))
                .into_iter()
                .flatten()
                .map(|(hostname, routes)| {
                    let mut routes = routes.clone();
                    routes.sort_by(|a, b| a.0.cmp(&b.0));
                    ir::VirtualHost {
                        hostname: hostname.clone(),
                        routes: routes.into_iter().map(|r| r.1).collect(),
                    }
                })
                .collect();
            virtual_hosts.sort_by(|a, b| specificity(Some(&a.hostname), Some(&b.hostname)));
            let virtual_hosts = with_fallthrough(virtual_hosts);
            let listener = ir::HttpListener {
                name: match l.origin {
                    None => format!("{}/{}/{}", gw.key.namespace, gw.key.name, l.spec.name),
                    Some(si) => {
                        let set = &gw.listener_sets[si].key;
                        let (ns, gw) = (&gw.key.namespace, &gw.key.name);
                        format!("{ns}/{gw}/{}/{}/{}", set.namespace, set.name, l.spec.name)
                    }
                },
                hostname: l.spec.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
                certificates: l.certificates.clone(),
                virtual_hosts,
            };
            for address in &gw.addresses.addresses {
                let bind = binds.entry((*address, l.port)).or_insert_with(|| ir::Bind {
                    name: std::net::SocketAddr::new(*address, l.port).to_string(),
                    address: *address,
                    port: l.port,
                    protocol,
                    listeners: Vec::new(),
                    client_validation: l.client_validation.clone(),
                });
                if bind.protocol != protocol {
                    tracing::warn!(bind = %bind.name, listener = %listener.name, "protocol differs from the bind's; listener skipped");
                    continue;
                }
                bind.listeners.push(listener.clone());
            }
        }
    }
    let mut binds: Vec<ir::Bind> = binds.into_values().collect();
    for b in &mut binds {
        b.listeners.sort_by(|x, y| {
            specificity(x.hostname.as_deref(), y.hostname.as_deref())
                .then_with(|| x.name.cmp(&y.name))
        });
    }
    let used = referenced_clusters(&binds);
    let clusters = clusters
        .into_values()
        .filter(|c| used.contains(&c.name))
        .collect();
    ir::Config {
        binds,
        clusters,
        ..Default::default()
    }
}

/// Gateway API ranks hostname before path: a request for `a.example.com` that matches no route
/// of that host still matches routes for `*.example.com` and `*`. Each virtual host therefore
/// gets, after its own routes, those of the less specific hosts covering it, so the proxy can
/// stop at the first matching virtual host. Input and output are sorted most specific first.
fn with_fallthrough(vhosts: Vec<ir::VirtualHost>) -> Vec<ir::VirtualHost> {
    // Only wildcards (and `*`) cover other hosts: looking at those alone keeps 10,000 exact
    // hostnames linear instead of comparing every pair.
    let wildcards: Vec<usize> = (0..vhosts.len())
        .filter(|&j| vhosts[j].hostname.starts_with('*'))
        .collect();
    let mut out = vhosts.clone();
    for (i, v) in out.iter_mut().enumerate() {
        for wider in wildcards.iter().filter(|&&j| j > i).map(|&j| &vhosts[j]) {
            if wider.hostname == "*" || wildcard_covers(&wider.hostname, &v.hostname) {
                // The same HTTPRoute may already be here through another of its hostnames.
                let fresh: Vec<ir::Route> = wider
                    .routes
                    .iter()
                    .filter(|r| !v.routes.iter().any(|o| o.name == r.name))
                    .cloned()
                    .collect();
                v.routes.extend(fresh);
            }
        }
    }
    out
}

fn referenced_clusters(binds: &[ir::Bind]) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mirrors = |filters: &[ir::Filter], used: &mut BTreeSet<String>| {
        for f in filters {
            if let ir::Filter::RequestMirror(ir::Mirror {
                cluster: Some(c), ..
            }) = f
            {
                used.insert(c.clone());
            }
        }
    };
    for route in binds
        .iter()
        .flat_map(|b| &b.listeners)
        .flat_map(|l| &l.virtual_hosts)
        .flat_map(|v| &v.routes)
    {
        mirrors(&route.filters, &mut used);
        if let ir::Action::Forward(backends) = &route.action {
            for b in backends {
                if let Some(c) = &b.cluster {
                    used.insert(c.clone());
                }
                mirrors(&b.filters, &mut used);
            }
        }
    }
    used
}
