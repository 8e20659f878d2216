//! A minimal DNS responder standing in for the suite's `coredns` backend (`udproute-simple`
//! only needs *some* reply to `foo.bar.com. IN A`), and one client attempt of `udp_dns`
//! (miekg/dns `Exchange`: one query with recursion desired, the reply must carry its id).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::backend::{addr_of, wait_stopped, ServerHandle};
use crate::udp_echo::{connected_socket, UdpError};

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const HEADER_LEN: usize = 12;
/// miekg/dns reads replies into a 512-byte buffer without EDNS; be generous.
const CLIENT_READ_BUFFER: usize = 4096;

/// Serves DNS on `socket` until [`ServerHandle::shutdown`]: every well-formed query gets a
/// NOERROR reply echoing its question, with one A record (`answer`, TTL 30) when the question is
/// `IN A`; a query whose question cannot be parsed gets FORMERR. Must be called inside a Tokio
/// runtime.
pub fn spawn(socket: UdpSocket, answer: Ipv4Addr) -> ServerHandle {
    let local_addr = addr_of(socket.local_addr());
    let (handle, mut stop) = ServerHandle::new(local_addr, None);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = tokio::select! {
                () = wait_stopped(&mut stop) => break,
                received = socket.recv_from(&mut buf) => match received {
                    Ok(received) => received,
                    Err(err) => {
                        tracing::debug!(error = %err, "dns: receive failed");
                        continue;
                    }
                },
            };
            let Some(reply) = answer_query(&buf[..n], answer) else {
                tracing::debug!(%peer, "dns: dropped a datagram that is not a query");
                continue;
            };
            if let Err(err) = socket.send_to(&reply, peer).await {
                tracing::debug!(error = %err, %peer, "dns: send failed");
            }
        }
    });
    tracing::info!(addr = %local_addr, "dns responder listening");
    handle
}

/// The reply to `query`, or `None` for something that is not a DNS query (too short, or a
/// response).
fn answer_query(query: &[u8], answer: Ipv4Addr) -> Option<Vec<u8>> {
    if query.len() < HEADER_LEN || query[2] & 0x80 != 0 {
        return None;
    }
    let opcode_rd = query[2] & 0x79; // opcode and RD copied, QR/AA/TC cleared
    let mut reply = Vec::with_capacity(query.len() + 16);
    reply.extend_from_slice(&query[..2]);
    let question = match parse_question(query) {
        Some(q) if u16::from_be_bytes([query[4], query[5]]) == 1 => q,
        _ => {
            // FORMERR, header only.
            reply.extend_from_slice(&[0x80 | opcode_rd, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]);
            return Some(reply);
        }
    };
    let is_a = question.qtype == TYPE_A && question.qclass == CLASS_IN;
    reply.extend_from_slice(&[0x80 | opcode_rd, 0x80]); // QR, RA, NOERROR
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&u16::from(is_a).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(&query[HEADER_LEN..question.end]);
    if is_a {
        reply.extend_from_slice(&[0xc0, HEADER_LEN as u8]); // name: pointer to the question
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&CLASS_IN.to_be_bytes());
        reply.extend_from_slice(&30u32.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&answer.octets());
    }
    Some(reply)
}

struct Question {
    qtype: u16,
    qclass: u16,
    /// Offset just past the question.
    end: usize,
}

/// The first question (uncompressed name, as queries carry).
fn parse_question(msg: &[u8]) -> Option<Question> {
    let mut pos = HEADER_LEN;
    loop {
        let len = usize::from(*msg.get(pos)?);
        if len == 0 {
            pos += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        pos += 1 + len;
    }
    let field = |at: usize| Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]));
    Some(Question {
        qtype: field(pos)?,
        qclass: field(pos + 2)?,
        end: pos + 4,
    })
}

/// Why a DNS exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("invalid DNS name {0:?}")]
    Name(String),
    #[error(transparent)]
    Udp(#[from] UdpError),
    #[error("reply id {got} does not match query id {want}")]
    IdMismatch { want: u16, got: u16 },
    #[error("malformed DNS reply: {0}")]
    Malformed(&'static str),
}

/// A decoded reply (header fields and the A records of the answer section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsReply {
    pub id: u16,
    /// Response code (0 NOERROR, 1 FORMERR, 2 SERVFAIL, 3 NXDOMAIN, ...).
    pub rcode: u8,
    pub truncated: bool,
    pub answer_count: u16,
    pub a_records: Vec<Ipv4Addr>,
}

