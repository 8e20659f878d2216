//! `gateway.networking.k8s.io` TCPRoute, UDPRoute and TLSRoute (v1; v1alpha2/v1alpha3 read the
//! same). The three kinds share one JSON shape: parentRefs, rules of weighted backendRefs, and
//! (TLSRoute only) hostnames matched against the ClientHello SNI.

use crate::httproute::{BackendObjectReference, ParentReference};
use crate::meta::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A TCPRoute, UDPRoute or TLSRoute; `kind` tells which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4Route {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: L4RouteSpec,
}

pub type TcpRoute = L4Route;
pub type UdpRoute = L4Route;
pub type TlsRoute = L4Route;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4RouteSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    /// TLSRoute only: SNI hostnames (exact or `*.suffix`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<L4RouteRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4RouteRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<L4BackendRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4BackendRef {
    #[serde(flatten)]
    pub backend: BackendObjectReference,
    /// Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_route_round_trips() {
        let v = serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"parentRefs": [{"name": "gw", "sectionName": "tls"}],
                     "hostnames": ["abc.example.com"],
                     "rules": [{"backendRefs": [{"name": "b", "port": 443, "weight": 3}]}]}
        });
        let r: TlsRoute = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.spec.rules[0].backend_refs[0].weight, Some(3));
        assert_eq!(r.spec.rules[0].backend_refs[0].backend.port, Some(443));
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }
}
