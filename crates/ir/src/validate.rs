//! Structural checks the proxy relies on; a translator bug, not a user mistake, fails them.

use crate::{Action, Config, Filter};
use std::collections::HashSet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    #[error("duplicate bind {0}")]
    DuplicateBind(String),
    #[error("duplicate cluster {0}")]
    DuplicateCluster(String),
    #[error("route {route} references unknown cluster {cluster}")]
    UnknownCluster { route: String, cluster: String },
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
        let mut clusters = HashSet::new();
        for c in &self.clusters {
            if !clusters.insert(c.name.as_str()) {
                return Err(ValidationError::DuplicateCluster(c.name.clone()));
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
        Ok(())
    }
}
