//! Sending one request to one endpoint.
//!
//! HTTP/1: a LIFO pool of idle connections per endpoint. The task that sends a request also
//! drives the upstream connection (while waiting for the head, then inside the response body),
//! so a proxied request is served by the client connection's own task: no hand-off to a
//! connection task over a channel and back over a oneshot, and no pool key hashing (a profile
//! put hyper-util's pooled client at ~15 % of the instructions per request).
//! HTTP/2 (h2c): one shared multiplexed connection driven by its own task.
//! Upgrades (WebSocket): a fresh HTTP/1 connection driven by its own task, which hands the
//! socket over on `101`.

use crate::body::{BoxError, ProxyBody};
use crate::upstream::{EndpointConnector, UpStream, UpstreamError};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

type H1Conn = http1::Connection<TokioIo<UpStream>, ProxyBody>;

/// Idle connections older than this are closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per endpoint; more are closed when they become idle.
const MAX_IDLE: usize = 1024;

/// One HTTP/1 connection: the request side and the connection future, which whoever holds
/// the lease polls.
struct Lease {
    tx: http1::SendRequest<ProxyBody>,
    /// `None` once the connection future finished (closed or failed).
    conn: Option<H1Conn>,
}

impl Lease {
    /// Moves the connection forward (writes, reads); notes when it ends.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(c) = self.conn.as_mut() {
            if let Poll::Ready(r) = Pin::new(c).poll(cx) {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upstream connection failed");
                }
                // Dropping the dispatcher returns a request it never wrote to its sender.
                self.conn = None;
            }
        }
    }

    /// Open and idle as of the connection's latest poll. A close by the backend since then is
    /// seen on the next poll, before anything is written: the request comes back unsent.
    fn reusable(&self) -> bool {
        self.conn.is_some() && self.tx.is_ready()
    }
}

struct Idle {
    lease: Box<Lease>,
    since: Instant,
}

/// The connections of one endpoint.
pub(crate) struct Conns {
    connector: EndpointConnector,
    h2: bool,
    idle: Mutex<Vec<Idle>>,
    shared_h2: Mutex<Option<http2::SendRequest<ProxyBody>>>,
}

impl Conns {
    pub(crate) fn new(connector: EndpointConnector, h2: bool) -> Conns {
        Conns {
            connector,
            h2,
            idle: Mutex::new(Vec::new()),
            shared_h2: Mutex::new(None),
        }
    }

    /// Sends `req` and returns the response, whose body keeps driving the connection.
    /// `upgrade`: an HTTP/1 upgrade request (its connection is handed over on `101`).
    pub(crate) async fn send(
        self: &Arc<Self>,
        req: Request<ProxyBody>,
        upgrade: bool,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        // Rare paths are boxed: their futures (connect, TLS handshake) are large, and this
        // one is moved on every request.
        if self.h2 {
            return Box::pin(self.send_h2(req)).await;
        }
        if upgrade {
            return Box::pin(self.send_upgrade(req)).await;
        }
        let mut req = req;
        loop {
            let (mut lease, reused) = match self.checkout() {
                Some(l) => (l, true),
                None => (Box::pin(self.connect_h1()).await?, false),
            };
            match send_on(&mut lease, req, reused).await {
                Ok(resp) => return Ok(self.driven(resp, lease)),
                // A pooled connection the backend had closed: nothing was written, try another.
                Err(SendError::Unsent(r)) if reused => req = *r,
                Err(SendError::Unsent(_)) => return Err(UpstreamError::Io),
                Err(SendError::Failed(e)) => {
                    tracing::debug!(error = %e, "upstream request failed");
                    return Err(UpstreamError::Io);
                }
            }
        }
    }

