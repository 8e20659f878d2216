//! Policy selection, conflicts and validation reasons on small ResourceSets.

use super::*;
use trellis_model::SourcedObject;

/// A real (EC P-256, self-signed) CA certificate.
const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBfjCCASOgAwIBAgIUeMU/ZVLZfh7bz47upaD306zdOi4wCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJZ29sZGVuLWNhMB4XDTI2MTEyNjE0NTIyNloXDTM2MTEyMzE0\nNTIyNlowFDESMBAGA1UEAwwJZ29sZGVuLWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0D\nAQcDQgAE5ybKFQSguuNx/sSBqc5cC7FE0lAMCVQyOlwyd/KyyxvAGHo3M/LAIr3b\nCfUDSpvlbzsLEEp20P/iWHGEeNm3XKNTMFEwHQYDVR0OBBYEFB28STi/Wo8jGYqn\nlNuDkvioAMqXMB8GA1UdIwQYMBaAFB28STi/Wo8jGYqnlNuDkvioAMqXMA8GA1Ud\nEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAKXJilAPfNTKWyBcwR2gcFEc\nzhDWs7CJsRQ+4Md9086WAiEA5du+tuU3cdAyng3VyR7kvcJsoF+D7+CWVQ5FJRHN\n1DA=\n-----END CERTIFICATE-----\n";
/// Valid PEM and base64, but not a certificate.
const NOT_X509: &str = "-----BEGIN CERTIFICATE-----\nMIIBWjCCAQCgAwIBAgIUJ3m1m1aP7ZbM2wYjJ3m1m1aP7ZYwCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n";

fn set(yaml: &str) -> ResourceSet {
    let docs = trellis_model::parse_yaml_documents(yaml).unwrap();
    let objects = docs
        .into_iter()
        .map(|value| SourcedObject {
            source: "t".into(),
            value,
        })
        .collect();
    let (set, diags) = ResourceSet::from_objects(objects);
    assert!(diags.is_empty(), "{diags:?}");
    set
}

fn policy(
    name: &str,
    created: &str,
    target: &str,
    section: Option<&str>,
    validation: &str,
) -> String {
    let section = section
        .map(|s| format!(", sectionName: {s}"))
        .unwrap_or_default();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {{name: {name}, namespace: ns, creationTimestamp: \"{created}\"}}\nspec:\n  targetRefs: [{{group: \"\", kind: Service, name: {target}{section}}}]\n  validation: {validation}\n---\n"
    )
}

const VALID: &str =
    "{caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}], hostname: a.example.com}";

fn config_map() -> String {
    let cm = |name: &str, pem: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: ns}}\ndata:\n  ca.crt: {pem:?}\n---\n")
    };
    cm("ca", CA) + &cm("not-x509", NOT_X509)
}

#[test]
fn port_specific_beats_whole_service_then_oldest_then_name() {
    let yaml = [
        policy("b-all", "2026-01-01T00:00:00Z", "svc", None, VALID),
        policy("a-all", "2026-01-01T00:00:00Z", "svc", None, VALID),
        policy(
            "z-port",
            "2026-01-03T00:00:00Z",
            "svc",
            Some("https"),
            VALID,
        ),
        policy(
            "y-port",
            "2026-01-02T00:00:00Z",
            "svc",
            Some("https"),
            VALID,
        ),
    ]
    .concat();
    let r = set(&yaml);
    let name = |port: &str| effective(&r, "ns", "svc", port).map(|(k, _)| k.name.clone());
    assert_eq!(
        name("https").as_deref(),
        Some("y-port"),
        "oldest port-specific"
    );
    assert_eq!(
        name("other").as_deref(),
        Some("a-all"),
        "same age: first by name"
    );
    assert_eq!(effective(&r, "ns", "nope", "https"), None);
    let key = |n: &str| ObjectKey::new("ns", n);
    let p = |n: &str| &r.backend_tls_policies[&key(n)];
    assert!(conflicted(&r, &key("z-port"), p("z-port"), "svc", "https"));
    assert!(!conflicted(&r, &key("y-port"), p("y-port"), "svc", "https"));
    assert!(conflicted(&r, &key("b-all"), p("b-all"), "svc", "https"));
    assert!(
        !conflicted(&r, &key("a-all"), p("a-all"), "svc", "https"),
        "a whole-Service policy does not conflict with a port-specific one"
    );
}

