//! The TCP echo server: accept loops for the plaintext and the optional TLS listener, and the
//! line protocol of one connection.

use std::sync::Arc;

use rustls::NamedGroup;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{TcpAssertions, TcpTlsAssertions, WELCOME};
use crate::backend::{
    addr_of, serve_listeners, Accepted, BackendIdentity, ServerHandle, TlsListener,
};
use crate::echo::tls::cipher_name;
use crate::echo::TlsConfigError;

/// Go's `bufio.Scanner` limit: a longer line ends the connection.
const MAX_LINE: usize = 64 * 1024;

/// Serves the TCP echo on `plain` and, when given, over TLS on `tls` (TLS 1.2+, no ALPN, no
/// client certificate), until [`ServerHandle::shutdown`]. `TEST` reports `tcpport` = the
/// plaintext port and `tlsport` = the TLS port. Must be called inside a Tokio runtime.
pub fn spawn(
    identity: BackendIdentity,
    plain: TcpListener,
    tls: Option<TlsListener>,
) -> Result<ServerHandle, TlsConfigError> {
    let tls_port = tls
        .as_ref()
        .map(|t| addr_of(t.listener.local_addr()).port().to_string())
        .unwrap_or_default();
    let base = Arc::new(TcpAssertions {
        namespace: identity.namespace,
        ingress: identity.ingress,
        service: identity.service,
        pod: identity.pod,
        tcpport: addr_of(plain.local_addr()).port().to_string(),
        tlsport: tls_port,
        is_tls: false,
        tls: None,
    });
    serve_listeners("tcp echo", plain, tls, (&[], false), move |conn| {
        let mut assertions = (*base).clone();
        async move {
            match conn {
                Accepted::Plain(stream) => converse(stream, assertions).await,
                Accepted::Tls(tls) => {
                    assertions.is_tls = true;
                    assertions.tls = Some(tls_assertions(tls.get_ref().1));
                    converse(tls, assertions).await
                }
            }
        }
    })
}

/// Welcome line, then one answer per recognised line until the client closes.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, assertions: TcpAssertions) {
    let test_line = match serde_json::to_string(&assertions) {
        Ok(json) => json + "\n",
        Err(err) => {
            tracing::error!(error = %err, "tcp echo: cannot encode TEST reply");
            return;
        }
    };
    let is_tls_line = if assertions.is_tls {
        "true\n"
    } else {
        "false\n"
    };
    if io.write_all(WELCOME.as_bytes()).await.is_err() {
        return;
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match io.read(&mut chunk).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        let eof = n == 0;
        pending.extend_from_slice(&chunk[..n]);
        let mut lines: Vec<Vec<u8>> = Vec::new();
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            lines.push(pending.drain(..=pos).collect());
        }
        if eof && !pending.is_empty() {
            // Go's scanner also yields a last line without its newline.
            lines.push(std::mem::take(&mut pending));
        }
        for line in lines {
            let reply = match trim_line(&line) {
                b"PING" => "PONG\n",
                b"IS_TLS" => is_tls_line,
                b"TEST" => test_line.as_str(),
                _ => continue,
            };
            if io.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
        if eof || pending.len() > MAX_LINE {
            let _ = io.shutdown().await;
            return;
        }
    }
}

/// The line without its `\n` and one trailing `\r` (Go's `ScanLines`).
fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn tls_assertions(conn: &rustls::ServerConnection) -> TcpTlsAssertions {
    TcpTlsAssertions {
        version: conn
            .protocol_version()
            .map(go_version_name)
            .unwrap_or_default(),
        server_name: conn.server_name().unwrap_or_default().to_string(),
        negotiated_protocol: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default(),
        curves: conn
            .negotiated_key_exchange_group()
            .map(|g| go_curve_name(g.name()))
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| cipher_name(s.suite()))
            .unwrap_or_default(),
    }
}

/// Go's `tls.VersionName`.
fn go_version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
        other => format!("{other:?}"),
    }
}

/// Go's `tls.CurveID.String`.
fn go_curve_name(group: NamedGroup) -> String {
    match group {
        NamedGroup::secp256r1 => "CurveP256".to_string(),
        NamedGroup::secp384r1 => "CurveP384".to_string(),
        NamedGroup::secp521r1 => "CurveP521".to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_lose_cr_and_lf_only() {
        assert_eq!(trim_line(b"PING\r\n"), b"PING");
        assert_eq!(trim_line(b"PING\n"), b"PING");
        assert_eq!(trim_line(b"PING"), b"PING");
        assert_eq!(trim_line(b" PING \n"), b" PING ");
    }

    #[test]
    fn names_follow_go() {
        assert_eq!(go_curve_name(NamedGroup::X25519), "X25519");
        assert_eq!(go_curve_name(NamedGroup::secp256r1), "CurveP256");
        assert_eq!(go_version_name(rustls::ProtocolVersion::TLSv1_3), "TLS 1.3");
    }
}
