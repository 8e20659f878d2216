//! Echo backends: for every echo Deployment selected by a Service in the manifests, start
//! `replicas` in-process echo instances on 127.0.0.1 and describe each with an EndpointSlice,
//! the way the upstream suite's pods would be seen by a controller. Deployments with
//! `GRPC_ECHO_SERVER` get the gRPC echo (h2c) instead; TCP/UDP echo and coredns Deployments
//! get the L4 servers of [`crate::backends_l4`].

use crate::backends_l4::{self, L4Kind};
use crate::certs::{base64_decode, CertStore};
use crate::manifests::{kind_of, name_of, namespace_of};
use crate::status::arr;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use trellis_testkit::backend::{BackendIdentity, ServerHandle};
use trellis_testkit::echo::{self, EchoHandle, EchoMode, EchoOptions};
use trellis_testkit::grpc_echo;

/// echo-basic's container ports: 3000 HTTP (+ WebSocket at /ws), 3001 h2c only, 8443 HTTPS.
const H2C_PORT: i64 = 3001;
const HTTPS_PORTS: &[i64] = &[8443, 443];

/// One running "pod".
pub struct Instance {
    pub namespace: String,
    pub deployment: String,
    pub pod: String,
    /// Container port -> echo server.
    pub ports: BTreeMap<i64, EchoHandle>,
    /// Container port -> gRPC echo server (gRPC Deployments only).
    pub grpc: BTreeMap<i64, ServerHandle>,
    /// Named container ports, for Services whose `targetPort` is a name.
    pub port_names: BTreeMap<String, i64>,
    /// Container port -> local port of the L4 servers (TCP/UDP echo, DNS).
    pub l4: BTreeMap<i64, u16>,
    pub l4_servers: Vec<ServerHandle>,
}

#[derive(Default)]
pub struct Backends {
    pub instances: Vec<Instance>,
}

#[derive(Debug, thiserror::Error)]
#[error("starting echo backend {pod}: {source}")]
pub struct BackendError {
    pod: String,
    source: std::io::Error,
}

fn random_suffix(n: usize) -> String {
    const CH: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CH[rng.random_range(0..CH.len())] as char)
        .collect()
}

fn env_names(deploy: &Value) -> Vec<String> {
    deploy
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c.get("env")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|e| e.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EchoKind {
    Http,
    Grpc,
    L4(L4Kind),
}

/// Which echo a Deployment runs; `None` for other images.
fn echo_kind(deploy: &Value) -> Option<EchoKind> {
    if let Some(k) = backends_l4::l4_kind(deploy) {
        return Some(EchoKind::L4(k));
    }
    let image_ok = deploy
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .is_some_and(|i| i.contains("echo"));
    let env = env_names(deploy);
    if !image_ok {
        return None;
    }
    Some(if env.iter().any(|e| e == "GRPC_ECHO_SERVER") {
        EchoKind::Grpc
    } else {
        EchoKind::Http
    })
}

/// The TLS pair the Deployment mounts (`TLS_SERVER_CERT` + a secret volume).
fn tls_pair(
    deploy: &Value,
    namespace: &str,
    objects: &[&Value],
    certs: &CertStore,
) -> Option<(String, String)> {
    if !env_names(deploy).iter().any(|e| e == "TLS_SERVER_CERT") {
        return None;
    }
    let secret = deploy
        .pointer("/spec/template/spec/volumes")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|v| v.pointer("/secret/secretName").and_then(Value::as_str))?;
    if let Some(p) = certs.secret(namespace, secret) {
        return Some((p.cert_pem.clone(), p.key_pem.clone()));
    }
    // A Secret from the manifests themselves.
    let obj = objects.iter().find(|o| {
        kind_of(o) == "Secret"
            && name_of(o) == secret
            && namespace_of(o).unwrap_or("default") == namespace
    })?;
    let field = |k: &str| -> Option<String> {
        if let Some(s) = obj
            .pointer(&format!("/stringData/{}", k.replace('/', "~1")))
            .and_then(Value::as_str)
        {
            return Some(s.to_string());
        }
        let b = obj.get("data")?.get(k)?.as_str()?;
        String::from_utf8(base64_decode(b)?).ok()
    };
    Some((field("tls.crt")?, field("tls.key")?))
}

