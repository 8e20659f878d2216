//! Client side of the TCP echo: the 4-step conversation (`tcp_echo`, `tls_tcp_echo`), the
//! one-shot form (weight samples) and the bare connect probe (`tcp_connect`).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{TcpAssertions, WELCOME};
use crate::tls_client::{client_config, tls_connect, TlsClientError};

/// Longest reply line read (the TEST JSON is a few hundred bytes).
const MAX_REPLY: usize = 64 * 1024;

/// Why a conversation did not complete, or what it got wrong.
#[derive(Debug, thiserror::Error)]
pub enum TcpEchoError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsClientError),
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("{step}: connection closed before a complete line")]
    Closed { step: &'static str },
    #[error("conversation with {0} timed out")]
    Timeout(SocketAddr),
    #[error("{step}: unexpected reply {got:?}")]
    UnexpectedLine { step: &'static str, got: String },
    #[error("TEST reply is not JSON ({error}): {line:?}")]
    BadJson { line: String, error: String },
    #[error("TEST reply has no pod name: {0:?}")]
    EmptyPod(String),
}

impl TcpEchoError {
    /// Whether upstream's `tcp_echo` retries after this error: dial, TLS, read/write failures,
    /// timeouts and an undecodable TEST line are retried; a wrong welcome / PONG / IS_TLS
    /// answer from a completed exchange is final.
    pub fn is_retriable(&self) -> bool {
        !matches!(self, TcpEchoError::UnexpectedLine { .. })
    }
}

/// A completed 4-step conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConversation {
    /// The `IS_TLS` answer.
    pub is_tls: bool,
    /// The decoded `TEST` line.
    pub assertions: TcpAssertions,
}

/// What a `tcp_echo` / `tls_tcp_echo` case expects (`response` of the case).
#[derive(Debug, Clone, Copy)]
pub struct TcpExpectation<'a> {
    pub namespace: &'a str,
    /// `pod` must start with `backend + "-"`.
    pub backend: &'a str,
    pub backend_is_tls: bool,
    /// The SNI the backend must report in `tls.serverName`, when set.
    pub backend_tls_server_name: Option<&'a str>,
}

impl TcpConversation {
    /// Upstream's checks of steps 3 and 5; the error says what differs.
    pub fn check(&self, expected: &TcpExpectation<'_>) -> Result<(), String> {
        if self.is_tls != expected.backend_is_tls {
            return Err(format!(
                "IS_TLS answered {}, want {}",
                self.is_tls, expected.backend_is_tls
            ));
        }
        let got = &self.assertions;
        if got.namespace != expected.namespace {
            return Err(format!(
                "namespace {:?}, want {:?}",
                got.namespace, expected.namespace
            ));
        }
        if !got.pod.starts_with(&format!("{}-", expected.backend)) {
            return Err(format!(
                "pod {:?} does not start with {:?}",
                got.pod,
                format!("{}-", expected.backend)
            ));
        }
        if let Some(want) = expected.backend_tls_server_name {
            let seen = got.tls.as_ref().map(|t| t.server_name.as_str());
            if seen != Some(want) {
                return Err(format!("backend saw SNI {seen:?}, want {want:?}"));
            }
        }
        Ok(())
    }
}

/// One attempt of `tcp_echo` (`tls` = `None`) or `tls_tcp_echo` (`tls` = `Some((sni, CA PEM))`):
/// dial `addr`, then welcome, `PING`, `IS_TLS`, `TEST`, all within `timeout`. Compare the
/// result with [`TcpConversation::check`].
pub async fn tcp_echo_conversation(
    addr: SocketAddr,
    tls: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<TcpConversation, TcpEchoError> {
    let attempt = async {
        match tls {
            None => converse(connect(addr).await?).await,
            Some((sni, ca_pem)) => {
                let config = client_config(Some(ca_pem), &[])?;
                converse(tls_connect(addr, sni, config, timeout).await?).await
            }
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| TcpEchoError::Timeout(addr))?
}

/// Upstream's `EchoSendOnce` (TCP weight samples): dial, read the welcome line, send `TEST`,
/// decode the reply, require a non-empty `pod`; all within `timeout`.
pub async fn tcp_echo_once(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpAssertions, TcpEchoError> {
    let attempt = async {
        let mut io = BufReader::new(connect(addr).await?);
        expect_line(&mut io, "welcome", WELCOME).await?;
        let assertions = test(&mut io).await?;
        if assertions.pod.is_empty() {
            return Err(TcpEchoError::EmptyPod(format!("{assertions:?}")));
        }
        Ok(assertions)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| TcpEchoError::Timeout(addr))?
}

/// One `tcp_connect` attempt: a TCP connection can be established within `timeout`; it is
/// closed at once without sending anything.
pub async fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<(), TcpEchoError> {
    tokio::time::timeout(timeout, connect(addr))
        .await
        .map_err(|_| TcpEchoError::Timeout(addr))?
        .map(drop)
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, TcpEchoError> {
    TcpStream::connect(addr)
        .await
        .map_err(|source| TcpEchoError::Connect { addr, source })
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
) -> Result<TcpConversation, TcpEchoError> {
    let mut io = BufReader::new(stream);
    expect_line(&mut io, "welcome", WELCOME).await?;
    send(&mut io, "PING", "PING\n").await?;
    expect_line(&mut io, "PING", "PONG\n").await?;
    send(&mut io, "IS_TLS", "IS_TLS\n").await?;
    let line = read_line(&mut io, "IS_TLS").await?;
    let is_tls = match line.strip_suffix('\n').unwrap_or(&line) {
        "true" => true,
        "false" => false,
        _ => {
            return Err(TcpEchoError::UnexpectedLine {
                step: "IS_TLS",
                got: line,
            })
        }
    };
    let assertions = test(&mut io).await?;
    Ok(TcpConversation { is_tls, assertions })
}

async fn test<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
) -> Result<TcpAssertions, TcpEchoError> {
    send(io, "TEST", "TEST\n").await?;
    let line = read_line(io, "TEST").await?;
    serde_json::from_str(&line).map_err(|err| TcpEchoError::BadJson {
        error: err.to_string(),
        line,
    })
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    step: &'static str,
    text: &str,
) -> Result<(), TcpEchoError> {
    let stream = io.get_mut();
    stream
        .write_all(text.as_bytes())
        .await
        .map_err(|source| TcpEchoError::Io { step, source })?;
    stream
        .flush()
        .await
        .map_err(|source| TcpEchoError::Io { step, source })
}

async fn expect_line<S: AsyncRead + Unpin>(
    io: &mut BufReader<S>,
    step: &'static str,
    want: &str,
) -> Result<(), TcpEchoError> {
    let got = read_line(io, step).await?;
    if got != want {
        return Err(TcpEchoError::UnexpectedLine { step, got });
    }
    Ok(())
}

/// One line including its `\n` (Go's `ReadString('\n')`); EOF before the `\n` is an error.
async fn read_line<S: AsyncRead + Unpin>(
    io: &mut BufReader<S>,
    step: &'static str,
) -> Result<String, TcpEchoError> {
    let mut line = Vec::new();
    let mut limited = (&mut *io).take(MAX_REPLY as u64);
    limited
        .read_until(b'\n', &mut line)
        .await
        .map_err(|source| TcpEchoError::Io { step, source })?;
    if line.last() != Some(&b'\n') {
        return Err(TcpEchoError::Closed { step });
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}
