//! TLS termination: a certificate resolver that picks a listener's certificate by SNI (exact,
//! then wildcard, then a fallback), and the rustls server configuration (ALPN h2, http/1.1).

use crate::routing::HostPattern;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use trellis_ir as ir;

#[derive(Debug)]
struct SniResolver {
    /// Exact hostnames first, then wildcards by descending suffix length.
    by_name: Vec<(HostPattern, Arc<CertifiedKey>)>,
    fallback: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(sni) = hello.server_name() {
            let sni = sni.trim_end_matches('.').to_ascii_lowercase();
            if let Some((_, k)) = self.by_name.iter().find(|(p, _)| p.matches(&sni)) {
                return Some(k.clone());
            }
        }
        self.fallback.clone()
    }
}

fn load(cert: &ir::Certificate) -> Option<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> =
        match CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes()).collect() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(cert = %cert.name, error = %e, "unreadable certificate chain");
                return None;
            }
        };
    let key = match PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(cert = %cert.name, error = %e, "unreadable private key");
            return None;
        }
    };
    match rustls::crypto::ring::sign::any_supported_type(&key) {
        Ok(signer) if !chain.is_empty() => Some(Arc::new(CertifiedKey::new(chain, signer))),
        Ok(_) => {
            tracing::warn!(cert = %cert.name, "empty certificate chain");
            None
        }
        Err(e) => {
            tracing::warn!(cert = %cert.name, error = %e, "unsupported private key");
            None
        }
    }
}

fn resolver(bind: &ir::Bind) -> SniResolver {
    let mut exact = Vec::new();
    let mut wild = Vec::new();
    let mut catch_all = None;
    let mut first = None;
    for l in &bind.listeners {
        let Some(key) = l.certificates.iter().find_map(load) else {
            continue;
        };
        first.get_or_insert_with(|| key.clone());
        match HostPattern::parse(l.hostname.as_deref()) {
            HostPattern::Any => {
                catch_all.get_or_insert(key);
            }
            p @ HostPattern::Exact(_) => exact.push((p, key)),
            p @ HostPattern::Wildcard(_) => wild.push((p, key)),
        }
    }
    let len = |p: &HostPattern| match p {
        HostPattern::Wildcard(s) | HostPattern::Exact(s) => s.len(),
        HostPattern::Any => 0,
    };
    wild.sort_by_key(|(p, _)| std::cmp::Reverse(len(p)));
    exact.extend(wild);
    SniResolver {
        by_name: exact,
        fallback: catch_all.or(first),
    }
}

/// The TLS configuration of an HTTPS bind; a bind without usable certificates fails handshakes.
pub(crate) fn server_config(bind: &ir::Bind) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &bind.client_validation {
        None => builder.with_no_client_auth(),
        Some(v) => builder.with_client_cert_verifier(client_verifier(v, provider)?),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(resolver(bind)));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Verifies client certificates against the bind's CA bundle. With the insecure fallback, a
/// certificate is still requested, but a missing or invalid one does not fail the handshake.
fn client_verifier(
    validation: &ir::ClientValidation,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(validation.ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| rustls::Error::General(format!("CA bundle: {e}")))?;
        roots.add(cert)?;
    }
    let strict =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| rustls::Error::General(format!("client certificate verifier: {e}")))?;
    if validation.allow_insecure_fallback {
        Ok(Arc::new(InsecureFallback(strict)))
    } else {
        Ok(strict)
    }
}

/// `AllowInsecureFallback`: asks for a certificate and checks it, but lets the client in when
/// it has none or an invalid one.
#[derive(Debug)]
struct InsecureFallback(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for InsecureFallback {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Err(e) = self.0.verify_client_cert(end_entity, intermediates, now) {
            tracing::debug!(error = %e, "client certificate not valid; allowed by AllowInsecureFallback");
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The server configuration of a terminating TLSRoute listener: its first usable certificate,
/// no ALPN (the plaintext is forwarded as raw TCP).
pub(crate) fn terminate_config(
    certs: &[ir::Certificate],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let key = certs
        .iter()
        .find_map(load)
        .ok_or_else(|| "no usable certificate".to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver {
            by_name: Vec::new(),
            fallback: Some(key),
        }));
    Ok(Arc::new(cfg))
}
