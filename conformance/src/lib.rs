//! `trellis-conformance`: replays the Gateway API conformance suite (data in `suite/`) against
//! `trellis run`. Start at [`runner::run`]; per test it writes a config dir
//! ([`manifests`], [`certs`], [`backends`], [`backends_l4`]), starts trellis ([`process`]),
//! waits for the status expectations ([`status`] and its family modules), runs the [`steps`]
//! and sends the cases ([`exec`], [`cases`], [`client`], [`grpc`], [`l4cases`], [`l4dist`]).
//! The claimed features live in [`features`].

pub mod backends;
pub mod backends_l4;
pub mod cases;
pub mod certs;
pub mod client;
pub mod distribution;
pub mod exec;
pub mod features;
pub mod grpc;
pub mod l4cases;
pub mod l4dist;
pub mod manifests;
pub mod process;
pub mod report;
pub mod runner;
pub mod status;
pub mod status_extra;
pub mod status_gateway;
pub mod status_listenerset;
pub mod status_route;
pub mod steps;
pub mod suite;
pub mod ws;

pub use runner::{run, Options};
