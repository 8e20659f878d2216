//! Follows the HTTP/1 request stream of a client connection as it is read (heads, then
//! Content-Length or chunked bodies) to spot a head carrying both Content-Length and
//! Transfer-Encoding: hyper drops Content-Length from such a request, so the handler alone
//! cannot tell it apart from a plain chunked one. Anything the tracker does not follow
//! (HTTP/2, upgrades, CONNECT, malformed input that hyper rejects itself) switches it off.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the tracker saw, read by the handler of the same connection.
#[derive(Debug, Default)]
pub(crate) struct HeadLog {
    /// 1-based index of the request head that had both Content-Length and Transfer-Encoding;
    /// 0 when none. hyper closes the connection after such a request, so there is at most one.
    cl_te: AtomicU64,
}

impl HeadLog {
    /// Whether the `n`-th request (1-based) on the connection had Content-Length and
    /// Transfer-Encoding.
    pub(crate) fn had_cl_and_te(&self, n: u64) -> bool {
        n != 0 && self.cl_te.load(Ordering::Acquire) == n
    }

    /// The flagged head's index (0 when none).
    pub(crate) fn flagged(&self) -> u64 {
        self.cl_te.load(Ordering::Acquire)
    }
}

/// Longest chunk-size or trailer line followed; longer means hyper will fail anyway.
const MAX_LINE: usize = 4096;
/// Headers parsed on the stack; heads with more are not followed (hyper's default is 100).
const STACK_HEADERS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    Off,
}

/// The stream tracker (no I/O: fed with the bytes read).
pub(crate) struct Tracker {
    st: St,
    /// A partial head or line.
    buf: Vec<u8>,
    max_head: usize,
    max_line: usize,
    heads: u64,
    log: Arc<HeadLog>,
}

impl Tracker {
    pub(crate) fn new(max_head: usize, log: Arc<HeadLog>) -> Tracker {
        Tracker {
            st: St::Head,
            buf: Vec::new(),
            max_head,
            max_line: MAX_LINE,
            heads: 0,
            log,
        }
    }

    /// A smaller line limit, so fuzzing reaches it with short inputs.
    pub(crate) fn with_max_line(mut self, max_line: usize) -> Tracker {
        self.max_line = max_line;
        self
    }

    /// Complete heads parsed so far.
    pub(crate) fn heads(&self) -> u64 {
        self.heads
    }

    /// The state, for fuzzing's split-independence check.
    pub(crate) fn state(&self) -> String {
        format!("{:?}", self.st)
    }

