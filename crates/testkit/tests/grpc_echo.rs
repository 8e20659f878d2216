//! gRPC echo against the testkit's gRPC client on 127.0.0.1: Echo / EchoTwo / EchoThree,
//! metadata and authority echo, HTTP-status mapping, TLS listener, shutdown.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::net::TcpListener;
use trellis_testkit::backend::{BackendIdentity, ServerHandle, TlsListener};
use trellis_testkit::echo::{EchoMode, EchoOptions};
use trellis_testkit::grpc_echo::{
    self, full_method, grpc_unary, GrpcCall, GrpcClient, GrpcCode, GrpcExpectation,
};

const T: Duration = Duration::from_secs(5);

fn identity() -> BackendIdentity {
    BackendIdentity::new(
        "gateway-conformance-infra",
        "grpc-infra-backend-v1",
        "grpc-infra-backend-v1-abc-xyz",
    )
}

async fn start_grpc() -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    grpc_echo::spawn(identity(), listener, None).unwrap()
}

#[tokio::test]
async fn echo_reports_method_authority_metadata_and_context() {
    let server = start_grpc().await;
    let call = GrpcCall::echo("Echo")
        .with_authority("grpc.example.com")
        .with_metadata("Version", "one")
        .with_metadata("x-multi", "a")
        .with_metadata("x-multi", "b");
    let reply = grpc_unary(server.local_addr, &call, T).await.unwrap();
    assert_eq!(reply.code, GrpcCode::OK, "{}", reply.message);
    assert_eq!(reply.http_status, 200);
    let response = reply.response.expect("decoded response");
    assert_eq!(
        response.fully_qualified_method(),
        "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo"
    );
    assert_eq!(response.authority(), "grpc.example.com");
    assert_eq!(
        response.header_values(":authority"),
        vec!["grpc.example.com"]
    );
    // gRPC lowercases metadata keys; repeated keys keep every value.
    assert_eq!(response.header_values("version"), vec!["one"]);
    assert_eq!(response.header_values("x-multi"), vec!["a", "b"]);
    assert_eq!(
        response.header_values("content-type"),
        vec!["application/grpc"]
    );
    // Reserved transport headers are not metadata.
    assert!(response.header_values("te").is_empty());
    assert!(response.header_values("grpc-timeout").is_empty());
    let assertions = response.assertions.as_ref().unwrap();
    let context = assertions.context.as_ref().unwrap();
    assert_eq!(context.namespace, "gateway-conformance-infra");
    assert_eq!(context.service_name, "grpc-infra-backend-v1");
    assert_eq!(context.pod, "grpc-infra-backend-v1-abc-xyz");
    assert_eq!(response.namespace(), "gateway-conformance-infra");
    assert!(assertions.tls_assertions.is_none());
    server.shutdown();
}

#[tokio::test]
async fn echo_two_answers_with_its_own_method_and_default_authority() {
    let server = start_grpc().await;
    let reply = grpc_unary(server.local_addr, &GrpcCall::echo("EchoTwo"), T)
        .await
        .unwrap();
    assert_eq!(reply.code, GrpcCode::OK, "{}", reply.message);
    let response = reply.response.unwrap();
    assert_eq!(response.fully_qualified_method(), full_method("EchoTwo"));
    // No authority given: the dial target, as grpc-go sends it.
    assert_eq!(response.authority(), server.local_addr.to_string());
    assert!(response.pod().starts_with("grpc-infra-backend-v1"));
    server.shutdown();
}

#[tokio::test]
async fn echo_three_unknown_methods_and_services_are_unimplemented() {
    let server = start_grpc().await;
    let client = GrpcClient::connect(server.local_addr, T).await.unwrap();
    let three = client.call(&GrpcCall::echo("EchoThree"), T).await.unwrap();
    assert_eq!(three.code, GrpcCode::UNIMPLEMENTED);
    assert_eq!(three.code.0, 12);
    assert!(three.message.contains("EchoThree"), "{}", three.message);
    assert!(three.response.is_none());

    let unknown = client.call(&GrpcCall::echo("EchoFour"), T).await.unwrap();
    assert_eq!(unknown.code, GrpcCode::UNIMPLEMENTED);
    assert!(
        unknown.message.starts_with("unknown method EchoFour"),
        "{}",
        unknown.message
    );

    let mut other = GrpcCall::echo("Echo");
    other.full_method = "/other.Service/Echo".to_string();
    let other = client.call(&other, T).await.unwrap();
    assert_eq!(other.code, GrpcCode::UNIMPLEMENTED);
    assert!(
        other.message.starts_with("unknown service"),
        "{}",
        other.message
    );

    // The connection is still usable after the errors.
    let ok = client.call(&GrpcCall::echo("Echo"), T).await.unwrap();
    assert_eq!(ok.code, GrpcCode::OK);
    server.shutdown();
}

#[tokio::test]
async fn one_connection_carries_concurrent_calls() {
    let server = start_grpc().await;
    let client = GrpcClient::connect(server.local_addr, T).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let call = GrpcCall::echo("Echo").with_metadata("x-jitter", i.to_string());
            client.call(&call, T).await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let reply = bounded(task).await.unwrap().unwrap();
        assert_eq!(reply.code, GrpcCode::OK);
        assert_eq!(
            reply.response.unwrap().header_values("x-jitter"),
            vec![i.to_string()]
        );
    }
    server.shutdown();
}

