//! UDP echo and the DNS responder against the testkit's UDP clients on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use trellis_testkit::backend::BackendIdentity;
use trellis_testkit::dns::{self, dns_query, DnsError};
use trellis_testkit::udp_echo::{self, udp_echo, UdpEchoReply, UdpError};

const T: Duration = Duration::from_secs(5);

async fn udp_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

fn identity() -> BackendIdentity {
    BackendIdentity::new(
        "gateway-conformance-infra",
        "udp-backend-v1",
        "udp-backend-v1-ab-cd",
    )
}

#[tokio::test]
async fn udp_echo_replies_with_payload_and_identity() {
    let server = udp_echo::spawn(identity(), udp_socket().await);
    let raw = udp_echo(
        server.local_addr,
        b"gateway-api-conformance-udp-echo",
        T,
        1024,
    )
    .await
    .unwrap();
    let reply = UdpEchoReply::from_datagram(&raw).unwrap();
    assert_eq!(reply.request, "gateway-api-conformance-udp-echo");
    assert_eq!(reply.namespace, "gateway-conformance-infra");
    assert_eq!(reply.service, "udp-backend-v1");
    assert_eq!(reply.pod, "udp-backend-v1-ab-cd");
    assert_eq!(reply.ingress, "");
    let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["ingress", "namespace", "pod", "request", "service"]);

    let weight = udp_echo(
        server.local_addr,
        b"gateway-api-conformance-udp-weight\n",
        T,
        4096,
    )
    .await
    .unwrap();
    let reply = UdpEchoReply::from_datagram(&weight).unwrap();
    assert_eq!(reply.request, "gateway-api-conformance-udp-weight\n");
    server.shutdown();
}

#[tokio::test]
async fn long_datagrams_and_small_buffers_truncate() {
    let server = udp_echo::spawn(identity(), udp_socket().await);
    let payload = vec![b'x'; 2000];
    let raw = udp_echo(server.local_addr, &payload, T, 8192)
        .await
        .unwrap();
    let reply = UdpEchoReply::from_datagram(&raw).unwrap();
    assert_eq!(reply.request.len(), udp_echo::SERVER_READ_BUFFER);
    // The client keeps only what fits its buffer.
    let raw = udp_echo(server.local_addr, b"hi", T, 16).await.unwrap();
    assert_eq!(raw.len(), 16);
    assert!(UdpEchoReply::from_datagram(&raw).is_err());
    server.shutdown();
}

#[tokio::test]
async fn silent_peer_times_out() {
    let silent = udp_socket().await;
    let addr = silent.local_addr().unwrap();
    let err = udp_echo(addr, b"ping", Duration::from_millis(200), 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, UdpError::Timeout(_)), "{err}");
    let err = dns_query(addr, "foo.bar.com.", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::Udp(UdpError::Timeout(_))), "{err}");
    drop(silent);
}

#[tokio::test]
async fn dns_responder_answers_a_queries() {
    let answer = Ipv4Addr::new(127, 0, 0, 53);
    let server = dns::spawn(udp_socket().await, answer);
    let reply = dns_query(server.local_addr, "foo.bar.com.", T)
        .await
        .unwrap();
    assert_eq!(reply.rcode, 0);
    assert_eq!(reply.answer_count, 1);
    assert_eq!(reply.a_records, vec![answer]);
    assert!(!reply.truncated);
    // Without the trailing dot too.
    let reply = dns_query(server.local_addr, "foo.bar.com", T)
        .await
        .unwrap();
    assert_eq!(reply.a_records, vec![answer]);
    server.shutdown();
}

#[tokio::test]
async fn dns_rejects_bad_names_before_sending() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let err = dns_query(addr, "foo..bar", T).await.unwrap_err();
    assert!(matches!(err, DnsError::Name(_)), "{err}");
}

#[tokio::test]
async fn stopped_udp_server_no_longer_answers() {
    let server = udp_echo::spawn(identity(), udp_socket().await);
    let addr = server.local_addr;
    udp_echo(addr, b"one", T, 1024).await.unwrap();
    server.shutdown();
    tokio::time::timeout(T, server.stopped()).await.unwrap();
    // Bounded wait: the receive loop notices the shutdown asynchronously.
    let gone = tokio::time::timeout(T, async {
        loop {
            if udp_echo(addr, b"two", Duration::from_millis(200), 1024)
                .await
                .is_err()
            {
                break;
            }
        }
    })
    .await;
    assert!(gone.is_ok(), "server kept answering after shutdown");
}
