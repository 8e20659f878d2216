//! Shared by the tests that run the real `trellis` binary: a Gateway + echo Backend config
//! and a child process that is killed if a test ends early.
#![allow(dead_code)]

use std::process::Child;

pub use trellis_testkit::fixtures::free_port;
use trellis_testkit::fixtures::{backend_yaml, gateway_yaml, route_yaml};

pub fn config(port: u16, backend: u16) -> String {
    gateway_yaml(port) + &backend_yaml("echo", &[backend]) + &route_yaml("web", "echo")
}

/// The running `trellis run`; killed (and reaped) on drop if it is still running.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
