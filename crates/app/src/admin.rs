//! The admin endpoint: `/live`, `/ready`, `/status`, `/config_dump`, `/metrics`.

use crate::LiveState;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio::sync::watch;
use trellis_translate::ObjectStatus;

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ArcSwap<LiveState>>,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let (state, registry) = (state.clone(), registry.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (state, registry) = (state.clone(), registry.clone());
                async move { Ok::<_, std::convert::Infallible>(respond(&req, &state.load(), &registry)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn respond<B>(req: &Request<B>, state: &LiveState, registry: &Registry) -> Response<Full<Bytes>> {
    let json = |value: serde_json::Result<String>| match value {
        Ok(body) => Response::builder()
            .header("content-type", "application/json")
            .body(Full::from(body))
            .expect("static response"),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match req.uri().path() {
        "/live" => text(StatusCode::OK, "live\n".into()),
        "/ready" if state.version > 0 => text(StatusCode::OK, "ready\n".into()),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        "/status" => json(serde_json::to_string_pretty(state)),
        // Private keys never leave the process.
        "/config_dump" => json(serde_json::to_string_pretty(&trellis_ir::redacted_json(
            &state.ir,
        ))),
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => Response::builder()
                    .header(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )
                    .body(Full::from(body))
                    .expect("static response"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "endpoints: /live /ready /status /config_dump /metrics\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::from(body))
        .expect("static response")
}

/// One line per condition that is not healthy, e.g.
/// `HTTPRoute apps/web parent Gateway infra/gw: Accepted=False (NotAllowedByListeners): ...`.
/// Healthy means True for every type except `Conflicted`, where it means False.
pub fn false_conditions(status: &ObjectStatus) -> Vec<String> {
    let object = match &status.namespace {
        Some(ns) => format!("{} {ns}/{}", status.kind, status.name),
        None => format!("{} {}", status.kind, status.name),
    };
    let mut out = Vec::new();
    let mut scan = |scope: String, conditions: &serde_json::Value| {
        for c in conditions.as_array().into_iter().flatten() {
            let kind = c["type"].as_str().unwrap_or("?");
            let value = c["status"].as_str().unwrap_or("?");
            let healthy = if kind == "Conflicted" {
                value == "False"
            } else {
                value == "True"
            };
            if !healthy {
                out.push(format!(
                    "{object}{scope}: {kind}={value} ({}): {}",
                    c["reason"].as_str().unwrap_or(""),
                    c["message"].as_str().unwrap_or("")
                ));
            }
        }
    };
    scan(String::new(), &status.status["conditions"]);
    for l in status.status["listeners"].as_array().into_iter().flatten() {
        scan(
            format!(" listener {}", l["name"].as_str().unwrap_or("?")),
            &l["conditions"],
        );
    }
    for p in status.status["parents"].as_array().into_iter().flatten() {
        scan(
            format!(" parent {}", parent_label(&p["parentRef"])),
            &p["conditions"],
        );
    }
    // Policies (BackendTLSPolicy) report per ancestor Gateway.
    for a in status.status["ancestors"].as_array().into_iter().flatten() {
        scan(
            format!(" ancestor {}", parent_label(&a["ancestorRef"])),
            &a["conditions"],
        );
    }
    out
}

/// A route parentRef as people read it: `Gateway ns/name section web`.
pub fn parent_label(r: &serde_json::Value) -> String {
    let ns = r["namespace"]
        .as_str()
        .map(|n| format!("{n}/"))
        .unwrap_or_default();
    let section = r["sectionName"]
        .as_str()
        .map(|s| format!(" section {s}"))
        .unwrap_or_default();
    format!(
        "{} {ns}{}{section}",
        r["kind"].as_str().unwrap_or("Gateway"),
        r["name"].as_str().unwrap_or("?")
    )
}
