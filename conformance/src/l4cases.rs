//! Case kinds of the L4 families (README-extra-families.md "New case kinds"): `tcp_echo`,
//! `tls_tcp_echo`, `tcp_connect`, `tls_connection_rejected`, `udp_echo` and `udp_dns`, with
//! upstream's retry rules. The conversations themselves are in `trellis_testkit`.

use crate::cases::{CertRef, TlsSpec};
use crate::exec::CaseEnv;
use crate::suite::Case;
use serde::Deserialize;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use trellis_testkit::tcp_echo::{self, TcpExpectation};
use trellis_testkit::udp_echo::{self, UdpEchoReply};
use trellis_testkit::{dns, tls_client};

/// The kinds this module runs.
pub const L4_KINDS: &[&str] = &[
    "tcp_echo",
    "tls_tcp_echo",
    "tcp_connect",
    "tls_connection_rejected",
    "udp_echo",
    "udp_dns",
];

/// The `request` of an L4 case (every field the L4 kinds use; most are optional).
#[derive(Debug, Clone, Deserialize)]
pub struct L4Request {
    pub port: u16,
    #[serde(default)]
    pub tls: Option<TlsSpec>,
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub attempt_deadline_s: Option<f64>,
    #[serde(default)]
    pub read_buffer_bytes: Option<usize>,
    #[serde(default)]
    pub poll_interval_s: Option<f64>,
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    #[serde(default)]
    pub timeout_s: Option<f64>,
    #[serde(default)]
    pub question: Option<DnsQuestion>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DnsQuestion {
    pub name: String,
}

impl L4Request {
    pub fn from_case(case: &Case) -> Result<Self, String> {
        serde_json::from_value(case.request.clone()).map_err(|e| format!("bad request spec: {e}"))
    }

    pub fn addr(&self, env: &CaseEnv) -> SocketAddr {
        (env.ip, self.port).into()
    }

    fn secs(v: Option<f64>, default: f64) -> Duration {
        Duration::from_secs_f64(v.unwrap_or(default).clamp(0.0, 3600.0))
    }

    pub fn attempt_deadline(&self) -> Duration {
        Self::secs(self.attempt_deadline_s, 2.0)
    }

    pub fn read_buffer(&self) -> usize {
        self.read_buffer_bytes.unwrap_or(1024)
    }

    pub fn poll_interval(&self) -> Duration {
        match self.poll_interval_ms {
            Some(ms) => Duration::from_millis(ms),
            None => Self::secs(self.poll_interval_s, 1.0),
        }
    }

    pub fn timeout(&self, default: f64) -> Duration {
        Self::secs(self.timeout_s, default)
    }
}

/// `response` of `tcp_echo` / `tls_tcp_echo`.
#[derive(Debug, Clone, Default, Deserialize)]
struct TcpResponse {
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    backend_is_tls: Option<bool>,
    #[serde(default)]
    backend_tls_server_name: Option<String>,
}

/// `response` of `udp_echo`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UdpResponse {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub any_reply: Option<bool>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Pass,
    /// Try again (until the time runs out); the text is kept for the failure message.
    Retry(String),
    /// The case fails at once.
    Fail(String),
}

