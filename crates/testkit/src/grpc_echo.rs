//! The gRPC echo of the conformance suite (upstream `echo-basic/grpc`): service
//! [`SERVICE`] with unary `Echo` and `EchoTwo` answering an [`proto::EchoResponse`]
//! `{assertions: {fully_qualified_method, headers, authority, context, tls_assertions?}}` and
//! `EchoThree` unimplemented, plus a small h2c client for `grpc` cases.
//!
//! No tonic and no protoc: [`proto`] holds the `.proto`'s messages as hand-written `prost`
//! structs, [`spawn`] is a hyper HTTP/2 server with gRPC's 5-byte framing and `grpc-status`
//! trailers, and [`grpc_unary`] / [`GrpcClient`] the matching client.

mod client;
pub mod proto;
mod server;
mod wire;

pub use client::{grpc_unary, GrpcCall, GrpcClient, GrpcError, GrpcExpectation, GrpcReply};
pub use server::spawn;
pub use wire::GrpcCode;

/// The fully qualified service name.
pub const SERVICE: &str = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";

/// `/<SERVICE>/<method>`, e.g. `full_method("Echo")`.
pub fn full_method(method: &str) -> String {
    format!("/{SERVICE}/{method}")
}
