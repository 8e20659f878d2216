//! `distribution` procedures of `tcp_echo` / `udp_echo` cases (README-extra-families.md):
//! `backend_weights` over one-shot TCP conversations or single datagrams, and
//! `single_backend_samples` (TCP: 100 sequential samples, no retry; UDP: polls of 20).

use crate::cases::backend_of_pod;
use crate::distribution::{concurrently, weights_with};
use crate::exec::CaseEnv;
use crate::l4cases::{poll, Attempt, L4Request};
use crate::suite::Case;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use trellis_testkit::tcp_echo;
use trellis_testkit::udp_echo::{self, UdpEchoReply};

/// How one sample is taken.
#[derive(Debug, Clone)]
pub enum Sampler {
    /// Upstream `tcp.EchoSendOnce`: welcome line, `TEST`, non-empty pod.
    TcpOnce { addr: SocketAddr, timeout: Duration },
    /// One datagram from a new socket; the JSON reply must name a pod.
    Udp {
        addr: SocketAddr,
        payload: Vec<u8>,
        timeout: Duration,
        read_buffer: usize,
    },
}

impl Sampler {
    fn for_case(case: &Case, d: &Value, env: &CaseEnv) -> Result<Sampler, String> {
        let req = L4Request::from_case(case)?;
        let per_request = d.get("per_request_timeout_s").and_then(Value::as_f64);
        match case.kind.as_str() {
            "tcp_echo" => Ok(Sampler::TcpOnce {
                addr: req.addr(env),
                timeout: Duration::from_secs_f64(per_request.unwrap_or(10.0)),
            }),
            "udp_echo" => Ok(Sampler::Udp {
                addr: req.addr(env),
                payload: req.payload.clone().unwrap_or_default().into_bytes(),
                timeout: per_request
                    .map(Duration::from_secs_f64)
                    .unwrap_or_else(|| req.attempt_deadline()),
                read_buffer: req.read_buffer_bytes.unwrap_or(4096),
            }),
            other => Err(format!("no distribution for case kind {other:?}")),
        }
    }

    /// One sample: the pod that answered.
    pub async fn sample(&self) -> Result<String, String> {
        match self {
            Sampler::TcpOnce { addr, timeout } => tcp_echo::tcp_echo_once(*addr, *timeout)
                .await
                .map(|a| a.pod)
                .map_err(|e| e.to_string()),
            Sampler::Udp {
                addr,
                payload,
                timeout,
                read_buffer,
            } => {
                let reply = udp_echo::udp_echo(*addr, payload, *timeout, *read_buffer)
                    .await
                    .map_err(|e| e.to_string())?;
                let r = UdpEchoReply::from_datagram(&reply).map_err(|e| {
                    format!(
                        "reply is not echo JSON ({e}): {:?}",
                        String::from_utf8_lossy(&reply)
                    )
                })?;
                if r.pod.is_empty() {
                    return Err(format!("reply names no pod: {r:?}"));
                }
                Ok(r.pod)
            }
        }
    }
}

pub async fn run(case: &Case, d: &Value, env: &CaseEnv<'_>) -> Result<(), String> {
    let sampler = Sampler::for_case(case, d, env)?;
    match d.get("type").and_then(Value::as_str) {
        Some("backend_weights") => {
            weights_with(d, |n, conc| {
                let s = &sampler;
                async move { concurrently(n, conc, || s.sample()).await }
            })
            .await
        }
        Some("single_backend_samples") => {
            let req = L4Request::from_case(case)?;
            single_backend(d, &sampler, req.poll_interval(), req.timeout(60.0)).await
        }
        other => Err(format!("unsupported distribution type {other:?}")),
    }
}

fn text<'a>(d: &'a Value, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

/// Judges one sampled pod against `required_pod_prefix` / `forbidden_pod_prefix` /
/// `required_backend`; `Err` fails the test at once.
pub fn judge_pod(d: &Value, pod: &str) -> Result<(), String> {
    if let Some(f) = text(d, "forbidden_pod_prefix").filter(|f| pod.starts_with(f)) {
        return Err(format!(
            "pod {pod:?} starts with the forbidden prefix {f:?}"
        ));
    }
    if let Some(r) = text(d, "required_pod_prefix").filter(|r| !pod.starts_with(r)) {
        return Err(format!("pod {pod:?} does not start with {r:?}"));
    }
    if let Some(b) = text(d, "required_backend").filter(|b| backend_of_pod(pod) != *b) {
        return Err(format!(
            "reply from backend {:?} (pod {pod:?}), want only {b:?}",
            backend_of_pod(pod)
        ));
    }
    Ok(())
}

/// `single_backend_samples`: `retry: false` = one run of `samples` sequential samples where any
/// error fails; `retry: true` = polls of `samples` where an error only ends the poll.
async fn single_backend(
    d: &Value,
    sampler: &Sampler,
    interval: Duration,
    timeout: Duration,
) -> Result<(), String> {
    let samples = d.get("samples").and_then(Value::as_u64).unwrap_or(100);
    let retry = d.get("retry").and_then(Value::as_bool).unwrap_or(false);
    let one_poll = || async {
        for i in 0..samples {
            let pod = match sampler.sample().await {
                Ok(p) => p,
                Err(e) if retry => return Attempt::Retry(format!("sample {i}: {e}")),
                Err(e) => return Attempt::Fail(format!("sample {i}: {e}")),
            };
            if let Err(e) = judge_pod(d, &pod) {
                return Attempt::Fail(format!("sample {i}: {e}"));
            }
        }
        Attempt::Pass
    };
    if !retry {
        return match one_poll().await {
            Attempt::Pass => Ok(()),
            Attempt::Fail(e) | Attempt::Retry(e) => Err(e),
        };
    }
    poll(interval, timeout, |_| one_poll()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_backend_rules() {
        let tcp = json!({"required_pod_prefix": "a-1-", "forbidden_pod_prefix": "a-2-"});
        assert!(judge_pod(&tcp, "a-1-x-y").is_ok());
        assert!(judge_pod(&tcp, "a-2-x-y")
            .unwrap_err()
            .contains("forbidden"));
        assert!(judge_pod(&tcp, "b-x-y").is_err());
        let udp = json!({"required_backend": "udp-attach-backend-1"});
        assert!(judge_pod(&udp, "udp-attach-backend-1-abc-def").is_ok());
        assert!(judge_pod(&udp, "udp-attach-backend-2-abc-def").is_err());
        // The backend is the pod minus exactly its last two parts.
        assert!(judge_pod(&udp, "udp-attach-backend-1-abc").is_err());
    }
}
