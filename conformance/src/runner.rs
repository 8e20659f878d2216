//! Runs tests one after the other: per test a fresh config dir (base + generated objects +
//! the test's manifests), echo backends, one `trellis run` child, status expectations, steps
//! and cases.

use crate::backends::Backends;
use crate::certs::CertStore;
use crate::exec::{run_case, CaseEnv, Timing, SUPPORTED_KINDS};
use crate::features::skip_reason;
use crate::manifests::{kind_of, name_of, parse_yaml, ConfigDir, Placeholders};
use crate::process::{free_admin_addr, Launcher, Trellis};
use crate::report::{line, Outcome, Summary};
use crate::status::{evaluate, object_key, poll_budget, CheckCtx, Snapshot, Verdict};
use crate::steps::{phases, populate_endpointslices, Phase};
use crate::suite::{GatewayRef, Suite, TestDef};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Options {
    pub suite: PathBuf,
    pub only: Option<String>,
    pub profile: Option<String>,
    pub launcher: Launcher,
    pub placeholders: Placeholders,
    pub timing: Timing,
    /// Bound for each list of status expectations (upstream waits up to 60 s).
    pub status_timeout: Duration,
    pub ready_timeout: Duration,
    /// Keep a failed test's temp dir (config + trellis.log) and name it in the FAIL line.
    pub keep_failed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Suite(#[from] crate::suite::SuiteError),
    #[error(transparent)]
    Certs(#[from] crate::certs::CertError),
    #[error("no test named {0:?} in the suite")]
    NoSuchTest(String),
}

/// Runs the suite (or `--only` one test), printing one line per test and the totals.
pub async fn run(opts: &Options, out: &mut dyn Write) -> Result<Summary, RunError> {
    let suite = Suite::load(&opts.suite)?;
    let tests: Vec<&TestDef> = match &opts.only {
        Some(name) => vec![suite
            .find(name)
            .ok_or_else(|| RunError::NoSuchTest(name.clone()))?],
        None => suite.tests.iter().collect(),
    };
    let certs = CertStore::generate()?;
    let mut summary = Summary::default();
    for t in tests {
        let outcome = run_test(t, &suite, &certs, opts).await;
        let _ = writeln!(out, "{}", line(&t.name, &outcome));
        let _ = out.flush();
        summary.results.push((t.name.clone(), outcome));
    }
    let _ = writeln!(out, "{}", summary.totals_line());
    Ok(summary)
}

/// Decides skip / runs one test.
pub async fn run_test(t: &TestDef, suite: &Suite, certs: &CertStore, opts: &Options) -> Outcome {
    if let Some(why) = skip_reason(t, opts.profile.as_deref()) {
        return Outcome::Skip(why);
    }
    if let Some(c) = t
        .cases
        .iter()
        .find(|c| !SUPPORTED_KINDS.contains(&c.kind.as_str()))
    {
        return Outcome::Fail(format!(
            "unsupported case kind {:?} (case {:?})",
            c.kind, c.name
        ));
    }
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => return Outcome::Fail(format!("temp dir: {e}")),
    };
    let mut notes = Vec::new();
    let result = run_claimed(t, suite, certs, opts, tmp.path(), &mut notes).await;
    match result {
        Ok(()) => Outcome::Pass { notes },
        Err(e) if opts.keep_failed => {
            let kept = tmp.keep();
            Outcome::Fail(format!(
                "{e} [config and trellis.log kept in {}]",
                kept.display()
            ))
        }
        Err(e) => Outcome::Fail(e),
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) trellis: Trellis,
    pub(crate) config: ConfigDir,
    pub(crate) certs: &'a CertStore,
    pub(crate) opts: &'a Options,
    pub(crate) notes: &'a mut Vec<String>,
}

async fn run_claimed(
    t: &TestDef,
    suite: &Suite,
    certs: &CertStore,
    opts: &Options,
    tmp: &std::path::Path,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let ph = &opts.placeholders;
    let conf = tmp.join("config");
    std::fs::create_dir(&conf).map_err(|e| format!("config dir: {e}"))?;
    let base_text = ph.apply(&suite.base_yaml);
    let test_text = ph.apply(&t.manifests);
    let base_docs = parse_yaml(&base_text, "base.yaml").map_err(|e| e.to_string())?;
    let mut test_docs = parse_yaml(&test_text, "manifests.yaml").map_err(|e| e.to_string())?;
    let all: Vec<&Value> = base_docs.iter().chain(test_docs.iter()).collect();
    let (backends, slices) = Backends::start(&all, certs)
        .await
        .map_err(|e| e.to_string())?;
    let populated = populate_endpointslices(t, &backends, &mut test_docs)?;

    let mut config = ConfigDir::new(&conf);
    config
        .add_text("00-base.yaml", base_text)
        .map_err(|e| e.to_string())?;
    let mut generated = vec![gateway_class(ph, &base_docs, &test_docs)];
    generated.retain(|g| !g.is_null());
    generated.extend(certs.objects());
    generated.extend(slices);
    config.add_docs("10-generated.yaml", generated);
    if populated {
        config.add_docs("20-test.yaml", test_docs);
    } else {
        config
            .add_text("20-test.yaml", test_text)
            .map_err(|e| e.to_string())?;
    }
    config.write_all().map_err(|e| e.to_string())?;

    let admin = free_admin_addr().map_err(|e| format!("admin port: {e}"))?;
    let trellis = Trellis::spawn(&opts.launcher, &conf, admin, &tmp.join("trellis.log"))
        .map_err(|e| format!("trellis exited: cannot start: {e}"))?;
    let mut cx = Ctx {
        trellis,
        config,
        certs,
        opts,
        notes,
    };
    cx.trellis.wait_ready(opts.ready_timeout).await?;
    cx.check_all(&t.status_expectations, &HashMap::new())
        .await?;

    let step_phases = phases(&t.steps);
    for (step, _) in t
        .steps
        .iter()
        .zip(&step_phases)
        .filter(|(_, p)| **p == Phase::BeforeCases)
    {
        cx.run_step(step).await?;
    }
    for case in &t.cases {
        let gw = case
            .gateway
            .as_ref()
            .or(t.gateway.as_ref())
            .ok_or_else(|| format!("case {:?}: no gateway", case.name))?;
        for action in &case.actions_before {
            cx.run_step(action).await?;
        }
        let ip = cx.gateway_ip(gw).await?;
        let env = CaseEnv {
            ip,
            certs,
            backends: &backends,
            timing: &opts.timing,
        };
        run_case(&with_default_port(case, gw), &env)
            .await
            .map_err(|e| format!("case {:?}: {e}", case.name))?;
    }
    for (step, _) in t
        .steps
        .iter()
        .zip(&step_phases)
        .filter(|(_, p)| **p == Phase::AfterCases)
    {
        cx.run_step(step).await?;
    }
    drop(cx);
    backends.shutdown();
    Ok(())
}

/// A case whose request leaves out `port` is sent to the Gateway's listener port (the case's
/// or test's `gateway.port`), else to the scheme's default port.
fn with_default_port(case: &crate::suite::Case, gw: &GatewayRef) -> crate::suite::Case {
    let mut case = case.clone();
    if let Some(req) = case.request.as_object_mut() {
        if req.get("port").is_none_or(Value::is_null) {
            let scheme = req.get("scheme").and_then(Value::as_str).unwrap_or("http");
            let default = if matches!(scheme, "https" | "wss") {
                443
            } else {
                80
            };
            req.insert("port".into(), gw.port.unwrap_or(default).into());
        }
    }
    case
}

/// Our GatewayClass (upstream expects the implementation to provide it), unless the
/// manifests define one of that name.
fn gateway_class(ph: &Placeholders, base: &[Value], test: &[Value]) -> Value {
    let defined = base
        .iter()
        .chain(test)
        .any(|d| kind_of(d) == "GatewayClass" && name_of(d) == ph.class_name);
    if defined {
        return Value::Null;
    }
    serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": ph.class_name},
        "spec": {"controllerName": ph.controller_name},
    })
}

