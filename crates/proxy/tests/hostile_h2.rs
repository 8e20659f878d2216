//! HTTP/2 abuse over h2c with prior knowledge, written frame by frame: rapid reset,
//! CONTINUATION flood, SETTINGS and PING floods, too many concurrent streams. Each checks the
//! flood is bounded (GOAWAY, close, back-pressure or refused streams), memory stays sane, and
//! normal HTTP/1.1 and h2c requests still succeed afterwards.

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const CANCEL: u32 = 0x8;
const REFUSED_STREAM: u32 = 0x7;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK for `GET path` on authority `a`: indexed :method/:scheme, literal :path/:authority.
fn get_block(path: &str) -> Vec<u8> {
    assert!(path.len() < 127);
    let mut b = vec![0x82, 0x86, 0x04, path.len() as u8];
    b.extend_from_slice(path.as_bytes());
    b.extend_from_slice(&[0x01, 1, b'a']);
    b
}

#[derive(Debug, Clone)]
struct Frame {
    ty: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// Frames the server sent, collected by a background reader.
#[derive(Default)]
struct Seen {
    frames: Vec<Frame>,
    /// EOF or a read error.
    closed: bool,
}

impl Seen {
    fn goaway(&self) -> Option<u32> {
        self.frames
            .iter()
            .find(|f| f.ty == GOAWAY)
            .map(|f| u32::from_be_bytes(f.payload.get(4..8).unwrap_or(&[0; 4]).try_into().unwrap()))
    }
    fn count(&self, ty: u8) -> usize {
        self.frames.iter().filter(|f| f.ty == ty).count()
    }
}

struct Conn {
    w: OwnedWriteHalf,
    seen: Arc<Mutex<Seen>>,
}

/// Connects, sends the preface and an empty SETTINGS; frames are read in the background (only
/// frame headers and the first 16 payload bytes are kept, so a flood of answers stays small).
async fn connect(port: u16, read: bool) -> (Conn, Option<tokio::net::tcp::OwnedReadHalf>) {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = s.into_split();
    w.write_all(PREFACE).await.unwrap();
    w.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    if !read {
        return (Conn { w, seen }, Some(r));
    }
    let out = seen.clone();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            while buf.len() >= 9 {
                let len = (buf[0] as usize) << 16 | (buf[1] as usize) << 8 | buf[2] as usize;
                if buf.len() < 9 + len {
                    break;
                }
                let stream = u32::from_be_bytes(buf[5..9].try_into().unwrap()) & 0x7fff_ffff;
                let payload = buf[9..9 + len.min(16)].to_vec();
                out.lock().unwrap().frames.push(Frame {
                    ty: buf[3],
                    flags: buf[4],
                    stream,
                    payload,
                });
                buf.drain(..9 + len);
            }
        }
        out.lock().unwrap().closed = true;
    });
    (Conn { w, seen }, None)
}

#[derive(Debug, PartialEq)]
enum Wrote {
    All,
    /// The server stopped reading (back-pressure) for the stall window.
    Stalled,
    /// The server closed or reset the connection.
    Closed,
}

async fn write(c: &mut Conn, bytes: &[u8]) -> Wrote {
    match tokio::time::timeout(Duration::from_secs(2), c.w.write_all(bytes)).await {
        Ok(Ok(())) => Wrote::All,
        Ok(Err(_)) => Wrote::Closed,
        Err(_) => Wrote::Stalled,
    }
}

/// Resident set size of this test process (the proxy runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Generous: a flood must not cost the proxy more than this much memory.
const RSS_GROWTH_LIMIT_KIB: u64 = 256 * 1024;

async fn start() -> (trellis_proxy::Proxy, Backend, u16) {
    let b = backend("b").await;
    let port = free_port();
    let p = proxy();
    p.apply(simple(
        port,
        vec![route("r", prefix("/"), to("b"))],
        vec![cluster("b", &[&b])],
    ))
    .await
    .unwrap();
    (p, b, port)
}

async fn assert_healthy(port: u16) {
    assert_eq!(get(port, "/after", None).await.status, 200, "HTTP/1.1");
    let h2 = send(&h2c_client(), port, "GET", "/after-h2", None, &[]).await;
    assert_eq!(h2.status, 200, "h2c");
}

