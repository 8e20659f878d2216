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

/// Counters shared by every connection.
#[derive(Clone, Default, Debug)]
pub struct Metrics {
    pub(crate) requests: Family<StatusLabels, Counter>,
    pub(crate) upstream_errors: Family<UpstreamLabels, Counter>,
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
        let class = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests.get_or_create(&StatusLabels { class }).inc();
    }

    pub(crate) fn upstream_error(&self, cluster: &str, kind: &'static str) {
        let labels = UpstreamLabels {
            cluster: cluster.to_string(),
            kind,
        };
        self.upstream_errors.get_or_create(&labels).inc();
    }
}
