//! Real clients against a running gateway (issue 3): curl over HTTP/1.1, h2c with prior
//! knowledge, HTTPS with `--cacert` and h2 by ALPN, client certificates with `--cert`, and a
//! tonic gRPC client through a GRPCRoute; socat over TCPRoute and UDPRoute, and
//! `openssl s_client -servername` through TLS passthrough. All on 127.0.0.1; curl, socat and
//! openssl must be installed (`.ci/run` installs them).

mod common;

use common::{echo, free_port, start};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use trellis_testkit::backend::{BackendIdentity, ServerHandle, TlsListener};
use trellis_testkit::grpc_echo::{self, proto};

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_ca_pem: String,
    client_cert: String,
    client_key: String,
    passthrough_cert: String,
    passthrough_key: String,
}

/// A CA: its PEM, parameters and key (to sign leaves).
type Ca = (String, CertificateParams, KeyPair);

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    let pem = p.self_signed(&key).unwrap().pem();
    (pem, p, key)
}

fn leaf(sans: &[&str], ca: &Ca) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let issuer = Issuer::from_params(&ca.1, &ca.2);
    (
        p.signed_by(&key, &issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}

fn pki() -> Pki {
    let server_ca = ca("trellis test server CA");
    let client_ca = ca("trellis test client CA");
    let (server_cert, server_key) = leaf(&["secure.example.test", "mtls.example.test"], &server_ca);
    let (client_cert, client_key) = leaf(&["client.example.test"], &client_ca);
    let (passthrough_cert, passthrough_key) = leaf(&["passthrough.example.test"], &server_ca);
    Pki {
        ca_pem: server_ca.0.clone(),
        server_cert,
        server_key,
        client_ca_pem: client_ca.0.clone(),
        client_cert,
        client_key,
        passthrough_cert,
        passthrough_key,
    }
}

fn indent(pem: &str) -> String {
    pem.lines().map(|l| format!("      {l}\n")).collect()
}

struct Ports {
    http: u16,
    https: u16,
    mtls: u16,
}

fn config(pki: &Pki, ports: &Ports, echo_port: u16, grpc_port: u16) -> String {
    let Ports { http, https, mtls } = ports;
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: trellis}}
spec: {{controllerName: trellis.dev/gateway-controller}}
---
apiVersion: v1
kind: Secret
metadata: {{name: server, namespace: default}}
type: kubernetes.io/tls
stringData:
  tls.crt: |
{cert}  tls.key: |
{key}---
apiVersion: v1
kind: ConfigMap
metadata: {{name: client-ca, namespace: default}}
data:
  ca.crt: |
{client_ca}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: edge, namespace: default}}
spec:
  gatewayClassName: trellis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: http, protocol: HTTP, port: {http}}}
  - name: https
    protocol: HTTPS
    port: {https}
    hostname: secure.example.test
    tls: {{certificateRefs: [{{name: server}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: mtls, namespace: default}}
spec:
  gatewayClassName: trellis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  tls:
    frontend:
      default:
        validation:
          caCertificateRefs: [{{kind: ConfigMap, group: \"\", name: client-ca}}]
  listeners:
  - name: https
    protocol: HTTPS
    port: {mtls}
    hostname: mtls.example.test
    tls: {{certificateRefs: [{{name: server}}]}}
---
apiVersion: trellis.dev/v1alpha1
kind: Backend
metadata: {{name: web, namespace: default}}
spec:
  endpoints: [{{address: 127.0.0.1, port: {echo_port}}}]
---
apiVersion: trellis.dev/v1alpha1
kind: Backend
metadata: {{name: grpc, namespace: default}}
spec:
  endpoints: [{{address: 127.0.0.1, port: {grpc_port}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: edge}}, {{name: mtls}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /hello}}}}]
    backendRefs: [{{group: trellis.dev, kind: Backend, name: web}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: echo, namespace: default}}
spec:
  parentRefs: [{{name: edge, sectionName: http}}]
  rules:
  - matches: [{{method: {{service: {service}, method: Echo}}}}]
    backendRefs: [{{group: trellis.dev, kind: Backend, name: grpc}}]
",
        cert = indent(&pki.server_cert),
        key = indent(&pki.server_key),
        client_ca = indent(&pki.client_ca_pem),
        service = grpc_echo::SERVICE,
    )
}

