//! WebSocket cases: upgrade through the Gateway, then the `exchange` frames must echo back.

use crate::exec::CaseEnv;
use crate::suite::Case;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("hex {s:?}: {e}")))
        .collect()
}

/// One WebSocket attempt.
pub async fn attempt(case: &Case, env: &CaseEnv<'_>) -> Result<(), String> {
    let r = &case.request;
    let port = r.get("port").and_then(Value::as_u64).unwrap_or(80) as u16;
    let path = r.get("path").and_then(Value::as_str).unwrap_or("/");
    let authority = match r.get("host").and_then(Value::as_str) {
        Some(h) => h.to_string(),
        None if port == 80 => env.ip.to_string(),
        None => format!("{}:{port}", env.ip),
    };
    let mut req = format!("ws://{authority}{path}")
        .into_client_request()
        .map_err(|e| format!("bad WebSocket request: {e}"))?;
    if let Some(origin) = r.get("origin").and_then(Value::as_str) {
        if let Ok(v) = origin.parse() {
            req.headers_mut().insert(http::header::ORIGIN, v);
        }
    }
    let fut = async {
        let tcp = tokio::net::TcpStream::connect((env.ip, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut ws, _) = tokio_tungstenite::client_async(req, tcp)
            .await
            .map_err(|e| format!("WebSocket upgrade failed: {e}"))?;
        for step in &case.exchange {
            let (send, want) = if let Some(t) = step.get("send_text").and_then(Value::as_str) {
                let want = step.get("expect_text").and_then(Value::as_str).unwrap_or(t);
                (Message::text(t), Message::text(want))
            } else if let Some(b) = step.get("send_binary_hex").and_then(Value::as_str) {
                let want = step
                    .get("expect_binary_hex")
                    .and_then(Value::as_str)
                    .unwrap_or(b);
                (Message::binary(hex(b)?), Message::binary(hex(want)?))
            } else {
                return Err(format!("unsupported exchange step {step}"));
            };
            ws.send(send).await.map_err(|e| format!("send: {e}"))?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(m)) if m == want => break,
                    Some(Ok(m)) => return Err(format!("expected frame {want:?}, got {m:?}")),
                    Some(Err(e)) => return Err(format!("receive: {e}")),
                    None => return Err("connection closed before the echo".into()),
                }
            }
        }
        let _ = ws.close(None).await;
        Ok(())
    };
    tokio::time::timeout(env.timing.request_timeout, fut)
        .await
        .map_err(|_| "WebSocket exchange timed out".to_string())?
}
