//! TLS the proxy originates to a cluster's endpoints (from a BackendTLSPolicy, plus the
//! Gateway's client certificate).

use crate::Certificate;
use serde::{Deserialize, Serialize};

/// How to connect to a cluster's endpoints over TLS. When neither `ca_pem` holds a certificate
/// nor `use_system_roots` is set, nothing is trusted and every connection fails (a policy whose
/// CA references are all invalid must fail closed).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTls {
    /// Sent as SNI; the certificate must match it unless `subject_alt_names` is non-empty.
    pub server_name: String,
    /// PEM CA certificates the endpoint's chain must lead to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_pem: String,
    /// Also trust the well-known public CAs (`wellKnownCACertificates: System`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_system_roots: bool,
    /// When set, the certificate must carry at least one of these (instead of `server_name`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<SubjectAltName>,
    /// Presented when the endpoint asks for a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<Certificate>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.server_name)
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("use_system_roots", &self.use_system_roots)
            .field("subject_alt_names", &self.subject_alt_names)
            // Certificate's Debug prints its name only, never the key.
            .field("client_certificate", &self.client_certificate)
            .finish()
    }
}

impl UpstreamTls {
    /// Structural checks (see [`crate::Config::validate`]); trusting nothing is allowed.
    pub(crate) fn check(&self) -> Result<(), String> {
        let bad_name = |n: &str| n.is_empty() || n.chars().any(|c| c.is_whitespace());
        if bad_name(&self.server_name) {
            return Err(format!(
                "server name {:?} is not a host name",
                self.server_name
            ));
        }
        for san in &self.subject_alt_names {
            let (SubjectAltName::Hostname(v) | SubjectAltName::Uri(v)) = san;
            if bad_name(v) {
                return Err(format!("subject alt name {v:?} is empty or has spaces"));
            }
        }
        match &self.client_certificate {
            Some(c) if c.cert_pem.is_empty() || c.key_pem.is_empty() => Err(format!(
                "client certificate {} lacks a certificate or key",
                c.name
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum SubjectAltName {
    /// A DNS name (`*.example.com` in the certificate covers `a.example.com`).
    Hostname(String),
    /// Compared exactly, e.g. `spiffe://cluster.local/ns/app/sa/web`.
    Uri(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_key_material() {
        let tls = UpstreamTls {
            server_name: "a.example.com".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----".into(),
            use_system_roots: false,
            subject_alt_names: vec![SubjectAltName::Uri("spiffe://a/b".into())],
            client_certificate: Some(Certificate {
                name: "ns/client".into(),
                cert_pem: "CERTDATA".into(),
                key_pem: "SECRETKEY".into(),
            }),
        };
        let s = format!("{tls:?}");
        assert!(
            s.contains("a.example.com") && s.contains("ns/client"),
            "{s}"
        );
        assert!(!s.contains("SECRETKEY") && !s.contains("BEGIN"), "{s}");
    }

    #[test]
    fn check_rejects_empty_names_and_half_certificates() {
        let mut tls = UpstreamTls {
            server_name: "a.example.com".into(),
            ca_pem: String::new(),
            use_system_roots: false,
            subject_alt_names: vec![],
            client_certificate: None,
        };
        assert_eq!(
            tls.check(),
            Ok(()),
            "trusting nothing is valid: it fails closed"
        );
        tls.server_name = String::new();
        assert!(tls.check().is_err());
        tls.server_name = "a.example.com".into();
        tls.subject_alt_names = vec![SubjectAltName::Uri(String::new())];
        assert!(tls.check().is_err());
        tls.subject_alt_names.clear();
        tls.client_certificate = Some(Certificate {
            name: "ns/c".into(),
            cert_pem: "x".into(),
            key_pem: String::new(),
        });
        assert!(tls.check().is_err());
    }
}