fn selector_matches(selector: &serde_json::Map<String, Value>, labels: &Value) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The Deployment's named container ports (`ports[].name` -> `containerPort`).
fn named_ports(deploy: &Value) -> BTreeMap<String, i64> {
    deploy
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| {
            let name = p.get("name").and_then(Value::as_str)?;
            Some((name.to_string(), p.get("containerPort")?.as_i64()?))
        })
        .collect()
}

/// Container port of a Service port (`targetPort`, defaulting to `port`); a named
/// `targetPort` is looked up in the pod's named container ports.
fn target_port(port: &Value, names: &BTreeMap<String, i64>) -> Option<i64> {
    match port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok().or_else(|| names.get(s).copied()),
        _ => port.get("port").and_then(Value::as_i64),
    }
}

impl Backends {
    /// Starts the instances and returns them with the EndpointSlices to write.
    pub async fn start(
        objects: &[&Value],
        certs: &CertStore,
    ) -> Result<(Backends, Vec<Value>), BackendError> {
        let mut backends = Backends::default();
        let mut slices = Vec::new();
        let services: Vec<&Value> = objects
            .iter()
            .copied()
            .filter(|o| kind_of(o) == "Service")
            .collect();
        for (deploy, kind) in objects
            .iter()
            .filter(|o| kind_of(o) == "Deployment")
            .filter_map(|o| Some((o, echo_kind(o)?)))
        {
            let ns = namespace_of(deploy).unwrap_or("default").to_string();
            let name = name_of(deploy).to_string();
            let labels = deploy
                .pointer("/spec/template/metadata/labels")
                .cloned()
                .unwrap_or(Value::Null);
            let selecting: Vec<&Value> = services
                .iter()
                .copied()
                .filter(|s| namespace_of(s).unwrap_or("default") == ns)
                .filter(|s| {
                    s.pointer("/spec/selector")
                        .and_then(Value::as_object)
                        .is_some_and(|sel| selector_matches(sel, &labels))
                })
                .collect();
            if selecting.is_empty() {
                continue;
            }
            let port_names = named_ports(deploy);
            let mut container_ports: Vec<i64> = selecting
                .iter()
                .flat_map(|s| {
                    s.pointer("/spec/ports")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|p| target_port(&p, &port_names))
                .collect();
            container_ports.sort();
            container_ports.dedup();
            let tls = tls_pair(deploy, &ns, objects, certs);
            let replicas = deploy
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            let udp_targets: Vec<i64> = selecting
                .iter()
                .flat_map(|s| arr(s, "/spec/ports"))
                .filter(|p| p.get("protocol").and_then(Value::as_str) == Some("UDP"))
                .filter_map(|p| target_port(p, &port_names))
                .collect();
            for _ in 0..replicas {
                let pod = format!("{name}-{}-{}", random_suffix(5), random_suffix(5));
                let mut ports = BTreeMap::new();
                let mut grpc = BTreeMap::new();
                let mut l4 = backends_l4::L4Servers::default();
                if let EchoKind::L4(k) = kind {
                    let id = backends_l4::identity(deploy, &ns, &pod);
                    l4 = backends_l4::spawn(k, deploy, id, &udp_targets, tls.clone())
                        .await
                        .map_err(|source| BackendError {
                            pod: pod.clone(),
                            source,
                        })?;
                }
                for cp in container_ports
                    .iter()
                    .filter(|_| matches!(kind, EchoKind::Http | EchoKind::Grpc))
                {
                    let listener =
                        tokio::net::TcpListener::bind("127.0.0.1:0")
                            .await
                            .map_err(|source| BackendError {
                                pod: pod.clone(),
                                source,
                            })?;
                    if kind == EchoKind::Grpc {
                        let identity = BackendIdentity::new(&ns, &name, &pod);
                        let server = grpc_echo::spawn(identity, listener, None).map_err(|e| {
                            BackendError {
                                pod: pod.clone(),
                                source: std::io::Error::other(e.to_string()),
                            }
                        })?;
                        grpc.insert(*cp, server);
                        continue;
                    }
                    let opts = EchoOptions {
                        namespace: ns.clone(),
                        pod: pod.clone(),
                        mode: if *cp == H2C_PORT {
                            EchoMode::H2cOnly
                        } else {
                            EchoMode::Http
                        },
                        tls: if HTTPS_PORTS.contains(cp) {
                            tls.clone()
                        } else {
                            None
                        },
                    };
                    ports.insert(*cp, echo::spawn(listener, opts));
                }
                let inst = Instance {
                    namespace: ns.clone(),
                    deployment: name.clone(),
                    pod,
                    ports,
                    grpc,
                    port_names: port_names.clone(),
                    l4: l4.ports,
                    l4_servers: l4.handles,
                };
                for svc in &selecting {
                    slices.push(endpoint_slice(svc, &inst));
                }
                backends.instances.push(inst);
            }
        }
        Ok((backends, slices))
    }

    /// Instances of a Deployment (by name).
    pub fn of_deployment<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Instance> {
        self.instances
            .iter()
            .filter(move |i| i.namespace == namespace && i.deployment == name)
    }

    /// How many times instances whose pod starts with `backend` received `request_uri`.
    pub fn received(&self, namespace: &str, backend: &str, request_uri: &str) -> usize {
        self.instances
            .iter()
            .filter(|i| i.namespace == namespace && i.pod.starts_with(&format!("{backend}-")))
            .flat_map(|i| i.ports.values())
            .map(|h| h.request_log().iter().filter(|u| *u == request_uri).count())
            .sum()
    }

    /// Fills manually managed EndpointSlices (upstream step `populate_endpointslices`) with
    /// the instances of `deployment`: the slice keeps instance 0, extra instances get extra
    /// slices (`<slice>-<i>`, same labels), since one slice has one port per name.
    pub fn populate_slice(&self, slice: &Value, deployment: &str) -> Vec<Value> {
        let ns = namespace_of(slice).unwrap_or("default");
        if slice.get("addressType").and_then(Value::as_str) != Some("IPv4") {
            return vec![slice.clone()];
        }
        let mut out = Vec::new();
        for (i, inst) in self.of_deployment(ns, deployment).enumerate() {
            let mut s = slice.clone();
            if i > 0 {
                s["metadata"]["name"] = json!(format!("{}-{i}", name_of(slice)));
            }
            let ports: Vec<Value> = slice
                .get("ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut p| {
                    let cp = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    if let Some(port) = inst.port(cp) {
                        p["port"] = json!(port);
                    }
                    p
                })
                .collect();
            s["ports"] = json!(ports);
            s["endpoints"] = json!([endpoint(inst)]);
            out.push(s);
        }
        if out.is_empty() {
            out.push(slice.clone());
        }
        out
    }