/// Runs curl; returns (exit code, stdout). `-w` prints the HTTP version and status at the end.
async fn curl(args: Vec<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-w",
                "\n%{http_version} %{http_code}",
            ])
            .args(&args)
            .output()
            .expect("curl is installed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_tonic_clients_are_served() {
    let pki = pki();
    let web = echo("web-v1").await;
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = grpc_echo::spawn(
        BackendIdentity::new("default", "grpc", "grpc-v1-0"),
        grpc_listener,
        None,
    )
    .unwrap();
    let ports = Ports {
        http: free_port(),
        https: free_port(),
        mtls: free_port(),
    };
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let cfg = config(&pki, &ports, web.local_addr.port(), grpc.local_addr.port());
    std::fs::write(dir.path().join("config.yaml"), cfg).unwrap();
    let app = start(dir.path()).await;
    let ca = write(files.path(), "ca.pem", &pki.ca_pem);
    let cert = write(files.path(), "client.pem", &pki.client_cert);
    let key = write(files.path(), "client.key", &pki.client_key);
    let http = format!("http://127.0.0.1:{}/hello", ports.http);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !curl(vec![http.clone()]).await.1.ends_with(" 200") {
        assert!(std::time::Instant::now() < deadline, "gateway never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // HTTP/1.1 and h2c with prior knowledge.
    let (code, out) = curl(vec![http.clone()]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("\"pod\":\"web-v1\"") && out.ends_with("1.1 200"),
        "{out}"
    );
    let (_, out) = curl(vec!["--http2-prior-knowledge".into(), http.clone()]).await;
    assert!(out.ends_with("\n2 200"), "h2c: {out}");

    // HTTPS: the CA verifies the chain, ALPN picks h2.
    let resolve = |port: u16, host: &str| format!("{host}:{port}:127.0.0.1");
    let secure = format!("https://secure.example.test:{}/hello", ports.https);
    let (code, out) = curl(vec![
        "--http2".into(),
        "--cacert".into(),
        ca.clone(),
        "--resolve".into(),
        resolve(ports.https, "secure.example.test"),
        secure.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("\n2 200"), "https h2: {out}");
    // Without the CA the server certificate is not trusted (curl exit 60).
    let (code, _) = curl(vec![
        "--resolve".into(),
        resolve(ports.https, "secure.example.test"),
        secure,
    ])
    .await;
    assert_eq!(code, 60);

    // Client certificates: refused without one, served with one.
    let mtls = format!("https://mtls.example.test:{}/hello", ports.mtls);
    let base = vec![
        "--cacert".to_string(),
        ca.clone(),
        "--resolve".into(),
        resolve(ports.mtls, "mtls.example.test"),
    ];
    let (code, out) = curl([base.clone(), vec![mtls.clone()]].concat()).await;
    assert_ne!(code, 0, "no client certificate must fail: {out}");
    let with_cert = vec!["--cert".to_string(), cert, "--key".into(), key, mtls];
    let (code, out) = curl([base, with_cert].concat()).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with(" 200"), "mTLS: {out}");

    // tonic: a real gRPC client through the GRPCRoute.
    let reply = tonic_echo(ports.http).await;
    let assertions = reply.assertions.expect("assertions");
    assert_eq!(
        assertions.fully_qualified_method,
        grpc_echo::full_method("Echo")
    );
    assert_eq!(assertions.context.expect("context").pod, "grpc-v1-0");
    // A method no rule matches: the gateway itself answers with a gRPC status.
    let status = tonic_call(ports.http, "EchoTwo").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");

    // The admin config dump shows certificates but never private keys.
    let admin = app.admin_addr.expect("admin endpoint");
    let (code, dump) = curl(vec![format!("http://{admin}/config_dump")]).await;
    assert_eq!(code, 0);
    assert!(dump.contains("BEGIN CERTIFICATE"), "{dump}");
    assert!(!dump.contains("PRIVATE KEY"), "config dump leaks a key");

    app.shutdown().await;
    grpc.shutdown();
}

async fn tonic_call(port: u16, method: &str) -> Result<proto::EchoResponse, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::try_from(grpc_echo::full_method(method)).unwrap();
    let codec = tonic_prost::ProstCodec::<proto::EchoRequest, proto::EchoResponse>::default();
    client
        .unary(
            tonic::Request::new(proto::EchoRequest::default()),
            path,
            codec,
        )
        .await
        .map(tonic::Response::into_inner)
}

async fn tonic_echo(port: u16) -> proto::EchoResponse {
    tonic_call(port, "Echo")
        .await
        .expect("Echo through the GRPCRoute")
}

fn l4_config(ports: &Ports, tcp: &ServerHandle, udp: &ServerHandle) -> String {
    let Ports {
        http: tcp_port,
        https: tls_port,
        mtls: udp_port,
    } = ports;
    let plain = tcp.local_addr.port();
    let tls = tcp.tls_addr.expect("TLS listener").port();
    let udp_echo = udp.local_addr.port();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: trellis}}
