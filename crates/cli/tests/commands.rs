//! The binary's offline commands on real files: `validate` and `translate`.

use std::process::Command;

fn trellis(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn quickstart() -> String {
    format!("{}/../../examples/quickstart", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn validate_accepts_the_quickstart() {
    let (code, out) = trellis(&["validate", "-f", &quickstart()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("HTTPRoute default/echo"), "{out}");
    assert!(out.contains("Accepted       True"), "{out}");
    assert!(out.contains("0 problem(s)"), "{out}");
}

#[test]
fn validate_explains_each_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["gateway.yaml", "backends.yaml"] {
        std::fs::copy(format!("{}/{f}", quickstart()), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: default}
spec:
  parentRefs: [{name: demo}]
  rules:
  - backendRefs: [{name: no-such-service, port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ignored}
",
    )
    .unwrap();
    std::fs::write(dir.path().join("syntax.yaml"), "kind: [oops\n").unwrap();
    let (code, out) = trellis(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL HTTPRoute default/broken parent Gateway demo: ResolvedRefs=False (BackendNotFound)"),
        "{out}"
    );
    assert!(
        out.contains("FAIL ") && out.contains("syntax.yaml") && out.contains("invalid YAML"),
        "{out}"
    );
    assert!(
        out.contains("WARN ") && out.contains("unknown kind \"Deployment\""),
        "{out}"
    );
}

#[test]
fn translate_prints_statuses_and_ir() {
    let (code, out) = trellis(&["translate", "-f", &quickstart()]);
    assert_eq!(code, 0);
    assert!(out.contains("statuses:") && out.contains("ir:"), "{out}");
    assert!(out.contains("backend/default/echo-v1"), "{out}");
}

#[test]
fn validate_reports_backend_tls_policy_conditions_per_ancestor() {
    let dir = tempfile::tempdir().unwrap();
    let golden = format!(
        "{}/../translate/tests/golden/backend-tls-policy-invalid.in.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::copy(golden, dir.path().join("policies.yaml")).unwrap();
    let (code, out) = trellis(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BackendTLSPolicy default/kind (generation 1)"),
        "{out}"
    );
    assert!(out.contains("  Ancestor Gateway default/gw:"), "{out}");
    assert!(
        out.contains("FAIL BackendTLSPolicy default/missing ancestor Gateway default/gw: ResolvedRefs=False (InvalidCACertificateRef)"),
        "{out}"
    );
    assert!(
        out.contains("FAIL BackendTLSPolicy default/conflict-a-newer ancestor Gateway default/gw: Accepted=False (Conflicted)"),
        "{out}"
    );
    assert!(
        !out.contains("conflict-b-older ancestor"),
        "the older policy wins: {out}"
    );
}
