//! HTTPS echo: HTTP/1.1 and h2 over rustls, and the `tls` object of the echo JSON.

mod common;

use common::*;
use http::StatusCode;
use http_body_util::Empty;

#[tokio::test]
async fn https_http1_reports_tls_fields() {
    let (cert, key, der) = self_signed(&["abc.example.com"]);
    let echo = start(options().with_tls(cert, key)).await;
    let connector = tls_connector(&der, &[b"http/1.1"], None);
    let stream = bounded(tls_connect(echo.local_addr, &connector, "abc.example.com"))
        .await
        .unwrap();
    let req = get("/tls?x=1")
        .header("host", "abc.example.com")
        .body(Empty::new())
        .unwrap();
    let reply = bounded(http1_over(stream, req)).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["path"], "/tls?x=1");
    assert_eq!(json["proto"], "HTTP/1.1");
    let tls = &json["tls"];
    assert_eq!(tls["serverName"], "abc.example.com");
    assert_eq!(tls["negotiatedProtocol"], "http/1.1");
    assert_eq!(tls["version"], "TLSv1.3");
    assert!(
        tls["cipherSuite"].as_str().unwrap().starts_with("TLS_"),
        "{tls}"
    );
    assert_eq!(tls["peerCertificates"], serde_json::json!([]));
    echo.shutdown();
}

#[tokio::test]
async fn https_h2_via_alpn() {
    let (cert, key, der) = self_signed(&["h2.example.com"]);
    let echo = start(options().with_tls(cert, key)).await;
    let connector = tls_connector(&der, &[b"h2", b"http/1.1"], None);
    let stream = bounded(tls_connect(echo.local_addr, &connector, "h2.example.com"))
        .await
        .unwrap();
    let req = get("https://h2.example.com/two")
        .body(Empty::new())
        .unwrap();
    let reply = bounded(h2_over(stream, req)).await.unwrap();
    let json = reply.json();
    assert_eq!(json["proto"], "HTTP/2.0");
    assert_eq!(json["host"], "h2.example.com");
    assert_eq!(json["tls"]["negotiatedProtocol"], "h2");
    echo.shutdown();
}

#[tokio::test]
async fn client_certificate_is_reported_as_pem() {
    let (cert, key, der) = self_signed(&["abc.example.com"]);
    let (client_cert, client_key, _) = self_signed(&["client.example.com"]);
    let echo = start(options().with_tls(cert, key)).await;
    let connector = tls_connector(&der, &[], Some((&client_cert, &client_key)));
    let stream = bounded(tls_connect(echo.local_addr, &connector, "abc.example.com"))
        .await
        .unwrap();
    let req = get("/")
        .header("host", "abc.example.com")
        .body(Empty::new())
        .unwrap();
    let json = bounded(http1_over(stream, req)).await.unwrap().json();
    let peers = json["tls"]["peerCertificates"].as_array().unwrap().clone();
    assert_eq!(peers.len(), 1);
    let normalise = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(
        normalise(peers[0].as_str().unwrap()),
        normalise(&client_cert)
    );
    assert_eq!(json["tls"]["negotiatedProtocol"], "");
    echo.shutdown();
}

#[tokio::test]
async fn plain_http_to_tls_port_gets_no_echo() {
    let (cert, key, _) = self_signed(&["abc.example.com"]);
    let echo = start(options().with_tls(cert, key)).await;
    let result = http1(echo.local_addr, get("/").body(Empty::new()).unwrap()).await;
    assert!(result.is_err(), "{result:?}");
    echo.shutdown();
}

#[tokio::test]
async fn bad_tls_material_is_reported_by_try_spawn() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = options().with_tls("not a cert", "not a key");
    assert!(trellis_testkit::echo::try_spawn(listener, options).is_err());
}
