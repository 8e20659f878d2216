//! `/retry/…?uuid=U&succeedAfter=N[&responseCode=C][&delayRetry=D]`: per-uuid request counters
//! (in memory, per server instance).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::StatusCode;

use super::duration::parse_go_duration;
use super::query;

#[derive(Default)]
pub(crate) struct RetryCounters(Mutex<HashMap<String, u64>>);

impl RetryCounters {
    /// Counts one request for `uuid`; returns how many came before it.
    fn bump(&self, uuid: &str) -> u64 {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = map.entry(uuid.to_string()).or_insert(0);
        let before = *count;
        *count += 1;
        before
    }
}

/// What a `/retry/…` request gets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RetryOutcome {
    /// Past the failures: echo as usual.
    Echo,
    /// A failing attempt, after `delay`: answer `Some(status)`, or reset the connection.
    Fail {
        delay: Duration,
        status: Option<StatusCode>,
    },
    /// Missing or malformed parameters: 400 with this message.
    BadRequest(String),
}

pub(crate) fn decide(counters: &RetryCounters, query_str: Option<&str>) -> RetryOutcome {
    let Some(uuid) = query::get(query_str, "uuid").filter(|u| !u.is_empty()) else {
        return RetryOutcome::BadRequest("missing uuid".into());
    };
    let succeed_after = match query::get(query_str, "succeedAfter").map(|s| s.parse::<u64>()) {
        Some(Ok(n)) => n,
        _ => return RetryOutcome::BadRequest("missing or invalid succeedAfter".into()),
    };
    let status = match query::get(query_str, "responseCode").filter(|c| !c.is_empty()) {
        None => None,
        Some(code) => match super::handler::final_status(&code) {
            Some(status) => Some(status),
            None => return RetryOutcome::BadRequest(format!("invalid responseCode {code:?}")),
        },
    };
    let delay = match query::get(query_str, "delayRetry").filter(|d| !d.is_empty()) {
        None => Duration::ZERO,
        Some(d) => match parse_go_duration(&d) {
            Ok(delay) => delay,
            Err(err) => return RetryOutcome::BadRequest(err.to_string()),
        },
    };
    if counters.bump(&uuid) < succeed_after {
        RetryOutcome::Fail { delay, status }
    } else {
        RetryOutcome::Echo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_n_times_per_uuid_then_echoes() {
        let c = RetryCounters::default();
        let q = Some("uuid=a&succeedAfter=2&responseCode=503");
        let fail = RetryOutcome::Fail {
            delay: Duration::ZERO,
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
        };
        assert_eq!(decide(&c, q), fail);
        assert_eq!(
            decide(&c, Some("uuid=b&succeedAfter=1")),
            RetryOutcome::Fail {
                delay: Duration::ZERO,
                status: None,
            }
        );
        assert_eq!(decide(&c, q), fail);
        assert_eq!(decide(&c, q), RetryOutcome::Echo);
        assert_eq!(
            decide(&c, Some("uuid=b&succeedAfter=1")),
            RetryOutcome::Echo
        );
    }

    #[test]
    fn delay_and_bad_parameters() {
        let c = RetryCounters::default();
        assert_eq!(
            decide(&c, Some("uuid=a&succeedAfter=1&delayRetry=1m")),
            RetryOutcome::Fail {
                delay: Duration::from_secs(60),
                status: None
            }
        );
        for q in [
            "succeedAfter=1",
            "uuid=a",
            "uuid=a&succeedAfter=x",
            "uuid=a&succeedAfter=1&responseCode=99",
            "uuid=a&succeedAfter=1&responseCode=100",
        ] {
            assert!(
                matches!(decide(&c, Some(q)), RetryOutcome::BadRequest(_)),
                "{q}"
            );
        }
    }
}
