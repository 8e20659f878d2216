//! The `trellis` command line. `main.rs` is a thin shim over [`main_from_args`] so the
//! conformance runner can run the very same commands by re-executing itself.
//!
//! Subcommands: `run` ([`run`]), `validate` and `translate` ([`inspect`]), `echo` ([`echo`]).

mod echo;
mod inspect;
mod run;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "trellis",
    version,
    about = "Gateway API gateway: YAML files in, traffic out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every Gateway of our GatewayClass found in DIR, applying file changes live.
    /// Without --config, serves the embedded quickstart with two demo echo backends.
    Run(run::RunArgs),
    /// Print each object's status conditions; exit 1 if any object is not healthy.
    Validate(ConfigArgs),
    /// Print the statuses and the proxy configuration (IR) as YAML.
    Translate(ConfigArgs),
    /// Run the conformance echo backend.
    Echo(echo::EchoArgs),
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// Directory of Gateway API YAML files (searched recursively for *.yaml / *.yml).
    #[arg(short = 'f', long = "config")]
    config: PathBuf,
    /// IPv4 pool for Gateways without spec.addresses, e.g. 127.10.0.0/16.
    #[arg(long, default_value = "127.10.0.0/16", value_parser = parse_pool)]
    address_pool: (std::net::Ipv4Addr, u8),
}

fn parse_pool(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or("expected ADDRESS/PREFIX, e.g. 127.10.0.0/16")?;
    let ip = ip.parse().map_err(|e| format!("bad address {ip}: {e}"))?;
    let len: u8 = len.parse().map_err(|e| format!("bad prefix {len}: {e}"))?;
    if !(8..=30).contains(&len) {
        return Err("prefix length must be between 8 and 30".into());
    }
    Ok((ip, len))
}

fn translate_options(pool: (std::net::Ipv4Addr, u8)) -> trellis_translate::Options {
    trellis_translate::Options {
        address_pool: pool,
        ..Default::default()
    }
}

/// Parses `args` (including argv[0]) and runs the chosen subcommand to completion.
pub fn main_from_args(args: Vec<String>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing();
    match cli.command {
        Command::Validate(args) => inspect::validate(&args),
        Command::Translate(args) => inspect::translate(&args),
        Command::Run(args) => runtime_then(args.threads, || run::run(args)),
        Command::Echo(args) => runtime_then(None, || echo::run(args)),
    }
}

/// Runs `f` on a multi-thread runtime with `threads` workers (default: one per CPU).
fn runtime_then<F, Fut>(threads: Option<usize>, f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
