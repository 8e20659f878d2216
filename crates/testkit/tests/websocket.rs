//! WebSocket echo at `/ws` with a tokio-tungstenite client.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn echoes_text_and_binary_messages() {
    let echo = start(options()).await;
    let url = format!("ws://{}/ws", echo.local_addr);
    let tcp = TcpStream::connect(echo.local_addr).await.unwrap();
    let (mut ws, response) = bounded(tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);

    let sent = [
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text("second"),
    ];
    for message in sent {
        bounded(ws.send(message.clone())).await.unwrap();
        let back = bounded(ws.next()).await.expect("a reply").unwrap();
        assert_eq!(back, message);
    }
    bounded(ws.close(None)).await.unwrap();
    assert_eq!(echo.request_log(), vec!["/ws"]);
    echo.shutdown();
}

#[tokio::test]
async fn replies_come_back_in_order() {
    let echo = start(options()).await;
    let tcp = TcpStream::connect(echo.local_addr).await.unwrap();
    let url = format!("ws://{}/ws", echo.local_addr);
    let (mut ws, _) = bounded(tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap();
    for i in 0..5 {
        bounded(ws.send(Message::text(format!("m{i}"))))
            .await
            .unwrap();
    }
    for i in 0..5 {
        let back = bounded(ws.next()).await.expect("a reply").unwrap();
        assert_eq!(back, Message::text(format!("m{i}")));
    }
    echo.shutdown();
    // Shutdown closes the upgraded connection too.
    let end = bounded(ws.next()).await;
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "{end:?}");
}

#[tokio::test]
async fn plain_get_on_ws_path_is_echoed() {
    let echo = start(options()).await;
    let reply = http1(
        echo.local_addr,
        get("/ws").body(Default::default()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(reply.json()["path"], "/ws");
    echo.shutdown();
}
