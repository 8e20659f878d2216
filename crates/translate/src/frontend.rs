//! `spec.tls.frontend` (client-certificate validation on HTTPS listeners): the CA references are
//! checked for precise statuses and the CA bundle goes to the listener's bind. A listener whose
//! CA references are invalid is not served rather than served without validation.

use crate::conditions::Cond;
use crate::listeners::{ListenerState, Protocol};
use crate::refs::{permitted, From, To};
use serde_json::Value;
use trellis_model::{ResourceSet, GATEWAY_GROUP};

/// The validation block that applies to a port: a `perPort` entry, else `default`.
fn validation_for(frontend: &Value, port: i64) -> Option<&Value> {
    let per_port = frontend
        .get("perPort")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for entry in per_port {
        if entry.get("port").and_then(Value::as_i64) == Some(port) {
            return entry.get("tls").and_then(|t| t.get("validation"));
        }
    }
    frontend.get("default").and_then(|d| d.get("validation"))
}

/// Updates HTTPS listeners' conditions; returns whether any applicable validation uses
/// `AllowInsecureFallback` (the Gateway then reports InsecureFrontendValidationMode).
pub fn apply(
    resources: &ResourceSet,
    gateway_ns: &str,
    tls: Option<&Value>,
    listeners: &mut [ListenerState],
) -> bool {
    let Some(frontend) = tls.and_then(|t| t.get("frontend")) else {
        return false;
    };
    let mut insecure = false;
    for l in listeners
        .iter_mut()
        .filter(|l| l.protocol == Protocol::Https && l.accepted.status)
    {
        let Some(validation) = validation_for(frontend, l.spec.port) else {
            continue;
        };
        let refs = validation
            .get("caCertificateRefs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if refs.is_empty() {
            continue;
        }
        let fallback =
            validation.get("mode").and_then(Value::as_str) == Some("AllowInsecureFallback");
        insecure |= fallback;
        match check_refs(resources, gateway_ns, &refs) {
            Ok(ca_pem) => {
                l.client_validation = Some(trellis_ir::ClientValidation {
                    ca_pem,
                    allow_insecure_fallback: fallback,
                });
            }
            Err((reason, message)) => {
                // A certificateRef error, if any, stays: it is the more basic problem.
                if l.resolved.status {
                    l.resolved = Cond::new("ResolvedRefs", false, reason, message);
                }
                l.accepted = Cond::new(
                    "Accepted",
                    false,
                    "NoValidCACertificate",
                    "no valid CA certificate for client validation",
                );
                l.refs_block = true;
            }
        }
    }
    insecure
}

/// The concatenated PEM of every referenced CA, or the first problem as (reason, message).
fn check_refs(
    resources: &ResourceSet,
    gateway_ns: &str,
    refs: &[Value],
) -> Result<String, (&'static str, String)> {
    let mut bundle = String::new();
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    for r in refs {
        let s = |k: &str| r.get(k).and_then(Value::as_str);
        let (group, kind, name) = (
            s("group").unwrap_or(""),
            s("kind").unwrap_or("ConfigMap"),
            s("name").unwrap_or(""),
        );
        let ns = s("namespace").unwrap_or(gateway_ns);
        if !group.is_empty() || kind != "ConfigMap" {
            return Err((
                "InvalidCACertificateKind",
                format!("caCertificateRef kind {group}/{kind} is not supported"),
            ));
        }
        let from = From {
            group: GATEWAY_GROUP,
            kind: "Gateway",
            namespace: gateway_ns,
        };
        if !permitted(
            resources,
            &from,
            &To {
                group: "",
                kind: "ConfigMap",
                namespace: ns,
                name,
            },
        ) {
            return Err((
                "RefNotPermitted",
                format!("no ReferenceGrant allows access to ConfigMap {ns}/{name}"),
            ));
        }
        let Some(cm) = resources.config_map(ns, name) else {
            return Err((
                "InvalidCACertificateRef",
                format!("ConfigMap {ns}/{name} not found"),
            ));
        };
        let pem = cm.data.get("ca.crt").map(String::as_str).unwrap_or("");
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
        if !matches!(certs, Ok(c) if !c.is_empty()) {
            return Err((
                "InvalidCACertificateRef",
                format!("ConfigMap {ns}/{name} ca.crt holds no valid PEM certificate"),
            ));
        }
        bundle.push_str(pem.trim_end());
        bundle.push('\n');
    }
    Ok(bundle)
}