/// One `udp_dns` attempt: query `name IN A` (recursion desired) to `addr` and wait for the
/// reply carrying the same id, all within `timeout` (miekg's default is 2 s). The rcode and
/// answers are returned, not judged.
pub async fn dns_query(
    addr: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<DnsReply, DnsError> {
    let id = random_id();
    let query = build_query(id, name)?;
    let exchange = async {
        let socket = connected_socket(addr).await?;
        socket
            .send(&query)
            .await
            .map_err(|source| UdpError::Send { addr, source })?;
        let mut buf = vec![0u8; CLIENT_READ_BUFFER];
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|source| UdpError::Receive { addr, source })?;
        parse_reply(&buf[..n], id)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| DnsError::Udp(UdpError::Timeout(addr)))?
}

fn build_query(id: u16, name: &str) -> Result<Vec<u8>, DnsError> {
    let mut msg = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(DnsError::Name(name.to_string()));
            }
            msg.push(label.len() as u8);
            msg.extend_from_slice(label.as_bytes());
        }
    }
    msg.push(0);
    if msg.len() - HEADER_LEN > 255 {
        return Err(DnsError::Name(name.to_string()));
    }
    msg.extend_from_slice(&TYPE_A.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(msg)
}

fn parse_reply(msg: &[u8], want_id: u16) -> Result<DnsReply, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Malformed("shorter than a header"));
    }
    let word = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let id = word(0);
    if id != want_id {
        return Err(DnsError::IdMismatch {
            want: want_id,
            got: id,
        });
    }
    if msg[2] & 0x80 == 0 {
        return Err(DnsError::Malformed("not a response"));
    }
    let (qdcount, ancount) = (word(4), word(6));
    let mut pos = HEADER_LEN;
    for _ in 0..qdcount {
        pos = skip_name(msg, pos)? + 4;
    }
    let mut a_records = Vec::new();
    for _ in 0..ancount {
        pos = skip_name(msg, pos)?;
        let header = msg
            .get(pos..pos + 10)
            .ok_or(DnsError::Malformed("truncated record"))?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let rdlen = usize::from(u16::from_be_bytes([header[8], header[9]]));
        let data = msg
            .get(pos + 10..pos + 10 + rdlen)
            .ok_or(DnsError::Malformed("truncated record data"))?;
        if rtype == TYPE_A && data.len() == 4 {
            a_records.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        pos += 10 + rdlen;
    }
    Ok(DnsReply {
        id,
        rcode: msg[3] & 0x0f,
        truncated: msg[2] & 0x02 != 0,
        answer_count: ancount,
        a_records,
    })
}

/// Offset just past the name at `pos` (labels, ending in a zero byte or a pointer).
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, DnsError> {
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Malformed("truncated name"))?;
        match len {
            0 => return Ok(pos + 1),
            l if l & 0xc0 == 0xc0 => return Ok(pos + 2),
            l if l & 0xc0 == 0 => pos += 1 + usize::from(l),
            _ => return Err(DnsError::Malformed("bad label")),
        }
    }
}

/// A query id from the std hasher's random keys (no `rand` dependency needed).
fn random_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips_through_the_responder() {
        let query = build_query(0xbeef, "foo.bar.com.").unwrap();
        let reply = answer_query(&query, Ipv4Addr::new(10, 1, 2, 3)).unwrap();
        let parsed = parse_reply(&reply, 0xbeef).unwrap();
        assert_eq!(parsed.rcode, 0);
        assert_eq!(parsed.a_records, vec![Ipv4Addr::new(10, 1, 2, 3)]);
        assert_eq!(reply[2] & 0x01, 0x01, "RD copied");
        assert!(matches!(
            parse_reply(&reply, 1),
            Err(DnsError::IdMismatch { .. })
        ));
    }

    #[test]
    fn garbage_is_ignored_or_formerr() {
        assert!(answer_query(b"short", Ipv4Addr::LOCALHOST).is_none());
        let mut bad = build_query(7, "a.b").unwrap();
        bad.truncate(HEADER_LEN + 2);
        let reply = answer_query(&bad, Ipv4Addr::LOCALHOST).unwrap();
        assert_eq!(parse_reply(&reply, 7).unwrap().rcode, 1);
        assert!(build_query(1, "a..b").is_err());
    }
}
