//! TCP echo (plain and TLS) against the testkit's conversation clients on 127.0.0.1, the raw
//! line protocol, `tcp_connect` and `tls_connection_rejected`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use trellis_testkit::backend::{BackendIdentity, ServerHandle, TlsListener};
use trellis_testkit::tcp_echo::{
    self, tcp_connect, tcp_echo_conversation, tcp_echo_once, TcpEchoError, TcpExpectation, WELCOME,
};
use trellis_testkit::tls_client::{tls_connection_rejected, TlsDialOutcome};

const T: Duration = Duration::from_secs(5);
const NS: &str = "gateway-conformance-infra";

fn identity() -> BackendIdentity {
    BackendIdentity::new(NS, "tcp-backend", "tcp-backend-5d8f-x7k2")
}

/// A TCP echo with a plaintext and a TLS listener; returns the server and the cert PEM.
async fn start_tcp(sni: &str) -> (ServerHandle, String) {
    let (cert, key, _) = self_signed(&[sni]);
    let tls = TlsListener {
        listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        cert_pem: cert.clone(),
        key_pem: key,
    };
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (tcp_echo::spawn(identity(), plain, Some(tls)).unwrap(), cert)
}

fn expect(backend_is_tls: bool, sni: Option<&'static str>) -> TcpExpectation<'static> {
    TcpExpectation {
        namespace: NS,
        backend: "tcp-backend",
        backend_is_tls,
        backend_tls_server_name: sni,
    }
}

#[tokio::test]
async fn plain_conversation() {
    let (server, _) = start_tcp("abc.example.com").await;
    let conv = tcp_echo_conversation(server.local_addr, None, T)
        .await
        .unwrap();
    assert!(!conv.is_tls);
    conv.check(&expect(false, None)).unwrap();
    let a = &conv.assertions;
    assert_eq!(a.namespace, NS);
    assert_eq!(a.service, "tcp-backend");
    assert_eq!(a.pod, "tcp-backend-5d8f-x7k2");
    assert_eq!(a.tcpport, server.local_addr.port().to_string());
    assert_eq!(a.tlsport, server.tls_addr.unwrap().port().to_string());
    assert!(!a.is_tls);
    assert!(a.tls.is_none());
    // What upstream would flag.
    assert!(conv.check(&expect(true, None)).is_err());
    let wrong_backend = TcpExpectation {
        backend: "tcp-backend-2",
        ..expect(false, None)
    };
    assert!(conv.check(&wrong_backend).is_err());
    let wrong_ns = TcpExpectation {
        namespace: "other",
        ..expect(false, None)
    };
    assert!(conv.check(&wrong_ns).is_err());
    assert!(conv.check(&expect(false, Some("abc.example.com"))).is_err());
    server.shutdown();
}

#[tokio::test]
async fn tls_conversation_reports_the_sni() {
    let (server, cert) = start_tcp("abc.example.com").await;
    let tls_addr = server.tls_addr.unwrap();
    let conv = tcp_echo_conversation(tls_addr, Some(("abc.example.com", &cert)), T)
        .await
        .unwrap();
    assert!(conv.is_tls);
    conv.check(&expect(true, Some("abc.example.com"))).unwrap();
    let tls = conv.assertions.tls.as_ref().expect("tls object");
    assert_eq!(tls.server_name, "abc.example.com");
    assert_eq!(tls.version, "TLS 1.3");
    assert!(tls.cipher_suite.starts_with("TLS_"), "{tls:?}");
    assert!(!tls.curves.is_empty());
    assert_eq!(tls.negotiated_protocol, "");
    assert!(conv.assertions.is_tls);
    assert!(conv
        .check(&expect(true, Some("other.example.com")))
        .is_err());
    server.shutdown();
}

#[tokio::test]
async fn tls_dial_with_untrusted_ca_fails() {
    let (server, _) = start_tcp("abc.example.com").await;
    let (other_ca, _, _) = self_signed(&["abc.example.com"]);
    let err = tcp_echo_conversation(
        server.tls_addr.unwrap(),
        Some(("abc.example.com", &other_ca)),
        T,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TcpEchoError::Tls(_)), "{err}");
    assert!(err.is_retriable());
    server.shutdown();
}

#[tokio::test]
async fn one_shot_returns_the_pod() {
    let (server, _) = start_tcp("abc.example.com").await;
    let a = tcp_echo_once(server.local_addr, T).await.unwrap();
    assert_eq!(a.pod, "tcp-backend-5d8f-x7k2");
    server.shutdown();
}