    fn off(&mut self) {
        self.st = St::Off;
        self.buf = Vec::new();
    }

    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            data = match self.st {
                St::Off => return,
                St::Head => {
                    let used = self.head(data);
                    &data[used..]
                }
                St::Body(n) => {
                    let take = n.min(data.len() as u64);
                    self.st = if take == n {
                        St::Head
                    } else {
                        St::Body(n - take)
                    };
                    &data[take as usize..]
                }
                St::ChunkData(n) => {
                    let take = n.min(data.len() as u64);
                    self.st = if take == n {
                        St::ChunkEnd
                    } else {
                        St::ChunkData(n - take)
                    };
                    &data[take as usize..]
                }
                St::ChunkSize | St::ChunkEnd | St::Trailers => {
                    let nl = data.iter().position(|&b| b == b'\n');
                    self.buf
                        .extend_from_slice(&data[..nl.unwrap_or(data.len())]);
                    // Checked for complete lines too: the verdict must not depend on the split.
                    if self.buf.len() > self.max_line {
                        self.off();
                        return;
                    }
                    let Some(nl) = nl else {
                        return;
                    };
                    let line = std::mem::take(&mut self.buf);
                    self.line(&line);
                    &data[nl + 1..]
                }
            };
        }
    }

    /// One complete line (without its LF) in a chunked body.
    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.st = match self.st {
            St::ChunkSize => {
                let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
                let size = std::str::from_utf8(&line[..digits])
                    .ok()
                    .and_then(|s| u64::from_str_radix(s, 16).ok());
                match size {
                    Some(0) => St::Trailers,
                    Some(n) => St::ChunkData(n),
                    None => St::Off,
                }
            }
            St::ChunkEnd if line.is_empty() => St::ChunkSize,
            St::Trailers if line.is_empty() => St::Head,
            St::Trailers => St::Trailers,
            _ => St::Off,
        };
    }

    /// Parses a head from the buffered bytes plus `data`; returns how much of `data` it used
    /// (all of it while the head is partial or once the tracker is off).
    fn head(&mut self, data: &[u8]) -> usize {
        if self.buf.is_empty() {
            return match self.parse(data) {
                Some(n) => n,
                None => {
                    if self.st == St::Head {
                        self.buf.extend_from_slice(data);
                        self.check_size();
                    }
                    data.len()
                }
            };
        }
        let mut joined = std::mem::take(&mut self.buf);
        let old = joined.len();
        joined.extend_from_slice(data);
        match self.parse(&joined) {
            // The buffered part alone was partial, so the head ends inside `data`.
            Some(n) => n.saturating_sub(old),
            None => {
                if self.st == St::Head {
                    self.buf = joined;
                    self.check_size();
                }
                data.len()
            }
        }
    }

    fn check_size(&mut self) {
        if self.buf.len() > self.max_head {
            self.off();
        }
    }

    /// `Some(head length)` once a complete head is parsed (state set for its body); `None`
    /// while partial (state stays `Head`) or when the tracker turned itself off.
    fn parse(&mut self, bytes: &[u8]) -> Option<usize> {
        // Uninitialised: no 4 KiB memset per request (httparse only reads what it wrote).
        let mut headers = [const { std::mem::MaybeUninit::uninit() }; STACK_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let n = match req.parse_with_uninit_headers(bytes, &mut headers) {
            // Longer heads are refused by hyper; a complete one too, so the verdict does not
            // depend on whether it arrived in one read or overflowed the buffer in pieces.
            Ok(httparse::Status::Complete(n)) if n > self.max_head => {
                self.off();
                return None;
            }
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => {
                self.off();
                return None;
            }
        };
        self.heads += 1;
        let (mut cl, mut te, mut chunked, mut upgrade) = (None, false, false, false);
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te = true;
                // hyper: the last Transfer-Encoding line decides, chunked must be its last coding.
                chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                // Invalid or differing lengths (u64::MAX) are rejected by hyper.
                let v = h.value.trim_ascii();
                let v = (!v.is_empty() && v.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                    .flatten()
                    .unwrap_or(u64::MAX);
                cl = Some(match cl {
                    Some(c) if c != v => u64::MAX,
                    _ => v,
                });
            } else if h.name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
        }
        if te && cl.is_some() {
            self.log.cl_te.store(self.heads, Ordering::Release);
            self.off();
            return None;
        }
        let connect = req
            .method
            .is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"));
        self.st = match (te, cl) {
            // An upgraded stream is opaque from here; hyper rejects the rest below.
            _ if upgrade || connect => St::Off,
            (true, _) if chunked && req.version == Some(1) => St::ChunkSize,
            (true, _) | (false, Some(u64::MAX)) => St::Off,
            (false, Some(n)) if n > 0 => St::Body(n),
            _ => St::Head,
        };
        if self.st == St::Off {
            self.buf = Vec::new();
            return None;
        }
        Some(n)
    }
}

/// A client stream whose reads feed a [`Tracker`]; writes pass through.
pub(crate) struct Sniffed<T> {
    inner: T,
    tracker: Tracker,
}

