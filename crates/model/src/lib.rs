//! Resource types Trellis understands (Gateway API v1.6.1, core Kubernetes kinds it reads, and the
//! `trellis.dev` kinds) with the exact JSON shape an API server returns, plus [`ResourceSet`]: the
//! plain immutable snapshot every provider produces and the translator consumes.
//!
//! Start at [`ResourceSet::from_objects`]; the types live in [`meta`], [`gateway`],
//! [`httproute`], [`grpcroute`] and [`core`].

pub mod core;
pub mod gateway;
pub mod grpcroute;
pub mod httproute;
pub mod l4route;
pub mod listenerset;
pub mod meta;
pub mod policy;
mod set;

pub use crate::core::{
    Backend, BackendEndpoint, BackendSpec, ConfigMap, EndpointConditions, EndpointPort,
    EndpointSlice, Namespace, Secret, Service, ServicePort, ServiceSpec, SliceEndpoint,
};
pub use gateway::{
    AllowedRoutes, Gateway, GatewayClass, GatewayClassSpec, GatewaySpec, GatewaySpecAddress,
    Listener, ListenerTls, ParametersReference, ReferenceGrant, ReferenceGrantFrom,
    ReferenceGrantSpec, ReferenceGrantTo, RouteGroupKind, RouteNamespaces, SecretObjectReference,
};
pub use grpcroute::*;
pub use httproute::*;
pub use l4route::*;
pub use listenerset::{
    AllowedListeners, ListenerNamespaces, ListenerSet, ListenerSetSpec, ParentGatewayReference,
};
pub use meta::{IntOrString, LabelSelector, LabelSelectorRequirement, ObjectMeta};
pub use policy::{
    BackendTlsPolicy, BackendTlsPolicySpec, BackendTlsValidation, LocalObjectReference,
    PolicyTargetReference, SubjectAltName,
};
pub use set::{ObjectKey, ResourceSet, UnsupportedObject};

use serde::{Deserialize, Serialize};

/// API group of the Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// API group of Trellis' own kinds.
pub const TRELLIS_GROUP: &str = "trellis.dev";
/// Label every Namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// One raw object as read by a provider, before typing. `source` names where it came from
/// (`path/to/file.yaml#2` for the third document of a file) so errors can point at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcedObject {
    pub source: String,
    pub value: serde_json::Value,
}

/// Something wrong with the input that is not a Gateway API status (unparseable YAML, an
/// unknown kind, a document without a name). Reported in logs, `validate` and the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub source: String,
    /// `Kind namespace/name` when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub message: String,
}

/// Parses a (multi-document) YAML text into JSON values; empty documents are skipped. Errors
/// carry line/column.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<serde_json::Value>, String> {
    // The default budget stops at 1,024 documents and 250,000 nodes: real route tables are
    // bigger. Alias-expansion and nesting limits (the YAML-bomb defences) keep their defaults.
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1_000_000,
            max_nodes: 50_000_000,
            max_events: 200_000_000,
        },
    };
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Splits an `apiVersion` into (group, version); the core group is `""`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod large_files {
    #[test]
    fn a_file_with_many_documents_parses() {
        let doc =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\ndata: {a: b}\n";
        let text = vec![doc; 5_000].join("---\n");
        assert_eq!(super::parse_yaml_documents(&text).unwrap().len(), 5_000);
    }
}
