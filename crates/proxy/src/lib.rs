//! The HTTP data plane. [`Proxy::apply`] takes a new IR, binds sockets that are new, compiles
//! lookup tables once and swaps them in atomically; sockets that disappear drain gracefully.

use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {}

/// Per-bind outcome of an apply: binds that could not be opened are reported, never fatal.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// `(bind name, error)` for sockets that failed to bind.
    pub bind_errors: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

pub struct Proxy {}

impl Proxy {
    pub fn new(options: ProxyOptions) -> Proxy {
        let _ = options;
        Proxy {}
    }

    /// Makes `config` live. On error the previous configuration keeps serving.
    pub async fn apply(&self, config: Arc<trellis_ir::Config>) -> Result<ApplyReport, ApplyError> {
        let _ = config;
        Ok(ApplyReport::default())
    }

    /// Stops accepting, lets in-flight requests finish up to `deadline`, then returns.
    pub async fn shutdown(&self, deadline: std::time::Duration) {
        let _ = deadline;
    }
}
