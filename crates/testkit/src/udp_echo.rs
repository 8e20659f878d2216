//! The UDP echo of the conformance suite (upstream `echo-basic/udpechoserver`, contract in
//! `shared/conformance/README-extra-families.md`) and one client attempt of `udp_echo` cases
//! and UDP weight samples.
//!
//! Every datagram (read into a 1024-byte buffer, so longer ones are truncated) is answered
//! with one datagram `{"request","namespace","ingress","service","pod"}` to its sender.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;

use crate::backend::{addr_of, wait_stopped, BackendIdentity, ServerHandle};

/// Upstream's receive buffer: longer datagrams are truncated to this many bytes.
pub const SERVER_READ_BUFFER: usize = 1024;

/// The reply JSON. Unknown fields are ignored and missing ones default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpEchoReply {
    /// The received payload as a string (invalid UTF-8 replaced, as Go's JSON encoder does).
    pub request: String,
    pub namespace: String,
    pub ingress: String,
    pub service: String,
    pub pod: String,
}

impl UdpEchoReply {
    /// Decodes a reply datagram.
    pub fn from_datagram(datagram: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(datagram)
    }
}

/// Serves the UDP echo on `socket` until [`ServerHandle::shutdown`]. Must be called inside a
/// Tokio runtime.
pub fn spawn(identity: BackendIdentity, socket: UdpSocket) -> ServerHandle {
    let local_addr = addr_of(socket.local_addr());
    let (handle, mut stop) = ServerHandle::new(local_addr, None);
    let identity = Arc::new(identity);
    tokio::spawn(async move {
        let mut buf = vec![0u8; SERVER_READ_BUFFER];
        loop {
            let (n, peer) = tokio::select! {
                () = wait_stopped(&mut stop) => break,
                received = socket.recv_from(&mut buf) => match received {
                    Ok(received) => received,
                    Err(err) => {
                        // E.g. ICMP port unreachable from an earlier reply; keep serving.
                        tracing::debug!(error = %err, "udp echo: receive failed");
                        continue;
                    }
                },
            };
            let reply = UdpEchoReply {
                request: String::from_utf8_lossy(&buf[..n]).into_owned(),
                namespace: identity.namespace.clone(),
                ingress: identity.ingress.clone(),
                service: identity.service.clone(),
                pod: identity.pod.clone(),
            };
            tracing::debug!(%peer, request = %reply.request, "udp echo: datagram");
            match serde_json::to_vec(&reply) {
                Ok(json) => {
                    if let Err(err) = socket.send_to(&json, peer).await {
                        tracing::debug!(error = %err, %peer, "udp echo: send failed");
                    }
                }
                Err(err) => tracing::error!(error = %err, "udp echo: cannot encode reply"),
            }
        }
    });
    tracing::info!(addr = %local_addr, "udp echo listening");
    handle
}

/// Why a UDP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    #[error("UDP socket for {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sending to {addr}: {source}")]
    Send {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("receiving from {addr}: {source}")]
    Receive {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no reply from {0} before the deadline")]
    Timeout(SocketAddr),
}

/// One attempt: a new socket connected to `addr`, one datagram `payload`, one reply datagram
/// read into a `read_buffer`-byte buffer (truncated beyond), all within `deadline`. Returns
/// the reply bytes; decode them with [`UdpEchoReply::from_datagram`].
pub async fn udp_echo(
    addr: SocketAddr,
    payload: &[u8],
    deadline: Duration,
    read_buffer: usize,
) -> Result<Vec<u8>, UdpError> {
    let exchange = async {
        let socket = connected_socket(addr).await?;
        socket
            .send(payload)
            .await
            .map_err(|source| UdpError::Send { addr, source })?;
        let mut buf = vec![0u8; read_buffer.max(1)];
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|source| UdpError::Receive { addr, source })?;
        buf.truncate(n);
        Ok(buf)
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| UdpError::Timeout(addr))?
}

/// A UDP socket on an ephemeral port connected to `addr` (replies from elsewhere are dropped,
/// as with Go's `Dial("udp")`).
pub(crate) async fn connected_socket(addr: SocketAddr) -> Result<UdpSocket, UdpError> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(v6) if v6.ip().is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|source| UdpError::Socket { addr, source })?;
    socket
        .connect(addr)
        .await
        .map_err(|source| UdpError::Socket { addr, source })?;
    Ok(socket)
}
