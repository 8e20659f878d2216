//! Runs the hand-written variant suite (`conformance/variants`: the vendored tests with other
//! names, namespaces, ports, hostnames, phrasings) through the built runner and requires no
//! failures, so Trellis is not tuned to the vendored suite's exact data.

use std::path::Path;
use std::process::Command;

#[test]
fn variant_suite_has_no_failures() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("variants");
    let out = Command::new(env!("CARGO_BIN_EXE_trellis-conformance"))
        .arg("--suite")
        .arg(&suite)
        .output()
        .expect("runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let re = regex::Regex::new(r"^(\d+) passed, (\d+) failed, (\d+) skipped$").unwrap();
    let caps = re
        .captures(last)
        .unwrap_or_else(|| panic!("unexpected last line {last:?}"));
    let passed: usize = caps[1].parse().unwrap();
    let failed: usize = caps[2].parse().unwrap();
    let skipped: usize = caps[3].parse().unwrap();
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert_eq!(failed, 0, "failing tests:\n{}", failures.join("\n"));
    // Every variant test uses claimed features only, so none may be skipped.
    assert_eq!(skipped, 0, "skipped variant tests:\n{stdout}");
    assert!(passed >= 20, "only {passed} variant tests passed");
    assert!(out.status.success(), "runner exit status {}", out.status);
}
