//! The TLS Secrets and CA ConfigMaps the upstream suite generates at startup (README
//! "Create the objects the suite generates"), made with rcgen once per run.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const INFRA: &str = "gateway-conformance-infra";
const APP: &str = "gateway-conformance-app-backend";
const WEB: &str = "gateway-conformance-web-backend";

#[derive(Debug, thiserror::Error)]
#[error("generating certificates: {0}")]
pub struct CertError(#[from] rcgen::Error);

/// PEM certificate and key.
#[derive(Debug, Clone)]
pub struct TlsPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// All generated objects, addressable as `Secret ns/name` / `ConfigMap ns/name`.
#[derive(Debug, Clone, Default)]
pub struct CertStore {
    secrets: BTreeMap<String, TlsPair>,
    config_maps: BTreeMap<String, String>,
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(cn: &str) -> Result<Ca, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let pem = params.self_signed(&key)?.pem();
    Ok(Ca { params, key, pem })
}

fn leaf_params(
    cn: &str,
    dns: &[&str],
    uris: &[&str],
    client: bool,
) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    for d in dns {
        params
            .subject_alt_names
            .push(SanType::DnsName((*d).try_into()?));
    }
    for u in uris {
        params
            .subject_alt_names
            .push(SanType::URI((*u).try_into()?));
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = if client {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    } else {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    };
    Ok(params)
}

fn self_signed(cn: &str, dns: &[&str], uris: &[&str]) -> Result<TlsPair, CertError> {
    let params = leaf_params(cn, dns, uris, false)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(TlsPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn signed(
    ca: &Ca,
    cn: &str,
    dns: &[&str],
    uris: &[&str],
    client: bool,
) -> Result<TlsPair, CertError> {
    let params = leaf_params(cn, dns, uris, client)?;
    let key = KeyPair::generate()?;
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(TlsPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

impl CertStore {
    /// Generates every object of the README table.
    pub fn generate() -> Result<CertStore, CertError> {
        let mut s = CertStore::default();
        let key = |ns: &str, name: &str| format!("{ns}/{name}");
        s.secrets.insert(
            key(INFRA, "tls-validity-checks-certificate"),
            self_signed("tls-validity-checks", &["*.org", "*.wildcard.org"], &["*"])?,
        );
        s.secrets.insert(
            key(WEB, "certificate"),
            self_signed("certificate", &[], &["*"])?,
        );
        s.config_maps
            .insert(key(WEB, "web-backend-cm"), ca("web-backend-ca")?.pem);

        let a = ca("ca-a")?;
        s.secrets.insert(
            key(INFRA, "tls-validity-checks-client-certificate"),
            signed(&a, "client-a", &[], &[], true)?,
        );
        s.config_maps.insert(
            key(INFRA, "tls-validity-checks-ca-certificate"),
            a.pem.clone(),
        );
        let b = ca("ca-b")?;
        s.secrets.insert(
            key(INFRA, "tls-validity-checks-per-port-client-certificate"),
            signed(&b, "client-b", &[], &[], true)?,
        );
        s.config_maps.insert(
            key(INFRA, "tls-validity-checks-per-port-ca-certificate"),
            b.pem.clone(),
        );

        let c = ca("ca-c")?;
        s.config_maps
            .insert(key(INFRA, "tls-checks-ca-certificate"), c.pem.clone());
        s.secrets.insert(
            key(INFRA, "tls-checks-certificate"),
            signed(
                &c,
                "abc.example.com",
                &["abc.example.com", "other.example.com"],
                &["spiffe://abc.example.com/test-identity"],
                false,
            )?,
        );
        s.secrets.insert(
            key(INFRA, "tls-checks-client-certificate"),
            signed(&c, "client-c", &[], &[], true)?,
        );
        let passthrough = signed(&c, "abc.example.com", &["abc.example.com"], &[], false)?;
        s.secrets.insert(
            key(INFRA, "tls-passthrough-checks-certificate"),
            passthrough.clone(),
        );
        s.secrets
            .insert(key(APP, "tls-passthrough-checks-certificate"), passthrough);
        s.secrets.insert(
            key(INFRA, "tls-terminate-checks-certificate"),
            signed(&c, "tls.example.com", &["tls.example.com"], &[], false)?,
        );
        s.config_maps.insert(
            key(INFRA, "mismatch-ca-certificate"),
            ca("mismatch-ca")?.pem,
        );
        Ok(s)
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<&TlsPair> {
        self.secrets.get(&format!("{namespace}/{name}"))
    }

    pub fn config_map_ca(&self, namespace: &str, name: &str) -> Option<&str> {
        self.config_maps
            .get(&format!("{namespace}/{name}"))
            .map(String::as_str)
    }

    /// Value of `key` in `kind` `ns/name` (`tls.crt`/`tls.key` of a Secret, `ca.crt` of a ConfigMap).
    pub fn lookup(&self, kind: &str, reference: &str, key: &str) -> Option<String> {
        let (ns, name) = reference.split_once('/')?;
        match (kind, key) {
            ("Secret", "tls.crt") => self.secret(ns, name).map(|p| p.cert_pem.clone()),
            ("Secret", "tls.key") => self.secret(ns, name).map(|p| p.key_pem.clone()),
            ("ConfigMap", "ca.crt") => self.config_map_ca(ns, name).map(str::to_string),
            _ => None,
        }
    }

    /// The objects to write to the config dir.
    pub fn objects(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (k, pair) in &self.secrets {
            let (ns, name) = k.split_once('/').unwrap_or(("default", k));
            out.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "type": "kubernetes.io/tls",
                "data": {
                    "tls.crt": base64(pair.cert_pem.as_bytes()),
                    "tls.key": base64(pair.key_pem.as_bytes()),
                }
            }));
        }
        for (k, pem) in &self.config_maps {
            let (ns, name) = k.split_once('/').unwrap_or(("default", k));
            out.push(json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns},
                "data": {"ca.crt": pem}
            }));
        }
        out
    }
}

/// Standard base64 with padding (what Kubernetes uses for Secret `data`).
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Decodes standard base64 (whitespace ignored); `None` on invalid input.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in input.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "hello world!"] {
            assert_eq!(base64_decode(&base64(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn generates_the_readme_objects() {
        let s = CertStore::generate().unwrap();
        assert!(s.secret(INFRA, "tls-validity-checks-certificate").is_some());
        assert!(s
            .lookup(
                "ConfigMap",
                "gateway-conformance-infra/tls-checks-ca-certificate",
                "ca.crt"
            )
            .is_some());
        assert!(s
            .lookup(
                "Secret",
                "gateway-conformance-infra/tls-checks-client-certificate",
                "tls.crt"
            )
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        let objs = s.objects();
        assert!(objs.iter().any(|o| o["kind"] == "Secret"
            && o["metadata"]["namespace"] == APP
            && o["type"] == "kubernetes.io/tls"));
    }
}
