//! Runs tests one after the other: per test a fresh config dir (base + generated objects +
//! the test's manifests), echo backends, one `trellis run` child, status expectations, steps
//! and cases.

use crate::backends::Backends;
use crate::certs::CertStore;
use crate::exec::{run_case, CaseEnv, Timing, SUPPORTED_KINDS};
use crate::features::skip_reason;
use crate::manifests::{apply_change, kind_of, name_of, parse_yaml, ConfigDir, Placeholders};
use crate::process::{free_admin_addr, Launcher, Trellis};
use crate::report::{line, Outcome, Summary};
use crate::status::{evaluate, object_key, CheckCtx, Snapshot, Verdict};
use crate::suite::{GatewayRef, Step, Suite, TestDef};
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    BeforeCases,
    AfterCases,
}

/// When each step runs, from its `when` prose: "after cases" (also "after all cases", "after
/// the cases", "after traffic") runs it after the cases, "after the previous step" keeps the
/// previous step's phase, anything else runs before the cases.
fn phases(steps: &[Step]) -> Vec<Phase> {
    let after_cases =
        regex::Regex::new(r"(?i)after (all |the )?(cases|traffic|requests)").expect("static regex");
    let follows = regex::Regex::new(r"(?i)after (the )?previous step").expect("static regex");
    let mut prev = Phase::BeforeCases;
    steps
        .iter()
        .map(|s| {
            let w = s.when.as_deref().unwrap_or("");
            prev = if after_cases.is_match(w) {
                Phase::AfterCases
            } else if follows.is_match(w) {
                prev
            } else {
                Phase::BeforeCases
            };
            prev
        })
        .collect()
}

struct Ctx<'a> {
    trellis: Trellis,
    config: ConfigDir,
    certs: &'a CertStore,
    opts: &'a Options,
    notes: &'a mut Vec<String>,
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

