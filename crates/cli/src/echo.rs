//! `trellis echo`: the conformance echo backend as a standalone server.

use std::net::SocketAddr;
use trellis_testkit::echo::{self, EchoHandle, EchoMode, EchoOptions};

#[derive(Debug, clap::Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Pod name reported in responses.
    #[arg(long, default_value = "echo")]
    name: String,
    /// Namespace reported in responses.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Accept only HTTP/2 with prior knowledge (other requests get 400).
    #[arg(long)]
    h2c_only: bool,
}

pub async fn spawn(
    addr: SocketAddr,
    pod: &str,
    namespace: &str,
    h2c_only: bool,
) -> std::io::Result<EchoHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(echo::spawn(
        listener,
        EchoOptions {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            mode: if h2c_only {
                EchoMode::H2cOnly
            } else {
                EchoMode::Http
            },
            tls: None,
        },
    ))
}

pub async fn run(args: EchoArgs) -> anyhow::Result<()> {
    let handle = spawn(args.listen, &args.name, &args.namespace, args.h2c_only).await?;
    tracing::info!(listen = %handle.local_addr, pod = %args.name, "echo backend running");
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown();
    Ok(())
}
