//! Test and demo helpers. Start at [`echo`]: the echo backend of the Gateway API conformance
//! contract (HTTP/1.1, h2c, HTTPS/h2, WebSocket at `/ws`), used by `trellis echo`, the
//! integration tests, the quickstart and the conformance runner. [`echo::spawn`] serves a bound
//! listener and returns an [`echo::EchoHandle`] (request log, shutdown);
//! [`echo::serve_forever`] is the whole `trellis echo` command.

pub mod echo;
