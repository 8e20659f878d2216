//! WebSocket echo at `/ws`: HTTP/1.1 upgrade through hyper, then every text or binary message
//! is sent back unchanged until the client closes or the server shuts down.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::Shared;

/// True when `req` asks for a WebSocket upgrade (RFC 6455 section 4.2.1).
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    req.version() == http::Version::HTTP_11
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && req.headers().contains_key(header::SEC_WEBSOCKET_KEY)
}

/// Answers 101 and echoes on the upgraded connection in a task of its own.
pub(crate) fn accept<B>(req: Request<B>, shared: Arc<Shared>) -> Response<Full<Bytes>>
where
    B: hyper::body::Body + Send + 'static,
{
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return super::handler::plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let accept_key = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let mut stop = shared.shutdown.clone();
        let upgraded = tokio::select! {
            () = super::wait_stopped(&mut stop) => return,
            upgraded = on_upgrade => match upgraded {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(error = %err, "echo: WebSocket upgrade failed");
                    return;
                }
            },
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        tokio::select! {
            () = super::wait_stopped(&mut stop) => {}
            () = echo_messages(ws) => {}
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    if let Ok(value) = header::HeaderValue::from_str(&accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

async fn echo_messages<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(message) = ws.next().await {
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(error = %err, "echo: WebSocket read failed");
                return;
            }
        };
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            // Pings are answered by tungstenite itself; a Close is acknowledged by it too.
            Message::Close(_) => continue,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if let Err(err) = ws.send(reply).await {
            tracing::debug!(error = %err, "echo: WebSocket write failed");
            return;
        }
    }
}
