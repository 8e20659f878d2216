//! Test and demo helpers. Start at [`echo`]: the echo backend of the Gateway API conformance
//! contract, used by `trellis echo`, the integration tests and the conformance runner.

pub mod echo;
