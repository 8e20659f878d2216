//! Wiring: file provider → translate → proxy, plus the admin endpoint.
//!
//! [`App::start`] loads the config directory once, makes it live, then keeps a control loop that
//! reacts to file changes (coalesced; equal snapshots are a no-op) and an admin server. Start
//! reading at [`control`] for the reload path and [`admin`] for the HTTP endpoints.

pub mod admin;
mod binds;
pub mod control;
mod typing;

use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use trellis_model::Diagnostic;
use trellis_translate::ObjectStatus;

pub use control::load_once;
pub use trellis_ir::Limits;

#[derive(Debug, Clone)]
pub struct AppOptions {
    pub config_dir: PathBuf,
    /// Admin endpoint; `None` disables it.
    pub admin: Option<SocketAddr>,
    pub translate: trellis_translate::Options,
    /// Safety-net rescan period in case a file-system notification is lost.
    pub poll_interval: Duration,
    /// How long removed listeners and a shutdown wait for in-flight requests.
    pub drain_deadline: Duration,
    /// Request and connection limits for every bind.
    pub limits: trellis_ir::Limits,
}

impl AppOptions {
    pub fn new(config_dir: impl Into<PathBuf>) -> AppOptions {
        AppOptions {
            config_dir: config_dir.into(),
            admin: None,
            translate: trellis_translate::Options::default(),
            poll_interval: Duration::from_secs(2),
            drain_deadline: Duration::from_secs(30),
            limits: trellis_ir::Limits::default(),
        }
    }
}

/// What is live now, as the admin API shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LiveState {
    /// Increases with each applied change.
    pub version: u64,
    pub objects: Vec<ObjectStatus>,
    pub diagnostics: Vec<Diagnostic>,
    #[serde(skip)]
    pub ir: Arc<trellis_ir::Config>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot start the admin endpoint on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch {dir}: {message}")]
    Watch { dir: PathBuf, message: String },
}

/// A running gateway.
pub struct App {
    pub state: Arc<ArcSwap<LiveState>>,
    /// Where the admin endpoint listens, when enabled.
    pub admin_addr: Option<SocketAddr>,
    proxy: Arc<trellis_proxy::Proxy>,
    stop: tokio::sync::watch::Sender<bool>,
    drain_deadline: Duration,
}

impl App {
    /// Loads and applies the configuration, then starts watching and serving admin.
    pub async fn start(options: AppOptions) -> Result<App, AppError> {
        let proxy = Arc::new(trellis_proxy::Proxy::new(trellis_proxy::ProxyOptions {
            drain_timeout: options.drain_deadline,
            limits: options.limits,
            ..Default::default()
        }));
        let mut registry = prometheus_client::registry::Registry::default();
        proxy.metrics().register(&mut registry);
        let metrics = control::Metrics::default();
        metrics.register(&mut registry);
        let registry = Arc::new(registry);
        let state = Arc::new(ArcSwap::from_pointee(LiveState::default()));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let admin_addr = match options.admin {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| AppError::Admin { addr, source })?;
                let local = listener
                    .local_addr()
                    .map_err(|source| AppError::Admin { addr, source })?;
                tokio::spawn(admin::serve(
                    listener,
                    state.clone(),
                    registry.clone(),
                    stop_rx.clone(),
                ));
                Some(local)
            }
            None => None,
        };
        let mut control =
            control::Control::new(options.clone(), proxy.clone(), state.clone(), metrics);
        control.reload().await;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let watcher =
            trellis_provider_file::watch(&options.config_dir, tx).map_err(|e| AppError::Watch {
                dir: options.config_dir.clone(),
                message: e.to_string(),
            })?;
        tokio::spawn(async move {
            let _watcher = watcher;
            control.run(rx, stop_rx).await;
        });
        Ok(App {
            state,
            admin_addr,
            proxy,
            stop,
            drain_deadline: options.drain_deadline,
        })
    }

    /// Stops reloading, then lets in-flight requests finish up to the drain deadline.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.proxy.shutdown(self.drain_deadline).await;
    }
}
