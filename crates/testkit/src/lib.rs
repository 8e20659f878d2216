//! Test and demo helpers. Start at [`echo`]: the echo backend of the Gateway API conformance
//! contract (HTTP/1.1, h2c, HTTPS/h2, WebSocket at `/ws`), used by `trellis echo`, the
//! integration tests, the quickstart and the conformance runner. [`echo::spawn`] serves a bound
//! listener and returns an [`echo::EchoHandle`] (request log, shutdown);
//! [`echo::serve_forever`] is the whole `trellis echo` command.
//!
//! The other conformance backends, each with the client side of its case kinds:
//! [`grpc_echo`] (gRPC over h2c / h2), [`tcp_echo`] (TCP line echo, plain and TLS),
//! [`udp_echo`] (UDP JSON echo), [`dns`] (a minimal A-record responder);
//! [`tls_client`] holds the TLS dial and the `tls_connection_rejected` probe, and [`backend`]
//! what these servers share ([`backend::BackendIdentity`], [`backend::ServerHandle`]).
//! [`fixtures`]: a free port and minimal gateway YAML for end-to-end tests.

pub mod backend;
pub mod dns;
pub mod echo;
pub mod fixtures;
pub mod grpc_echo;
pub mod tcp_echo;
pub mod tls_client;
pub mod udp_echo;
