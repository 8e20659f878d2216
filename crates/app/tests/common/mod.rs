//! Shared helpers for the app's end-to-end tests: a gateway started in-process on a config
//! directory, echo backends, and a small HTTP client. Everything binds 127.0.0.1.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use trellis_app::{App, AppOptions, LiveState};
use trellis_testkit::echo::{self, EchoHandle, EchoMode, EchoOptions};
use trellis_testkit::fixtures::{backend_yaml, gateway_yaml};

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub use trellis_testkit::fixtures::free_port;

pub async fn echo(pod: &str) -> EchoHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    echo::spawn(
        listener,
        EchoOptions {
            namespace: "default".into(),
            pod: pod.into(),
            mode: EchoMode::Http,
            tls: None,
        },
    )
}

pub async fn start(dir: &Path) -> App {
    let mut options = AppOptions::new(dir);
    options.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    options.drain_deadline = Duration::from_secs(2);
    App::start(options).await.expect("app starts")
}

/// GatewayClass + a Gateway on 127.0.0.1:`port` + Backends for the given echo servers.
pub fn base_config(port: u16, backends: &[(&str, &EchoHandle)]) -> String {
    let mut out = gateway_yaml(port);
    for (name, handle) in backends {
        out.push_str(&backend_yaml(name, &[handle.local_addr.port()]));
    }
    out
}

/// Writes `text` to `path` the way editors do: a temporary file renamed over the target.
pub fn write_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
}

pub async fn get(client: &HttpClient, port: u16, path: &str) -> Result<Reply, String> {
    let req = http::Request::get(format!("http://127.0.0.1:{port}{path}"))
        .body(Empty::new())
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok(Reply { status, body })
}

/// Polls until `f` holds for the live state, up to `limit`; returns the state that satisfied it.
pub async fn wait_state(
    app: &App,
    limit: Duration,
    f: impl Fn(&LiveState) -> bool,
) -> std::sync::Arc<LiveState> {
    let start = Instant::now();
    loop {
        let state = app.state.load_full();
        if f(&state) {
            return state;
        }
        assert!(
            start.elapsed() < limit,
            "state not reached within {limit:?}; last: {}",
            serde_json::to_string_pretty(&*state).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `path` until it answers `status` from `pod` (when given), up to `limit`.
pub async fn wait_served(
    client: &HttpClient,
    port: u16,
    path: &str,
    status: u16,
    pod: Option<&str>,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(r) = get(client, port, path).await {
            if r.status == status && pod.is_none_or(|p| r.body["pod"] == p) {
                return start.elapsed();
            }
        }
        assert!(
            start.elapsed() < limit,
            "{path} not serving {status} from {pod:?} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The conditions of `kind namespace/name` (top level, listeners and parents) as
/// `scope Type=Status/Reason` strings.
pub fn conditions(state: &LiveState, kind: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for o in state
        .objects
        .iter()
        .filter(|o| o.kind == kind && o.name == name)
    {
        let mut push = |scope: &str, cs: &serde_json::Value| {
            for c in cs.as_array().into_iter().flatten() {
                out.push(format!(
                    "{scope}{}={}/{}",
                    c["type"].as_str().unwrap_or(""),
                    c["status"].as_str().unwrap_or(""),
                    c["reason"].as_str().unwrap_or("")
                ));
            }
        };
        push("", &o.status["conditions"]);
        for l in o.status["listeners"].as_array().into_iter().flatten() {
            push(
                &format!("listener {} ", l["name"].as_str().unwrap_or("")),
                &l["conditions"],
            );
        }
        for p in o.status["parents"].as_array().into_iter().flatten() {
            push("parent ", &p["conditions"]);
        }
    }
    out
}

/// Background load for change tests: two keep-alive clients and one that opens a new
/// connection per request GET `path` on `port` and expect 200 from `pod`, until
/// [`Load::finish`] or `limit` (a bound, so a hung test still ends).
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ok: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failures: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, path: &'static str, pod: &'static str, limit: Duration) -> Load {
        use std::sync::atomic::Ordering;
        let load = Load {
            stop: Default::default(),
            ok: Default::default(),
            failures: Default::default(),
            tasks: Vec::new(),
        };
        let tasks = (0..3)
            .map(|worker| {
                let (stop, ok, failures) =
                    (load.stop.clone(), load.ok.clone(), load.failures.clone());
                tokio::spawn(async move {
                    let mut c = client();
                    let deadline = Instant::now() + limit;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        if worker == 2 {
                            c = client();
                        }
                        match get(&c, port, path).await {
                            Ok(r) if r.status == 200 && r.body["pod"] == pod => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => failures
                                .lock()
                                .unwrap()
                                .push(format!("status {} body {}", r.status, r.body)),
                            Err(e) => failures.lock().unwrap().push(e),
                        }
                    }
                })
            })
            .collect();
        Load { tasks, ..load }
    }

    /// Stops the clients; returns (requests served, failures).
    pub async fn finish(self) -> (u64, Vec<String>) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let failures = std::mem::take(&mut *self.failures.lock().unwrap());
        (self.ok.load(Ordering::Relaxed), failures)
    }
}