spec: {{controllerName: trellis.dev/gateway-controller}}
---
apiVersion: v1
kind: Service
metadata: {{name: tcp-echo, namespace: default}}
spec:
  ports: [{{name: plain, port: 3000}}, {{name: tls, port: 8443}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: tcp-echo-1, namespace: default, labels: {{kubernetes.io/service-name: tcp-echo}}}}
addressType: IPv4
ports: [{{name: plain, port: {plain}}}, {{name: tls, port: {tls}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: udp-echo, namespace: default}}
spec:
  ports: [{{name: udp, port: 8080, protocol: UDP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: udp-echo-1, namespace: default, labels: {{kubernetes.io/service-name: udp-echo}}}}
addressType: IPv4
ports: [{{name: udp, port: {udp_echo}, protocol: UDP}}]
endpoints: [{{addresses: [127.0.0.1]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: l4, namespace: default}}
spec:
  gatewayClassName: trellis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: tcp, protocol: TCP, port: {tcp_port}}}
  - {{name: udp, protocol: UDP, port: {udp_port}}}
  - {{name: tls, protocol: TLS, port: {tls_port}, hostname: passthrough.example.test, tls: {{mode: Passthrough}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {{name: tcp, namespace: default}}
spec:
  parentRefs: [{{name: l4, sectionName: tcp}}]
  rules: [{{backendRefs: [{{name: tcp-echo, port: 3000}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {{name: udp, namespace: default}}
spec:
  parentRefs: [{{name: l4, sectionName: udp}}]
  rules: [{{backendRefs: [{{name: udp-echo, port: 8080}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: tls, namespace: default}}
spec:
  parentRefs: [{{name: l4, sectionName: tls}}]
  hostnames: [passthrough.example.test]
  rules: [{{backendRefs: [{{name: tcp-echo, port: 8443}}]}}]
"
    )
}

/// Runs socat with `input` on stdin against `address` (`TCP:...` / `UDP:...`); returns stdout.
async fn socat(address: String, input: &'static str) -> String {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("socat")
            .args(["-t", "2", "-T", "5", "-", &address])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("socat is installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

/// `openssl s_client -servername`: the handshake must verify against `ca` (so the certificate
/// is the backend's: the gateway does not terminate), then the echo's welcome line must arrive
/// and `IS_TLS` be answered. Returns everything read, or the failure.
async fn s_client(port: u16, sni: &'static str, ca: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args([
                "-servername",
                sni,
                "-CAfile",
                &ca,
                "-verify_return_error",
                "-quiet",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl is installed");
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = String::new();
        let mut result = Err("no reply".to_string());
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("Gateway API Test TCP Server") {
                stdin.write_all(b"IS_TLS\n").unwrap();
            } else if line == "true" {
                result = Ok(seen.clone());
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        result.map_err(|e| format!("{e}; read {seen:?}"))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socat_and_openssl_clients_cross_l4_routes() {
    let pki = pki();
    let tcp = trellis_testkit::tcp_echo::spawn(
        BackendIdentity::new("default", "tcp-echo", "tcp-echo-0-0"),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        Some(TlsListener {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            cert_pem: pki.passthrough_cert.clone(),
            key_pem: pki.passthrough_key.clone(),
        }),
    )
    .unwrap();
    let udp = trellis_testkit::udp_echo::spawn(
        BackendIdentity::new("default", "udp-echo", "udp-echo-0-0"),
        tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let ports = Ports {
        http: free_port(),
        https: free_port(),
        mtls: free_port(),
    };
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("l4.yaml"), l4_config(&ports, &tcp, &udp)).unwrap();
    let app = start(dir.path()).await;
    let ca = write(files.path(), "ca.pem", &pki.ca_pem);

    // TCP: welcome line, then PONG.
    let tcp_target = format!("TCP:127.0.0.1:{}", ports.http);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = socat(tcp_target.clone(), "PING\n").await;
        if out.contains("PONG") || std::time::Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(out, "Gateway API Test TCP Server\nPONG\n");

    // UDP: one datagram, one JSON reply naming the Service behind the route.
    let out = socat(format!("UDP:127.0.0.1:{}", ports.mtls), "hello").await;
    let reply: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON reply");
    assert_eq!(reply["service"], "udp-echo", "{out}");
    assert_eq!(reply["request"], "hello");

    // TLS passthrough: the client verifies the backend's own certificate.
    let seen = s_client(ports.https, "passthrough.example.test", ca.clone())
        .await
        .expect("passthrough handshake and echo");
    assert!(seen.contains("Gateway API Test TCP Server"), "{seen}");
    // An SNI no route serves is refused.
    let refused = s_client(ports.https, "other.example.test", ca).await;
    assert!(refused.is_err(), "unrouted SNI got through: {refused:?}");

    app.shutdown().await;
    tcp.shutdown();
    udp.shutdown();
}
