//! Prometheus counters. Registered into the caller's registry when one is given.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabels {
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct UpstreamLabels {
    pub cluster: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ClusterLabels {
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BindLabels {
    pub bind: String,
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters shared by every connection.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub(crate) requests: Family<StatusLabels, Counter>,
    pub(crate) upstream_errors: Family<UpstreamLabels, Counter>,
    pub(crate) ejections: Family<ClusterLabels, Counter>,
    pub(crate) connections_rejected: Family<BindLabels, Counter>,
    /// Handles into `requests`, one per class in `CLASSES` order: no map lookup per request.
    by_class: [Counter; 5],
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<StatusLabels, Counter>::default();
        let by_class = CLASSES.map(|class| requests.get_or_create(&StatusLabels { class }).clone());
        Metrics {
            requests,
            upstream_errors: Family::default(),
            ejections: Family::default(),
            connections_rejected: Family::default(),
            by_class,
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "trellis_proxy_requests",
            "Requests answered, by status class",
            self.requests.clone(),
        );
        registry.register(
            "trellis_proxy_upstream_errors",
            "Failed upstream attempts, by cluster and kind",
            self.upstream_errors.clone(),
        );
        registry.register(
            "trellis_proxy_endpoint_ejections",
            "Endpoints taken out of rotation after consecutive connect failures, by cluster",
            self.ejections.clone(),
        );
        registry.register(
            "trellis_proxy_connections_rejected",
            "Client connections closed at accept because the bind's connection limit was reached",
            self.connections_rejected.clone(),
        );
    }

    pub(crate) fn response(&self, status: http::StatusCode) {
        let i = match status.as_u16() {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        self.by_class[i].inc();
    }

    pub(crate) fn upstream_error(&self, cluster: &str, kind: &'static str) {
        let labels = UpstreamLabels {
            cluster: cluster.to_string(),
            kind,
        };
        self.upstream_errors.get_or_create(&labels).inc();
    }

    pub(crate) fn ejection(&self, cluster: &str) {
        let labels = ClusterLabels {
            cluster: cluster.to_string(),
        };
        self.ejections.get_or_create(&labels).inc();
    }

    pub(crate) fn connection_rejected(&self, bind: &str) {
        let labels = BindLabels {
            bind: bind.to_string(),
        };
        self.connections_rejected.get_or_create(&labels).inc();
    }
}
