//! BackendTLSPolicy: validating policies, picking the one in force for each Service port
//! (conflicts resolved), the upstream TLS it gives that port's clusters, the Gateway's backend
//! client certificate, and the policies' status (one `ancestors` entry per Gateway using them).

mod status;

pub use status::{apply_client_certificates, statuses};

use crate::conditions::Cond;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use trellis_ir as ir;
use trellis_model::{BackendTlsPolicy, ObjectKey, ResourceSet, Service, ServicePort};

/// A policy's own verdict, independent of conflicts: its Accepted and ResolvedRefs conditions
/// and the TLS it asks for (which trusts nothing when the policy is unusable: fail closed).
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub accepted: Cond,
    pub resolved: Cond,
    pub tls: ir::UpstreamTls,
}

/// Validates one policy against the objects it references (CA ConfigMaps).
pub fn check(resources: &ResourceSet, ns: &str, policy: &BackendTlsPolicy) -> Checked {
    let v = &policy.spec.validation;
    let mut ca_pem = String::new();
    let mut bad_ref: Option<Cond> = None;
    for r in &v.ca_certificate_refs {
        match ca_from_ref(resources, ns, &r.group, &r.kind, &r.name) {
            Ok(pem) => {
                ca_pem.push_str(pem.trim_end());
                ca_pem.push('\n');
            }
            Err(c) => {
                bad_ref.get_or_insert(c);
            }
        }
    }
    let resolved = bad_ref.unwrap_or_else(|| {
        Cond::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "all CA certificate references are resolved",
        )
    });
    let hostname_ok = is_precise_hostname(&v.hostname);
    let sans: Result<Vec<ir::SubjectAltName>, String> = v
        .subject_alt_names
        .iter()
        .map(|s| match (s.type_.as_str(), &s.hostname, &s.uri) {
            ("Hostname", Some(h), _) if is_hostname(h) => {
                Ok(ir::SubjectAltName::Hostname(h.clone()))
            }
            ("URI", _, Some(u)) if is_absolute_uri(u) => Ok(ir::SubjectAltName::Uri(u.clone())),
            _ => Err(format!(
                "subjectAltName {s:?} is not a valid Hostname or URI entry"
            )),
        })
        .collect();
    let well_known = v
        .well_known_ca_certificates
        .as_deref()
        .filter(|w| !w.is_empty());
    let invalid = |m: String| Some(Cond::new("Accepted", false, "Invalid", m));
    let problem = if !hostname_ok {
        invalid(format!(
            "validation.hostname {:?} is not a precise DNS name",
            v.hostname
        ))
    } else if let Err(m) = &sans {
        invalid(m.clone())
    } else if well_known.is_some() && !v.ca_certificate_refs.is_empty() {
        invalid("caCertificateRefs and wellKnownCACertificates are mutually exclusive".into())
    } else if well_known.is_some_and(|w| w != "System") {
        invalid(format!(
            "wellKnownCACertificates {:?} is not supported (only System)",
            well_known.unwrap_or_default()
        ))
    } else if well_known.is_none() && v.ca_certificate_refs.is_empty() {
        invalid("one of caCertificateRefs or wellKnownCACertificates is required".into())
    } else if well_known.is_none() && ca_pem.is_empty() {
        Some(Cond::new(
            "Accepted",
            false,
            "NoValidCACertificate",
            "none of the caCertificateRefs holds a usable CA certificate",
        ))
    } else {
        None
    };
    let usable = problem.is_none();
    let accepted = problem
        .unwrap_or_else(|| Cond::new("Accepted", true, "Accepted", "the policy is accepted"));
    let tls = ir::UpstreamTls {
        // "invalid" (RFC 2606) only ever appears together with an empty trust store.
        server_name: if hostname_ok {
            v.hostname.clone()
        } else {
            "invalid".into()
        },
        ca_pem: if usable { ca_pem } else { String::new() },
        use_system_roots: usable && well_known.is_some(),
        subject_alt_names: if usable {
            sans.unwrap_or_default()
        } else {
            Vec::new()
        },
        client_certificate: None,
    };
    Checked {
        accepted,
        resolved,
        tls,
    }
}

