//! Reading the SNI of a TLS ClientHello without consuming it (`MSG_PEEK`), so the bytes can
//! still be spliced to a backend (passthrough) or fed to rustls (termination).

use std::time::Duration;
use tokio::net::TcpStream;

/// Largest ClientHello looked at: one TLS record (2^14) plus its header.
const MAX_HELLO: usize = 16 * 1024 + 5;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Hello {
    /// A ClientHello; its server_name (lower-case, trailing dot removed) if any.
    Tls(Option<String>),
    /// The first bytes are not a TLS handshake record.
    NotTls,
}

#[derive(Debug, PartialEq, Eq)]
enum Parse {
    Done(Hello),
    /// Need at least this many bytes in total.
    More(usize),
}

/// Peeks at the connection until a ClientHello can be parsed, the peer closes, or `timeout`.
/// `None` when the connection ended or timed out first.
pub(crate) async fn peek_hello(tcp: &TcpStream, timeout: Duration) -> Option<Hello> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 1536];
    let mut last = 0;
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        match parse(&buf[..n]) {
            Parse::Done(h) => return Some(h),
            Parse::More(need) => {
                if need > buf.len() {
                    buf.resize(need.min(MAX_HELLO), 0);
                }
                if n == last {
                    // `peek` returns at once while the data is unchanged: wait for more.
                    if tokio::time::Instant::now() >= deadline {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                last = n;
            }
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<usize> {
    Some(usize::from(*b.get(i)?) << 8 | usize::from(*b.get(i + 1)?))
}

/// Parses the first TLS record. A ClientHello split over several records is read up to the
/// end of the first one (the server_name extension comes early in practice).
fn parse(b: &[u8]) -> Parse {
    if b.len() < 5 {
        return Parse::More(5);
    }
    // Handshake record, TLS 1.0-1.3 record version.
    if b[0] != 22 || b[1] != 3 {
        return Parse::Done(Hello::NotTls);
    }
    let record_len = usize::from(b[3]) << 8 | usize::from(b[4]);
    let end = 5 + record_len;
    if b.len() < end && b.len() < MAX_HELLO {
        return Parse::More(end);
    }
    let rec = &b[5..end.min(b.len())];
    // Handshake type 1 = ClientHello.
    if rec.first() != Some(&1) {
        return Parse::Done(Hello::NotTls);
    }
    Parse::Done(Hello::Tls(server_name(rec)))
}

/// The server_name of a ClientHello handshake message (possibly truncated).
fn server_name(h: &[u8]) -> Option<String> {
    // type(1) length(3) version(2) random(32)
    let mut i = 4 + 2 + 32;
    i += 1 + usize::from(*h.get(i)?); // session id
    i += 2 + u16_at(h, i)?; // cipher suites
    i += 1 + usize::from(*h.get(i)?); // compression methods
    let ext_end = (i + 2 + u16_at(h, i)?).min(h.len());
    i += 2;
    while i + 4 <= ext_end {
        let (typ, len) = (u16_at(h, i)?, u16_at(h, i + 2)?);
        i += 4;
        if typ == 0 {
            // server_name_list: length(2), then entries type(1) length(2) name.
            let list = h.get(i..i + len)?;
            let mut j = 2;
            while j + 3 <= list.len() {
                let name_len = u16_at(list, j + 1)?;
                let name = list.get(j + 3..j + 3 + name_len)?;
                if list[j] == 0 {
                    let name = std::str::from_utf8(name).ok()?;
                    return Some(name.trim_end_matches('.').to_ascii_lowercase());
                }
                j += 3 + name_len;
            }
            return None;
        }
        i += len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A real ClientHello from rustls, captured from an in-memory connection.
    fn client_hello(sni: &str) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn reads_the_sni_of_a_real_client_hello() {
        let hello = client_hello("Abc.Example.com");
        assert_eq!(
            parse(&hello),
            Parse::Done(Hello::Tls(Some("abc.example.com".into())))
        );
        // Truncated input asks for the whole record.
        assert_eq!(parse(&hello[..40]), Parse::More(hello.len()));
        assert_eq!(parse(&hello[..3]), Parse::More(5));
    }

    #[test]
    fn no_sni_and_not_tls() {
        // An IP address is never sent as SNI.
        let hello = client_hello("127.0.0.1");
        assert_eq!(parse(&hello), Parse::Done(Hello::Tls(None)));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parse::Done(Hello::NotTls));
        // Garbage inside a handshake record must not panic.
        let mut bad = vec![22, 3, 1, 0, 60, 1];
        bad.extend([0xff; 59]);
        assert_eq!(parse(&bad), Parse::Done(Hello::Tls(None)));
    }
}