#[tokio::test]
async fn http_statuses_map_like_grpc_go() {
    // An HTTP echo speaking h2c: 404 → Unimplemented, a 200 JSON answer → Unknown.
    let http = start(EchoOptions::new("ns", "pod-a-b").with_mode(EchoMode::H2cOnly)).await;
    let mut call = GrpcCall::echo("Echo");
    call.full_method = "/status/404".to_string();
    let reply = grpc_unary(http.local_addr, &call, T).await.unwrap();
    assert_eq!(reply.http_status, 404);
    assert_eq!(reply.code, GrpcCode::UNIMPLEMENTED);
    call.full_method = "/status/503".to_string();
    let reply = grpc_unary(http.local_addr, &call, T).await.unwrap();
    assert_eq!(reply.code, GrpcCode::UNAVAILABLE);
    let reply = grpc_unary(http.local_addr, &GrpcCall::echo("Echo"), T)
        .await
        .unwrap();
    assert_eq!(reply.http_status, 200);
    assert_eq!(reply.code, GrpcCode::UNKNOWN);
    http.shutdown();
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let addr = closed_port().await;
    let err = grpc_unary(addr, &GrpcCall::echo("Echo"), T)
        .await
        .unwrap_err();
    assert_eq!(err.code(), GrpcCode::UNAVAILABLE, "{err}");
}

#[tokio::test]
async fn invalid_metadata_is_rejected_before_sending() {
    let server = start_grpc().await;
    let call = GrpcCall::echo("Echo").with_metadata("bad key", "v");
    let err = grpc_unary(server.local_addr, &call, T).await.unwrap_err();
    assert!(err.to_string().contains("metadata key"), "{err}");
    server.shutdown();
}

#[tokio::test]
async fn tls_listener_serves_h2_and_reports_tls() {
    let (cert, key, _) = self_signed(&["grpc.example.com"]);
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = TlsListener {
        listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        cert_pem: cert.clone(),
        key_pem: key,
    };
    let server = grpc_echo::spawn(identity(), plain, Some(tls)).unwrap();
    let tls_addr = server.tls_addr.expect("TLS address");
    let config = trellis_testkit::tls_client::client_config(Some(&cert), &[b"h2"]).unwrap();
    let stream = trellis_testkit::tls_client::tls_connect(tls_addr, "grpc.example.com", config, T)
        .await
        .unwrap();
    let client = GrpcClient::over(stream, tls_addr).await.unwrap();
    let call = GrpcCall::echo("Echo").with_authority("grpc.example.com");
    let reply = client.call(&call, T).await.unwrap();
    assert_eq!(reply.code, GrpcCode::OK, "{}", reply.message);
    let response = reply.response.unwrap();
    let tls = response
        .assertions
        .as_ref()
        .and_then(|a| a.tls_assertions.clone())
        .expect("tls assertions");
    assert_eq!(tls.server_name, "grpc.example.com");
    assert_eq!(tls.negotiated_protocol, "h2");
    assert_eq!(tls.version, "TLSv1.3");
    assert!(tls.peer_certificates.is_empty());
    // The plaintext listener still answers without TLS assertions.
    let plain = grpc_unary(server.local_addr, &GrpcCall::echo("Echo"), T)
        .await
        .unwrap();
    assert!(plain
        .response
        .unwrap()
        .assertions
        .unwrap()
        .tls_assertions
        .is_none());
    server.shutdown();
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let server = start_grpc().await;
    let addr = server.local_addr;
    server.shutdown();
    server.shutdown();
    bounded(server.stopped()).await;
    bounded(async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// An address nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

#[tokio::test]
async fn reply_check_follows_upstream_compare() {
    let server = start_grpc().await;
    let echo = grpc_unary(server.local_addr, &GrpcCall::echo("Echo"), T)
        .await
        .unwrap();
    let method = full_method("Echo");
    let want = GrpcExpectation {
        code: GrpcCode::OK,
        full_method: &method,
        namespace: "gateway-conformance-infra",
        backend: "grpc-infra-backend-v1",
    };
    echo.check(&want).unwrap();
    // An empty namespace is not compared.
    echo.check(&GrpcExpectation {
        namespace: "",
        ..want
    })
    .unwrap();
    assert!(echo
        .check(&GrpcExpectation {
            backend: "grpc-infra-backend-v2",
            ..want
        })
        .is_err());
    assert!(echo
        .check(&GrpcExpectation {
            namespace: "other",
            ..want
        })
        .is_err());
    let two = full_method("EchoTwo");
    assert!(echo
        .check(&GrpcExpectation {
            full_method: &two,
            ..want
        })
        .is_err());
    assert!(echo
        .check(&GrpcExpectation {
            code: GrpcCode::UNIMPLEMENTED,
            ..want
        })
        .is_err());

    let three = grpc_unary(server.local_addr, &GrpcCall::echo("EchoThree"), T)
        .await
        .unwrap();
    // On a non-OK status only the code is compared.
    three
        .check(&GrpcExpectation {
            code: GrpcCode::UNIMPLEMENTED,
            backend: "nope",
            ..want
        })
        .unwrap();
    assert!(three.check(&want).is_err());
    server.shutdown();
}
