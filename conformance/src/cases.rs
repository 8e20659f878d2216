//! Case semantics for kind `http` (README "Case semantics"): the typed request/response
//! expectations and the pure comparison of one attempt's response with them.

use crate::client::Response;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Reference to generated TLS material: `{kind: Secret|ConfigMap, ref: ns/name, key}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CertRef {
    pub kind: String,
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub cert_key: Option<String>,
    #[serde(default)]
    pub key_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TlsSpec {
    #[serde(default)]
    pub sni: Option<String>,
    /// A CertRef, or prose (e.g. "system roots") meaning nothing specific.
    #[serde(default)]
    pub trust: Value,
    #[serde(default)]
    pub client_certificate: Option<CertRef>,
    #[serde(default)]
    pub expect_client_certificate_requested: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpRequestSpec {
    #[serde(default = "http")]
    pub scheme: String,
    pub port: u16,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default = "slash")]
    pub path: String,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub tls: Option<TlsSpec>,
}

fn http() -> String {
    "http".into()
}
fn slash() -> String {
    "/".into()
}

impl HttpRequestSpec {
    pub fn from_value(v: &Value) -> Result<Self, String> {
        serde_json::from_value(v.clone()).map_err(|e| e.to_string())
    }

    /// Host header: `request.host`, else `<ip>` on the scheme's default port, else `<ip>:<port>`.
    pub fn authority(&self, ip: std::net::IpAddr) -> String {
        if let Some(h) = &self.host {
            return h.clone();
        }
        let ip = match ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let default = matches!(
            (self.scheme.as_str(), self.port),
            ("http", 80) | ("https", 443)
        );
        if default {
            ip
        } else {
            format!("{ip}:{}", self.port)
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExpectedRequest {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub absent_headers: Vec<String>,
    #[serde(default)]
    pub sni: Option<String>,
    /// PEM (after `{pem:...}` substitution) that must be among the backend's peer certificates.
    #[serde(default)]
    pub client_cert: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RedirectExpect {
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<Value>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpExpect {
    #[serde(default)]
    pub status: Vec<u16>,
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub expected_request: Option<ExpectedRequest>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub header_any_of: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub absent_headers: Vec<String>,
    #[serde(default)]
    pub ignore_whitespace: bool,
    #[serde(default)]
    pub redirect: Option<RedirectExpect>,
}

impl HttpExpect {
    pub fn from_value(v: &Value) -> Result<Self, String> {
        serde_json::from_value(v.clone()).map_err(|e| e.to_string())
    }
}

/// What the echo backend reports (all empty for a non-echo body).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Echoed {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub pod: String,
    #[serde(default)]
    pub tls: Option<EchoedTls>,
    /// False when the body was not echo JSON.
    #[serde(skip)]
    pub is_echo: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EchoedTls {
    #[serde(default, rename = "serverName")]
    pub server_name: String,
    #[serde(default, rename = "peerCertificates")]
    pub peer_certificates: Vec<String>,
}

impl Echoed {
    pub fn parse(body: &[u8]) -> Echoed {
        match serde_json::from_slice::<Echoed>(body) {
            Ok(mut e) => {
                e.is_echo = true;
                e
            }
            Err(_) => Echoed::default(),
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.join(","))
    }
}

/// What was sent, as far as the comparison needs it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub scheme: String,
    pub method: String,
    /// Request-URI as sent.
    pub path: String,
}

pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Status in the allowed set, 408 and 504 standing in for each other.
pub fn status_allowed(allowed: &[u16], got: u16) -> bool {
    let timeout = |s: u16| s == 408 || s == 504;
    allowed
        .iter()
        .any(|&a| a == got || (timeout(a) && timeout(got)))
}

fn response_header(resp: &Response, name: &str) -> Option<String> {
    let values: Vec<&str> = resp
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn squash(s: &str, ignore_ws: bool) -> String {
    if ignore_ws {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    } else {
        s.to_string()
    }
}

/// Compares one attempt. `Err` carries the first mismatch.
pub fn check_response(exp: &HttpExpect, sent: &Sent, resp: &Response) -> Result<(), String> {
    if !status_allowed(&exp.status, resp.status) {
        return Err(format!(
            "expected status {:?}, got {}",
            exp.status, resp.status
        ));
    }
    if resp.status == 200 || resp.status == 204 {
        let echoed = Echoed::parse(&resp.body);
        if let Some(er) = &exp.expected_request {
            check_request(er, sent, &echoed)?;
        }
        if let Some(ns) = &exp.namespace {
            if &echoed.namespace != ns {
                return Err(format!(
                    "expected namespace {ns:?}, got {:?}",
                    echoed.namespace
                ));
            }
        }
        if let Some(b) = &exp.backend {
            if !echoed.pod.starts_with(b.as_str()) {
                return Err(format!("expected pod {b}-*, got {:?}", echoed.pod));
            }
        }
        check_response_headers(exp, resp)?;
    }
    if is_redirect(resp.status) {
        if let Some(r) = &exp.redirect {
            let loc = response_header(resp, "location").ok_or("redirect without Location")?;
            check_redirect(r, sent, &loc)?;
        }
    }
    Ok(())
}

fn check_request(er: &ExpectedRequest, sent: &Sent, echoed: &Echoed) -> Result<(), String> {
    if let Some(p) = &er.path {
        if &echoed.path != p {
            return Err(format!("expected path {p:?}, got {:?}", echoed.path));
        }
    }
    if let Some(h) = &er.host {
        if &echoed.host != h {
            return Err(format!("expected host {h:?}, got {:?}", echoed.host));
        }
    }
    if let Some(m) = &er.method {
        // A response not produced by the echo (e.g. a CORS preflight answered by the Gateway)
        // has no echoed method; it answered the method we sent.
        let got = if echoed.is_echo {
            echoed.method.as_str()
        } else {
            sent.method.as_str()
        };
        if got != m {
            return Err(format!("expected method {m:?}, got {got:?}"));
        }
    }
    for (name, want) in er.headers.iter().flatten() {
        match echoed.header(name) {
            None => {
                return Err(format!(
                    "expected request header {name}, not received by the backend"
                ))
            }
            Some(got) if &got != want => {
                return Err(format!(
                    "expected request header {name}: {want:?}, got {got:?}"
                ))
            }
            _ => {}
        }
    }
    for name in &er.absent_headers {
        if let Some(v) = echoed.header(name) {
            return Err(format!("request header {name} should be absent, got {v:?}"));
        }
    }
    if let Some(sni) = &er.sni {
        let got = echoed.tls.as_ref().map(|t| t.server_name.as_str());
        if got != Some(sni.as_str()) {
            return Err(format!("expected backend SNI {sni:?}, got {got:?}"));
        }
    }
    if let Some(pem) = &er.client_cert {
        let peers = echoed
            .tls
            .as_ref()
            .map(|t| t.peer_certificates.as_slice())
            .unwrap_or(&[]);
        if !peers.iter().any(|p| p.trim() == pem.trim()) {
            return Err(format!(
                "backend did not see the expected client certificate ({} peer certs)",
                peers.len()
            ));
        }
    }
    Ok(())
}

fn check_response_headers(exp: &HttpExpect, resp: &Response) -> Result<(), String> {
    let ws = exp.ignore_whitespace;
    for (name, want) in exp.headers.iter().flatten() {
        match response_header(resp, name) {
            None => {
                return Err(format!(
                    "expected response header {name}: {want:?}, missing"
                ))
            }
            Some(got) if squash(&got, ws) != squash(want, ws) => {
                return Err(format!(
                    "expected response header {name}: {want:?}, got {got:?}"
                ))
            }
            _ => {}
        }
    }
    for (name, options) in exp.header_any_of.iter().flatten() {
        let got = response_header(resp, name)
            .ok_or_else(|| format!("expected response header {name}, missing"))?;
        if !options.iter().any(|o| squash(o, ws) == squash(&got, ws)) {
            return Err(format!(
                "response header {name}: {got:?} is none of {options:?}"
            ));
        }
    }
    for name in &exp.absent_headers {
        if let Some(v) = response_header(resp, name) {
            return Err(format!(
                "response header {name} should be absent, got {v:?}"
            ));
        }
    }
    Ok(())
}

/// The parts of a `Location` the suite compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub path: String,
}

/// Parses an absolute or relative `Location` value.
pub fn parse_location(loc: &str) -> Result<Location, String> {
    let uri: http::Uri = loc
        .parse()
        .map_err(|e| format!("bad Location {loc:?}: {e}"))?;
    Ok(Location {
        scheme: uri.scheme_str().map(str::to_string),
        host: uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()),
        port: uri.port().map(|p| p.as_str().to_string()),
        path: uri.path().to_string(),
    })
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "http" => Some("80"),
        "https" => Some("443"),
        _ => None,
    }
}

/// README rules: host null = unchecked; scheme null = the request's scheme; port null = absent
/// or the scheme's default; path null = the request path without query.
pub fn check_redirect(exp: &RedirectExpect, sent: &Sent, location: &str) -> Result<(), String> {
    let loc = parse_location(location)?;
    let scheme = loc.scheme.clone().unwrap_or_else(|| sent.scheme.clone());
    let want_scheme = exp.scheme.clone().unwrap_or_else(|| sent.scheme.clone());
    if scheme != want_scheme {
        return Err(format!(
            "redirect scheme {scheme:?}, want {want_scheme:?} (Location {location})"
        ));
    }
    if let Some(h) = &exp.host {
        if loc.host.as_deref() != Some(h.as_str()) {
            return Err(format!(
                "redirect host {:?}, want {h:?} (Location {location})",
                loc.host
            ));
        }
    }
    let want_port = match &exp.port {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    };
    let got_port = loc.port.as_deref();
    let port_ok = match &want_port {
        None => got_port.is_none() || got_port == default_port(&scheme),
        Some(p) => {
            got_port == Some(p.as_str())
                || (got_port.is_none() && default_port(&scheme) == Some(p.as_str()))
        }
    };
    if !port_ok {
        return Err(format!(
            "redirect port {got_port:?}, want {want_port:?} (Location {location})"
        ));
    }
    let want_path = exp
        .path
        .clone()
        .unwrap_or_else(|| sent.path.split('?').next().unwrap_or("").to_string());
    if loc.path != want_path {
        return Err(format!(
            "redirect path {:?}, want {want_path:?} (Location {location})",
            loc.path
        ));
    }
    Ok(())
}

/// Weight tests: the backend is the pod name minus its last two `-` parts.
pub fn backend_of_pod(pod: &str) -> &str {
    let mut it = pod.rsplitn(3, '-');
    let _ = it.next();
    let _ = it.next();
    it.next().unwrap_or(pod)
}

#[cfg(test)]
#[path = "cases_tests.rs"]
mod tests;