impl<T> Sniffed<T> {
    pub(crate) fn new(inner: T, max_head: usize, log: Arc<HeadLog>) -> Sniffed<T> {
        Sniffed {
            inner,
            // hyper's read buffer, which bounds heads, is never below 8 KiB (listener.rs).
            tracker: Tracker::new(max_head.max(8192), log),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Sniffed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && this.tracker.st != St::Off {
            this.tracker.feed(&buf.filled()[before..]);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Sniffed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns the flagged head index.
    fn run(input: &[u8], step: usize) -> (u64, St) {
        let log = Arc::new(HeadLog::default());
        let mut t = Tracker::new(64 * 1024, log.clone());
        for piece in input.chunks(step) {
            t.feed(piece);
        }
        (log.cl_te.load(Ordering::Acquire), t.st)
    }

    const CHUNKED: &str = "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n13\r\nContent-Length: 1\r\n\r\n0\r\nX-Trailer: t\r\n\r\n";
    const SIZED: &str =
        "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\nTransfer-Encoding: chunked\r\n\r\nxxxxxxxxxx";
    const CL_TE: &str =
        "POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

    #[test]
    fn follows_bodies_to_the_flagged_head_in_any_split() {
        // Bodies that look like headers must not be taken for heads.
        let input = format!("{CHUNKED}{SIZED}GET /d HTTP/1.1\r\nHost: a\r\n\r\n{CL_TE}");
        for step in [1, 2, 7, 64, input.len()] {
            assert_eq!(run(input.as_bytes(), step), (4, St::Off), "step {step}");
        }
        assert_eq!(
            run(format!("{CHUNKED}{SIZED}").as_bytes(), 3),
            (0, St::Head)
        );
    }

    #[test]
    fn te_first_then_content_length_is_flagged() {
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(run(head.as_bytes(), 5).0, 1);
    }

    #[test]
    fn upgrades_h2_and_garbage_switch_off() {
        let up = "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(run(format!("{up}{CL_TE}").as_bytes(), 9), (0, St::Off));
        assert_eq!(run(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 4), (0, St::Off));
        assert_eq!(
            run(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 100),
            (0, St::Off)
        );
    }

    /// Why this module exists: hyper hands the service a CL + TE request without its
    /// Content-Length, in either order, so only the byte stream shows it.
    #[tokio::test]
    async fn hyper_drops_content_length_when_transfer_encoding_is_present() {
        use tokio::io::AsyncWriteExt;
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        ] {
            let (mut client, server) = tokio::io::duplex(4096);
            let seen = Arc::new(std::sync::Mutex::new(None));
            let record = seen.clone();
            let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                let h = req.headers();
                *record.lock().unwrap() = Some((
                    h.contains_key(http::header::CONTENT_LENGTH),
                    h.contains_key(http::header::TRANSFER_ENCODING),
                ));
                async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(server), svc);
            let task = tokio::spawn(conn);
            client.write_all(head.as_bytes()).await.unwrap();
            client.write_all(b"0\r\n\r\n").await.unwrap();
            let _ = task.await;
            assert_eq!(*seen.lock().unwrap(), Some((false, true)), "{head:?}");
        }
    }

    /// Found by fuzzing (fuzz/regressions/http1_sniff/long-chunk-line-split): a chunk line
    /// over the limit was followed when it arrived in one read, not when split.
    #[test]
    fn long_chunk_lines_switch_off_in_any_split() {
        let input = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;e={}\r\nhello\r\n0\r\n\r\n",
            "x".repeat(MAX_LINE)
        );
        for step in [1, 100, input.len()] {
            assert_eq!(run(input.as_bytes(), step), (0, St::Off), "step {step}");
        }
    }

    /// Found by fuzzing (fuzz/regressions/http1_sniff/oversized-head-in-one-read): a head over
    /// the limit was followed when it arrived in one read, not when split.
    #[test]
    fn oversized_head_in_one_read_switches_off() {
        let head = format!("GET / HTTP/1.1\r\nX-A: {}\r\n\r\n", "a".repeat(100));
        for step in [1, head.len()] {
            let mut t = Tracker::new(100, Arc::new(HeadLog::default()));
            head.as_bytes().chunks(step).for_each(|c| t.feed(c));
            assert_eq!((t.st, t.heads), (St::Off, 0), "step {step}");
        }
    }

    #[test]
    fn oversized_heads_switch_off() {
        let log = Arc::new(HeadLog::default());
        let mut t = Tracker::new(100, log);
        t.feed(b"GET / HTTP/1.1\r\n");
        t.feed(&[b'x'; 200]);
        assert_eq!(t.st, St::Off);
        assert!(t.buf.is_empty());
    }
}
