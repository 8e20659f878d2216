//! `trellis run`: serve a config directory (or the embedded quickstart) until SIGINT/SIGTERM.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use trellis_app::{App, AppOptions, Limits};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Directory of Gateway API YAML files. Omit it to run the embedded quickstart.
    #[arg(short = 'f', long = "config")]
    config: Option<PathBuf>,
    /// Admin endpoint (/ready, /status, /config_dump); "off" disables it.
    #[arg(long, default_value = "127.0.0.1:9901")]
    admin: String,
    /// IPv4 pool for Gateways without spec.addresses.
    #[arg(long, default_value = "127.10.0.0/16", value_parser = crate::parse_pool)]
    address_pool: (std::net::Ipv4Addr, u8),
    /// Seconds in-flight requests get to finish on shutdown and on removed listeners.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// Worker threads serving traffic (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Largest request head (request line and headers, or an HTTP/2 header list) in bytes;
    /// larger ones get 431.
    #[arg(long, default_value_t = Limits::default().max_request_header_bytes as u64,
          value_parser = clap::value_parser!(u64).range(8192..))]
    max_request_header_bytes: u64,
    /// Most header fields in one request; more get 431.
    #[arg(long, default_value_t = Limits::default().max_request_headers as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_request_headers: u64,
    /// Longest request-target in bytes; longer ones get 414.
    #[arg(long, default_value_t = Limits::default().max_uri_bytes as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_uri_bytes: u64,
    /// Open client connections per listening address; more are closed at accept.
    #[arg(long, default_value_t = Limits::default().max_connections_per_bind as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections_per_bind: u64,
}

impl RunArgs {
    fn limits(&self) -> Limits {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Limits {
            max_request_header_bytes: n(self.max_request_header_bytes),
            max_request_headers: n(self.max_request_headers),
            max_uri_bytes: n(self.max_uri_bytes),
            max_connections_per_bind: n(self.max_connections_per_bind),
        }
    }
}

const QUICKSTART: &[(&str, &str)] = &[
    (
        "gateway.yaml",
        include_str!("../../../examples/quickstart/gateway.yaml"),
    ),
    (
        "backends.yaml",
        include_str!("../../../examples/quickstart/backends.yaml"),
    ),
];

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let limits = args.limits();
    let config = match args.config {
        Some(dir) => dir,
        None => quickstart().await?,
    };
    let admin = match args.admin.as_str() {
        "off" => None,
        a => Some(
            a.parse::<SocketAddr>()
                .with_context(|| format!("bad --admin {a}"))?,
        ),
    };
    let mut options = AppOptions::new(&config);
    options.admin = admin;
    options.translate = crate::translate_options(args.address_pool);
    options.drain_deadline = Duration::from_secs(args.drain_seconds);
    options.limits = limits;
    let app = App::start(options).await?;
    tracing::info!(config = %config.display(), admin = ?app.admin_addr, "trellis is running");
    wait_for_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    app.shutdown().await;
    Ok(())
}

/// Writes the quickstart files to a fresh directory and starts its two echo backends.
async fn quickstart() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("trellis-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in QUICKSTART {
        write_new(&dir.join(name), text)?;
    }
    for (pod, port) in [("echo-v1", 9101), ("echo-v2", 9102)] {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        crate::echo::spawn(addr, pod, "default", false)
            .await
            .with_context(|| format!("starting demo backend {pod} on {addr}"))?;
    }
    eprintln!(
        "quickstart: config in {} (edit it live); gateway on http://127.0.0.1:8080/\n  \
         curl -s http://127.0.0.1:8080/hello            # 90% echo-v1, 10% echo-v2\n  \
         curl -s -H 'x-version: v2' http://127.0.0.1:8080/  # always echo-v2",
        dir.display()
    );
    Ok(dir)
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
