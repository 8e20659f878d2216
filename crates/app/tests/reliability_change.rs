//! Constant change: 100 configuration changes (routes every time, a second listener added and
//! removed every 10) while clients keep sending requests. No request may fail, and a WebSocket
//! opened before the first change still echoes after the last.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const CHANGES: usize = 100;

fn gateway(port: u16, extra: Option<u16>, echo: &trellis_testkit::echo::EchoHandle) -> String {
    let mut cfg = base_config(port, &[("stable", echo)]);
    if let Some(extra) = extra {
        cfg = cfg.replace(
            &format!("  - {{name: http, protocol: HTTP, port: {port}}}\n"),
            &format!(
                "  - {{name: http, protocol: HTTP, port: {port}}}\n  - {{name: extra, protocol: HTTP, port: {extra}}}\n"
            ),
        );
    }
    cfg
}

fn route(edit: usize) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /stable}}}}, {{path: {{type: PathPrefix, value: /ws}}}}]
    backendRefs: [{{group: trellis.dev, kind: Backend, name: stable}}]
  - matches: [{{path: {{type: Exact, value: /change-{edit}}}}}]
    backendRefs: [{{group: trellis.dev, kind: Backend, name: stable}}]
"
    )
}

async fn ws_roundtrip<S>(ws: &mut S, text: &str)
where
    S: SinkExt<Message>
        + StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    ws.send(Message::text(text)).await.expect("WebSocket send");
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("WebSocket echo timed out")
        .expect("WebSocket closed")
        .expect("WebSocket error");
    assert_eq!(reply.into_text().unwrap().as_str(), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_changes_under_load_fail_no_request_and_keep_websockets() {
    let stable = echo("stable-pod").await;
    let (port, extra) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.yaml");
    std::fs::write(&base, gateway(port, None, &stable)).unwrap();
    let route_file = dir.path().join("route.yaml");
    std::fs::write(&route_file, route(0)).unwrap();
    let app = start(dir.path()).await;
    let client = client();
    wait_served(
        &client,
        port,
        "/change-0",
        200,
        None,
        Duration::from_secs(10),
    )
    .await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .expect("WebSocket through the gateway");
    ws_roundtrip(&mut ws, "before").await;

    let load = Load::start(port, "/stable/x", "stable-pod", Duration::from_secs(180));

    for edit in 1..=CHANGES {
        // Every 10 changes the Gateway gains or loses a second listener (a socket change).
        let with_extra = (edit / 10) % 2 == 1;
        if edit % 10 == 0 {
            write_by_rename(&base, &gateway(port, with_extra.then_some(extra), &stable));
        }
        write_by_rename(&route_file, &route(edit));
        wait_served(
            &client,
            port,
            &format!("/change-{edit}"),
            200,
            None,
            Duration::from_secs(10),
        )
        .await;
        if edit % 10 == 0 && with_extra {
            wait_served(
                &client,
                extra,
                "/stable",
                200,
                None,
                Duration::from_secs(10),
            )
            .await;
        }
        if edit % 25 == 0 {
            ws_roundtrip(&mut ws, &format!("during {edit}")).await;
        }
    }
    let (ok, failures) = load.finish().await;
    ws_roundtrip(&mut ws, "after").await;
    eprintln!("constant change: {ok} requests served during {CHANGES} changes");
    assert!(
        failures.is_empty(),
        "{} failed requests, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(ok > 100, "the load generator barely ran ({ok} requests)");
    assert!(app.state.load().version > CHANGES as u64);
    app.shutdown().await;
}
