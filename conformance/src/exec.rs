//! Running cases against the Gateway: retries (3 consecutive passes within 30 s), the
//! distribution procedures, mirror checks, WebSocket, and the expect-failure kinds.

use crate::backends::Backends;
use crate::cases::{
    backend_of_pod, check_response, CertRef, Echoed, HttpExpect, HttpRequestSpec, Sent,
};
use crate::certs::CertStore;
use crate::client::{self, Protocol, Request, TlsClient};
use crate::suite::Case;
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Upstream timing defaults.
#[derive(Debug, Clone)]
pub struct Timing {
    pub case_timeout: Duration,
    pub request_timeout: Duration,
    pub consecutive: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            case_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            consecutive: 3,
        }
    }
}

pub struct CaseEnv<'a> {
    /// The Gateway's first status address.
    pub ip: IpAddr,
    pub certs: &'a CertStore,
    pub backends: &'a Backends,
    pub timing: &'a Timing,
}

/// Case kinds this runner executes.
pub const SUPPORTED_KINDS: &[&str] = &[
    "http",
    "https_expect_failure",
    "http_expect_failure",
    "websocket",
    "grpc",
    "tcp_echo",
    "tls_tcp_echo",
    "tcp_connect",
    "tls_connection_rejected",
    "udp_echo",
    "udp_dns",
];

/// Replaces `{request_id}`, `{uuid}` and `{pem:Kind ns/name key}` in a JSON value.
pub fn instantiate(v: &Value, request_id: &str, uuid: &str, certs: &CertStore) -> Value {
    let text = v
        .to_string()
        .replace("{request_id}", request_id)
        .replace("{uuid}", uuid);
    static PEM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\{pem:(\w+) ([^ }]+) ([^ }]+)\}").expect("static regex")
    });
    let text = PEM
        .replace_all(&text, |c: &regex::Captures| {
            let pem = certs.lookup(&c[1], &c[2], &c[3]).unwrap_or_default();
            // Inside a JSON string: escape like serde would.
            let quoted = Value::String(pem).to_string();
            quoted[1..quoted.len() - 1].to_string()
        })
        .into_owned();
    serde_json::from_str(&text).unwrap_or_else(|_| v.clone())
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn cert_pem(
    certs: &CertStore,
    r: &CertRef,
    key: Option<&str>,
    default_key: &str,
) -> Result<String, String> {
    let key = key.unwrap_or(default_key);
    certs
        .lookup(&r.kind, &r.reference, key)
        .ok_or_else(|| format!("no generated {} {} {key}", r.kind, r.reference))
}

/// Builds the client request for one attempt.
pub fn build_request(
    spec: &HttpRequestSpec,
    env: &CaseEnv,
    set_headers: Option<&BTreeMap<String, String>>,
) -> Result<Request, String> {
    let protocol = Protocol::parse(spec.protocol.as_deref(), &spec.scheme)
        .ok_or_else(|| format!("unsupported protocol {:?}", spec.protocol))?;
    let authority = spec.authority(env.ip);
    let mut headers: Vec<(String, String)> = spec
        .headers
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let echo_set = set_headers
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    headers.push(("X-Echo-Set-Header".into(), echo_set));
    let tls = match &spec.tls {
        None => None,
        Some(t) => {
            let trust = match serde_json::from_value::<CertRef>(t.trust.clone()) {
                Ok(r) => {
                    let default = if r.kind == "ConfigMap" {
                        "ca.crt"
                    } else {
                        "tls.crt"
                    };
                    vec![cert_pem(env.certs, &r, r.key.as_deref(), default)?]
                }
                Err(_) => Vec::new(),
            };
            let client_cert = match &t.client_certificate {
                Some(r) => Some((
                    cert_pem(env.certs, r, r.cert_key.as_deref(), "tls.crt")?,
                    cert_pem(env.certs, r, r.key_key.as_deref(), "tls.key")?,
                )),
                None => None,
            };
            Some(TlsClient {
                sni: t
                    .sni
                    .clone()
                    .unwrap_or_else(|| client::host_only(&authority).to_string()),
                trust_pems: trust,
                client_cert,
            })
        }
    };
    Ok(Request {
        protocol,
        addr: (env.ip, spec.port).into(),
        authority,
        method: spec.method.clone().unwrap_or_else(|| "GET".into()),
        path: spec.path.clone(),
        headers,
        tls,
    })
}

/// One attempt of an `http` case; `Ok(pod)` on success.
async fn http_attempt(
    case: &Case,
    env: &CaseEnv<'_>,
    request_id: &str,
    extra: &[(String, String)],
) -> Result<String, String> {
    let id = uuid();
    let req_v = instantiate(&case.request, request_id, &id, env.certs);
    let resp_v = instantiate(&case.response, request_id, &id, env.certs);
    let spec = HttpRequestSpec::from_value(&req_v).map_err(|e| format!("bad request spec: {e}"))?;
    let expect = HttpExpect::from_value(&resp_v).map_err(|e| format!("bad response spec: {e}"))?;
    let mut req = build_request(&spec, env, case.backend_set_response_headers.as_ref())?;
    req.headers.extend(extra.iter().cloned());
    let resp = client::send(&req, env.timing.request_timeout)
        .await
        .map_err(|(e, _)| format!("request failed: {e}"))?;
    if spec
        .tls
        .as_ref()
        .is_some_and(|t| t.expect_client_certificate_requested)
        && !resp.client_cert_requested
    {
        return Err("the Gateway did not request a client certificate".into());
    }
    let sent = Sent {
        scheme: spec.scheme.clone(),
        method: req.method.clone(),
        path: req.path.clone(),
    };
    check_response(&expect, &sent, &resp)?;
    Ok(Echoed::parse(&resp.body).pod)
}

