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

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters shared by every connection.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub(crate) requests: Family<StatusLabels, Counter>,
    pub(crate) upstream_errors: Family<UpstreamLabels, Counter>,
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
}