#[tokio::test]
async fn raw_line_protocol() {
    let (server, _) = start_tcp("abc.example.com").await;
    let stream = TcpStream::connect(server.local_addr).await.unwrap();
    let mut io = BufReader::new(stream);
    let mut line = String::new();
    bounded(io.read_line(&mut line)).await.unwrap();
    assert_eq!(line, WELCOME);
    // Unknown lines get no reply; CRLF is accepted; several commands in one write.
    io.get_mut()
        .write_all(b"HELLO\r\nPING\r\nIS_TLS\nTEST\n")
        .await
        .unwrap();
    let mut replies = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        bounded(io.read_line(&mut line)).await.unwrap();
        replies.push(line);
    }
    assert_eq!(replies[0], "PONG\n");
    assert_eq!(replies[1], "false\n");
    let json: serde_json::Value = serde_json::from_str(&replies[2]).unwrap();
    assert_eq!(json["isTLS"], false);
    assert_eq!(json["service"], "tcp-backend");
    assert_eq!(json["ingress"], "");
    assert!(json.get("tls").is_none());
    // A last line without newline is still answered once the client half-closes.
    io.get_mut().write_all(b"PING").await.unwrap();
    io.get_mut().shutdown().await.unwrap();
    let mut rest = String::new();
    bounded(tokio::io::AsyncReadExt::read_to_string(&mut io, &mut rest))
        .await
        .unwrap();
    assert_eq!(rest, "PONG\n");
    server.shutdown();
}

#[tokio::test]
async fn wrong_welcome_is_final_and_early_close_is_retriable() {
    let liar = fake_server(b"Hello there\n").await;
    let err = tcp_echo_conversation(liar, None, T).await.unwrap_err();
    assert!(
        matches!(
            err,
            TcpEchoError::UnexpectedLine {
                step: "welcome",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retriable());
    let err = tcp_echo_once(liar, T).await.unwrap_err();
    assert!(!err.is_retriable(), "{err}");

    let closer = fake_server(b"").await;
    let err = tcp_echo_conversation(closer, None, T).await.unwrap_err();
    assert!(matches!(err, TcpEchoError::Closed { .. }), "{err}");
    assert!(err.is_retriable());
}

#[tokio::test]
async fn connect_probe() {
    let (server, _) = start_tcp("abc.example.com").await;
    tcp_connect(server.local_addr, T).await.unwrap();
    server.shutdown();
    let err = tcp_connect(closed_port().await, T).await.unwrap_err();
    assert!(matches!(err, TcpEchoError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn tls_rejection_probe() {
    // A listener that closes every connection at once: what a Gateway without a backend does.
    let rejecting = fake_server(b"").await;
    let outcome = tls_connection_rejected(rejecting, "example.com", None, T).await;
    assert!(outcome.is_rejected(), "{outcome:?}");

    let (server, cert) = start_tcp("example.com").await;
    let tls_addr = server.tls_addr.unwrap();
    let outcome = tls_connection_rejected(tls_addr, "example.com", Some(&cert), T).await;
    assert!(
        matches!(outcome, TlsDialOutcome::Established),
        "{outcome:?}"
    );
    // Untrusted certificate: a failure, but not the rejection the case wants.
    let outcome = tls_connection_rejected(tls_addr, "example.com", None, T).await;
    assert!(matches!(outcome, TlsDialOutcome::Failed(_)), "{outcome:?}");
    server.shutdown();

    let outcome = tls_connection_rejected(closed_port().await, "example.com", None, T).await;
    assert!(matches!(outcome, TlsDialOutcome::Failed(_)), "{outcome:?}");
}

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let (server, _) = start_tcp("abc.example.com").await;
    let stream = TcpStream::connect(server.local_addr).await.unwrap();
    let mut io = BufReader::new(stream);
    let mut line = String::new();
    bounded(io.read_line(&mut line)).await.unwrap();
    assert_eq!(line, WELCOME);
    server.shutdown();
    let mut rest = String::new();
    let read = bounded(tokio::io::AsyncReadExt::read_to_string(&mut io, &mut rest)).await;
    assert!(read.map(|_| rest.is_empty()).unwrap_or(true));
}

/// A server that sends `greeting` to every connection and closes it.
async fn fake_server(greeting: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(greeting).await;
            drop(stream);
        }
    });
    addr
}

async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}
