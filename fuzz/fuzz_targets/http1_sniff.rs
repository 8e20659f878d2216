//! The proxy's HTTP/1 stream tracker (`crates/proxy/src/sniff.rs`), which spots requests with
//! both Content-Length and Transfer-Encoding that hyper hides. Two modes, by the first byte:
//! - raw (even): `[mode, limits, split seed, stream...]`. The verdict must not depend on how
//!   the stream is split (one piece, byte by byte, seeded cuts); hyper serving the same stream
//!   through the tracker (`framing::check` per request, as the handler does) must refuse
//!   exactly the flagged request, which must be one hyper saw as chunked.
//! - structured (odd): well-formed requests (bodies of arbitrary bytes, chunk extensions,
//!   trailers, CL + TE in either order) built here, so the expected verdict is known: the
//!   first CL + TE request is flagged, every request before it is served and routed.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use trellis_proxy::{sniff_feed, sniff_hyper, SniffVerdict};

/// Cut points from a seed (xorshift), so every input has several splits.
fn cuts(stream: &[u8], mut seed: u64) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    seed |= 1;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = 1 + (seed % 40) as usize;
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

fn verdicts(max_head: usize, max_line: usize, stream: &[u8], seed: u64) -> SniffVerdict {
    let whole = sniff_feed(max_head, max_line, &[stream]);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(
        whole,
        sniff_feed(max_head, max_line, &bytes),
        "byte by byte"
    );
    let pieces = cuts(stream, seed);
    assert_eq!(whole, sniff_feed(max_head, max_line, &pieces), "{pieces:?}");
    whole
}

fn raw(data: &[u8]) {
    let [_, limits, seed, stream @ ..] = data else {
        return;
    };
    let max_head = 32 + *limits as usize * 8;
    let max_line = 2 + (*limits as usize % 32) * 4;
    let whole = verdicts(max_head, max_line, stream, *seed as u64);
    let (served, flagged) = sniff_hyper(max_head, &cuts(stream, *seed as u64 + 7));
    // The listener's tracker follows heads as long as hyper's buffer (>= 8 KiB) and lines up
    // to 4 KiB. hyper may stop reading early (errors, refusals), so it saw a prefix.
    let served_limits = sniff_feed(max_head.max(8192), 4096, &[stream]);
    assert!(
        flagged == 0 || flagged == served_limits.cl_te,
        "{flagged} vs {served_limits:?} ({whole:?})"
    );
    if flagged > 0 {
        if let Some(r) = served.get(flagged as usize - 1) {
            assert!(
                r.transfer_encoding && !r.content_length,
                "{served:?} {}",
                String::from_utf8_lossy(&stream)
            );
            assert_eq!(
                r.refused,
                Some(400),
                "{served:?} {}",
                String::from_utf8_lossy(&stream)
            );
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Body {
    None,
    Sized(Vec<u8>),
    Chunked {
        chunks: Vec<(Vec<u8>, Option<(Tok, Tok)>, bool)>,
        trailers: Vec<(Tok, Tok)>,
    },
    /// Content-Length and Transfer-Encoding: chunked, CL first when `bool`.
    ClTe(u16, bool),
}

/// A token (`tchar`s only, never empty).
#[derive(Debug, Arbitrary)]
struct Tok(Vec<u8>);

impl Tok {
    fn get(&self) -> String {
        self.from(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzXYZ")
    }

    /// Path characters (`pchar` and `/`, no percent-encoding).
    fn path(&self) -> String {
        self.from(b"-._~!$&'()*+,;=:@/0123456789abcxyzXYZ")
    }

    fn from(&self, t: &[u8]) -> String {
        let s: String = self
            .0
            .iter()
            .take(12)
            .map(|b| t[*b as usize % t.len()] as char)
            .collect();
        if s.is_empty() {
            "t".into()
        } else {
            s
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Req {
    post: bool,
    path: Tok,
    headers: Vec<(Tok, Tok)>,
    body: Body,
}

fn serialize(r: &Req, out: &mut Vec<u8>) {
    let method = if r.post { "POST" } else { "GET" };
    out.extend_from_slice(
        format!("{method} /{} HTTP/1.1\r\nHost: a\r\n", r.path.path()).as_bytes(),
    );
    for (n, v) in r.headers.iter().take(20) {
        // Prefixed: never a framing, Host or Upgrade header.
        out.extend_from_slice(format!("x-{}: {} {}\r\n", n.get(), v.get(), v.get()).as_bytes());
    }
    match &r.body {
        Body::None => out.extend_from_slice(b"\r\n"),
        Body::Sized(b) => {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
        Body::Chunked { chunks, trailers } => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for (data, ext, upper) in chunks.iter().filter(|c| !c.0.is_empty()) {
                let size = if *upper {
                    format!("{:X}", data.len())
                } else {
                    format!("{:x}", data.len())
                };
                out.extend_from_slice(size.as_bytes());
                if let Some((n, v)) = ext {
                    out.extend_from_slice(format!(";{}={}", n.get(), v.get()).as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n");
            for (n, v) in trailers.iter().take(20) {
                out.extend_from_slice(format!("x-{}: {}\r\n", n.get(), v.get()).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        Body::ClTe(len, cl_first) => {
            let (cl, te) = (
                format!("Content-Length: {len}\r\n"),
                "Transfer-Encoding: chunked\r\n",
            );
            let h = if *cl_first {
                cl + te
            } else {
                format!("{te}{cl}")
            };
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n3\r\nabc\r\n0\r\n\r\n");
        }
    }
}

fn structured(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((seed, reqs)) = <(u64, Vec<Req>)>::arbitrary(&mut u) else {
        return;
    };
    let mut stream = Vec::new();
    for r in &reqs {
        serialize(r, &mut stream);
    }
    let first = reqs.iter().position(|r| matches!(r.body, Body::ClTe(..)));
    let v = verdicts(1 << 20, 4096, &stream, seed);
    let (served, flagged) = sniff_hyper(1 << 20, &cuts(&stream, seed ^ 0x5a));
    match first {
        Some(i) => {
            assert_eq!(
                (v.cl_te, v.heads, v.state.as_str()),
                (i as u64 + 1, i as u64 + 1, "Off")
            );
            assert_eq!(flagged, i as u64 + 1);
            // Routed up to the flagged one, refused there; hyper closes the connection after it.
            assert_eq!(
                served.len(),
                i + 1,
                "{served:?} {}",
                String::from_utf8_lossy(&stream)
            );
            assert_eq!(served[i].refused, Some(400));
            assert!(
                served[..i].iter().all(|s| s.refused.is_none()),
                "{served:?}"
            );
        }
        None => {
            assert_eq!(
                (v.cl_te, v.heads, v.state.as_str()),
                (0, reqs.len() as u64, "Head")
            );
            assert_eq!(flagged, 0);
            assert_eq!(
                served.len(),
                reqs.len(),
                "{served:?} {}",
                String::from_utf8_lossy(&stream)
            );
            assert!(
                served.iter().all(|s| s.refused.is_none()),
                "{served:?} {}",
                String::from_utf8_lossy(&stream)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.first() {
        Some(m) if m & 1 == 0 => raw(data),
        Some(_) => structured(&data[1..]),
        None => {}
    }
});
