//! HTTPS for the echo: rustls (ring) server config with ALPN `h2`/`http/1.1`, an optional
//! client certificate (any certificate is accepted, its signature checked), and the `tls`
//! object of the echo JSON in the Go echo's wording.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ProtocolVersion, SignatureScheme};
use serde::Serialize;

/// Why a certificate / key pair cannot serve HTTPS.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("no certificate in the PEM certificate chain")]
    NoCertificate,
    #[error("bad PEM certificate: {0}")]
    Certificate(String),
    #[error("bad PEM private key: {0}")]
    Key(String),
    #[error("rustls rejected the certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

pub(crate) fn acceptor(
    cert_pem: &str,
    key_pem: &str,
) -> Result<tokio_rustls::TlsAcceptor, TlsConfigError> {
    server_config(cert_pem, key_pem, &[b"h2", b"http/1.1"], true)
        .map(tokio_rustls::TlsAcceptor::from)
}

/// A TLS 1.2+ server config (ring) for this chain and key offering `alpn`; with
/// `ask_client_cert`, any client certificate is requested (not required) and accepted.
pub(crate) fn server_config(
    cert_pem: &str,
    key_pem: &str,
    alpn: &[&[u8]],
    ask_client_cert: bool,
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsConfigError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyClientCert {
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?;
    let mut config = if ask_client_cert {
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)?
    } else {
        builder.with_no_client_auth().with_single_cert(certs, key)?
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The `tls` object of the echo JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TlsInfo {
    version: String,
    server_name: String,
    negotiated_protocol: String,
    cipher_suite: String,
    peer_certificates: Vec<String>,
}

impl TlsInfo {
    pub(crate) fn from_connection(conn: &rustls::ServerConnection) -> Self {
        TlsInfo {
            version: conn
                .protocol_version()
                .map(version_name)
                .unwrap_or_default(),
            server_name: conn.server_name().unwrap_or_default().to_string(),
            negotiated_protocol: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| cipher_name(s.suite()))
                .unwrap_or_default(),
            peer_certificates: conn
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|der| cert_pem(der.as_ref()))
                .collect(),
        }
    }
}

/// One DER certificate as PEM text with LF line endings (Go's `pem.Encode`).
pub(crate) fn cert_pem(der: &[u8]) -> String {
    let pem = pem::Pem::new("CERTIFICATE", der);
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem, config)
}

pub(crate) fn version_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    }
}

/// Go's `tls.CipherSuiteName`: TLS 1.3 suites are `TLS_…`, rustls calls them `TLS13_…`.
pub(crate) fn cipher_name(suite: rustls::CipherSuite) -> String {
    let name = suite
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{suite:?}"));
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// Asks for a client certificate without requiring one and accepts any certificate: the echo
/// only reports what it received (`peerCertificates`). Handshake signatures are still checked,
/// so the peer does hold the key.
#[derive(Debug)]
struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls13_cipher_names_follow_go() {
        assert_eq!(
            cipher_name(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            cipher_name(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }

    #[test]
    fn garbage_pem_is_an_error() {
        assert!(matches!(
            acceptor("not a cert", "not a key"),
            Err(TlsConfigError::NoCertificate)
        ));
    }
}