/// The PEM text of a CA reference, or the ResolvedRefs=False condition explaining why not.
fn ca_from_ref(
    resources: &ResourceSet,
    ns: &str,
    group: &str,
    kind: &str,
    name: &str,
) -> Result<String, Cond> {
    let bad = |reason, m: String| Cond::new("ResolvedRefs", false, reason, m);
    if !group.is_empty() || kind != "ConfigMap" {
        return Err(bad(
            "InvalidKind",
            format!("caCertificateRef {group}/{kind} {name}: only core ConfigMaps are supported"),
        ));
    }
    let cm = resources.config_map(ns, name).ok_or_else(|| {
        bad(
            "InvalidCACertificateRef",
            format!("ConfigMap {ns}/{name} not found"),
        )
    })?;
    let pem = cm.data.get("ca.crt").ok_or_else(|| {
        bad(
            "InvalidCACertificateRef",
            format!("ConfigMap {ns}/{name} has no ca.crt"),
        )
    })?;
    let certs: Result<Vec<CertificateDer>, _> =
        CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let x509 = |c: &CertificateDer| x509_parser::parse_x509_certificate(c.as_ref()).is_ok();
    match certs {
        Ok(c) if !c.is_empty() && c.iter().all(x509) => Ok(pem.clone()),
        _ => Err(bad(
            "InvalidCACertificateRef",
            format!("ConfigMap {ns}/{name} ca.crt holds no valid PEM certificate"),
        )),
    }
}

/// RFC 1123 DNS name without wildcard (`PreciseHostname`).
fn is_precise_hostname(h: &str) -> bool {
    !h.starts_with('*') && is_hostname(h)
}

/// RFC 1123 DNS name, optionally with a leading `*.` label.
fn is_hostname(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// `scheme:rest` with a letter-led scheme and no spaces.
fn is_absolute_uri(u: &str) -> bool {
    match u.split_once(':') {
        Some((scheme, rest)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
                && !u.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Whether a targetRef of `policy` names this Service (and, with a sectionName, this port).
/// Returns the sectionName it used (`Some` = port-specific).
fn targets<'a>(
    policy: &'a BackendTlsPolicy,
    service: &str,
    port_name: &str,
) -> Option<Option<&'a str>> {
    policy
        .spec
        .target_refs
        .iter()
        .filter(|t| t.group.is_empty() && t.kind == "Service" && t.name == service)
        .map(|t| t.section_name.as_deref().filter(|s| !s.is_empty()))
        .filter(|s| s.is_none_or(|s| s == port_name))
        // A port-specific reference is more specific than a whole-Service one.
        .max_by_key(|s| s.is_some())
}

/// Precedence among policies with the same target: older creationTimestamp, then name.
fn rank(key: &ObjectKey, policy: &BackendTlsPolicy) -> (String, String) {
    let ts = policy
        .metadata
        .creation_timestamp
        .clone()
        .unwrap_or_default();
    (ts, key.name.clone())
}

/// Policies of `ns` targeting the Service port, as (key, policy, port-specific).
fn candidates<'a>(
    resources: &'a ResourceSet,
    ns: &'a str,
    service: &'a str,
    port_name: &'a str,
) -> impl Iterator<Item = (&'a ObjectKey, &'a BackendTlsPolicy, bool)> + 'a {
    // Keys sort by namespace first: visit only this namespace's policies.
    resources
        .backend_tls_policies
        .range(ObjectKey::new(ns, "")..)
        .take_while(move |(k, _)| k.namespace == ns)
        .filter_map(move |(k, p)| Some((k, p, targets(p, service, port_name)?.is_some())))
}

/// The policy in force for a Service port: a port-specific policy beats a whole-Service one
/// (they do not conflict); among equals the oldest wins, then the first by name.
pub fn effective<'a>(
    resources: &'a ResourceSet,
    ns: &'a str,
    service: &'a str,
    port_name: &'a str,
) -> Option<(&'a ObjectKey, &'a BackendTlsPolicy)> {
    candidates(resources, ns, service, port_name)
        .min_by(|a, b| {
            b.2.cmp(&a.2)
                .then_with(|| rank(a.0, a.1).cmp(&rank(b.0, b.1)))
        })
        .map(|(k, p, _)| (k, p))
}

/// Whether `key` loses to another policy with exactly the same target (Service and sectionName)
/// for this port.
pub fn conflicted(
    resources: &ResourceSet,
    key: &ObjectKey,
    policy: &BackendTlsPolicy,
    service: &str,
    port_name: &str,
) -> bool {
    let Some(mine) = targets(policy, service, port_name) else {
        return false;
    };
    let my_rank = rank(key, policy);
    candidates(resources, &key.namespace, service, port_name).any(|(k, p, _)| {
        k != key && targets(p, service, port_name) == Some(mine) && rank(k, p) < my_rank
    })
}

/// The upstream TLS for a Service port's clusters: that of the policy in force, if any.
pub fn for_port(
    resources: &ResourceSet,
    ns: &str,
    service: &Service,
    sp: &ServicePort,
) -> Option<ir::UpstreamTls> {
    let port_name = sp.name.as_deref().unwrap_or("");
    let (_, policy) = effective(resources, ns, &service.metadata.name, port_name)?;
    Some(check(resources, ns, policy).tls)
}

#[cfg(test)]
mod tests;