    pub fn shutdown(&self) {
        for h in self.instances.iter().flat_map(|i| i.ports.values()) {
            h.shutdown();
        }
        for h in self.instances.iter().flat_map(|i| i.grpc.values()) {
            h.shutdown();
        }
        for h in self.instances.iter().flat_map(|i| &i.l4_servers) {
            h.shutdown();
        }
    }
}

impl Instance {
    /// The local port serving a container port (HTTP, gRPC or L4 echo).
    pub fn port(&self, container_port: i64) -> Option<u16> {
        self.ports
            .get(&container_port)
            .map(|h| h.local_addr.port())
            .or_else(|| self.grpc.get(&container_port).map(|h| h.local_addr.port()))
            .or_else(|| self.l4.get(&container_port).copied())
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn endpoint(inst: &Instance) -> Value {
    json!({
        "addresses": ["127.0.0.1"],
        "conditions": {"ready": true, "serving": true, "terminating": false},
        "targetRef": {"kind": "Pod", "name": inst.pod, "namespace": inst.namespace},
    })
}

fn endpoint_slice(svc: &Value, inst: &Instance) -> Value {
    let svc_name = name_of(svc);
    let ports: Vec<Value> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let local = inst.port(target_port(p, &inst.port_names)?)?;
            let mut port = json!({
                "name": p.get("name").and_then(Value::as_str).unwrap_or(""),
                "port": local,
                "protocol": p.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
            });
            if let Some(ap) = p.get("appProtocol") {
                port["appProtocol"] = ap.clone();
            }
            Some(port)
        })
        .collect();
    let suffix = inst.pod.rsplit('-').next().unwrap_or("x");
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{svc_name}-{suffix}"),
            "namespace": inst.namespace,
            "labels": {"kubernetes.io/service-name": svc_name},
        },
        "addressType": "IPv4",
        "endpoints": [endpoint(inst)],
        "ports": ports,
    })
}

#[cfg(test)]
#[path = "backends_tests.rs"]
mod tests;
