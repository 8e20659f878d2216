//! TLS termination: a certificate resolver that picks a listener's certificate by SNI (exact,
//! then wildcard, then a fallback), and the rustls server configuration (ALPN h2, http/1.1).

use crate::routing::HostPattern;
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
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver(bind)));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
