//! The provider against real files: multi-document files, bad YAML keeping the last good
//! objects, deletions, and change notification.

use std::time::Duration;
use trellis_provider_file::{watch, FileProvider};

const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: apps}
spec: {hostnames: [a.example]}
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec: {ports: [{port: 80}]}
";

fn names(p: &mut FileProvider) -> (Vec<String>, Vec<String>) {
    let snap = p.load();
    let names = snap
        .objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o.value["metadata"]["namespace"].as_str().unwrap_or(""),
                o.value["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    let diags = snap
        .diagnostics
        .iter()
        .map(|d| format!("{}: {}", d.source, d.message))
        .collect();
    (names, diags)
}

#[test]
fn multi_document_files_and_bad_yaml_keep_last_good_objects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), ROUTE).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let mut p = FileProvider::new(dir.path());
    let (objs, diags) = names(&mut p);
    assert_eq!(objs, vec!["apps/r", "default/s"]);
    assert!(diags.is_empty(), "{diags:?}");

    // A broken edit keeps the file's last good objects and says so, naming the file.
    std::fs::write(dir.path().join("a.yaml"), "kind: [unclosed\n").unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n",
    )
    .unwrap();
    let (objs, diags) = names(&mut p);
    assert_eq!(
        objs,
        vec!["apps/r", "default/s", "/apps"],
        "other files still apply"
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(
        diags[0].contains("a.yaml") && diags[0].contains("invalid YAML"),
        "{diags:?}"
    );
    assert!(
        diags[0].contains("keeping its last good 2 object(s)"),
        "{diags:?}"
    );

    // Fixed: new content applies and the diagnostic goes away.
    std::fs::write(
        dir.path().join("a.yaml"),
        ROUTE.replace("a.example", "b.example"),
    )
    .unwrap();
    let snap = p.load();
    assert!(snap.diagnostics.is_empty());
    assert_eq!(snap.objects[0].value["spec"]["hostnames"][0], "b.example");
    assert_eq!(snap.objects[0].value["metadata"]["generation"], 2);

    // Deleting the file removes its objects.
    std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
    assert_eq!(names(&mut p).0, vec!["/apps"]);
}

#[test]
fn missing_directory_is_a_diagnostic_not_a_crash() {
    let mut p = FileProvider::new("/nonexistent/trellis-config");
    let snap = p.load();
    assert!(snap.objects.is_empty());
    assert!(snap.diagnostics[0]
        .message
        .contains("cannot read config directory"));
}

#[tokio::test]
async fn watch_reports_writes_and_renames() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let _w = watch(dir.path(), tx).unwrap();
    // Editor-style save: write a temporary file, then rename it over the target.
    std::fs::write(dir.path().join(".tmp"), ROUTE).unwrap();
    std::fs::rename(dir.path().join(".tmp"), dir.path().join("a.yaml")).unwrap();
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notification within 10 s")
        .unwrap();
    let mut p = FileProvider::new(dir.path());
    assert_eq!(p.load().objects.len(), 2);
}

#[test]
fn an_unchanged_directory_yields_nothing_to_apply() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), ROUTE).unwrap();
    let mut p = FileProvider::new(dir.path());
    assert_eq!(p.load_if_changed().map(|s| s.objects.len()), Some(2));
    assert!(p.load_if_changed().is_none(), "nothing changed");
    std::fs::write(dir.path().join("b.yaml"), "").unwrap();
    assert!(p.load_if_changed().is_some(), "a new file is a change");
    assert!(p.load_if_changed().is_none());
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    assert!(p.load_if_changed().is_some(), "a removed file is a change");
    assert_eq!(p.load().objects.len(), 2, "load always answers");
}

#[test]
fn objects_kept_between_scans_come_back_unchanged() {
    // Unchanged files are not parsed again: their objects come from what the provider kept.
    let dir = tempfile::tempdir().unwrap();
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {a: b}}\n\
               data: {s: text, n: '1'}\nextra: {int: -7, big: 18446744073709551615, float: 0.1, \
               yes: true, none: null, list: [1, [2, {k: v}]], unicode: \"héllo ✓\"}\n";
    std::fs::write(dir.path().join("a.yaml"), doc).unwrap();
    let mut p = FileProvider::new(dir.path());
    let first = p.load();
    std::fs::write(dir.path().join("b.yaml"), ROUTE).unwrap();
    let second = p.load();
    assert_eq!(second.objects.len(), 3);
    assert_eq!(second.objects[0], first.objects[0]);
    let extra = &second.objects[0].value["extra"];
    assert_eq!(extra["int"], -7);
    assert_eq!(extra["big"], u64::MAX);
    assert_eq!(extra["float"], 0.1);
    assert_eq!(extra["list"][1][1]["k"], "v");
    assert_eq!(extra["unicode"], "héllo ✓");
    assert!(extra["none"].is_null());
}
