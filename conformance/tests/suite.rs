//! Runs whole suites through the built runner (which re-executes itself as `trellis run`) and
//! requires no failures: the vendored upstream suite, and the hand-written variant suite
//! (`conformance/variants`: the vendored tests with other names, namespaces, ports, hostnames,
//! phrasings) so Trellis is not tuned to the vendored suite's exact data. Prints the reports.

use std::path::Path;
use std::process::Command;

struct Outcome {
    passed: usize,
    skipped: usize,
    stdout: String,
}

/// Suites bind the same Gateway addresses (127.x:80/443): never run two at once.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the runner with `args`, asserts 0 failed and a zero exit status.
fn run_suite(args: &[&std::ffi::OsStr]) -> Outcome {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_trellis-conformance"))
        .args(args)
        .output()
        .expect("runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    let re = regex::Regex::new(r"^(\d+) passed, (\d+) failed, (\d+) skipped$").unwrap();
    let caps = re
        .captures(last)
        .unwrap_or_else(|| panic!("unexpected last line {last:?}"));
    let count = |i: usize| -> usize { caps[i].parse().unwrap() };
    let (passed, failed, skipped) = (count(1), count(2), count(3));
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert_eq!(failed, 0, "failing tests:\n{}", failures.join("\n"));
    assert!(out.status.success(), "runner exit status {}", out.status);
    Outcome {
        passed,
        skipped,
        stdout,
    }
}

#[test]
fn vendored_suite_has_no_failures() {
    let outcome = run_suite(&[]);
    assert!(outcome.passed > 0, "nothing passed");
}

#[test]
fn variant_suite_has_no_failures() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("variants");
    let outcome = run_suite(&["--suite".as_ref(), suite.as_os_str()]);
    // Every variant test uses claimed features only, so none may be skipped.
    assert_eq!(
        outcome.skipped, 0,
        "skipped variant tests:\n{}",
        outcome.stdout
    );
    assert!(
        outcome.passed >= 20,
        "only {} variant tests passed",
        outcome.passed
    );
}
