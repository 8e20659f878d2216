//! `gateway.networking.k8s.io/v1` BackendTLSPolicy: how the Gateway originates TLS to the pods
//! of a Service (trusted CAs, the SNI / verified hostname, optional subjectAltNames).

use crate::meta::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTlsPolicy {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: BackendTlsPolicySpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTlsPolicySpec {
    pub target_refs: Vec<PolicyTargetReference>,
    pub validation: BackendTlsValidation,
    /// Implementation-specific options; none are recognised yet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// `LocalPolicyTargetReferenceWithSectionName`: an object in the policy's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetReference {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
    /// For a Service: the name of one of its ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTlsValidation {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificate_refs: Vec<LocalObjectReference>,
    /// `System`: the well-known public CAs.
    #[serde(
        default,
        rename = "wellKnownCACertificates",
        skip_serializing_if = "Option::is_none"
    )]
    pub well_known_ca_certificates: Option<String>,
    /// The SNI, and the name the certificate must match unless `subjectAltNames` is set.
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<SubjectAltName>,
}

/// An object in the referrer's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectAltName {
    /// `Hostname` or `URI`.
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_api_server_shape() {
        let v = serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "BackendTLSPolicy",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "targetRefs": [{"group": "", "kind": "Service", "name": "s", "sectionName": "https"}],
                "validation": {
                    "wellKnownCACertificates": "System",
                    "hostname": "a.example.com",
                    "subjectAltNames": [{"type": "URI", "uri": "spiffe://td/x"}]
                }
            }
        });
        let p: BackendTlsPolicy = serde_json::from_value(v.clone()).unwrap();
        let val = &p.spec.validation;
        assert_eq!(val.well_known_ca_certificates.as_deref(), Some("System"));
        assert_eq!(
            val.subject_alt_names[0].uri.as_deref(),
            Some("spiffe://td/x")
        );
        assert_eq!(p.spec.target_refs[0].section_name.as_deref(), Some("https"));
        assert_eq!(serde_json::to_value(&p).unwrap(), v, "round trip");
    }
}
