//! `distribution` procedures of HTTP/gRPC cases (backend weights, mirror percentage) and the
//! sampler-independent weights procedure the TCP/UDP cases share ([`weights_with`]).

use crate::exec::{backend, fan_out, CaseEnv};
use crate::suite::Case;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

fn num(d: &Value, k: &str, default: f64) -> f64 {
    d.get(k).and_then(Value::as_f64).unwrap_or(default)
}

pub async fn run(case: &Case, d: &Value, env: &CaseEnv<'_>) -> Result<(), String> {
    match d.get("type").and_then(Value::as_str) {
        Some("backend_weights") => weights(case, d, env).await,
        Some("mirror_percentage") => mirror_percentage(case, d, env).await,
        other => Err(format!("unsupported distribution type {other:?}")),
    }
}

/// Pure evaluation of one weights try.
pub fn evaluate_weights(
    counts: &BTreeMap<String, usize>,
    expected: &BTreeMap<String, f64>,
    tolerance: f64,
) -> Result<(), String> {
    let total: usize = counts.values().sum();
    if total == 0 {
        return Err("no samples".into());
    }
    for b in counts.keys() {
        if !expected.contains_key(b) {
            return Err(format!("unexpected backend {b}"));
        }
    }
    for (b, w) in expected {
        let seen = counts.get(b).copied().unwrap_or(0);
        if *w > 0.0 && seen == 0 {
            return Err(format!("backend {b} never seen"));
        }
        if *w <= 0.0 && seen > 0 {
            return Err(format!("backend {b} has weight 0 but got {seen} requests"));
        }
        let share = seen as f64 / total as f64;
        if (share - w).abs() > tolerance {
            return Err(format!(
                "backend {b}: share {share:.3}, want {w} ± {tolerance}"
            ));
        }
    }
    Ok(())
}

async fn weights(case: &Case, d: &Value, env: &CaseEnv<'_>) -> Result<(), String> {
    let jitter = d.get("add_entropy").is_some_and(|v| !v.is_null());
    weights_with(d, |n, conc| async move {
        let id = uuid::Uuid::new_v4().to_string();
        fan_out(case, env, &id, n, conc, jitter).await
    })
    .await
}

/// The `backend_weights` procedure over any sampler: `batch(n, concurrency)` returns the pod
/// name (or the error) of each of `n` samples; up to `max_attempts` tries, one passing is
/// enough.
pub async fn weights_with<F, Fut>(d: &Value, mut batch: F) -> Result<(), String>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: Future<Output = Vec<Result<String, String>>>,
{
    let expected: BTreeMap<String, f64> =
        serde_json::from_value(d.get("expected_weights").cloned().unwrap_or_default())
            .map_err(|e| format!("expected_weights: {e}"))?;
    let n = num(d, "requests", 500.0) as usize;
    let conc = num(d, "concurrency", 10.0) as usize;
    let tol = num(d, "tolerance", 0.05);
    let tries = num(d, "max_attempts", 10.0) as usize;
    let mut last = String::new();
    for _ in 0..tries.max(1) {
        let results = batch(n, conc).await;
        let mut counts = BTreeMap::new();
        let mut err = None;
        for r in results {
            match r {
                Ok(pod) => *counts.entry(backend(&pod).to_string()).or_insert(0) += 1,
                Err(e) => {
                    err.get_or_insert(e);
                }
            }
        }
        match err.map_or_else(|| evaluate_weights(&counts, &expected, tol), Err) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "weights never matched in {tries} tries; last: {last}"
    ))
}

/// Runs `sample` `n` times with `concurrency` in flight; returns every result.
pub async fn concurrently<F, Fut, T>(n: usize, concurrency: usize, sample: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = (0..concurrency.max(1)).map(|_| async {
        let mut out = Vec::new();
        while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
            out.push(sample().await);
        }
        out
    });
    futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn mirror_percentage(case: &Case, d: &Value, env: &CaseEnv<'_>) -> Result<(), String> {
    let n = num(d, "requests_per_batch", 500.0) as usize;
    let conc = num(d, "concurrency", 10.0) as usize;
    let batches = num(d, "max_batches", 5.0) as usize;
    let (min, max) = (num(d, "accept_min", 0.0), num(d, "accept_max", f64::MAX));
    let path = d
        .get("path_during_batches")
        .and_then(Value::as_str)
        .ok_or("no path_during_batches")?;
    let mirrored_path = d
        .get("expected_mirrored_request_path")
        .and_then(Value::as_str)
        .unwrap_or(path);
    let mirror = d
        .get("mirrored_backend")
        .and_then(Value::as_str)
        .ok_or("no mirrored_backend")?;
    let ns = case
        .mirrored_to
        .iter()
        .find(|m| m.name == mirror)
        .map(|m| m.namespace.clone())
        .or_else(|| {
            case.response
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "gateway-conformance-infra".into());
    let mut batch_case = case.clone();
    batch_case.request["path"] = Value::String(path.to_string());
    if let Some(er) = batch_case
        .response
        .get_mut("expected_request")
        .filter(|v| v.is_object())
    {
        er["path"] = Value::String(path.to_string());
    }
    let mut last = String::new();
    for _ in 0..batches.max(1) {
        let id = uuid::Uuid::new_v4().to_string();
        let uri = mirrored_path.replace("{request_id}", &id);
        if let Some(Err(e)) = fan_out(&batch_case, env, &id, n, conc, false)
            .await
            .into_iter()
            .find(Result::is_err)
        {
            last = e;
            continue;
        }
        // Mirrors are fire-and-forget: wait until the count settles.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut count = env.backends.received(&ns, mirror, &uri);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = env.backends.received(&ns, mirror, &uri);
            if now == count || Instant::now() >= deadline {
                count = now;
                break;
            }
            count = now;
        }
        if (count as f64) >= min && (count as f64) <= max {
            return Ok(());
        }
        last = format!("{count} of {n} requests mirrored to {mirror}, want [{min}, {max}]");
    }
    Err(format!(
        "mirror percentage never matched in {batches} batches; last: {last}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn weights_rule() {
        let exp: BTreeMap<String, f64> = [("a", 0.7), ("b", 0.3), ("c", 0.0)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        assert!(evaluate_weights(&m(&[("a", 350), ("b", 150)]), &exp, 0.05).is_ok());
        assert!(evaluate_weights(&m(&[("a", 400), ("b", 100)]), &exp, 0.05).is_err());
        assert!(evaluate_weights(&m(&[("a", 350), ("b", 149), ("c", 1)]), &exp, 0.05).is_err());
        assert!(evaluate_weights(&m(&[("a", 500)]), &exp, 0.05).is_err());
        assert!(evaluate_weights(&m(&[("a", 350), ("b", 140), ("x", 10)]), &exp, 0.05).is_err());
    }
}