#[test]
fn checks_follow_the_spec_reasons() {
    let cases = [
        (VALID, true, "Accepted", "ResolvedRefs"),
        (
            "{caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}, {group: \"\", kind: ConfigMap, name: gone}], hostname: a.example.com}",
            true,
            "Accepted",
            "InvalidCACertificateRef",
        ),
        (
            "{caCertificateRefs: [{group: \"\", kind: ConfigMap, name: not-x509}], hostname: a.example.com}",
            false,
            "NoValidCACertificate",
            "InvalidCACertificateRef",
        ),
        (
            "{caCertificateRefs: [{group: \"\", kind: Secret, name: ca}], hostname: a.example.com}",
            false,
            "NoValidCACertificate",
            "InvalidKind",
        ),
        (
            "{wellKnownCACertificates: System, caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}], hostname: a.example.com}",
            false,
            "Invalid",
            "ResolvedRefs",
        ),
        ("{wellKnownCACertificates: Other, hostname: a.example.com}", false, "Invalid", "ResolvedRefs"),
        ("{hostname: a.example.com}", false, "Invalid", "ResolvedRefs"),
        (
            "{wellKnownCACertificates: System, hostname: \"*.example.com\"}",
            false,
            "Invalid",
            "ResolvedRefs",
        ),
        (
            "{wellKnownCACertificates: System, hostname: a.example.com, subjectAltNames: [{type: URI, uri: nocolon}]}",
            false,
            "Invalid",
            "ResolvedRefs",
        ),
    ];
    for (validation, accepted, reason, resolved) in cases {
        let r = set(&format!(
            "{}{}",
            config_map(),
            policy("p", "", "svc", None, validation)
        ));
        let c = check(
            &r,
            "ns",
            &r.backend_tls_policies[&ObjectKey::new("ns", "p")],
        );
        assert_eq!(
            (c.accepted.status, c.accepted.reason, c.resolved.reason),
            (accepted, reason, resolved),
            "{validation}"
        );
        if !accepted {
            assert!(
                c.tls.ca_pem.is_empty() && !c.tls.use_system_roots,
                "fails closed"
            );
        } else {
            assert_eq!(
                c.tls.ca_pem.trim(),
                CA.trim(),
                "the valid reference is used"
            );
        }
    }
}

#[test]
fn system_roots_and_subject_alt_names_reach_the_ir() {
    let v = "{wellKnownCACertificates: System, hostname: a.example.com, subjectAltNames: [{type: Hostname, hostname: \"*.b.example.com\"}, {type: URI, uri: \"spiffe://td/x\"}]}";
    let r = set(&policy("p", "", "svc", None, v));
    let c = check(
        &r,
        "ns",
        &r.backend_tls_policies[&ObjectKey::new("ns", "p")],
    );
    assert!(c.accepted.status, "{:?}", c.accepted);
    assert!(c.tls.use_system_roots);
    assert_eq!(c.tls.server_name, "a.example.com");
    assert_eq!(
        c.tls.subject_alt_names,
        vec![
            ir::SubjectAltName::Hostname("*.b.example.com".into()),
            ir::SubjectAltName::Uri("spiffe://td/x".into())
        ]
    );
}

#[test]
fn name_syntax() {
    assert!(is_precise_hostname("abc.example.com"));
    assert!(!is_precise_hostname("*.example.com"));
    assert!(!is_precise_hostname("Abc.example.com"));
    assert!(!is_precise_hostname("-a.example.com"));
    assert!(!is_precise_hostname(""));
    assert!(is_hostname("*.example.com"));
    assert!(is_absolute_uri("spiffe://abc.example.com/test-identity"));
    assert!(!is_absolute_uri("1http://x"));
    assert!(!is_absolute_uri("spiffe://a b"));
}