/// Waits (bounded) until the reader saw `f` hold.
async fn wait_seen(c: &Conn, limit: Duration, f: impl Fn(&Seen) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f(&c.seen.lock().unwrap()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Open a stream and cancel it at once, thousands of times (CVE-2023-44487).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_is_bounded() {
    let (_p, b, port) = start().await;
    let before = rss_kib();
    let (mut c, _) = connect(port, true).await;
    const STREAMS: u32 = 10_000;
    let mut sent = 0;
    let mut outcome = Wrote::All;
    let started = Instant::now();
    while sent < STREAMS && started.elapsed() < Duration::from_secs(30) {
        let mut batch = Vec::new();
        for _ in 0..100 {
            let id = 1 + 2 * sent;
            batch.extend(frame(
                HEADERS,
                END_STREAM | END_HEADERS,
                id,
                &get_block("/rapid?delay_ms=200"),
            ));
            batch.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
            sent += 1;
        }
        outcome = write(&mut c, &batch).await;
        if outcome != Wrote::All {
            break;
        }
    }
    let growth = rss_kib().saturating_sub(before);
    let (goaway, closed) = {
        let s = c.seen.lock().unwrap();
        (s.goaway(), s.closed)
    };
    let reached = b.seen().len();
    eprintln!(
        "rapid reset: {sent} streams sent ({outcome:?}), goaway {goaway:?}, closed {closed}, \
         {reached} reached the backend, RSS +{growth} KiB"
    );
    assert!(growth < RSS_GROWTH_LIMIT_KIB, "RSS grew by {growth} KiB");
    // Cancelled streams must not pile up upstream work: each stream was cancelled, so at most
    // a fraction may have been forwarded before the reset arrived.
    assert!(
        goaway.is_some() || closed || outcome != Wrote::All || reached < sent as usize,
        "every cancelled stream was still forwarded"
    );
    drop(c);
    assert_healthy(port).await;
}

/// HEADERS without END_HEADERS, then CONTINUATION frames forever: the server must give up
/// long before 20 MB of header block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_flood_is_cut_off() {
    let (_p, b, port) = start().await;
    let before = rss_kib();
    let (mut c, _) = connect(port, true).await;
    let block = get_block("/continuation");
    let mut outcome = write(&mut c, &frame(HEADERS, 0, 1, &block)).await;
    // Literal header "x-c: aaa…" without indexing, new name; ~1 KB per frame.
    // Length 1000 = 127 + 873: prefix 0x7f, then 873 as an HPACK varint (0xe9 0x06).
    let mut field = vec![0x00, 3, b'x', b'-', b'c', 0x7f, 0xe9, 0x06];
    field.extend(std::iter::repeat_n(b'a', 1000));
    let cont = frame(CONTINUATION, 0, 1, &field);
    let mut frames = 0;
    let started = Instant::now();
    while outcome == Wrote::All && frames < 20_000 && started.elapsed() < Duration::from_secs(30) {
        let batch: Vec<u8> = (0..50).flat_map(|_| cont.clone()).collect();
        outcome = write(&mut c, &batch).await;
        frames += 50;
        let s = c.seen.lock().unwrap();
        if s.goaway().is_some() || s.closed {
            break;
        }
    }
    let ended = wait_seen(&c, Duration::from_secs(5), |s| {
        s.goaway().is_some() || s.closed
    })
    .await;
    let growth = rss_kib().saturating_sub(before);
    let goaway = c.seen.lock().unwrap().goaway();
    eprintln!(
        "continuation flood: {frames} frames ({outcome:?}), goaway {goaway:?}, RSS +{growth} KiB"
    );
    assert!(
        ended || outcome == Wrote::Closed,
        "connection still open after {frames} CONTINUATION frames"
    );
    assert!(frames < 20_000, "all 20 MB of header block were accepted");
    assert!(!b.seen().iter().any(|p| p == "/continuation"));
    assert!(growth < RSS_GROWTH_LIMIT_KIB, "RSS grew by {growth} KiB");
    drop(c);
    assert_healthy(port).await;
}

/// Sends `count` copies of `one` without ever reading the answers (ACKs pile up on the
/// server's side): the server must push back, close, or absorb it within the memory bound.
async fn flood_without_reading(port: u16, one: Vec<u8>, count: usize) -> (usize, Wrote) {
    let (mut c, _reader_kept_unread) = connect(port, false).await;
    let mut sent = 0;
    let mut outcome = Wrote::All;
    let started = Instant::now();
    while sent < count && started.elapsed() < Duration::from_secs(30) {
        let batch: Vec<u8> = (0..1000).flat_map(|_| one.clone()).collect();
        outcome = write(&mut c, &batch).await;
        if outcome != Wrote::All {
            break;
        }
        sent += 1000;
    }
    (sent, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_flood_is_bounded() {
    let (_p, _b, port) = start().await;
    let before = rss_kib();
    // 2M frames: 18 MB of ACKs, more than loopback socket buffers hold.
    let (sent, outcome) = flood_without_reading(port, frame(SETTINGS, 0, 0, &[]), 2_000_000).await;
    let growth = rss_kib().saturating_sub(before);
    eprintln!("SETTINGS flood: {sent} frames ({outcome:?}), RSS +{growth} KiB");
    assert!(growth < RSS_GROWTH_LIMIT_KIB, "RSS grew by {growth} KiB");
    assert!(
        outcome != Wrote::All,
        "2M unacknowledged SETTINGS were all read: no back-pressure or limit"
    );
    assert_healthy(port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_is_bounded() {
    let (_p, _b, port) = start().await;
    let before = rss_kib();
    // 2M frames: 34 MB of PONGs, more than loopback socket buffers hold.
    let (sent, outcome) = flood_without_reading(port, frame(PING, 0, 0, &[7; 8]), 2_000_000).await;
    let growth = rss_kib().saturating_sub(before);
    eprintln!("PING flood: {sent} frames ({outcome:?}), RSS +{growth} KiB");
    assert!(growth < RSS_GROWTH_LIMIT_KIB, "RSS grew by {growth} KiB");
    assert!(
        outcome != Wrote::All,
        "2M unanswered PINGs were all read: no back-pressure or limit"
    );
    assert_healthy(port).await;
}

/// Opens 100 more streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS allows: the
/// excess is refused (RST_STREAM REFUSED_STREAM or GOAWAY) and never reaches the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_max_concurrent_are_refused() {
    let (_p, b, port) = start().await;
    let (mut c, _) = connect(port, true).await;
    assert!(
        wait_seen(&c, Duration::from_secs(5), |s| s
            .frames
            .iter()
            .any(|f| f.ty == SETTINGS && f.flags & ACK == 0))
        .await,
        "no SETTINGS from the server"
    );
    // Only the first 16 payload bytes are kept: enough for the first settings.
    let limit = {
        let s = c.seen.lock().unwrap();
        let f = s
            .frames
            .iter()
            .find(|f| f.ty == SETTINGS && f.flags & ACK == 0)
            .unwrap()
            .clone();
        f.payload.chunks(6).find_map(|kv| {
            (kv.len() == 6 && u16::from_be_bytes([kv[0], kv[1]]) == SETTINGS_MAX_CONCURRENT_STREAMS)
                .then(|| u32::from_be_bytes(kv[2..6].try_into().unwrap()))
        })
    };
    let limit = limit.expect("the server advertises no SETTINGS_MAX_CONCURRENT_STREAMS");
    assert!(
        limit <= 1000,
        "max concurrent streams {limit} is unbounded in practice"
    );
    // Our ACK makes the server's settings binding.
    assert_eq!(
        write(&mut c, &frame(SETTINGS, ACK, 0, &[])).await,
        Wrote::All
    );
    let total = limit + 100;
    let mut batch = Vec::new();
    for i in 0..total {
        let block = get_block(&format!("/conc/{i}?delay_ms=1500"));
        batch.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, &block));
    }
    assert_eq!(write(&mut c, &batch).await, Wrote::All);
    let refused = |s: &Seen| {
        s.frames
            .iter()
            .filter(|f| {
                f.ty == RST_STREAM
                    && f.stream != 0
                    && f.payload.get(..4) == Some(&REFUSED_STREAM.to_be_bytes()[..])
            })
            .count()
    };
    let bounded = wait_seen(&c, Duration::from_secs(5), |s| {
        refused(s) >= 100 || s.goaway().is_some()
    })
    .await;
    let forwarded = || b.seen().iter().filter(|p| p.starts_with("/conc/")).count();
    // The streams within the limit are served; give the rest a moment to (wrongly) arrive.
    let start = Instant::now();
    while forwarded() < limit as usize && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let forwarded = forwarded();
    {
        let s = c.seen.lock().unwrap();
        eprintln!(
            "max concurrent {limit}: {} refused, goaway {:?}, {forwarded} forwarded, {} DATA",
            refused(&s),
            s.goaway(),
            s.count(DATA)
        );
    }
    assert!(
        bounded,
        "the excess streams were neither refused nor ended by GOAWAY"
    );
    assert_eq!(
        forwarded, limit as usize,
        "streams forwarded with a limit of {limit}"
    );
    drop(c);
    assert_healthy(port).await;
}
