//! L4 echo "pods": Deployments running echo-basic with `TCP_ECHO_SERVER` (TCP line echo on
//! `TCP_PORT`, plus TLS on `TLS_PORT` when a certificate is mounted) or `UDP_ECHO_SERVER`
//! (UDP JSON echo on `UDP_PORT`), and the base `coredns` Deployment (a DNS responder on the
//! UDP ports its Services target). Each reports the identity upstream reads from its env.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use trellis_testkit::backend::{BackendIdentity, ServerHandle, TlsListener};
use trellis_testkit::{dns, tcp_echo, udp_echo};

/// Upstream defaults of echo-basic's `TCP_PORT`, `TLS_PORT` and `UDP_PORT`.
const TCP_PORT: i64 = 3000;
const TLS_PORT: i64 = 8443;
const UDP_PORT: i64 = 8080;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Kind {
    Tcp,
    Udp,
    Dns,
}

/// The first container's env as name -> raw entry.
fn env(deploy: &Value) -> BTreeMap<String, Value> {
    deploy
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e.get("name")?.as_str()?.to_string(), e.clone())))
        .collect()
}

/// The value a container sees for `name`: a literal `value`, or the pod's name / namespace
/// for the `fieldRef`s upstream uses; `""` when unset (Go's `os.Getenv`).
pub fn env_value(deploy: &Value, name: &str, namespace: &str, pod: &str) -> String {
    let Some(e) = env(deploy).remove(name) else {
        return String::new();
    };
    if let Some(v) = e.get("value").and_then(Value::as_str) {
        return v.to_string();
    }
    match e
        .pointer("/valueFrom/fieldRef/fieldPath")
        .and_then(Value::as_str)
    {
        Some("metadata.name") => pod.to_string(),
        Some("metadata.namespace") => namespace.to_string(),
        _ => String::new(),
    }
}

/// Which L4 server a Deployment runs, if any.
pub fn l4_kind(deploy: &Value) -> Option<L4Kind> {
    let image = deploy
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or("");
    if image.contains("coredns") {
        return Some(L4Kind::Dns);
    }
    if !image.contains("echo") {
        return None;
    }
    let env = env(deploy);
    if env.contains_key("TCP_ECHO_SERVER") {
        Some(L4Kind::Tcp)
    } else if env.contains_key("UDP_ECHO_SERVER") {
        Some(L4Kind::Udp)
    } else {
        None
    }
}

/// What upstream's echo reports: `NAMESPACE`, `INGRESS_NAME`, `SERVICE_NAME`, `POD_NAME`.
pub fn identity(deploy: &Value, namespace: &str, pod: &str) -> BackendIdentity {
    let v = |n: &str| env_value(deploy, n, namespace, pod);
    BackendIdentity {
        namespace: v("NAMESPACE"),
        ingress: v("INGRESS_NAME"),
        service: v("SERVICE_NAME"),
        pod: v("POD_NAME"),
    }
}

fn port_env(deploy: &Value, name: &str, default: i64) -> i64 {
    env_value(deploy, name, "", "").parse().unwrap_or(default)
}

/// Running servers of one instance: container port -> local port, and their handles.
#[derive(Default)]
pub struct L4Servers {
    pub ports: BTreeMap<i64, u16>,
    pub handles: Vec<ServerHandle>,
}

async fn udp_socket() -> std::io::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await
}

/// Starts the servers of one instance. `udp_targets` are the container ports Services reach
/// over UDP (the DNS server listens on each); `tls` is the mounted certificate pair.
pub async fn spawn(
    kind: L4Kind,
    deploy: &Value,
    id: BackendIdentity,
    udp_targets: &[i64],
    tls: Option<(String, String)>,
) -> std::io::Result<L4Servers> {
    let mut out = L4Servers::default();
    match kind {
        L4Kind::Tcp => {
            let plain = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            let tls = match tls {
                Some((cert_pem, key_pem)) => Some(TlsListener {
                    listener: tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?,
                    cert_pem,
                    key_pem,
                }),
                None => None,
            };
            let h = tcp_echo::spawn(id, plain, tls)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            out.ports
                .insert(port_env(deploy, "TCP_PORT", TCP_PORT), h.local_addr.port());
            if let Some(a) = h.tls_addr {
                out.ports
                    .insert(port_env(deploy, "TLS_PORT", TLS_PORT), a.port());
            }
            out.handles.push(h);
        }
        L4Kind::Udp => {
            let h = udp_echo::spawn(id, udp_socket().await?);
            out.ports
                .insert(port_env(deploy, "UDP_PORT", UDP_PORT), h.local_addr.port());
            out.handles.push(h);
        }
        L4Kind::Dns => {
            for cp in udp_targets {
                // coredns' `whoami` answers with the client address: loopback here.
                let h = dns::spawn(udp_socket().await?, Ipv4Addr::LOCALHOST);
                out.ports.insert(*cp, h.local_addr.port());
                out.handles.push(h);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(image: &str, env: Value) -> Value {
        json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"image": image, "env": env}]}}}})
    }

    #[test]
    fn kinds_and_identity_follow_the_env() {
        let d = deploy(
            "registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.2",
            json!([{"name": "UDP_ECHO_SERVER", "value": "1"},
                   {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                   {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                   {"name": "SERVICE_NAME", "value": "udp-backend-v1"}]),
        );
        assert_eq!(l4_kind(&d), Some(L4Kind::Udp));
        let id = identity(&d, "ns", "udp-backend-v1-abc-def");
        assert_eq!(
            id,
            BackendIdentity::new("ns", "udp-backend-v1", "udp-backend-v1-abc-def")
        );
        let t = deploy(
            "echo-basic",
            json!([{"name": "TCP_ECHO_SERVER", "value": "1"}]),
        );
        assert_eq!(l4_kind(&t), Some(L4Kind::Tcp));
        // Unset variables are reported empty, as upstream does.
        assert_eq!(identity(&t, "ns", "p"), BackendIdentity::default());
        assert_eq!(
            l4_kind(&deploy(
                "registry.k8s.io/coredns/coredns:v1.12.2",
                json!([])
            )),
            Some(L4Kind::Dns)
        );
        assert_eq!(l4_kind(&deploy("echo-basic", json!([]))), None);
        assert_eq!(
            l4_kind(&deploy("nginx", json!([{"name": "TCP_ECHO_SERVER"}]))),
            None
        );
    }

    #[tokio::test]
    async fn servers_listen_on_their_container_ports() {
        let d = deploy(
            "echo-basic",
            json!([{"name": "TCP_ECHO_SERVER", "value": "1"}, {"name": "TCP_PORT", "value": "4000"}]),
        );
        let s = spawn(L4Kind::Tcp, &d, BackendIdentity::default(), &[], None)
            .await
            .unwrap();
        assert_eq!(s.ports.keys().copied().collect::<Vec<_>>(), vec![4000]);
        let dns = spawn(L4Kind::Dns, &d, BackendIdentity::default(), &[53, 54], None)
            .await
            .unwrap();
        assert_eq!(dns.ports.keys().copied().collect::<Vec<_>>(), vec![53, 54]);
        for h in s.handles.iter().chain(&dns.handles) {
            h.shutdown();
        }
    }
}
