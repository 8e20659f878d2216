//! The upstream log line the runner may read: `Echoing back request made to <URI> to client`.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use http_body_util::Empty;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// The default test runtime is single-threaded, so the subscriber set for this thread also
// sees the echo's tasks.
#[tokio::test]
async fn logs_each_request_uri_at_info() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let echo = start(options()).await;
    http1(
        echo.local_addr,
        get("/logged?a=1").body(Empty::new()).unwrap(),
    )
    .await
    .unwrap();
    echo.shutdown();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("Echoing back request made to"))
        .unwrap_or_else(|| panic!("no echo log line in {text:?}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.contains("Echoing back request made to /logged?a=1 to client"),
        "{line}"
    );
}