/// Retries `attempt` until `threshold` consecutive passes, within `timeout`.
pub async fn eventually<F, Fut>(
    timeout: Duration,
    threshold: u32,
    mut attempt: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    let mut passes = 0;
    let mut last = String::from("no attempt made");
    while start.elapsed() < timeout {
        match attempt().await {
            Ok(()) => {
                passes += 1;
                if passes >= threshold {
                    return Ok(());
                }
            }
            Err(e) => {
                passes = 0;
                last = e;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    Err(format!(
        "no {threshold} consecutive passes within {}s; last: {last}",
        timeout.as_secs()
    ))
}

/// Runs one case of any supported kind.
pub async fn run_case(case: &Case, env: &CaseEnv<'_>) -> Result<(), String> {
    for _ in 0..case.repeat.unwrap_or(1).max(1) {
        match case.kind.as_str() {
            "http" => run_http(case, env).await?,
            "https_expect_failure" => run_https_expect_failure(case, env).await?,
            "http_expect_failure" => run_http_expect_failure(case, env).await?,
            "grpc" => crate::grpc::run(case, env).await?,
            "websocket" => {
                eventually(env.timing.case_timeout, env.timing.consecutive, || {
                    crate::ws::attempt(case, env)
                })
                .await?
            }
            k if crate::l4cases::L4_KINDS.contains(&k) => crate::l4cases::run(case, env).await?,
            other => return Err(format!("unsupported case kind {other:?}")),
        }
    }
    Ok(())
}

async fn run_http(case: &Case, env: &CaseEnv<'_>) -> Result<(), String> {
    let request_id = uuid();
    let t = env.timing;
    eventually(t.case_timeout, t.consecutive, || async {
        http_attempt(case, env, &request_id, &[]).await.map(|_| ())
    })
    .await?;
    for m in case.mirrored_to.iter().filter(|m| m.percent.is_none()) {
        let uri = instantiate(&case.request, &request_id, "", env.certs)["path"]
            .as_str()
            .unwrap_or("/")
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        while env.backends.received(&m.namespace, &m.name, &uri) == 0 {
            if Instant::now() >= deadline {
                return Err(format!(
                    "mirror backend {}/{} never received {uri}",
                    m.namespace, m.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if let Some(d) = &case.distribution {
        crate::distribution::run(case, d, env).await?;
    }
    Ok(())
}

/// One attempt of a case that is expected to fail at connection/TLS level.
async fn run_https_expect_failure(case: &Case, env: &CaseEnv<'_>) -> Result<(), String> {
    let spec =
        HttpRequestSpec::from_value(&instantiate(&case.request, &uuid(), &uuid(), env.certs))?;
    let req = build_request(&spec, env, None)?;
    match client::send(&req, env.timing.request_timeout).await {
        Ok(r) => Err(format!(
            "expected a connection/TLS failure, got HTTP {}",
            r.status
        )),
        Err((e, asked)) => {
            let want_asked = spec
                .tls
                .as_ref()
                .is_some_and(|t| t.expect_client_certificate_requested);
            if want_asked && !asked {
                return Err(format!(
                    "failed ({e}) but the Gateway never requested a client certificate"
                ));
            }
            Ok(())
        }
    }
}

/// `http_expect_failure`: 5 consecutive non-200 answers within 30 s; a 200 fails at once.
async fn run_http_expect_failure(case: &Case, env: &CaseEnv<'_>) -> Result<(), String> {
    let r = &case.response;
    let nums = |k: &str| -> Vec<u16> {
        r.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_u64().map(|n| n as u16))
                    .collect()
            })
            .unwrap_or_default()
    };
    let threshold = r
        .get("consecutive_non_200")
        .and_then(Value::as_u64)
        .unwrap_or(5);
    let forbidden = {
        let f = nums("forbidden_status");
        if f.is_empty() {
            vec![200]
        } else {
            f
        }
    };
    let not_counted = nums("not_counted_status");
    let spec =
        HttpRequestSpec::from_value(&instantiate(&case.request, &uuid(), &uuid(), env.certs))?;
    let req = build_request(&spec, env, None)?;
    let start = Instant::now();
    let mut ok = 0;
    while start.elapsed() < env.timing.case_timeout {
        match client::send(&req, env.timing.request_timeout).await {
            Ok(resp) if forbidden.contains(&resp.status) => {
                return Err(format!("got forbidden status {}", resp.status));
            }
            Ok(resp) if !not_counted.contains(&resp.status) => {
                ok += 1;
                if ok >= threshold {
                    return Ok(());
                }
                continue;
            }
            _ => {
                ok = 0;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    Err(format!(
        "no {threshold} consecutive non-200 answers within {}s",
        env.timing.case_timeout.as_secs()
    ))
}

/// Sends `n` attempts with `concurrency` in flight; returns each attempt's result.
pub async fn fan_out(
    case: &Case,
    env: &CaseEnv<'_>,
    request_id: &str,
    n: usize,
    concurrency: usize,
    jitter: bool,
) -> Vec<Result<String, String>> {
    crate::distribution::concurrently(n, concurrency, || async {
        let extra: Vec<(String, String)> = if jitter && rand::rng().random_bool(0.5) {
            vec![(
                "X-Jitter".into(),
                rand::rng().random_range(0..10000).to_string(),
            )]
        } else {
            Vec::new()
        };
        if case.kind == "grpc" {
            crate::grpc::attempt(case, env, &extra).await
        } else {
            http_attempt(case, env, request_id, &extra).await
        }
    })
    .await
}

/// `backend_of_pod` re-exported for the distribution module.
pub fn backend(pod: &str) -> &str {
    backend_of_pod(pod)
}
