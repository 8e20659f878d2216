//! Test helpers: a small hyper echo backend, IR builders and clients. Everything on 127.0.0.1.
#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use trellis_ir as ir;

/// A running echo backend.
#[derive(Clone)]
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    /// Request-URIs received, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
}

impl Backend {
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts an echo backend speaking HTTP/1.1 and h2c. Answers JSON
/// `{backend, path, host, method, proto, headers}`; `/status/N` answers N; `?delay_ms=N`
/// sleeps; `/flaky/K?fail=N` answers 500 for the first N requests of key K; `/ws` is a
/// WebSocket echo.
pub async fn backend(name: &str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let b = Backend {
        name: name.to_string(),
        addr,
        seen: Arc::default(),
        connections: Arc::default(),
    };
    let counters: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let state = b.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            state.connections.fetch_add(1, Ordering::SeqCst);
            let state = state.clone();
            let counters = counters.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let counters = counters.clone();
                    async move { Ok::<_, std::convert::Infallible>(echo(state, counters, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    b
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

async fn echo(
    b: Backend,
    counters: Arc<Mutex<HashMap<String, usize>>>,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    b.seen.lock().unwrap().push(uri.clone());
    if req.uri().path() == "/ws" {
        return websocket(&mut req);
    }
    if let Some(ms) = query_param(&req, "delay_ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut status = StatusCode::OK;
    if let Some(code) = req.uri().path().strip_prefix("/status/") {
        status = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap();
    }
    if let Some(key) = req.uri().path().strip_prefix("/flaky/") {
        let fail: usize = query_param(&req, "fail")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut c = counters.lock().unwrap();
        let n = c.entry(key.to_string()).or_default();
        *n += 1;
        if *n <= fail {
            status = StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in req.headers() {
        headers
            .entry(k.to_string())
            .or_default()
            .push(v.to_str().unwrap_or("").to_string());
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            req.headers()
                .get("host")
                .map(|h| h.to_str().unwrap().to_string())
        })
        .unwrap_or_default();
    let method = req.method().to_string();
    let proto = format!("{:?}", req.version());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let v = json!({
        "backend": b.name, "path": uri, "host": host, "method": method, "proto": proto,
        "headers": headers, "body": String::from_utf8_lossy(&body),
    });
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("x-backend", b.name.parse().unwrap());
    resp
}

fn websocket(req: &mut Request<Incoming>) -> Response<Body> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role};
    let key = req
        .headers()
        .get("sec-websocket-key")
        .unwrap()
        .as_bytes()
        .to_vec();
    let on = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(up) = on.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(up),
            Role::Server,
            None,
        )
        .await;
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(&key))
        .body(Empty::new().boxed())
        .unwrap()
}

pub use trellis_testkit::fixtures::free_port;

pub fn cluster(name: &str, backends: &[&Backend]) -> ir::Cluster {
    ir::Cluster {
        tls: None,
        name: name.to_string(),
        protocol: ir::UpstreamProtocol::Http1,
        endpoints: backends
            .iter()
            .map(|b| ir::Endpoint::Socket(b.addr))
            .collect(),
    }
}

pub fn route(name: &str, path: ir::PathMatch, action: ir::Action) -> ir::Route {
    ir::Route {
        name: name.to_string(),
        matches: ir::RouteMatch {
            path,
            ..Default::default()
        },
        filters: vec![],
        action,
        timeouts: Default::default(),
        retry: None,
    }
}

pub fn prefix(p: &str) -> ir::PathMatch {
    ir::PathMatch::Prefix(p.to_string())
}

pub fn to(cluster: &str) -> ir::Action {
    ir::Action::Forward(vec![ir::WeightedBackend {
        weight: 1,
        cluster: Some(cluster.to_string()),
        filters: vec![],
    }])
}

pub fn vhost(hostname: &str, routes: Vec<ir::Route>) -> ir::VirtualHost {
    ir::VirtualHost {
        hostname: hostname.to_string(),
        routes,
    }
}

pub fn listener(hostname: Option<&str>, vhosts: Vec<ir::VirtualHost>) -> ir::HttpListener {
    ir::HttpListener {
        name: format!("l-{}", hostname.unwrap_or("any")),
        hostname: hostname.map(String::from),
        certificates: vec![],
        virtual_hosts: vhosts,
    }
}

pub fn http_bind(port: u16, listeners: Vec<ir::HttpListener>) -> ir::Bind {
    ir::Bind {
        name: format!("127.0.0.1:{port}"),
        address: "127.0.0.1".parse().unwrap(),
        port,
        protocol: ir::BindProtocol::Http,
        client_validation: None,
        listeners,
    }
}

/// One HTTP bind, one catch-all listener and virtual host.
pub fn simple(port: u16, routes: Vec<ir::Route>, clusters: Vec<ir::Cluster>) -> Arc<ir::Config> {
    Arc::new(ir::Config {
        binds: vec![http_bind(
            port,
            vec![listener(None, vec![vhost("*", routes)])],
        )],
        clusters,
        ..Default::default()
    })
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn backend(&self) -> String {
        self.json()["backend"].as_str().unwrap_or("").to_string()
    }
}

pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

pub fn h2c_client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Sends `req` (URI path only) to `port`; `host` overrides the Host header.
pub async fn send(
    c: &Client,
    port: u16,
    method: &str,
    path: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    send_body(c, port, method, path, host, headers, Bytes::new()).await
}

/// Like [`send`] with a request body.
pub async fn send_body(
    c: &Client,
    port: u16,
    method: &str,
    path: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Answer {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"));
    if let Some(h) = host {
        b = b.header("host", h);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(body)).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), c.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(port: u16, path: &str, host: Option<&str>) -> Answer {
    send(&client(), port, "GET", path, host, &[]).await
}

/// Polls `f` until it holds, for at most 5 s.
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

pub fn proxy() -> trellis_proxy::Proxy {
    trellis_proxy::Proxy::new(trellis_proxy::ProxyOptions::default())
}
