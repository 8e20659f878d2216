//! Compiled L4 tables: per bind its routes with weighted backends, per cluster its endpoints
//! (round-robin), and for TLS binds the SNI patterns and termination configs.

use crate::routing::HostPattern;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use trellis_ir as ir;

/// Endpoints of one cluster, used round-robin.
pub(crate) struct L4Cluster {
    pub name: String,
    endpoints: Vec<ir::Endpoint>,
    next: AtomicUsize,
}

impl L4Cluster {
    /// Endpoints starting at the next round-robin position (the rest follow, for failover).
    pub(crate) fn rotation(&self) -> impl Iterator<Item = &ir::Endpoint> {
        let n = self.endpoints.len();
        let start = if n == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        };
        self.endpoints.iter().cycle().skip(start).take(n)
    }
}

/// Resolves an endpoint to socket addresses (`Host` endpoints by DNS, at connect time).
pub(crate) async fn addresses(e: &ir::Endpoint) -> Vec<SocketAddr> {
    match e {
        ir::Endpoint::Socket(a) => vec![*a],
        ir::Endpoint::Host { host, port } => {
            match tokio::net::lookup_host((host.as_str(), *port)).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    tracing::debug!(%host, error = %e, "cannot resolve L4 endpoint");
                    Vec::new()
                }
            }
        }
        // Unix sockets are not L4 upstreams.
        ir::Endpoint::Unix(_) => Vec::new(),
    }
}

pub(crate) struct RouteRt {
    pub name: String,
    pub hostname: HostPattern,
    /// `(cumulative weight, cluster)`; `None` is an invalid reference.
    backends: Vec<(u64, Option<Arc<L4Cluster>>)>,
    total: u64,
    /// TLS termination; `None` is passthrough (and always for TCP/UDP).
    pub terminate: Option<Arc<rustls::ServerConfig>>,
}

impl RouteRt {
    /// Weighted pick for one connection / session. `None` (invalid reference, no weight):
    /// refuse it.
    pub(crate) fn pick(&self) -> Option<&Arc<L4Cluster>> {
        if self.total == 0 {
            return None;
        }
        let r = rand::rng().random_range(0..self.total);
        self.backends
            .iter()
            .find(|(cum, _)| r < *cum)
            .and_then(|(_, c)| c.as_ref())
    }
}

/// Everything one L4 bind needs; swapped whole on apply.
pub(crate) struct L4Table {
    pub name: String,
    pub protocol: ir::L4Protocol,
    pub routes: Vec<RouteRt>,
}