/// The objects a `create` step adds: one object, a list of them, or YAML text (one or more
/// documents).
fn step_objects(object: &Value) -> Result<Vec<Value>, String> {
    match object {
        Value::Array(items) => Ok(items.clone()),
        Value::String(text) => parse_yaml(text, "step object").map_err(|e| e.to_string()),
        other => Ok(vec![other.clone()]),
    }
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

/// Upstream step `populate_endpointslices`: fill the named manual slices with the pods named
/// in the step (`... of the <deployment> pods ...`). Returns whether anything changed.
fn populate_endpointslices(
    t: &TestDef,
    backends: &Backends,
    docs: &mut Vec<Value>,
) -> Result<bool, String> {
    let re = regex::Regex::new(r"of the ([a-z0-9][a-z0-9-]*) pods").expect("static regex");
    let mut changed = false;
    for step in t
        .steps
        .iter()
        .filter(|s| s.action == "populate_endpointslices")
    {
        let change = step.change.as_deref().unwrap_or("");
        let deployment = re
            .captures(change)
            .map(|c| c[1].to_string())
            .ok_or_else(|| format!("unsupported step change: {change}"))?;
        for target in &step.targets {
            let i = docs
                .iter()
                .position(|d| kind_of(d) == "EndpointSlice" && name_of(d) == target)
                .ok_or_else(|| format!("populate_endpointslices: no EndpointSlice {target}"))?;
            let filled = backends.populate_slice(&docs[i], &deployment);
            docs.splice(i..=i, filled);
            changed = true;
        }
    }
    Ok(changed)
}

fn resolve_configmap_refs(text: &str, config: &ConfigDir, certs: &CertStore) -> String {
    let re = regex::Regex::new(r"\{configmap:([^/ }]+)/([^ }]+) ([^ }]+)\}").expect("static regex");
    re.replace_all(text, |c: &regex::Captures| {
        config
            .find("ConfigMap", &c[2], Some(&c[1]))
            .and_then(|o| o.get("data")?.get(&c[3])?.as_str().map(str::to_string))
            .or_else(|| certs.lookup("ConfigMap", &format!("{}/{}", &c[1], &c[2]), &c[3]))
            .unwrap_or_default()
    })
    .into_owned()
}

impl Ctx<'_> {
    async fn snapshot(&mut self) -> Result<Snapshot, String> {
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

    /// Polls each expectation in order until it holds (bounded by the status timeout).
    async fn check_all(
        &mut self,
        checks: &[Value],
        before: &HashMap<String, i64>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.opts.status_timeout;
        for check in checks {
            let check: Value =
                serde_json::from_str(&self.opts.placeholders.apply(&check.to_string()))
                    .unwrap_or_else(|_| check.clone());
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
                    Verdict::Fail(m) if Instant::now() >= deadline => {
                        return Err(format!(
                            "status not reached within {}s: {m}",
                            self.opts.status_timeout.as_secs()
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

    async fn run_step(&mut self, step: &Step) -> Result<(), String> {
        if step.action == "populate_endpointslices" {
            return Ok(()); // applied when the config dir was written
        }
        let before: HashMap<String, i64> = self
            .snapshot()
            .await?
            .objects
            .iter()
            .filter_map(|o| {
                o.generation
                    .map(|g| (object_key(&o.kind, o.namespace.as_deref(), &o.name), g))
            })
            .collect();
        if let Some(s) = step.delay_before_s {
            tokio::time::sleep(Duration::from_secs_f64(s.clamp(0.0, 60.0))).await;
        }
        let ph = self.opts.placeholders.clone();
        let target = step.target.as_ref();
        let what = || format!("step {} {:?}", step.action, target.map(|t| &t.name));
        match step.action.as_str() {
            "patch" | "update" | "edit" => {
                let t = target.ok_or_else(|| format!("{}: no target", what()))?;
                let change = resolve_configmap_refs(
                    step.change.as_deref().unwrap_or(""),
                    &self.config,
                    self.certs,
                );
                self.config
                    .edit(&t.kind, &t.name, t.namespace.as_deref(), |v| {
                        apply_change(v, &change, &ph)
                    })
                    .map_err(|e| format!("{}: {e}", what()))?;
            }
            "delete" | "remove" => {
                let t = target.ok_or_else(|| format!("{}: no target", what()))?;
                self.config
                    .delete(&t.kind, &t.name, t.namespace.as_deref())
                    .map_err(|e| format!("{}: {e}", what()))?;
            }
            "create" | "apply" => {
                let obj = step
                    .object
                    .as_ref()
                    .ok_or_else(|| format!("{}: no object", what()))?;
                for obj in step_objects(obj).map_err(|e| format!("{}: {e}", what()))? {
                    let text = resolve_configmap_refs(
                        &ph.apply(&obj.to_string()),
                        &self.config,
                        self.certs,
                    );
                    let obj: Value =
                        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", what()))?;
                    self.config
                        .create("30-steps.yaml", obj)
                        .map_err(|e| format!("{}: {e}", what()))?;
                }
            }
            other => return Err(format!("unsupported step action {other:?}")),
        }
        self.check_all(&step.then, &before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(when: Option<&str>) -> Step {
        Step {
            action: "patch".into(),
            target: None,
            targets: Vec::new(),
            change: None,
            object: None,
            then: Vec::new(),
            when: when.map(str::to_string),
            delay_before_s: None,
            subtest: None,
        }
    }

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

    #[test]
    fn create_steps_accept_an_object_a_list_or_yaml_text() {
        let one = serde_json::json!({"kind": "A"});
        assert_eq!(step_objects(&one).unwrap(), vec![one.clone()]);
        let list = serde_json::json!([{"kind": "A"}, {"kind": "B"}]);
        assert_eq!(step_objects(&list).unwrap().len(), 2);
        let yaml = Value::String("kind: A\nmetadata: {name: x}\n---\nkind: B\n".into());
        let objs = step_objects(&yaml).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["metadata"]["name"], "x");
        assert!(step_objects(&Value::String("a: [".into())).is_err());
    }

    #[test]
    fn step_phases_follow_the_when_prose() {
        let steps: Vec<Step> = [
            None,
            Some("after status_expectations, before cases"),
            Some("After all cases"),
            Some("after the previous step"),
            Some("before traffic"),
            Some("after previous step"),
            Some("after traffic"),
        ]
        .into_iter()
        .map(step)
        .collect();
        let got = phases(&steps);
        let (b, a) = (Phase::BeforeCases, Phase::AfterCases);
        assert!(got == [b, b, a, a, b, b, a]);
    }
}
