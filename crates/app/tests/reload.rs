//! Live reconfiguration under load: 20 edits of the config files while a client keeps sending
//! requests. No request may fail, and each change must serve within a second.

mod common;

use common::*;
use std::time::Duration;

fn route(edit: usize) -> String {
    let mut rules = String::from(
        "  - matches: [{path: {type: PathPrefix, value: /stable}}]
    backendRefs: [{group: trellis.dev, kind: Backend, name: stable}]
",
    );
    if edit > 0 {
        rules.push_str(&format!(
            "  - matches: [{{path: {{type: Exact, value: /change-{edit}}}}}]
    backendRefs: [{{group: trellis.dev, kind: Backend, name: changing}}]
"
        ));
    }
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
{rules}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_edits_under_load_fail_no_request() {
    let stable = echo("stable-pod").await;
    let changing = echo("changing-pod").await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.yaml"),
        base_config(port, &[("stable", &stable), ("changing", &changing)]),
    )
    .unwrap();
    let route_file = dir.path().join("route.yaml");
    std::fs::write(&route_file, route(0)).unwrap();
    let app = start(dir.path()).await;
    let client = client();
    wait_served(
        &client,
        port,
        "/stable",
        200,
        Some("stable-pod"),
        Duration::from_secs(10),
    )
    .await;

    // Load: two keep-alive clients and one opening a new connection per request.
    let load = Load::start(port, "/stable/x", "stable-pod", Duration::from_secs(120));

    let mut slowest = Duration::ZERO;
    for edit in 1..=20 {
        if edit % 2 == 0 {
            write_by_rename(&route_file, &route(edit));
        } else {
            std::fs::write(&route_file, route(edit)).unwrap();
        }
        let took = wait_served(
            &client,
            port,
            &format!("/change-{edit}"),
            200,
            Some("changing-pod"),
            Duration::from_secs(10),
        )
        .await;
        slowest = slowest.max(took);
        // The previous edit's path is gone again.
        if edit > 1 {
            let r = get(&client, port, &format!("/change-{}", edit - 1))
                .await
                .unwrap();
            assert_eq!(r.status, 404, "edit {edit}: old route still served");
        }
    }
    let (ok, failures) = load.finish().await;
    eprintln!(
        "reload: {ok} requests served during 20 edits, slowest change live after {slowest:?}"
    );
    assert!(
        failures.is_empty(),
        "{} failed requests, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(ok > 100, "the load generator barely ran ({ok} requests)");
    // The requirement: each change serves within a second.
    assert!(
        slowest < Duration::from_secs(1),
        "a change took {slowest:?} to serve"
    );
    assert!(app.state.load().version >= 21);
    app.shutdown().await;
}
