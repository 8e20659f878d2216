//! Pieces the end-to-end tests of several crates share: a free loopback port and the YAML of
//! a minimal gateway (GatewayClass + Gateway with one HTTP listener on 127.0.0.1), Backends
//! and a catch-all HTTPRoute.

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GatewayClass `trellis` and Gateway `default/gw` listening for HTTP on 127.0.0.1:`port`.
pub fn gateway_yaml(port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: trellis}}
spec: {{controllerName: trellis.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: trellis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: http, protocol: HTTP, port: {port}}}
"
    )
}

/// A document (with its leading `---`) for Backend `default/name` on 127.0.0.1:`ports`.
pub fn backend_yaml(name: &str, ports: &[u16]) -> String {
    let endpoints: Vec<String> = ports
        .iter()
        .map(|p| format!("{{address: 127.0.0.1, port: {p}}}"))
        .collect();
    format!(
        "---
apiVersion: trellis.dev/v1alpha1
kind: Backend
metadata: {{name: {name}, namespace: default}}
spec:
  endpoints: [{}]
",
        endpoints.join(", ")
    )
}

/// A document (with its leading `---`) for HTTPRoute `default/name` on `gw`, sending
/// everything to Backend `backend`.
pub fn route_yaml(name: &str, backend: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{group: trellis.dev, kind: Backend, name: {backend}}}]
"
    )
}
