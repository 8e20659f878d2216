//! The `trellis run` child process (the runner re-executing itself, or a given binary) and
//! its admin API (`/ready`, `/status`). The child is killed by PID when the guard drops,
//! including on panic.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Env var that makes the runner binary behave as `trellis`.
pub const SELF_EXEC_ENV: &str = "TRELLIS_SELF_EXEC";

/// How to start trellis.
#[derive(Debug, Clone)]
pub enum Launcher {
    /// Re-execute this executable with `TRELLIS_SELF_EXEC=1`.
    SelfExec(PathBuf),
    /// A `trellis` binary.
    Binary(PathBuf),
}

pub struct Trellis {
    child: Child,
    pub admin: SocketAddr,
    log: PathBuf,
}

impl Trellis {
    pub fn spawn(
        launcher: &Launcher,
        config: &Path,
        admin: SocketAddr,
        log: &Path,
    ) -> std::io::Result<Trellis> {
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let mut cmd = match launcher {
            Launcher::SelfExec(exe) => {
                let mut c = Command::new(exe);
                c.env(SELF_EXEC_ENV, "1");
                #[cfg(unix)]
                std::os::unix::process::CommandExt::arg0(&mut c, "trellis");
                c
            }
            Launcher::Binary(bin) => Command::new(bin),
        };
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .arg("--admin")
            .arg(admin.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn()?;
        Ok(Trellis {
            child,
            admin,
            log: log.to_path_buf(),
        })
    }

    /// `Some("trellis exited: ...")` once the child has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("trellis exited: {status}{}", self.log_tail())),
            Ok(None) => None,
            Err(e) => Some(format!("trellis exited: cannot wait: {e}")),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let last: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = last[last.len().saturating_sub(3)..].join(" | ");
        if tail.is_empty() {
            String::new()
        } else {
            format!(" ({tail})")
        }
    }

    /// Waits until `GET /ready` answers 200, failing early when the child exits.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.exited() {
                return Err(e);
            }
            if let Ok((200, _)) = admin_get(self.admin, "/ready").await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "trellis not ready after {}s{}",
                    timeout.as_secs(),
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current `/status` document.
    pub async fn status(&mut self) -> Result<serde_json::Value, String> {
        if let Some(e) = self.exited() {
            return Err(e);
        }
        let (code, body) = admin_get(self.admin, "/status").await?;
        if code != 200 {
            return Err(format!("GET /status answered {code}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET /status: invalid JSON: {e}"))
    }
}

impl Drop for Trellis {
    fn drop(&mut self) {
        // Only our own child, by PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 for the admin endpoint.
pub fn free_admin_addr() -> std::io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

/// Plain HTTP/1.1 GET against the admin endpoint, 2 s timeout.
pub async fn admin_get(addr: SocketAddr, path: &str) -> Result<(u16, Bytes), String> {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = http::Request::get(path)
            .header(http::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((code, body))
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .map_err(|_| "admin request timed out".to_string())?
}
