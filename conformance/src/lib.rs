//! `trellis-conformance`: replays the Gateway API conformance suite (data in `suite/`) against
//! `trellis run`. Start at [`runner::run`]; per test it writes a config dir
//! ([`manifests`], [`certs`], [`backends`]), starts trellis ([`process`]), waits for the status
//! expectations ([`status`]) and sends the cases ([`exec`], [`cases`], [`client`], [`grpc`]).
//! The claimed features live in [`features`].

pub mod backends;
pub mod cases;
pub mod certs;
pub mod client;
pub mod distribution;
pub mod exec;
pub mod features;
pub mod grpc;
pub mod manifests;
pub mod process;
pub mod report;
pub mod runner;
pub mod status;
pub mod status_extra;
pub mod status_gateway;
pub mod suite;
pub mod ws;

pub use runner::{run, Options};
