//! Entry points for the `http1_sniff` fuzz target (fuzz/fuzz_targets/http1_sniff.rs): the
//! HTTP/1 stream tracker fed in arbitrary pieces, and hyper serving the same bytes through it.

use crate::sniff::{HeadLog, Sniffed, Tracker};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the tracker concluded from a byte stream.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniffVerdict {
    /// 1-based index of the head flagged for Content-Length + Transfer-Encoding; 0 when none.
    pub cl_te: u64,
    /// Complete heads parsed.
    pub heads: u64,
    /// The tracker's final state (e.g. `Head`, `Body(3)`, `Off`).
    pub state: String,
}

/// Feeds `chunks` in order to a tracker with the given head and chunk-line limits.
#[doc(hidden)]
pub fn sniff_feed(max_head: usize, max_line: usize, chunks: &[&[u8]]) -> SniffVerdict {
    let log = Arc::new(HeadLog::default());
    let mut t = Tracker::new(max_head, log.clone()).with_max_line(max_line);
    for c in chunks {
        t.feed(c);
    }
    SniffVerdict {
        cl_te: log.flagged(),
        heads: t.heads(),
        state: t.state(),
    }
}

/// One request as the handler saw it when hyper served the stream.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub transfer_encoding: bool,
    pub content_length: bool,
    /// What `framing::check` answered (None: routed).
    pub refused: Option<u16>,
}

/// Serves `chunks` (read one per `poll_read`, then EOF) with hyper's HTTP/1 server through the
/// tracker, as `listener.rs` does, and runs `framing::check` on each request like the handler.
/// Returns the requests served in order and the head the tracker flagged (0 when none).
#[doc(hidden)]
pub fn sniff_hyper(max_head: usize, chunks: &[&[u8]]) -> (Vec<Served>, u64) {
    let log = Arc::new(HeadLog::default());
    let io = Sniffed::new(
        // An empty read would be EOF.
        Scripted(
            chunks
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| c.to_vec())
                .collect(),
        ),
        max_head,
        log.clone(),
    );
    let served = Arc::new(Mutex::new(Vec::new()));
    let (seen, head_log) = (served.clone(), log.clone());
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let n = seen.len() as u64 + 1;
        let limits = trellis_ir::Limits::default();
        let refused = crate::framing::check(&req, &limits, head_log.had_cl_and_te(n)).err();
        let h = req.headers();
        seen.push(Served {
            transfer_encoding: h.contains_key(http::header::TRANSFER_ENCODING),
            content_length: h.contains_key(http::header::CONTENT_LENGTH),
            refused: refused.map(|s| s.as_u16()),
        });
        drop(seen);
        async move {
            let resp = match refused {
                Some(s) => crate::framing::reject(s, req.version()),
                None => {
                    // The proxy forwards the body of a routed request: read it all.
                    let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                    crate::body::status(http::StatusCode::OK)
                }
            };
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(max_head.max(8192))
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime without drivers builds");
    // The reader never pends, so hyper finishes at EOF.
    let _ = rt.block_on(conn);
    let served = served.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (served, log.flagged())
}

/// A client that sends its chunks one read at a time, then EOF, and discards responses.
struct Scripted(VecDeque<Vec<u8>>);

impl AsyncRead for Scripted {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let q = &mut self.get_mut().0;
        if let Some(mut c) = q.pop_front() {
            let n = c.len().min(buf.remaining());
            buf.put_slice(&c[..n]);
            if n < c.len() {
                q.push_front(c.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays fuzz/regressions/http1_sniff (raw-mode inputs: `[even mode, limits, split seed,
    /// stream...]`, limits decoded as the target does) with its split-independence property.
    #[test]
    fn fuzz_regressions_give_one_verdict_in_any_split() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/http1_sniff");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).expect("regressions folder") {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let [mode, limits, _, stream @ ..] = &data[..] else {
                panic!("{path:?}: too short");
            };
            assert_eq!(mode & 1, 0, "{path:?}: not a raw-mode input");
            let max_head = 32 + *limits as usize * 8;
            let max_line = 2 + (*limits as usize % 32) * 4;
            let whole = sniff_feed(max_head, max_line, &[stream]);
            for step in [1, 2, 3, 7, 64] {
                let pieces: Vec<&[u8]> = stream.chunks(step).collect();
                let split = sniff_feed(max_head, max_line, &pieces);
                assert_eq!(split, whole, "{path:?}, step {step}");
            }
            replayed += 1;
        }
        assert!(replayed >= 2, "{replayed} regressions in {dir:?}");
    }

    /// The hyper harness refuses exactly the CL + TE request, after routing the one before it
    /// whose chunked body looks like a CL + TE head.
    #[test]
    fn hyper_refuses_the_flagged_request_only() {
        let stream = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
            42\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n0\r\n\r\n\
            POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n\
            0\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\n\r\n";
        for step in [1, 5, stream.len()] {
            let pieces: Vec<&[u8]> = stream.chunks(step).collect();
            let (served, flagged) = sniff_hyper(64 * 1024, &pieces);
            assert_eq!(flagged, 2, "step {step}");
            let refused: Vec<_> = served.iter().map(|s| s.refused).collect();
            // hyper closes the connection after the refusal: /c is never served.
            assert_eq!(refused, [None, Some(400)], "step {step}");
            assert!(served[1].transfer_encoding && !served[1].content_length);
        }
    }
}
