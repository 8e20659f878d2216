//! Regressions found by fuzzing (`fuzz/regressions/`), replayed end to end.

mod common;

use common::*;
use std::time::Duration;

/// fuzz/regressions/yaml_translate/invalid-header-name: a header modifier naming an invalid
/// HTTP header (`X-a/b`) is translated into the IR, the proxy refuses to compile it, and so the
/// whole configuration, including unrelated good routes, never goes live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_header_name_in_a_filter_does_not_block_other_routes() {
    let pod = echo("pod").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: good, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /good}}}}]
    backendRefs: [{{group: trellis.dev, kind: Backend, name: pod}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: bad, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /bad}}}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add: [{{name: X-a/b, value: v}}]
    backendRefs: [{{group: trellis.dev, kind: Backend, name: pod}}]
",
        base_config(port, &[("pod", &pod)])
    );
    std::fs::write(dir.path().join("all.yaml"), cfg).unwrap();
    let app = start(dir.path()).await;
    wait_served(&client(), port, "/good", 200, None, Duration::from_secs(10)).await;
    app.shutdown().await;
}
