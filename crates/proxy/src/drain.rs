//! The lifecycle of one bind's connections: running → draining (finish in-flight requests,
//! then close) → killed (close now). A connection reads one atomic per poll and registers its
//! waker once; a phase change wakes every connection. (It replaces hyper-util's graceful
//! watcher plus two kill watches per connection, which cost ~900 instructions per request.)

use hyper_util::server::graceful::GracefulConnection;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const KILLED: u8 = 2;

#[derive(Default)]
pub(crate) struct Phase {
    state: AtomicU8,
    inner: Mutex<Inner>,
    /// Notified when the last connection ends.
    idle: Notify,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Live connections, with the waker of their latest poll (`None` before the first).
    conns: HashMap<u64, Option<Waker>>,
}

impl Phase {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tracks `conn`: it shuts down gracefully on [`Phase::drain`] and resolves to `None`
    /// (dropping the connection) on [`Phase::kill`].
    pub(crate) fn guard<C: GracefulConnection>(self: &Arc<Self>, conn: C) -> Guarded<C> {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.conns.insert(id, None);
        Guarded {
            conn: Box::pin(conn),
            phase: self.clone(),
            id,
            waker: None,
            draining: false,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.lock().conns.len()
    }

    pub(crate) fn drain(&self) {
        self.advance(DRAINING);
    }

    pub(crate) fn kill(&self) {
        self.advance(KILLED);
    }

    fn advance(&self, to: u8) {
        self.state.fetch_max(to, Ordering::AcqRel);
        // After the store: a connection registering later sees the new phase when it looks.
        let inner = self.lock();
        for w in inner.conns.values().flatten() {
            w.wake_by_ref();
        }
    }

    /// Resolves once no connection is left.
    pub(crate) async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            if self.lock().conns.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

/// A connection under a [`Phase`].
pub(crate) struct Guarded<C> {
    conn: Pin<Box<C>>,
    phase: Arc<Phase>,
    id: u64,
    waker: Option<Waker>,
    draining: bool,
}

impl<C: GracefulConnection> Future for Guarded<C> {
    type Output = Option<Result<(), C::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Register before looking at the phase, so a change in between still wakes us.
        if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let w = cx.waker().clone();
            this.phase.lock().conns.insert(this.id, Some(w.clone()));
            this.waker = Some(w);
        }
        match this.phase.state.load(Ordering::Acquire) {
            RUNNING => {}
            DRAINING => {
                if !this.draining {
                    this.draining = true;
                    this.conn.as_mut().graceful_shutdown();
                }
            }
            _ => return Poll::Ready(None),
        }
        this.conn.as_mut().poll(cx).map(Some)
    }
}

impl<C> Drop for Guarded<C> {
    fn drop(&mut self) {
        let mut inner = self.phase.lock();
        inner.conns.remove(&self.id);
        if inner.conns.is_empty() {
            self.phase.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A real hyper HTTP/1 connection over an in-memory pipe, with no request on it.
    fn idle_conn(
        io: tokio::io::DuplexStream,
    ) -> impl GracefulConnection<Error = hyper::Error> + Send + 'static {
        let svc = hyper::service::service_fn(|_req| async {
            let empty = http_body_util::Empty::<bytes::Bytes>::new();
            Ok::<_, std::convert::Infallible>(http::Response::new(empty))
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
    }

    #[tokio::test]
    async fn drain_ends_idle_connections_and_kill_ends_the_rest() {
        let phase = Arc::new(Phase::default());
        let (a, _a) = tokio::io::duplex(64);
        let conn = tokio::spawn(phase.guard(idle_conn(a)));
        tokio::task::yield_now().await;
        assert_eq!(phase.count(), 1);
        phase.drain();
        let out = tokio::time::timeout(Duration::from_secs(5), conn)
            .await
            .expect("an idle connection ends on drain")
            .unwrap();
        assert!(matches!(out, Some(Ok(()))));
        phase.drained().await;

        let phase = Arc::new(Phase::default());
        let (b, _b) = tokio::io::duplex(64);
        let conn = tokio::spawn(phase.guard(idle_conn(b)));
        tokio::task::yield_now().await;
        phase.kill();
        let out = tokio::time::timeout(Duration::from_secs(5), conn)
            .await
            .expect("kill ends a connection")
            .unwrap();
        assert!(out.is_none());
        phase.drained().await;
        assert_eq!(phase.count(), 0);
    }
}
