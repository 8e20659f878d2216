//! Bad input never crashes the gateway nor replaces the last good configuration: each case
//! below becomes a precise status condition or diagnostic while the good route keeps serving.

mod common;

use common::*;
use std::time::Duration;
use trellis_app::App;

const LIMIT: Duration = Duration::from_secs(10);

const GOOD_ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: good, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /good}}]
    backendRefs: [{group: trellis.dev, kind: Backend, name: echo}]
";

struct Env {
    app: App,
    dir: tempfile::TempDir,
    port: u16,
    client: HttpClient,
    _echo: trellis_testkit::echo::EchoHandle,
}

async fn env() -> Env {
    let echo = echo("good-pod").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.yaml"),
        base_config(port, &[("echo", &echo)]),
    )
    .unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD_ROUTE).unwrap();
    let app = start(dir.path()).await;
    let client = client();
    wait_served(&client, port, "/good", 200, Some("good-pod"), LIMIT).await;
    Env {
        app,
        dir,
        port,
        client,
        _echo: echo,
    }
}

impl Env {
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    async fn still_serving(&self) {
        let r = get(&self.client, self.port, "/good/still")
            .await
            .expect("gateway answers");
        assert_eq!((r.status, r.body["pod"].as_str()), (200, Some("good-pod")));
    }

    async fn diagnostic(&self, needle: &str) -> String {
        let state = wait_state(&self.app, LIMIT, |s| {
            s.diagnostics
                .iter()
                .any(|d| format!("{}: {}", d.source, d.message).contains(needle))
        })
        .await;
        let d = state
            .diagnostics
            .iter()
            .find(|d| d.message.contains(needle) || d.source.contains(needle))
            .unwrap();
        format!("{}: {}", d.source, d.message)
    }

    async fn condition(&self, kind: &str, name: &str, expected: &str) {
        wait_state(&self.app, LIMIT, |s| {
            conditions(s, kind, name).iter().any(|c| c == expected)
        })
        .await;
    }
}

fn route(name: &str, rule: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
{rule}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_yaml_keeps_the_last_good_objects_of_that_file() {
    let env = env().await;
    env.write(
        "good.yaml",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: good\n",
    );
    let d = env.diagnostic("invalid YAML").await;
    assert!(
        d.contains("good.yaml") && d.contains("keeping its last good 1 object(s)"),
        "{d}"
    );
    env.still_serving().await;
    // Other files still apply while good.yaml is broken.
    env.write("other.yaml", &route("other", "  - matches: [{path: {type: Exact, value: /other}}]\n    backendRefs: [{group: trellis.dev, kind: Backend, name: echo}]\n"));
    wait_served(
        &env.client,
        env.port,
        "/other",
        200,
        Some("good-pod"),
        LIMIT,
    )
    .await;
    env.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_of_the_wrong_shape_keeps_its_last_good_version() {
    let env = env().await;
    env.write(
        "good.yaml",
        &GOOD_ROUTE.replace("rules:", "hostnames: not-a-list\n  rules:"),
    );
    let d = env.diagnostic("keeping its last good version").await;
    assert!(d.contains("good.yaml"), "{d}");
    env.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kinds_are_reported_and_ignored() {
    let env = env().await;
    env.write("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec: {}\n");
    let d = env.diagnostic("unknown kind").await;
    assert!(d.contains("deploy.yaml") && d.contains("Deployment"), "{d}");
    env.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_regex_is_reported_on_the_route_only() {
    let env = env().await;
    env.write(
        "regex.yaml",
        &route("regex", "  - matches: [{path: {type: RegularExpression, value: \"/a(b\"}}]\n    backendRefs: [{group: trellis.dev, kind: Backend, name: echo}]\n"),
    );
    env.condition(
        "HTTPRoute",
        "regex",
        "parent Accepted=False/UnsupportedValue",
    )
    .await;
    env.still_serving().await;
    let r = get(&env.client, env.port, "/ab").await.unwrap();
    assert_ne!(r.status, 200, "the invalid rule must not route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_listeners_are_marked_conflicted() {
    let env = env().await;
    let (port, port2) = (free_port(), free_port());
    env.write(
        "conflict.yaml",
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: conflict, namespace: default}}
spec:
  gatewayClassName: trellis
  listeners:
  - {{name: a, protocol: HTTP, port: {port}, hostname: same.example}}
  - {{name: b, protocol: HTTP, port: {port}, hostname: same.example}}
  - {{name: c, protocol: HTTPS, port: {port2}, tls: {{certificateRefs: [{{name: missing}}]}}}}
  - {{name: d, protocol: HTTP, port: {port2}}}
"
        ),
    );
    env.condition(
        "Gateway",
        "conflict",
        "listener a Conflicted=True/HostnameConflict",
    )
    .await;
    env.condition(
        "Gateway",
        "conflict",
        "listener b Conflicted=True/HostnameConflict",
    )
    .await;
    env.condition(
        "Gateway",
        "conflict",
        "listener c Conflicted=True/ProtocolConflict",
    )
    .await;
    env.condition(
        "Gateway",
        "conflict",
        "listener d Conflicted=True/ProtocolConflict",
    )
    .await;
    env.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_an_invalid_certificate_ref() {
    let env = env().await;
    let port = free_port();
    env.write(
        "tls.yaml",
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: tls, namespace: default}}
spec:
  gatewayClassName: trellis
  listeners:
  - {{name: https, protocol: HTTPS, port: {port}, tls: {{certificateRefs: [{{name: no-such-secret}}]}}}}
"
        ),
    );
    env.condition(
        "Gateway",
        "tls",
        "listener https ResolvedRefs=False/InvalidCertificateRef",
    )
    .await;
    env.condition("Gateway", "tls", "listener https Programmed=False/Invalid")
        .await;
    env.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_backend_is_backend_not_found_and_answers_500() {
    let env = env().await;
    env.write(
        "missing.yaml",
        &route("missing", "  - matches: [{path: {type: Exact, value: /missing}}]\n    backendRefs: [{group: trellis.dev, kind: Backend, name: nowhere}]\n"),
    );
    env.condition(
        "HTTPRoute",
        "missing",
        "parent ResolvedRefs=False/BackendNotFound",
    )
    .await;
    wait_served(&env.client, env.port, "/missing", 500, None, LIMIT).await;
    env.still_serving().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_port_unavailable_until_it_frees_up() {
    let env = env().await;
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    env.write(
        "busy.yaml",
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: busy, namespace: default}}
spec:
  gatewayClassName: trellis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: web, protocol: HTTP, port: {port}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: busy, namespace: default}}
spec:
  parentRefs: [{{name: busy}}]
  rules:
  - backendRefs: [{{group: trellis.dev, kind: Backend, name: echo}}]
"
        ),
    );
    env.condition(
        "Gateway",
        "busy",
        "listener web Accepted=False/PortUnavailable",
    )
    .await;
    env.diagnostic("cannot listen").await;
    env.still_serving().await;
    // Once the port is free the next poll binds it.
    drop(squatter);
    env.condition("Gateway", "busy", "listener web Accepted=True/Accepted")
        .await;
    wait_served(&env.client, port, "/", 200, Some("good-pod"), LIMIT).await;
}
