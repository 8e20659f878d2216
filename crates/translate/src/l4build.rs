//! Assembling the IR's `l4_binds`: one per (address, port, transport) of the programmed TCP,
//! UDP and TLS listeners. TCP/UDP binds carry their routes oldest first (the proxy uses the
//! first); TLS binds carry one route per effective hostname, most specific first.

use crate::backends::Clusters;
use crate::gateway::GatewayState;
use crate::hostnames::specificity;
use crate::l4route::L4Placement;
use crate::listeners::{ListenerState, Protocol};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use trellis_ir as ir;

/// `namespace/gateway/listener`, or `namespace/gateway/set-namespace/set-name/listener` for
/// a ListenerSet's listener (the same names the HTTP binds use).
fn listener_name(gw: &GatewayState, l: &ListenerState) -> String {
    let (ns, name) = (&gw.key.namespace, &gw.key.name);
    match l.origin {
        None => format!("{ns}/{name}/{}", l.spec.name),
        Some(si) => {
            let set = &gw.listener_sets[si].key;
            format!("{ns}/{name}/{}/{}/{}", set.namespace, set.name, l.spec.name)
        }
    }
}

pub fn binds(gateways: &[GatewayState], mut placements: Vec<L4Placement>) -> Vec<ir::L4Bind> {
    // Oldest first, so on TCP/UDP binds and for equal TLS hostnames the oldest route is first.
    placements.sort_by(|a, b| a.age.cmp(&b.age));
    let mut by_listener: BTreeMap<(usize, usize), Vec<&L4Placement>> = BTreeMap::new();
    for p in &placements {
        by_listener
            .entry((p.gateway, p.listener))
            .or_default()
            .push(p);
    }
    let mut binds: BTreeMap<(IpAddr, u16, ir::L4Protocol), ir::L4Bind> = BTreeMap::new();
    for (gi, gw) in gateways.iter().enumerate() {
        if !gw.is_programmed() {
            continue;
        }
        for (li, l) in gw.listeners.iter().enumerate() {
            let protocol = match l.protocol {
                Protocol::Tcp => ir::L4Protocol::Tcp,
                Protocol::Udp => ir::L4Protocol::Udp,
                Protocol::TlsPassthrough | Protocol::TlsTerminate => ir::L4Protocol::Tls,
                _ => continue,
            };
            if !l.serves() {
                continue;
            }
            let name = listener_name(gw, l);
            let certificates = match l.protocol {
                Protocol::TlsTerminate => l.certificates.clone(),
                _ => Vec::new(),
            };
            let routes: Vec<ir::L4Route> = by_listener
                .get(&(gi, li))
                .into_iter()
                .flatten()
                .flat_map(|p| {
                    let route = format!("{}/{}", p.age.1.namespace, p.age.1.name);
                    let hosts: Vec<Option<String>> = if protocol == ir::L4Protocol::Tls {
                        p.hostnames.iter().cloned().map(Some).collect()
                    } else {
                        vec![None]
                    };
                    let certificates = certificates.clone();
                    hosts.into_iter().map(move |hostname| ir::L4Route {
                        name: route.clone(),
                        hostname,
                        certificates: certificates.clone(),
                        backends: p.backends.clone(),
                    })
                })
                .collect();
            for address in &gw.addresses.addresses {
                let bind = binds
                    .entry((*address, l.port, protocol))
                    .or_insert_with(|| ir::L4Bind {
                        name: format!(
                            "{}/{}",
                            SocketAddr::new(*address, l.port),
                            format!("{protocol:?}").to_ascii_lowercase()
                        ),
                        address: *address,
                        port: l.port,
                        protocol,
                        listeners: Vec::new(),
                        routes: Vec::new(),
                    });
                bind.listeners.push(name.clone());
                bind.routes.extend(routes.iter().cloned());
            }
        }
    }
    let mut out: Vec<ir::L4Bind> = binds.into_values().collect();
    for b in &mut out {
        if b.protocol == ir::L4Protocol::Tls {
            // Stable: equal hostnames keep the oldest route first.
            b.routes
                .sort_by(|x, y| specificity(x.hostname.as_deref(), y.hostname.as_deref()));
        }
    }
    out
}

/// The clusters the L4 binds reference, in name order.
pub fn clusters(binds: &[ir::L4Bind], clusters: Clusters) -> Vec<ir::Cluster> {
    let used: BTreeSet<&str> = binds
        .iter()
        .flat_map(|b| &b.routes)
        .flat_map(|r| &r.backends)
        .filter_map(|b| b.cluster.as_deref())
        .collect();
    clusters
        .into_values()
        .filter(|c| used.contains(c.name.as_str()))
        .collect()
}