impl L4Table {
    /// TLS: the first route whose hostname matches the SNI (routes are sorted most specific
    /// first); without SNI only a catch-all route matches. TCP/UDP: the first route.
    pub(crate) fn route(&self, sni: Option<&str>) -> Option<&RouteRt> {
        if self.protocol != ir::L4Protocol::Tls {
            return self.routes.first();
        }
        self.routes.iter().find(|r| match sni {
            Some(s) => r.hostname.matches(s),
            None => matches!(r.hostname, HostPattern::Any),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("L4 bind {bind}: TLS setup for route {route} failed: {error}")]
pub(crate) struct TableError {
    bind: String,
    route: String,
    error: String,
}

/// The clusters of a config, by name.
pub(crate) fn clusters(config: &ir::Config) -> HashMap<String, Arc<L4Cluster>> {
    config
        .clusters
        .iter()
        .map(|c| {
            let rt = L4Cluster {
                name: c.name.clone(),
                endpoints: c.endpoints.clone(),
                next: AtomicUsize::new(0),
            };
            (c.name.clone(), Arc::new(rt))
        })
        .collect()
}

pub(crate) fn compile(
    bind: &ir::L4Bind,
    clusters: &HashMap<String, Arc<L4Cluster>>,
) -> Result<L4Table, TableError> {
    let mut routes = Vec::with_capacity(bind.routes.len());
    for r in &bind.routes {
        let mut total = 0u64;
        let backends = r
            .backends
            .iter()
            .filter(|b| b.weight > 0)
            .map(|b| {
                total += u64::from(b.weight);
                let cluster = b.cluster.as_ref().and_then(|c| clusters.get(c)).cloned();
                (total, cluster)
            })
            .collect();
        let terminate = if r.certificates.is_empty() {
            None
        } else {
            let cfg = crate::tls::terminate_config(&r.certificates).map_err(|e| TableError {
                bind: bind.name.clone(),
                route: r.name.clone(),
                error: e,
            })?;
            Some(cfg)
        };
        routes.push(RouteRt {
            name: r.name.clone(),
            hostname: HostPattern::parse(r.hostname.as_deref()),
            backends,
            total,
            terminate,
        });
    }
    Ok(L4Table {
        name: bind.name.clone(),
        protocol: bind.protocol,
        routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(hostname, [(weight, cluster)])` per route.
    type Routes<'a> = Vec<(Option<&'a str>, Vec<(u32, Option<&'a str>)>)>;

    fn bind(protocol: ir::L4Protocol, routes: Routes) -> ir::L4Bind {
        ir::L4Bind {
            name: "b".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: 1,
            protocol,
            listeners: vec![],
            routes: routes
                .into_iter()
                .map(|(h, b)| ir::L4Route {
                    name: format!("r-{h:?}"),
                    hostname: h.map(String::from),
                    certificates: vec![],
                    backends: b
                        .into_iter()
                        .map(|(weight, c)| ir::L4Backend {
                            weight,
                            cluster: c.map(String::from),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn cluster_map(names: &[&str]) -> HashMap<String, Arc<L4Cluster>> {
        let cfg = ir::Config {
            clusters: names
                .iter()
                .map(|n| ir::Cluster {
                    name: n.to_string(),
                    protocol: ir::UpstreamProtocol::Tcp,
                    endpoints: vec![],
                    tls: None,
                })
                .collect(),
            ..Default::default()
        };
        clusters(&cfg)
    }

    #[test]
    fn weighted_pick_follows_weights_and_refuses_invalid() {
        let b = bind(
            ir::L4Protocol::Tcp,
            vec![(None, vec![(3, Some("a")), (1, None), (0, Some("z"))])],
        );
        let t = compile(&b, &cluster_map(&["a", "z"])).unwrap();
        let r = t.route(None).unwrap();
        let (mut a, mut refused) = (0, 0);
        for _ in 0..4000 {
            match r.pick() {
                Some(c) => {
                    assert_eq!(c.name, "a", "weight 0 is never picked");
                    a += 1
                }
                None => refused += 1,
            }
        }
        assert!((2700..3300).contains(&a), "{a}");
        assert!((700..1300).contains(&refused), "{refused}");
        let none = bind(ir::L4Protocol::Tcp, vec![(None, vec![(0, Some("a"))])]);
        let t = compile(&none, &cluster_map(&["a"])).unwrap();
        assert!(t.route(None).unwrap().pick().is_none());
    }

    #[test]
    fn tls_routes_match_by_sni() {
        let b = bind(
            ir::L4Protocol::Tls,
            vec![
                (Some("a.example.com"), vec![]),
                (Some("*.example.com"), vec![]),
                (None, vec![]),
            ],
        );
        let t = compile(&b, &HashMap::new()).unwrap();
        let name = |sni: Option<&str>| t.route(sni).map(|r| r.name.clone());
        assert_eq!(
            name(Some("a.example.com")).unwrap(),
            "r-Some(\"a.example.com\")"
        );
        assert_eq!(
            name(Some("b.example.com")).unwrap(),
            "r-Some(\"*.example.com\")"
        );
        assert_eq!(name(Some("other.org")).unwrap(), "r-None");
        assert_eq!(name(None).unwrap(), "r-None");
        let strict = bind(ir::L4Protocol::Tls, vec![(Some("a.example.com"), vec![])]);
        let t = compile(&strict, &HashMap::new()).unwrap();
        assert!(t.route(None).is_none());
        assert!(t.route(Some("b.example.com")).is_none());
    }
}
