//! The control loop: rescan → type → translate → apply, once per burst of changes.

use crate::typing::Typer;
use crate::{AppOptions, LiveState};
use arc_swap::ArcSwap;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use trellis_model::Diagnostic;
use trellis_provider_file::FileProvider;
use trellis_translate::{translate, Translation};

/// Time to let a burst of file events settle before rescanning.
const DEBOUNCE: Duration = Duration::from_millis(25);

/// One load of a directory, without serving anything (for `validate` and `translate`).
pub fn load_once(options: &AppOptions) -> (Translation, Vec<Diagnostic>) {
    let snapshot = FileProvider::new(&options.config_dir).load();
    let (resources, mut diagnostics) = Typer::default().type_objects(snapshot.objects);
    diagnostics.splice(0..0, snapshot.diagnostics);
    (translate(&resources, &options.translate), diagnostics)
}

/// Reload counters, exported on `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    applied: Counter,
    rejected: Counter,
    version: Gauge,
    last_apply_seconds: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "trellis_config_applied",
            "Configuration changes made live",
            self.applied.clone(),
        );
        registry.register(
            "trellis_config_rejected",
            "Configuration changes the proxy rejected (last good kept)",
            self.rejected.clone(),
        );
        registry.register(
            "trellis_config_version",
            "Version of the live configuration",
            self.version.clone(),
        );
        registry.register(
            "trellis_config_last_apply_seconds",
            "Time from rescan start to live for the last change",
            self.last_apply_seconds.clone(),
        );
    }
}

pub(crate) struct Control {
    metrics: Metrics,
    options: AppOptions,
    provider: Arc<std::sync::Mutex<FileProvider>>,
    proxy: Arc<trellis_proxy::Proxy>,
    state: Arc<ArcSwap<LiveState>>,
    /// Sockets of the live IR that could not be opened; retried on every poll.
    bind_errors: Vec<(String, String)>,
    typer: Arc<std::sync::Mutex<Typer>>,
    logged: BTreeSet<String>,
}

impl Control {
    pub(crate) fn new(
        options: AppOptions,
        proxy: Arc<trellis_proxy::Proxy>,
        state: Arc<ArcSwap<LiveState>>,
        metrics: Metrics,
    ) -> Control {
        Control {
            metrics,
            provider: Arc::new(std::sync::Mutex::new(FileProvider::new(
                &options.config_dir,
            ))),
            options,
            proxy,
            state,
            bind_errors: Vec::new(),
            typer: Default::default(),
            logged: BTreeSet::new(),
        }
    }

    pub(crate) async fn run(
        &mut self,
        mut changes: mpsc::Receiver<()>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = changes.recv() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(self.options.poll_interval) => {}
                _ = stop.changed() => return,
            }
            // Events that arrived while settling are covered by this rescan.
            while changes.try_recv().is_ok() {}
            if *stop.borrow() {
                return;
            }
            self.reload().await;
        }
    }

    /// Rescans and applies; a no-op when nothing changed. Never fails: problems are logged,
    /// published as diagnostics, and the last good configuration keeps serving.
    pub(crate) async fn reload(&mut self) {
        let started = Instant::now();
        // File reads and parsing stay off the runtime's worker threads.
        let provider = self.provider.clone();
        // The first load always publishes (an empty directory is a valid, empty config).
        let force = !self.bind_errors.is_empty() || self.state.load().version == 0;
        let scanned = tokio::task::spawn_blocking(move || {
            let mut provider = provider.lock().unwrap_or_else(|e| e.into_inner());
            // Unchanged input is a no-op, unless a socket still needs binding (port free now?).
            if force {
                Some(provider.load())
            } else {
                provider.load_if_changed()
            }
        })
        .await;
        let Ok(Some(snapshot)) = scanned else {
            return;
        };
        let options = self.options.translate.clone();
        let typer = self.typer.clone();
        let translated = tokio::task::spawn_blocking(move || {
            let (resources, mut diagnostics) = typer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .type_objects(snapshot.objects);
            diagnostics.splice(0..0, snapshot.diagnostics);
            (translate(&resources, &options), diagnostics)
        })
        .await;
        let (translation, mut diagnostics) = match translated {
            Ok(t) => t,
            Err(e) => {
                // A translator bug must not take the gateway down: keep serving the last config.
                tracing::error!(error = %e, "translation failed; keeping the last good configuration");
                return;
            }
        };
        let previous = self.state.load_full();
        let mut statuses = translation.statuses;
        let ir = if *previous.ir == translation.ir
            && previous.version > 0
            && self.bind_errors.is_empty()
        {
            previous.ir.clone()
        } else {
            let ir = Arc::new(translation.ir);
            match self.proxy.apply(ir.clone()).await {
                Ok(report) => {
                    self.bind_errors = report.bind_errors;
                    ir
                }
                Err(e) => {
                    self.metrics.rejected.inc();
                    tracing::error!(error = %e, "configuration rejected by the proxy; keeping the last good one");
                    diagnostics.push(Diagnostic {
                        source: "proxy".into(),
                        object: None,
                        message: format!("configuration rejected, last good one kept: {e}"),
                    });
                    previous.ir.clone()
                }
            }
        };
        for (bind, error) in &self.bind_errors {
            diagnostics.push(Diagnostic {
                source: "proxy".into(),
                object: Some(bind.clone()),
                message: format!("cannot listen: {error}"),
            });
        }
        crate::binds::mark_unbound(&mut statuses, &ir, &self.bind_errors);
        self.log_new_problems(&statuses, &diagnostics);
        if previous.version > 0
            && Arc::ptr_eq(&ir, &previous.ir)
            && statuses == previous.objects
            && diagnostics == previous.diagnostics
        {
            // A retry that changed nothing (a port still busy): nothing new to publish.
            return;
        }
        let version = previous.version + 1;
        self.state.store(Arc::new(LiveState {
            version,
            objects: statuses,
            diagnostics,
            ir,
        }));
        self.metrics.applied.inc();
        self.metrics.version.set(version as i64);
        self.metrics
            .last_apply_seconds
            .set(started.elapsed().as_secs_f64());
        tracing::info!(
            version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "configuration live"
        );
    }

    /// Logs each diagnostic and each False condition once, when it first appears.
    fn log_new_problems(
        &mut self,
        statuses: &[trellis_translate::ObjectStatus],
        diagnostics: &[Diagnostic],
    ) {
        let mut now = BTreeSet::new();
        for d in diagnostics {
            let line = match &d.object {
                Some(o) => format!("{}: {o}: {}", d.source, d.message),
                None => format!("{}: {}", d.source, d.message),
            };
            if !self.logged.contains(&line) {
                tracing::warn!("{line}");
            }
            now.insert(line);
        }
        for s in statuses {
            for problem in crate::admin::false_conditions(s) {
                if !self.logged.contains(&problem) {
                    tracing::warn!("{problem}");
                }
                now.insert(problem);
            }
        }
        self.logged = now;
    }
}
