//! Plain HTTP echo seen from real HTTP/1.1 and h2c clients.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::Empty;
use trellis_testkit::echo::EchoMode;

#[tokio::test]
async fn http1_echo_json_shape() {
    let echo = start(options()).await;
    let req = get("/foo/bar?x=1&y=%20z")
        .method("POST")
        .header("host", "example.com:8080")
        .header("x-multi", "1")
        .header("x-multi", "2")
        .header("X-Echo-Set-Header", "")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let reply = http1(echo.local_addr, req).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    let json = reply.json();
    assert_eq!(json["path"], "/foo/bar?x=1&y=%20z");
    assert_eq!(json["host"], "example.com:8080");
    assert_eq!(json["method"], "POST");
    assert_eq!(json["proto"], "HTTP/1.1");
    assert_eq!(json["namespace"], "gateway-conformance-infra");
    assert_eq!(json["pod"], "infra-backend-v1-abc-xyz");
    assert_eq!(json["httpPort"], echo.local_addr.port().to_string());
    assert_eq!(json["headers"]["X-Multi"], serde_json::json!(["1", "2"]));
    assert_eq!(
        json["headers"]["X-Echo-Set-Header"],
        serde_json::json!([""])
    );
    assert!(
        json["headers"].get("Host").is_none(),
        "Host is not a header in Go's echo"
    );
    assert!(
        json.get("tls").is_none(),
        "no tls object on plain connections"
    );
    echo.shutdown();
}

#[tokio::test]
async fn h2c_echo_reports_authority_and_proto() {
    let echo = start(options()).await;
    let req = get("http://foo.example.com/h2?q=1")
        .header("x-h2", "yes")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let reply = h2c(echo.local_addr, req).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["path"], "/h2?q=1");
    assert_eq!(json["host"], "foo.example.com");
    assert_eq!(json["proto"], "HTTP/2.0");
    assert_eq!(json["method"], "GET");
    assert_eq!(json["headers"]["X-H2"], serde_json::json!(["yes"]));
    echo.shutdown();
}

#[tokio::test]
async fn echo_set_header_becomes_response_headers() {
    let echo = start(options()).await;
    let baseline = http1(
        echo.local_addr,
        get("/")
            .header("X-Echo-Set-Header", "")
            .body(Empty::new())
            .unwrap(),
    )
    .await
    .unwrap();
    let req = get("/set")
        .header(
            "X-Echo-Set-Header",
            "X-Header-Set:some-value,Some-Other-Header:val",
        )
        .header("X-Echo-Set-Header", "X-Header-Set:second")
        .body(Empty::new())
        .unwrap();
    let reply = http1(echo.local_addr, req).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["x-header-set"], "some-value,second");
    assert_eq!(reply.headers["some-other-header"], "val");
    assert_eq!(reply.headers.len(), baseline.headers.len() + 2);
    assert!(baseline.headers.get("x-header-set").is_none());
    echo.shutdown();
}

#[tokio::test]
async fn delay_waits_at_least_the_duration() {
    let echo = start(options()).await;
    let started = Instant::now();
    let reply = http1(
        echo.local_addr,
        get("/?delay=300ms").body(Empty::new()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.json()["path"], "/?delay=300ms");

    let bad = http1(
        echo.local_addr,
        get("/?delay=soon").body(Empty::new()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(bad.status, StatusCode::INTERNAL_SERVER_ERROR);
    echo.shutdown();
}

#[tokio::test]
async fn status_and_health() {
    let echo = start(options()).await;
    for (path, status) in [
        ("/status/418", 418),
        ("/status/503", 503),
        ("/status/204", 204),
        ("/status/nope", 400),
        ("/status/101", 400),
        ("/status/600", 400),
        ("/health", 200),
    ] {
        let reply = http1(echo.local_addr, get(path).body(Empty::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(reply.status.as_u16(), status, "{path}");
    }
    echo.shutdown();
}

#[tokio::test]
async fn request_log_keeps_arrival_order() {
    let echo = start(options()).await;
    assert!(echo.request_log().is_empty());
    let paths = ["/one", "/two?a=b", "/status/500", "/one"];
    for path in paths {
        http1(echo.local_addr, get(path).body(Empty::new()).unwrap())
            .await
            .unwrap();
    }
    let h2 = get(format!("http://h/{}", "three").as_str())
        .body(Empty::new())
        .unwrap();
    h2c(echo.local_addr, h2).await.unwrap();
    assert_eq!(
        echo.request_log(),
        vec!["/one", "/two?a=b", "/status/500", "/one", "/three"]
    );
    echo.clear_request_log();
    assert!(echo.request_log().is_empty());
    http1(echo.local_addr, get("/four").body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(echo.request_log(), vec!["/four"]);
    echo.shutdown();
}

#[tokio::test]
async fn h2c_only_rejects_http1() {
    let echo = start(options().with_mode(EchoMode::H2cOnly)).await;
    let reply = http1(echo.local_addr, get("/").body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = h2c(
        echo.local_addr,
        get("http://a.b/").body(Empty::new()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["proto"], "HTTP/2.0");
    echo.shutdown();
}

#[tokio::test]
async fn absolute_form_http1_keeps_the_uri() {
    let echo = start(options()).await;
    let req = get("http://abs.example/x?y=1")
        .header("host", "abs.example")
        .body(Empty::new())
        .unwrap();
    let json = http1(echo.local_addr, req).await.unwrap().json();
    assert_eq!(json["path"], "http://abs.example/x?y=1");
    assert_eq!(json["host"], "abs.example");
    echo.shutdown();
}

#[tokio::test]
async fn post_with_body_is_echoed_and_connection_reusable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = start(options()).await;
    let mut tcp = tokio::net::TcpStream::connect(echo.local_addr)
        .await
        .unwrap();
    let body = "x".repeat(100_000);
    let request = format!(
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}\
         GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let reader = async {
        let (mut rd, mut wr) = tcp.split();
        let write = async {
            wr.write_all(request.as_bytes()).await.unwrap();
        };
        let read = async {
            let mut out = Vec::new();
            rd.read_to_end(&mut out).await.map(|_| out)
        };
        let ((), out) = tokio::join!(write, read);
        out
    };
    let out = String::from_utf8(bounded(reader).await.unwrap()).unwrap();
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert!(out.contains("\"path\":\"/upload\""));
    assert!(out.contains("\"path\":\"/after\""));
    assert_eq!(echo.request_log(), vec!["/upload", "/after"]);
    echo.shutdown();
}
