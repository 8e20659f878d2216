//! Structural checks the proxy relies on; a translator bug, not a user mistake, fails them.

use crate::{Action, BindProtocol, Config, Filter};
use std::collections::HashSet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    #[error("duplicate bind {0}")]
    DuplicateBind(String),
    #[error("duplicate cluster {0}")]
    DuplicateCluster(String),
    #[error("route {route} references unknown cluster {cluster}")]
    UnknownCluster { route: String, cluster: String },
    #[error("L4 bind {0} uses a TCP port that another bind uses")]
    PortClash(String),
    #[error("cluster {cluster}: invalid upstream TLS: {reason}")]
    InvalidUpstreamTls { cluster: String, reason: String },
}

impl Config {
    /// Checks references and uniqueness. Regexes are checked when the proxy compiles them.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut binds = HashSet::new();
        for b in &self.binds {
            if !binds.insert((b.address, b.port)) {
                return Err(ValidationError::DuplicateBind(b.name.clone()));
            }
        }
        let mut udp = HashSet::new();
        let mut clusters = HashSet::new();
        for c in &self.clusters {
            if !clusters.insert(c.name.as_str()) {
                return Err(ValidationError::DuplicateCluster(c.name.clone()));
            }
            if let Some(Err(reason)) = c.tls.as_ref().map(crate::UpstreamTls::check) {
                return Err(ValidationError::InvalidUpstreamTls {
                    cluster: c.name.clone(),
                    reason,
                });
            }
        }
        let check = |route: &str, cluster: &Option<String>| match cluster {
            Some(c) if !clusters.contains(c.as_str()) => Err(ValidationError::UnknownCluster {
                route: route.to_string(),
                cluster: c.clone(),
            }),
            _ => Ok(()),
        };
        for route in self
            .binds
            .iter()
            .flat_map(|b| &b.listeners)
            .flat_map(|l| &l.virtual_hosts)
            .flat_map(|v| &v.routes)
        {
            let mirrors = |filters: &[Filter]| -> Result<(), ValidationError> {
                for f in filters {
                    if let Filter::RequestMirror(m) = f {
                        check(&route.name, &m.cluster)?;
                    }
                }
                Ok(())
            };
            mirrors(&route.filters)?;
            if let Action::Forward(backends) = &route.action {
                for b in backends {
                    check(&route.name, &b.cluster)?;
                    mirrors(&b.filters)?;
                }
            }
        }
        for b in &self.l4_binds {
            // TCP and TLS sockets share the TCP port space with HTTP binds; UDP does not.
            let transport_tcp = b.protocol != crate::L4Protocol::Udp;
            // A TLS bind may share its socket with an HTTPS bind: the proxy picks by SNI.
            let shares_https = b.protocol == crate::L4Protocol::Tls
                && self.binds.iter().any(|h| {
                    (h.address, h.port, h.protocol) == (b.address, b.port, BindProtocol::Https)
                });
            if transport_tcp && !binds.insert((b.address, b.port)) && !shares_https {
                return Err(ValidationError::PortClash(b.name.clone()));
            }
            if !transport_tcp && !udp.insert((b.address, b.port)) {
                return Err(ValidationError::DuplicateBind(b.name.clone()));
            }
            for r in &b.routes {
                for be in &r.backends {
                    check(&r.name, &be.cluster)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, L4Backend, L4Bind, L4Protocol, L4Route, ValidationError};

    fn l4(port: u16, protocol: L4Protocol, cluster: &str) -> L4Bind {
        L4Bind {
            name: format!("127.0.0.1:{port}/{protocol:?}"),
            address: "127.0.0.1".parse().unwrap(),
            port,
            protocol,
            listeners: vec![],
            routes: vec![L4Route {
                name: "ns/r".into(),
                hostname: None,
                certificates: vec![],
                backends: vec![L4Backend {
                    weight: 1,
                    cluster: Some(cluster.into()),
                }],
            }],
        }
    }

    #[test]
    fn l4_binds_are_checked() {
        let mut cfg = Config {
            l4_binds: vec![l4(53, L4Protocol::Udp, "c"), l4(53, L4Protocol::Tcp, "c")],
            clusters: vec![crate::Cluster {
                name: "c".into(),
                protocol: crate::UpstreamProtocol::Tcp,
                endpoints: vec![],
                tls: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            cfg.validate(),
            Ok(()),
            "UDP and TCP may share a port number"
        );
        cfg.l4_binds.push(l4(53, L4Protocol::Tls, "c"));
        assert!(matches!(cfg.validate(), Err(ValidationError::PortClash(_))));
        cfg.l4_binds.pop();
        cfg.l4_binds[0].routes[0].backends[0].cluster = Some("missing".into());
        assert!(matches!(
            cfg.validate(),
            Err(ValidationError::UnknownCluster { .. })
        ));
    }
}
