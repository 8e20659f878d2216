//! gRPC through the proxy with the conformance gRPC echo and client: calls reach the h2c
//! backend with their method and metadata, and local errors come back as gRPC statuses.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use trellis_ir as ir;
use trellis_testkit::backend::BackendIdentity;
use trellis_testkit::grpc_echo::{self, full_method, GrpcCall, GrpcCode, GrpcExpectation};

const TIMEOUT: Duration = Duration::from_secs(5);

fn exact(method: &str, action: ir::Action) -> ir::Route {
    route(method, ir::PathMatch::Exact(full_method(method)), action)
}

async fn setup() -> (
    trellis_proxy::Proxy,
    SocketAddr,
    trellis_testkit::backend::ServerHandle,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let identity = BackendIdentity::new("ns", "grpc-v1", "grpc-v1-0-0");
    let server = grpc_echo::spawn(identity, listener, None).unwrap();
    let h2c = ir::Cluster {
        tls: None,
        name: "grpc".into(),
        protocol: ir::UpstreamProtocol::H2c,
        endpoints: vec![ir::Endpoint::Socket(server.local_addr)],
    };
    let empty = ir::Cluster {
        tls: None,
        name: "empty".into(),
        protocol: ir::UpstreamProtocol::H2c,
        endpoints: vec![],
    };
    let mut by_header = exact("EchoTwo", to("grpc"));
    by_header.matches.headers = vec![ir::ValueMatch {
        name: "version".into(),
        kind: ir::ValueMatchKind::Exact,
        value: "two".into(),
    }];
    let port = free_port();
    let routes = vec![
        exact("Echo", to("grpc")),
        by_header,
        route(
            "unavailable",
            ir::PathMatch::Exact("/pkg.Down/Call".into()),
            to("empty"),
        ),
        route(
            "invalid",
            ir::PathMatch::Exact("/pkg.Broken/Call".into()),
            ir::Action::Forward(vec![ir::WeightedBackend {
                weight: 1,
                cluster: None,
                filters: vec![],
            }]),
        ),
    ];
    let p = proxy();
    p.apply(simple(port, routes, vec![h2c, empty]))
        .await
        .unwrap();
    (p, SocketAddr::from(([127, 0, 0, 1], port)), server)
}

#[tokio::test]
async fn grpc_calls_are_routed_by_method_and_metadata() {
    let (p, addr, server) = setup().await;
    let reply = grpc_echo::grpc_unary(addr, &GrpcCall::echo("Echo"), TIMEOUT)
        .await
        .unwrap();
    let echo = full_method("Echo");
    reply
        .check(&GrpcExpectation {
            code: GrpcCode::OK,
            full_method: &echo,
            namespace: "ns",
            backend: "grpc-v1",
        })
        .unwrap();
    assert_eq!(reply.response.unwrap().authority(), addr.to_string());

    let two = full_method("EchoTwo");
    let call = GrpcCall::echo("EchoTwo")
        .with_metadata("version", "two")
        .with_authority("grpc.example.com");
    let reply = grpc_echo::grpc_unary(addr, &call, TIMEOUT).await.unwrap();
    reply
        .check(&GrpcExpectation {
            code: GrpcCode::OK,
            full_method: &two,
            namespace: "ns",
            backend: "grpc-v1",
        })
        .unwrap();
    let response = reply.response.unwrap();
    assert_eq!(response.header_values("version"), vec!["two"]);
    assert_eq!(response.authority(), "grpc.example.com");
    p.shutdown(Duration::from_secs(1)).await;
    server.shutdown();
}

#[tokio::test]
async fn local_errors_are_grpc_statuses() {
    let (p, addr, server) = setup().await;
    let cases = [
        (GrpcCall::echo("EchoThree"), GrpcCode::UNIMPLEMENTED),
        // The header match fails: no route.
        (GrpcCall::echo("EchoTwo"), GrpcCode::UNIMPLEMENTED),
        (unary("/pkg.Down/Call"), GrpcCode::UNAVAILABLE),
        (unary("/pkg.Broken/Call"), GrpcCode::INTERNAL),
    ];
    for (call, want) in cases {
        let reply = grpc_echo::grpc_unary(addr, &call, TIMEOUT).await.unwrap();
        assert_eq!(reply.code, want, "{}: {}", call.full_method, reply.message);
        // Trailers-Only, as a gRPC server would answer, not an HTTP error grpc-go maps.
        assert_eq!(reply.http_status, 200, "{}", call.full_method);
        assert_eq!(
            reply
                .headers
                .get("grpc-status")
                .map(|v| v.to_str().unwrap()),
            Some(want.0.to_string().as_str())
        );
        assert!(reply.headers.contains_key("grpc-message"));
    }
    // A plain HTTP client still gets plain HTTP errors.
    let port = addr.port();
    assert_eq!(get(port, "/pkg.Down/Call", None).await.status, 503);
    assert_eq!(get(port, "/nowhere", None).await.status, 404);
    p.shutdown(Duration::from_secs(1)).await;
    server.shutdown();
}

fn unary(path: &str) -> GrpcCall {
    GrpcCall {
        full_method: path.to_string(),
        authority: None,
        metadata: Vec::new(),
    }
}
