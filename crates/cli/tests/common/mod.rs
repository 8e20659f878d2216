//! Shared by the tests that run the real `trellis` binary: a Gateway + echo Backend config
//! and a child process that is killed if a test ends early.
#![allow(dead_code)]

use std::process::Child;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn config(port: u16, backend: u16) -> String {
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
---
apiVersion: trellis.dev/v1alpha1
kind: Backend
metadata: {{name: echo, namespace: default}}
spec:
  endpoints: [{{address: 127.0.0.1, port: {backend}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{group: trellis.dev, kind: Backend, name: echo}}]
"
    )
}

/// The running `trellis run`; killed (and reaped) on drop if it is still running.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
