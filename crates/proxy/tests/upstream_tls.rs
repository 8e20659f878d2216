//! TLS from the proxy to backends (BackendTLSPolicy) with real sockets: the testkit HTTPS echo
//! reports the SNI and client certificates it saw.

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio::net::TcpListener;
use trellis_ir as ir;
use trellis_testkit::echo::{self, EchoOptions};

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(cn: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A leaf signed by `ca`: (cert PEM, key PEM).
fn leaf(ca: &Ca, dns: &[&str], uris: &[&str]) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    for d in dns {
        let name = (*d).try_into().unwrap();
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    for u in uris {
        let uri = (*u).try_into().unwrap();
        params.subject_alt_names.push(SanType::URI(uri));
    }
    let key = KeyPair::generate().unwrap();
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca.params, &ca.key))
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// An HTTPS echo serving `cert`; returns its address.
async fn https_echo(cert: &(String, String)) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = EchoOptions::new("ns", "tls-backend-x-y").with_tls(cert.0.clone(), cert.1.clone());
    echo::spawn(listener, opts).local_addr
}

fn tls(server_name: &str, ca_pem: &str) -> ir::UpstreamTls {
    ir::UpstreamTls {
        server_name: server_name.into(),
        ca_pem: ca_pem.into(),
        use_system_roots: false,
        subject_alt_names: vec![],
        client_certificate: None,
    }
}

fn tls_cluster(name: &str, addr: std::net::SocketAddr, t: ir::UpstreamTls) -> ir::Cluster {
    ir::Cluster {
        name: name.into(),
        protocol: ir::UpstreamProtocol::Http1,
        endpoints: vec![ir::Endpoint::Socket(addr)],
        tls: Some(t),
    }
}

/// Serves one route per cluster (`/<cluster name>`) and returns the proxy's port.
async fn serve(p: &trellis_proxy::Proxy, clusters: Vec<ir::Cluster>) -> u16 {
    let port = free_port();
    let routes = clusters
        .iter()
        .map(|c| route(&c.name, prefix(&format!("/{}", c.name)), to(&c.name)))
        .collect();
    p.apply(simple(port, routes, clusters)).await.unwrap();
    port
}

#[tokio::test]
async fn verifies_the_backend_and_sends_the_policy_hostname_as_sni() {
    let good_ca = ca("good");
    let other_ca = ca("other");
    let backend = https_echo(&leaf(
        &good_ca,
        &["abc.example.com", "other.example.com"],
        &["spiffe://abc.example.com/test-identity"],
    ))
    .await;
    let san = |sans: Vec<ir::SubjectAltName>| {
        let mut t = tls("abc.example.com", &good_ca.pem);
        t.subject_alt_names = sans;
        t
    };
    let clusters = vec![
        tls_cluster("ok", backend, tls("abc.example.com", &good_ca.pem)),
        tls_cluster(
            "other-name",
            backend,
            tls("other.example.com", &good_ca.pem),
        ),
        tls_cluster("wrong-ca", backend, tls("abc.example.com", &other_ca.pem)),
        tls_cluster(
            "wrong-name",
            backend,
            tls("mismatch.example.com", &good_ca.pem),
        ),
        tls_cluster("no-trust", backend, tls("abc.example.com", "")),
        tls_cluster(
            "san-uri",
            backend,
            san(vec![ir::SubjectAltName::Uri(
                "spiffe://abc.example.com/test-identity".into(),
            )]),
        ),
        tls_cluster(
            "san-miss",
            backend,
            san(vec![
                ir::SubjectAltName::Hostname("*.internal.example.com".into()),
                ir::SubjectAltName::Hostname("abc.example.org".into()),
                ir::SubjectAltName::Uri("spiffe://abc.example.com/other".into()),
            ]),
        ),
        tls_cluster(
            "san-wildcard",
            backend,
            san(vec![ir::SubjectAltName::Hostname("*.example.com".into())]),
        ),
        tls_cluster(
            "san-host",
            backend,
            san(vec![ir::SubjectAltName::Hostname(
                "other.example.com".into(),
            )]),
        ),
    ];
    let p = proxy();
    let port = serve(&p, clusters).await;

    let a = get(port, "/ok", Some("app.example.net")).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let j = a.json();
    assert_eq!(j["tls"]["serverName"], "abc.example.com");
    assert_eq!(j["host"], "app.example.net", "the request Host is kept");
    assert_eq!(j["tls"]["negotiatedProtocol"], "http/1.1");
    assert_eq!(j["tls"]["peerCertificates"], serde_json::json!([]));

    let a = get(port, "/other-name", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["tls"]["serverName"], "other.example.com");

    for path in ["/wrong-ca", "/wrong-name", "/no-trust", "/san-miss"] {
        let a = get(port, path, None).await;
        assert_eq!(
            a.status, 503,
            "{path} must fail the handshake: {:?}",
            a.body
        );
    }
    // subjectAltNames replace the hostname check; SNI is still the hostname.
    for path in ["/san-uri", "/san-host", "/san-wildcard"] {
        let a = get(port, path, None).await;
        assert_eq!(a.status, 200, "{path}: {:?}", a.body);
        assert_eq!(a.json()["tls"]["serverName"], "abc.example.com");
    }
}

#[tokio::test]
async fn presents_the_client_certificate_and_speaks_h2_to_h2_clusters() {
    let ca = ca("c");
    let backend = https_echo(&leaf(&ca, &["abc.example.com"], &[])).await;
    let client = leaf(&ca, &[], &[]);
    let mut with_cert = tls("abc.example.com", &ca.pem);
    with_cert.client_certificate = Some(ir::Certificate {
        name: "ns/client".into(),
        cert_pem: client.0.clone(),
        key_pem: client.1.clone(),
    });
    let mut h2 = tls_cluster("h2", backend, tls("abc.example.com", &ca.pem));
    h2.protocol = ir::UpstreamProtocol::H2c;
    let clusters = vec![
        tls_cluster("mtls", backend, with_cert),
        tls_cluster("plain-tls", backend, tls("abc.example.com", &ca.pem)),
        h2,
    ];
    let p = proxy();
    let port = serve(&p, clusters).await;

    let j = get(port, "/mtls", None).await.json();
    let peers = j["tls"]["peerCertificates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let der = |pem: &str| {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    assert_eq!(peers.len(), 1, "{j}");
    assert_eq!(der(peers[0].as_str().unwrap()), der(&client.0));

    let j = get(port, "/plain-tls", None).await.json();
    assert_eq!(j["tls"]["peerCertificates"], serde_json::json!([]), "{j}");

    let j = get(port, "/h2", None).await.json();
    assert_eq!(j["tls"]["negotiatedProtocol"], "h2", "{j}");
}

#[tokio::test]
async fn a_changed_ca_takes_effect_on_the_next_apply() {
    let good = ca("good");
    let other = ca("other");
    let backend = https_echo(&leaf(&good, &["abc.example.com"], &[])).await;
    let p = proxy();
    let port = serve(
        &p,
        vec![tls_cluster("c", backend, tls("abc.example.com", &good.pem))],
    )
    .await;
    assert_eq!(get(port, "/c", None).await.status, 200);
    // Same cluster and endpoint, other CA: pooled connections must not be reused.
    let routes = vec![route("c", prefix("/c"), to("c"))];
    let clusters = vec![tls_cluster(
        "c",
        backend,
        tls("abc.example.com", &other.pem),
    )];
    p.apply(simple(port, routes, clusters)).await.unwrap();
    assert_eq!(get(port, "/c", None).await.status, 503);
}
