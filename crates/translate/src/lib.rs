//! Pure translation: [`translate`] turns a [`ResourceSet`] into the proxy's IR plus the Gateway
//! API status of every object. No I/O; user mistakes become status conditions.

use serde::{Deserialize, Serialize};
use trellis_model::ResourceSet;

/// Knobs that are not part of the resources.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// GatewayClasses with this `controllerName` are ours.
    pub controller_name: String,
    /// Gateways without `spec.addresses` get an address from this IPv4 pool (base, prefix length).
    pub address_pool: (std::net::Ipv4Addr, u8),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            controller_name: "trellis.dev/gateway-controller".to_string(),
            address_pool: (std::net::Ipv4Addr::new(127, 10, 0, 0), 16),
        }
    }
}

/// The status of one object, shaped exactly as the API server's `status` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub generation: i64,
    pub status: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translation {
    pub ir: trellis_ir::Config,
    pub statuses: Vec<ObjectStatus>,
}

pub fn translate(resources: &ResourceSet, options: &Options) -> Translation {
    let _ = (resources, options);
    Translation::default()
}