impl Ctx<'_> {
    pub(crate) async fn snapshot(&mut self) -> Result<Snapshot, String> {
        let v = self.trellis.status().await?;
        Snapshot::from_json(&v)
    }

    /// The first object whose `/status` generation differs from what the runner expects from
    /// the files it wrote (first sight = 1, +1 per spec change).
    fn generation_mismatch(&self, snap: &Snapshot) -> Option<String> {
        snap.objects.iter().find_map(|o| {
            let want = self
                .config
                .expected_generation(&o.kind, &o.name, o.namespace.as_deref())?;
            (o.generation != Some(want)).then(|| {
                format!(
                    "{}: /status generation {:?}, expected {want}",
                    object_key(&o.kind, o.namespace.as_deref(), &o.name),
                    o.generation
                )
            })
        })
    }

    /// Polls each expectation in order until it holds, each within its own budget
    /// ([`poll_budget`]); an immediate check is read once.
    pub(crate) async fn check_all(
        &mut self,
        checks: &[Value],
        before: &HashMap<String, i64>,
    ) -> Result<(), String> {
        for check in checks {
            let check: Value =
                serde_json::from_str(&self.opts.placeholders.apply(&check.to_string()))
                    .unwrap_or_else(|_| check.clone());
            let kind = check.get("check").and_then(Value::as_str).unwrap_or("");
            let budget = poll_budget(kind, self.opts.status_timeout);
            let deadline = Instant::now() + budget.unwrap_or_default();
            loop {
                let verdict = match self.snapshot().await {
                    Ok(snap) if self.generation_mismatch(&snap).is_some() => {
                        Verdict::Fail(self.generation_mismatch(&snap).unwrap_or_default())
                    }
                    Ok(snap) => {
                        let ctx = CheckCtx {
                            placeholders: &self.opts.placeholders,
                            config: &self.config,
                            generations_before: before,
                        };
                        evaluate(&check, &snap, &ctx)
                    }
                    Err(e) if e.starts_with("trellis exited") => return Err(e),
                    Err(e) => Verdict::Fail(e),
                };
                match verdict {
                    Verdict::Pass => break,
                    Verdict::Skipped(note) => {
                        self.notes.push(note);
                        break;
                    }
                    Verdict::Unsupported(m) => return Err(m),
                    Verdict::Fail(m) if budget.is_none() => {
                        return Err(format!("immediate status check failed: {m}"))
                    }
                    Verdict::Fail(m) if Instant::now() >= deadline => {
                        return Err(format!(
                            "status not reached within {}s: {m}",
                            budget.unwrap_or_default().as_secs()
                        ))
                    }
                    Verdict::Fail(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        Ok(())
    }

    /// The first status address of the Gateway (waits for it).
    async fn gateway_ip(&mut self, gw: &GatewayRef) -> Result<IpAddr, String> {
        let deadline = Instant::now() + self.opts.status_timeout;
        loop {
            let snap = self.snapshot().await;
            if let Ok(snap) = &snap {
                if let Some(ip) = snap
                    .get("Gateway", Some(&gw.namespace), &gw.name)
                    .and_then(|o| o.status.pointer("/addresses/0/value"))
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                {
                    return Ok(ip);
                }
            }
            if let Err(e) = &snap {
                if e.starts_with("trellis exited") {
                    return Err(e.clone());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Gateway {}/{} has no status address",
                    gw.namespace, gw.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_port_uses_the_gateway_port() {
        let case: crate::suite::Case = serde_json::from_value(serde_json::json!({
            "name": "c", "kind": "http", "request": {"path": "/"}}))
        .unwrap();
        let gw = |port| GatewayRef {
            name: "g".into(),
            namespace: "n".into(),
            port,
        };
        assert_eq!(
            with_default_port(&case, &gw(Some(8080))).request["port"],
            8080
        );
        assert_eq!(with_default_port(&case, &gw(None)).request["port"], 80);
        let mut tls = case.clone();
        tls.request["scheme"] = "https".into();
        assert_eq!(with_default_port(&tls, &gw(None)).request["port"], 443);
        tls.request["port"] = 8443.into();
        assert_eq!(with_default_port(&tls, &gw(Some(1))).request["port"], 8443);
    }
}