    fn checkout(&self) -> Option<Box<Lease>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let i = idle.pop()?;
        if i.since.elapsed() >= IDLE_TIMEOUT {
            // The most recent one is too old, so all are.
            idle.clear();
            return None;
        }
        Some(i.lease)
    }

    fn checkin(self: &Arc<Self>, mut lease: Box<Lease>) {
        // Polling here would cost a dispatcher pass per request; the poll that produced the
        // body's end has normally made the connection idle already.
        if lease.reusable() {
            return self.push(lease);
        }
        if lease.conn.is_none() {
            return;
        }
        // The response ended while the request body is still going up (the backend answered
        // early): finish sending it, as the backend may still read it, then pool the
        // connection. Bounded by the client connection, which feeds that body.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let conns = self.clone();
        rt.spawn(async move {
            poll_fn(|cx| {
                lease.drive(cx);
                if lease.conn.is_none() || lease.tx.is_ready() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            if lease.reusable() {
                conns.push(lease);
            }
        });
    }

    fn push(&self, lease: Box<Lease>) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle { lease, since: now });
        }
    }

    /// Closes connections idle for longer than [`IDLE_TIMEOUT`].
    pub(crate) fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|i| i.since.elapsed() < IDLE_TIMEOUT);
    }

    /// Boxed: a connection is large and moves in and out of the pool on every request.
    async fn connect_h1(&self) -> Result<Box<Lease>, UpstreamError> {
        let (tx, conn) = self.handshake_h1().await?;
        Ok(Box::new(Lease {
            tx,
            conn: Some(conn),
        }))
    }

    async fn handshake_h1(&self) -> Result<(http1::SendRequest<ProxyBody>, H1Conn), UpstreamError> {
        let io = self.connector.connect().await?;
        http1::handshake(io).await.map_err(|e| {
            tracing::debug!(error = %e, "upstream HTTP/1 handshake failed");
            UpstreamError::ConnectOther
        })
    }

    fn driven(
        self: &Arc<Self>,
        resp: Response<Incoming>,
        lease: Box<Lease>,
    ) -> Response<ProxyBody> {
        let (parts, body) = resp.into_parts();
        let body = Driven {
            body,
            lease: Some(lease),
            conns: self.clone(),
        };
        Response::from_parts(parts, ProxyBody::new(body))
    }

    async fn send_upgrade(
        &self,
        req: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        let (mut tx, conn) = self.handshake_h1().await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection failed");
            }
        });
        let resp = tx.send_request(req).await.map_err(|e| {
            tracing::debug!(error = %e, "upstream request failed");
            UpstreamError::Io
        })?;
        Ok(resp.map(crate::body::incoming))
    }

    async fn send_h2(
        &self,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        let mut cached = self
            .shared_h2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|tx| !tx.is_closed());
        loop {
            // A request the shared connection never took (GOAWAY, idle close) goes once more,
            // on a new connection.
            let reused = cached.is_some();
            let mut tx = match cached.take() {
                Some(tx) => tx,
                None => self.connect_h2().await?,
            };
            if tx.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(UpstreamError::Io);
            }
            match tx.try_send_request(req).await {
                Ok(resp) => return Ok(resp.map(crate::body::incoming)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => {
                        tracing::debug!(error = %e.error(), "upstream request failed");
                        return Err(UpstreamError::Io);
                    }
                },
            }
        }
    }

    /// A new shared h2c connection (driven by its own task), cached for the next requests.
    async fn connect_h2(&self) -> Result<http2::SendRequest<ProxyBody>, UpstreamError> {
        let io = self.connector.connect().await?;
        let (tx, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, "upstream HTTP/2 handshake failed");
                UpstreamError::ConnectOther
            })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection failed");
            }
        });
        *self.shared_h2.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx.clone());
        Ok(tx)
    }
}

/// Why a request did not get a response head.
enum SendError {
    /// Never written: the connection was closed or not ready.
    Unsent(Box<Request<ProxyBody>>),
    Failed(hyper::Error),
}

/// Sends on `lease`, driving its connection until the response head arrives.
async fn send_on(
    lease: &mut Lease,
    req: Request<ProxyBody>,
    reused: bool,
) -> Result<Response<Incoming>, SendError> {
    if reused && !lease.reusable() {
        return Err(SendError::Unsent(Box::new(req)));
    }
    // Queued now; the connection writes it when driven below.
    let mut sent = std::pin::pin!(lease.tx.try_send_request(req));
    poll_fn(|cx| {
        lease.drive(cx);
        sent.as_mut().poll(cx)
    })
    .await
    .map_err(|mut e| match e.take_message() {
        Some(r) => SendError::Unsent(Box::new(r)),
        None => SendError::Failed(e.into_error()),
    })
}

/// A response body that drives its HTTP/1 connection and returns it to the pool once the
/// body is complete (a body dropped early closes the connection: it cannot be reused).
struct Driven {
    body: Incoming,
    lease: Option<Box<Lease>>,
    conns: Arc<Conns>,
}

impl Driven {
    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.conns.checkin(lease);
        }
    }
}

impl Body for Driven {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        // Data already read comes first; the connection is driven only when more is needed.
        let mut r = Pin::new(&mut this.body).poll_frame(cx);
        if r.is_pending() {
            if let Some(lease) = this.lease.as_mut() {
                lease.drive(cx);
                r = Pin::new(&mut this.body).poll_frame(cx);
            }
        }
        match &r {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.lease = None,
            _ => {}
        }
        r.map_err(BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        // hyper stops polling a body once it reports its end: that is the usual release.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}
