//! `trellis-conformance --suite DIR [--only TEST] [--profile NAME] [--trellis PATH]`.
//! With `TRELLIS_SELF_EXEC=1` this binary is `trellis` itself (how the runner starts it).

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use trellis_conformance::exec::Timing;
use trellis_conformance::manifests::Placeholders;
use trellis_conformance::process::{Launcher, SELF_EXEC_ENV};
use trellis_conformance::{run, Options};

#[derive(Parser, Debug)]
#[command(about = "Replays the Gateway API conformance suite against trellis run")]
struct Cli {
    /// Suite folder (base.yaml + tests/*/cases.json); defaults to the vendored copy.
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Run only this test (upstream name or directory name).
    #[arg(long)]
    only: Option<String>,
    /// Run only tests whose profiles include NAME (e.g. GATEWAY-HTTP).
    #[arg(long)]
    profile: Option<String>,
    /// Use this trellis binary instead of re-executing the runner.
    #[arg(long)]
    trellis: Option<PathBuf>,
    /// Seconds to wait for each list of status expectations.
    #[arg(long, default_value_t = 60)]
    status_timeout: u64,
    /// Seconds a case may take to reach its consecutive passes.
    #[arg(long, default_value_t = 30)]
    case_timeout: u64,
    /// Keep the config dir and trellis.log of failed tests (the FAIL line names the folder).
    #[arg(long)]
    keep_failed: bool,
    /// Address used for PLACEHOLDER_USABLE_ADDRS.
    #[arg(long, default_value = "127.20.0.1")]
    usable_address: String,
    /// Address used for PLACEHOLDER_UNUSABLE_ADDRS.
    #[arg(long, default_value = "203.0.113.1")]
    unusable_address: String,
}

fn main() -> ExitCode {
    if std::env::var(SELF_EXEC_ENV).as_deref() == Ok("1") {
        let code = self_exec(std::env::args().collect());
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
    }
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "self-exec")]
fn self_exec(args: Vec<String>) -> ExitCode {
    trellis_cli::main_from_args(args)
}

#[cfg(not(feature = "self-exec"))]
fn self_exec(_args: Vec<String>) -> ExitCode {
    eprintln!("trellis-conformance was built without the trellis library; pass --trellis PATH");
    ExitCode::FAILURE
}

fn real_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let launcher = match cli.trellis {
        Some(p) => Launcher::Binary(p),
        None => {
            Launcher::SelfExec(std::env::current_exe().context("locating the runner executable")?)
        }
    };
    let opts = Options {
        suite: cli
            .suite
            .unwrap_or_else(trellis_conformance::suite::default_suite_dir),
        only: cli.only,
        profile: cli.profile,
        launcher,
        placeholders: Placeholders {
            usable_address: cli.usable_address,
            unusable_address: cli.unusable_address,
            ..Placeholders::default()
        },
        timing: Timing {
            case_timeout: Duration::from_secs(cli.case_timeout),
            ..Timing::default()
        },
        status_timeout: Duration::from_secs(cli.status_timeout),
        ready_timeout: Duration::from_secs(30),
        keep_failed: cli.keep_failed,
    };
    let rt = tokio::runtime::Runtime::new().context("starting tokio")?;
    // On Ctrl-C the run future is dropped, which kills the trellis child it started.
    let mut stdout = std::io::stdout();
    let summary = rt.block_on(async {
        tokio::select! {
            r = run(&opts, &mut stdout) => r.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    })?;
    Ok(if summary.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