/// testify's `assert.Eventually(timeout, tick)` (v1.11.1): the first attempt at once, later
/// ones on the next tick of a ticker started with the first (at once when an attempt overran
/// a tick); an attempt still running at the deadline fails the case.
pub async fn eventually_ticks<F, Fut>(
    timeout: Duration,
    tick: Duration,
    mut attempt: F,
) -> Result<(), String>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Attempt>,
{
    let start = Instant::now();
    let tick = tick.max(Duration::from_millis(1));
    let mut last = String::from("no attempt made");
    loop {
        let began = start.elapsed();
        let Some(remaining) = timeout.checked_sub(began).filter(|r| !r.is_zero()) else {
            break;
        };
        match tokio::time::timeout(remaining, attempt(remaining)).await {
            Err(_) => {
                last = format!(
                    "attempt still running after {}s ({last})",
                    timeout.as_secs()
                );
                break;
            }
            Ok(Attempt::Pass) => return Ok(()),
            Ok(Attempt::Fail(e)) => return Err(e),
            Ok(Attempt::Retry(e)) => last = e,
        }
        let ticks = (began.as_nanos() / tick.as_nanos()) as u32 + 1;
        let next = tick * ticks;
        if next >= timeout {
            break;
        }
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    Err(format!(
        "not passed within {}s; last: {last}",
        timeout.as_secs_f64()
    ))
}

/// k8s `wait.PollUntilContextTimeout(interval, timeout, immediate=true)`: the first attempt at
/// once, then `interval` after each attempt ends, until `timeout`.
pub async fn poll<F, Fut>(
    interval: Duration,
    timeout: Duration,
    mut attempt: F,
) -> Result<(), String>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Attempt>,
{
    let start = Instant::now();
    let mut last = String::from("no attempt made");
    while let Some(remaining) = timeout
        .checked_sub(start.elapsed())
        .filter(|r| !r.is_zero())
    {
        match tokio::time::timeout(remaining, attempt(remaining)).await {
            Err(_) => break,
            Ok(Attempt::Pass) => return Ok(()),
            Ok(Attempt::Fail(e)) => return Err(e),
            Ok(Attempt::Retry(e)) => last = e,
        }
        if start.elapsed() + interval >= timeout {
            break;
        }
        tokio::time::sleep(interval).await;
    }
    Err(format!(
        "not passed within {}s; last: {last}",
        timeout.as_secs_f64()
    ))
}

/// Runs one L4 case (a `tcp_echo` / `udp_echo` with `distribution` only by that procedure).
pub async fn run(case: &Case, env: &CaseEnv<'_>) -> Result<(), String> {
    if let Some(d) = &case.distribution {
        return crate::l4dist::run(case, d, env).await;
    }
    let req = L4Request::from_case(case)?;
    let addr = req.addr(env);
    let per_request = env.timing.request_timeout;
    match case.kind.as_str() {
        "tcp_echo" | "tls_tcp_echo" => {
            let resp: TcpResponse = serde_json::from_value(case.response.clone())
                .map_err(|e| format!("bad response spec: {e}"))?;
            let tls = match case.kind.as_str() {
                "tls_tcp_echo" => Some(tls_dial(&req, env)?),
                _ => None,
            };
            eventually_ticks(env.timing.case_timeout, Duration::from_secs(1), |left| {
                let tls = tls.clone();
                let resp = resp.clone();
                async move {
                    let tls = tls.as_ref().map(|(s, c)| (s.as_str(), c.as_str()));
                    tcp_attempt(addr, tls, &resp, per_request.min(left)).await
                }
            })
            .await
        }
        "tls_connection_rejected" => {
            let (sni, _) = tls_dial(&req, env)?;
            eventually_ticks(env.timing.case_timeout, Duration::from_secs(1), |left| {
                let sni = sni.clone();
                async move {
                    // Upstream dials with the system roots: the handshake must not complete anyway.
                    let outcome = tls_client::tls_connection_rejected(
                        addr,
                        &sni,
                        None,
                        per_request.min(left),
                    )
                    .await;
                    match outcome {
                        o if o.is_rejected() => Attempt::Pass,
                        o => Attempt::Retry(format!(
                            "TLS dial with SNI {sni} was not closed by the Gateway: {o:?}"
                        )),
                    }
                }
            })
            .await
        }
        "tcp_connect" => {
            poll(req.poll_interval(), req.timeout(30.0), |left| async move {
                match tcp_echo::tcp_connect(addr, left).await {
                    Ok(()) => Attempt::Pass,
                    Err(e) => Attempt::Retry(e.to_string()),
                }
            })
            .await
        }
        "udp_echo" => {
            let resp: UdpResponse = serde_json::from_value(case.response.clone())
                .map_err(|e| format!("bad response spec: {e}"))?;
            let payload = req.payload.clone().unwrap_or_default();
            poll(req.poll_interval(), req.timeout(60.0), |left| {
                let (payload, resp) = (payload.clone(), resp.clone());
                let deadline = req.attempt_deadline().min(left);
                let buf = req.read_buffer();
                async move {
                    match udp_echo::udp_echo(addr, payload.as_bytes(), deadline, buf).await {
                        Ok(reply) => check_udp_reply(&reply, &resp),
                        Err(e) => Attempt::Retry(e.to_string()),
                    }
                }
            })
            .await
        }
        "udp_dns" => {
            let name = req
                .question
                .as_ref()
                .map_or("foo.bar.com.", |q| q.name.as_str())
                .to_string();
            poll(req.poll_interval(), req.timeout(60.0), |left| {
                let name = name.clone();
                async move {
                    match dns::dns_query(addr, &name, Duration::from_secs(2).min(left)).await {
                        Ok(_) => Attempt::Pass,
                        Err(e) => Attempt::Retry(e.to_string()),
                    }
                }
            })
            .await
        }
        other => Err(format!("unsupported case kind {other:?}")),
    }
}

/// SNI and trusted CA PEM of a TLS case (`tls.trust` may be prose, then nothing is trusted).
fn tls_dial(req: &L4Request, env: &CaseEnv) -> Result<(String, String), String> {
    let tls = req.tls.as_ref().ok_or("TLS case without request.tls")?;
    let sni = tls.sni.clone().ok_or("TLS case without request.tls.sni")?;
    let ca = match serde_json::from_value::<CertRef>(tls.trust.clone()) {
        Ok(r) => {
            let key = r.key.as_deref().unwrap_or(if r.kind == "ConfigMap" {
                "ca.crt"
            } else {
                "tls.crt"
            });
            env.certs
                .lookup(&r.kind, &r.reference, key)
                .ok_or_else(|| format!("no generated {} {} {key}", r.kind, r.reference))?
        }
        Err(_) => String::new(),
    };
    Ok((sni, ca))
}

/// One `tcp_echo` / `tls_tcp_echo` attempt: dial/read failures and an undecodable TEST line
/// are retried; the first complete conversation is final.
async fn tcp_attempt(
    addr: SocketAddr,
    tls: Option<(&str, &str)>,
    resp: &TcpResponse,
    timeout: Duration,
) -> Attempt {
    let conv = match tcp_echo::tcp_echo_conversation(addr, tls, timeout).await {
        Ok(c) => c,
        Err(e) if e.is_retriable() => return Attempt::Retry(e.to_string()),
        Err(e) => return Attempt::Fail(e.to_string()),
    };
    let (Some(backend), Some(namespace)) = (&resp.backend, &resp.namespace) else {
        return Attempt::Fail("response.backend / response.namespace missing".into());
    };
    let expect = TcpExpectation {
        namespace,
        backend,
        backend_is_tls: resp.backend_is_tls.unwrap_or(false),
        backend_tls_server_name: resp.backend_tls_server_name.as_deref(),
    };
    match conv.check(&expect) {
        Ok(()) => Attempt::Pass,
        Err(e) => Attempt::Fail(format!("first complete conversation: {e}")),
    }
}

/// Judges one `udp_echo` reply (mismatches are retried, as upstream's poll does).
pub fn check_udp_reply(reply: &[u8], resp: &UdpResponse) -> Attempt {
    if resp.any_reply == Some(true) {
        return Attempt::Pass;
    }
    let r = match UdpEchoReply::from_datagram(reply) {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Retry(format!(
                "reply is not echo JSON ({e}): {:?}",
                String::from_utf8_lossy(reply)
            ))
        }
    };
    if let Some(s) = resp.service.as_deref().filter(|s| *s != r.service) {
        return Attempt::Retry(format!("reply from service {:?}, want {s:?}", r.service));
    }
    if let Some(ns) = resp.namespace.as_deref().filter(|ns| *ns != r.namespace) {
        return Attempt::Retry(format!(
            "reply from namespace {:?}, want {ns:?}",
            r.namespace
        ));
    }
    Attempt::Pass
}

#[cfg(test)]
#[path = "l4cases_tests.rs"]
mod tests;
