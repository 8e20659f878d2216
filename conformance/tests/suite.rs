//! Runs the whole vendored suite through the built runner (which re-executes itself as
//! `trellis run`) and requires no failures. Prints the runner's report.

use std::process::Command;

#[test]
fn vendored_suite_has_no_failures() {
    let out = Command::new(env!("CARGO_BIN_EXE_trellis-conformance"))
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
    let failed: usize = caps[2].parse().unwrap();
    let passed: usize = caps[1].parse().unwrap();
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert_eq!(failed, 0, "failing tests:\n{}", failures.join("\n"));
    assert!(passed > 0, "nothing passed");
    assert!(out.status.success(), "runner exit status {}", out.status);
}
