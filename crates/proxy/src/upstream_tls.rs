//! TLS to upstream endpoints (BackendTLSPolicy): one rustls (ring) client config per cluster
//! TLS setting. SNI is the policy hostname; the chain must lead to the policy's CAs (or the
//! well-known roots of `webpki-roots`), and the certificate must match the hostname or, when
//! given, one of the subjectAltNames. The Gateway's client certificate is offered when asked.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use trellis_ir::{SubjectAltName, UpstreamProtocol, UpstreamTls};

/// Why a cluster's TLS settings cannot be used; every connection to it then fails (503).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum UpstreamTlsError {
    #[error("no trusted CA certificate (a BackendTLSPolicy without a usable CA fails closed)")]
    NoTrustAnchors,
    #[error("server name {0:?} is not a valid DNS name")]
    ServerName(String),
    #[error("client certificate {0}: {1}")]
    ClientCertificate(String, String),
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// What a connector needs to wrap a connected socket in TLS.
pub(crate) struct TlsSetup {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: ServerName<'static>,
}

/// A stable key for a TLS setting, so pools of different settings are never shared (and a
/// rotated client certificate or CA gets fresh connections).
pub(crate) fn fingerprint(tls: &UpstreamTls) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tls.server_name.hash(&mut h);
    tls.ca_pem.hash(&mut h);
    tls.use_system_roots.hash(&mut h);
    format!("{:?}", tls.subject_alt_names).hash(&mut h);
    if let Some(c) = &tls.client_certificate {
        c.cert_pem.hash(&mut h);
        c.key_pem.hash(&mut h);
    }
    h.finish()
}

/// Builds the client side of TLS for one cluster. ALPN offers `h2` to h2 clusters and
/// `http/1.1` otherwise.
pub(crate) fn setup(
    tls: &UpstreamTls,
    protocol: UpstreamProtocol,
) -> Result<TlsSetup, UpstreamTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let cas = CertificateDer::pem_slice_iter(tls.ca_pem.as_bytes()).filter_map(Result::ok);
    roots.add_parsable_certificates(cas);
    if tls.use_system_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if roots.is_empty() {
        return Err(UpstreamTlsError::NoTrustAnchors);
    }
    let server_name = ServerName::try_from(tls.server_name.clone())
        .map_err(|_| UpstreamTlsError::ServerName(tls.server_name.clone()))?;
    let rustls_err = |e: rustls::Error| UpstreamTlsError::Rustls(e.to_string());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(rustls_err)?;
    let builder = if tls.subject_alt_names.is_empty() {
        builder.with_root_certificates(roots)
    } else {
        let verifier = SanVerifier::new(roots, tls.subject_alt_names.clone(), provider)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    };
    let mut config = match &tls.client_certificate {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let bad = |m: String| UpstreamTlsError::ClientCertificate(c.name.clone(), m);
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes())
                .map_err(|e| bad(e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(e.to_string()))?
        }
    };
    config.alpn_protocols = match protocol {
        UpstreamProtocol::H2c => vec![b"h2".to_vec()],
        _ => vec![b"http/1.1".to_vec()],
    };
    Ok(TlsSetup {
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name,
    })
}

/// Chain validation as usual, but the name check is replaced by the subjectAltNames: the
/// certificate must carry at least one of them (DNS names may match by wildcard; URIs exactly).
#[derive(Debug)]
struct SanVerifier {
    roots: RootCertStore,
    sans: Vec<SubjectAltName>,
    provider: Arc<CryptoProvider>,
}

impl SanVerifier {
    fn new(
        roots: RootCertStore,
        sans: Vec<SubjectAltName>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, UpstreamTlsError> {
        Ok(SanVerifier {
            roots,
            sans,
            provider,
        })
    }

    fn san_matches(&self, der: &[u8]) -> bool {
        let (dns, uris) = cert_sans(der);
        self.sans.iter().any(|san| match san {
            SubjectAltName::Hostname(h) => dns.iter().any(|d| dns_matches(d, h)),
            SubjectAltName::Uri(u) => uris.iter().any(|x| x == u),
        })
    }
}

/// A certificate DNS name against a policy name, either side possibly `*.`-prefixed (one label).
fn dns_matches(cert: &str, want: &str) -> bool {
    let (cert, want) = (cert.to_ascii_lowercase(), want.to_ascii_lowercase());
    let parent = |n: &str| n.split_once('.').map(|(_, p)| p.to_string());
    match (cert.strip_prefix("*."), want.strip_prefix("*.")) {
        (None, None) | (Some(_), Some(_)) => cert == want,
        (Some(suffix), None) => parent(&want).as_deref() == Some(suffix),
        (None, Some(suffix)) => parent(&cert).as_deref() == Some(suffix),
    }
}

/// The DNS and URI entries of a certificate's subjectAltName extension.
fn cert_sans(der: &[u8]) -> (Vec<String>, Vec<String>) {
    use x509_parser::extensions::GeneralName;
    let (mut dns, mut uris) = (Vec::new(), Vec::new());
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return (dns, uris);
    };
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return (dns, uris);
    };
    for n in &ext.value.general_names {
        match n {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::URI(u) => uris.push(u.to_string()),
            _ => {}
        }
    }
    (dns, uris)
}

impl ServerCertVerifier for SanVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.san_matches(end_entity.as_ref()) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(ca_pem: &str) -> UpstreamTls {
        UpstreamTls {
            server_name: "abc.example.com".into(),
            ca_pem: ca_pem.into(),
            use_system_roots: false,
            subject_alt_names: vec![],
            client_certificate: None,
        }
    }

    #[test]
    fn nothing_trusted_fails_closed() {
        let e = setup(&tls(""), UpstreamProtocol::Http1).err();
        assert!(matches!(e, Some(UpstreamTlsError::NoTrustAnchors)), "{e:?}");
    }

    #[test]
    fn system_roots_are_enough_and_fingerprints_differ() {
        let mut t = tls("");
        t.use_system_roots = true;
        assert!(setup(&t, UpstreamProtocol::Http1).is_ok());
        assert_ne!(fingerprint(&t), fingerprint(&tls("")));
    }

    #[test]
    fn uri_sans_are_read_from_the_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["a.example.com".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://a.example.com/x".try_into().unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (dns, uris) = cert_sans(cert.der());
        assert_eq!(
            (dns, uris),
            (
                vec!["a.example.com".to_string()],
                vec!["spiffe://a.example.com/x".to_string()]
            )
        );
    }

    #[test]
    fn dns_names_match_with_one_wildcard_label() {
        assert!(dns_matches("a.example.com", "A.example.com"));
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(dns_matches("a.example.com", "*.example.com"));
        assert!(dns_matches("*.example.com", "*.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("b.example.com", "a.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
    }
}
