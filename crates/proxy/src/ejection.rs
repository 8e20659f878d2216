//! Passive outlier detection: an endpoint whose connects fail (refused, reset, timed out) a
//! number of times in a row leaves its clusters' round-robin for a back-off that doubles when
//! it is ejected again soon after. A cluster never ejects its last healthy endpoint, and when
//! every endpoint is out anyway (shared endpoints, races) `pick` uses them all.

use crate::upstream::{ClusterRt, EndpointRt, UpstreamError};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// When endpoints are ejected, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Consecutive failed connects that eject an endpoint; 0 disables ejection.
    pub consecutive_failures: u32,
    /// First ejection's length; doubled for each ejection that follows the previous one's end
    /// within `max_ejection`.
    pub base_ejection: Duration,
    pub max_ejection: Duration,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
        }
    }
}

/// Milliseconds since the first call, plus one: 0 stays free to mean "never".
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Per-endpoint state; endpoints (and so their health) survive configuration changes.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failures: AtomicU32,
    /// `now_ms()` until which the endpoint is out of rotation; 0 when never ejected.
    ejected_until: AtomicU64,
    /// Length of the latest ejection in ms.
    last_backoff: AtomicU64,
}

impl Health {
    pub(crate) fn is_ejected(&self) -> bool {
        // No clock read on the common path.
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && now_ms() < until
    }

    fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure; `Some(back-off)` when it ejects the endpoint.
    fn failure(&self, opts: &OutlierDetection, may_eject: bool) -> Option<Duration> {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if opts.consecutive_failures == 0
            || n < opts.consecutive_failures
            || !may_eject
            || self.is_ejected()
        {
            return None;
        }
        // One of several concurrent failures performs the ejection.
        self.failures
            .compare_exchange(n, 0, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        let now = now_ms();
        let base = opts.base_ejection.as_millis() as u64;
        let max = (opts.max_ejection.as_millis() as u64).max(base);
        let prev_until = self.ejected_until.load(Ordering::Relaxed);
        let prev = self.last_backoff.load(Ordering::Relaxed);
        let backoff = if prev_until != 0 && now < prev_until.saturating_add(max) {
            prev.saturating_mul(2).clamp(base, max)
        } else {
            base
        };
        self.last_backoff.store(backoff, Ordering::Relaxed);
        self.ejected_until
            .store(now.saturating_add(backoff), Ordering::Relaxed);
        Some(Duration::from_millis(backoff))
    }
}

/// Whether an attempt's error says the endpoint cannot be reached at all.
fn is_connect_failure(e: UpstreamError) -> bool {
    matches!(
        e,
        UpstreamError::ConnectRefused | UpstreamError::ConnectTimeout | UpstreamError::ConnectOther
    )
}

/// Records one attempt's outcome for `ep`, picked from `cluster`. Errors after a connect
/// (resets, timeouts waiting for an answer) say nothing about reachability and are not
/// counted. Returns the back-off when this outcome ejected the endpoint.
pub(crate) fn report(
    cluster: &ClusterRt,
    ep: &EndpointRt,
    outcome: Result<(), UpstreamError>,
    opts: &OutlierDetection,
) -> Option<Duration> {
    match outcome {
        Ok(()) => {
            ep.health.success();
            None
        }
        Err(e) if is_connect_failure(e) => {
            let others_healthy = cluster
                .endpoints
                .iter()
                .any(|o| !std::ptr::eq(o.as_ref(), ep) && !o.health.is_ejected());
            let backoff = ep.health.failure(opts, others_healthy)?;
            tracing::warn!(cluster = %cluster.name, endpoint = ep.authority(), ?backoff, "endpoint ejected after consecutive connect failures");
            Some(backoff)
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(ms: u64) -> OutlierDetection {
        OutlierDetection {
            consecutive_failures: 3,
            base_ejection: Duration::from_millis(ms),
            max_ejection: Duration::from_millis(ms * 4),
        }
    }

    #[test]
    fn ejects_after_consecutive_failures_and_a_success_resets() {
        let h = Health::default();
        let o = opts(60_000);
        assert_eq!(h.failure(&o, true), None);
        assert_eq!(h.failure(&o, true), None);
        h.success();
        assert_eq!(h.failure(&o, true), None);
        assert_eq!(h.failure(&o, true), None);
        assert!(!h.is_ejected());
        assert_eq!(h.failure(&o, true), Some(Duration::from_millis(60_000)));
        assert!(h.is_ejected());
    }

    #[test]
    fn the_last_healthy_endpoint_stays_and_zero_disables() {
        let h = Health::default();
        for _ in 0..10 {
            assert_eq!(h.failure(&opts(60_000), false), None);
        }
        let off = OutlierDetection {
            consecutive_failures: 0,
            ..opts(60_000)
        };
        for _ in 0..10 {
            assert_eq!(h.failure(&off, true), None);
        }
        assert!(!h.is_ejected());
    }

    #[test]
    fn back_off_doubles_up_to_the_maximum() {
        let h = Health::default();
        let o = opts(20);
        let mut seen = vec![];
        for _ in 0..4 {
            while h.is_ejected() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let b = (0..3).find_map(|_| h.failure(&o, true)).unwrap();
            seen.push(b.as_millis());
        }
        assert_eq!(seen, [20, 40, 80, 80]);
    }
}
