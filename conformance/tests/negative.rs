//! The runner must be able to fail: a suite of deliberately wrong expectations (derived from
//! the vendored tests) must produce FAIL lines naming the mismatch, and the exit status 1.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn vendored() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("suite")
}

/// Writes `tests/<dir>/` with the vendored test `from`, renamed and mutated.
fn derive(root: &Path, from: &str, name: &str, mutate: impl FnOnce(&mut Value)) {
    let src = vendored().join("tests").join(from);
    let mut cases: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("cases.json")).unwrap()).unwrap();
    cases["name"] = json!(name);
    cases["dir"] = json!(name);
    mutate(&mut cases);
    let dst = root.join("tests").join(name);
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(dst.join("cases.json"), cases.to_string()).unwrap();
    std::fs::copy(src.join("manifests.yaml"), dst.join("manifests.yaml")).unwrap();
}

#[test]
fn wrong_expectations_fail_with_the_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(vendored().join("base.yaml"), root.join("base.yaml")).unwrap();
    derive(root, "httproute-simple-same-namespace", "NegBackend", |c| {
        c["cases"][0]["response"]["backend"] = json!("infra-backend-v2");
    });
    derive(
        root,
        "httproute-simple-same-namespace",
        "NegCondition",
        |c| {
            c["status_expectations"][1]["condition"]["reason"] = json!("Bogus");
        },
    );
    derive(
        root,
        "httproute-simple-same-namespace",
        "NegUnknownCheck",
        |c| {
            c["status_expectations"]
                .as_array_mut()
                .unwrap()
                .push(json!({"check": "frobnicate"}));
        },
    );
    derive(
        root,
        "httproute-simple-same-namespace",
        "NegCaseKind",
        |c| {
            c["cases"][0]["kind"] = json!("carrier_pigeon");
        },
    );
    derive(
        root,
        "httproute-simple-same-namespace",
        "NegUnclaimed",
        |c| {
            c["features"].as_array_mut().unwrap().push(json!("Mesh"));
        },
    );
    derive(
        root,
        "httproute-request-header-modifier",
        "NegHeader",
        |c| {
            c["cases"][0]["response"]["expected_request"]["headers"] =
                json!({"X-Header-Set": "not-what-was-set"});
        },
    );
    derive(root, "httproute-request-mirror", "NegMirror", |c| {
        c["cases"][0]["mirrored_to"][0]["name"] = json!("infra-backend-v3");
    });
    derive(root, "grpcroute-exact-method-matching", "NegGrpc", |c| {
        c["cases"][0]["response"]["backend"] = json!("grpc-infra-backend-v3");
    });
    derive(
        root,
        "grpcroute-exact-method-matching",
        "NegGrpcCode",
        |c| {
            // EchoThree has no route; pretend EchoTwo has none either.
            c["cases"] = json!([c["cases"][1].clone()]);
            c["cases"][0]["response"]["grpc_code"] = json!("Unimplemented");
        },
    );
    derive(root, "httproute-redirect-path", "NegRedirect", |c| {
        c["cases"][0]["response"]["redirect"]["path"] = json!("/nowhere");
    });
    derive(root, "httproute-weight", "NegWeights", |c| {
        c["cases"][0]["distribution"]["expected_weights"] =
            json!({"infra-backend-v1": 0.5, "infra-backend-v2": 0.5});
        c["cases"][0]["distribution"]["max_attempts"] = json!(2);
    });
    derive(
        root,
        "httproute-request-percentage-mirror",
        "NegPercentMirror",
        |c| {
            c["cases"] = json!([c["cases"][0].clone()]);
            c["cases"][0]["distribution"]["accept_min"] = json!(400);
            c["cases"][0]["distribution"]["max_batches"] = json!(1);
        },
    );
    derive(
        root,
        "httproute-backend-protocol-websocket",
        "NegWebSocket",
        |c| {
            c["cases"][0]["exchange"][0]["expect_text"] = json!("something else");
        },
    );
    derive(root, "httproute-https-listener", "NegHttps", |c| {
        c["cases"][0]["response"]["backend"] = json!("infra-backend-v3");
    });
    derive(root, "gateway-observed-generation-bump", "NegStep", |c| {
        c["steps"][0]["then"] = json!([{"check": "gateway_listeners",
            "gateway": {"name": "gateway-observed-generation-bump", "namespace": "gateway-conformance-infra"},
            "listeners": [{"name": "nope", "supported_kinds": [], "conditions": [], "attached_routes": 0}]}]);
    });

    // L4 case kinds.
    derive(root, "tcproute-weighted-routing", "NegTcpWeights", |c| {
        let d = &mut c["cases"][1]["distribution"];
        d["expected_weights"] =
            json!({"tcp-backend-v1": 0.3, "tcp-backend-v2": 0.7, "tcp-backend-v3": 0.0});
        d["max_attempts"] = json!(1);
    });
    derive(
        root,
        "tcproute-multiple-routes-attachment",
        "NegTcpEcho",
        |c| {
            c["cases"][0]["response"]["backend"] = json!("tcp-attach-backend-2");
        },
    );
    derive(
        root,
        "udproute-parentref-attach-all-listeners",
        "NegUdp",
        |c| {
            c["cases"][0]["response"]["service"] = json!("udp-echo-by-port");
            c["cases"][0]["request"]["timeout_s"] = json!(3);
        },
    );
    derive(root, "tlsroute-simple-same-namespace", "NegTlsSni", |c| {
        c["cases"][0]["response"]["backend_tls_server_name"] = json!("other.example.com");
    });

    let out = Command::new(env!("CARGO_BIN_EXE_trellis-conformance"))
        .args([
            "--suite",
            root.to_str().unwrap(),
            "--status-timeout",
            "5",
            "--case-timeout",
            "4",
        ])
        .output()
        .expect("runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let lines: BTreeMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(' ')?;
            Some((rest.split([':', ' ']).next()?, l))
        })
        .collect();
    let expect = |name: &str, prefix: &str, needle: &str| {
        let l = lines
            .get(name)
            .unwrap_or_else(|| panic!("no line for {name}"));
        assert!(l.starts_with(prefix) && l.contains(needle), "{name}: {l}");
    };
    expect("NegBackend", "FAIL", "expected pod infra-backend-v2");
    expect("NegCondition", "FAIL", "ResolvedRefs=True/Bogus");
    expect(
        "NegUnknownCheck",
        "FAIL",
        "unsupported check \"frobnicate\"",
    );
    expect("NegCaseKind", "FAIL", "unsupported case kind");
    expect("NegUnclaimed", "SKIP", "unclaimed features: Mesh");
    expect("NegGrpc", "FAIL", "grpc-infra-backend-v3");
    expect("NegGrpcCode", "FAIL", "want Unimplemented");
    expect("NegHeader", "FAIL", "X-Header-Set");
    expect("NegMirror", "FAIL", "infra-backend-v3");
    expect("NegRedirect", "FAIL", "/nowhere");
    expect("NegWeights", "FAIL", "weights never matched");
    expect("NegPercentMirror", "FAIL", "want [400");
    expect("NegWebSocket", "FAIL", "something else");
    expect("NegHttps", "FAIL", "expected pod infra-backend-v3");
    expect("NegStep", "FAIL", "listener statuses, want 1");
    expect("NegTcpWeights", "FAIL", "share 0.");
    expect(
        "NegTcpEcho",
        "FAIL",
        "does not start with \"tcp-attach-backend-2-\"",
    );
    expect("NegUdp", "FAIL", "want \"udp-echo-by-port\"");
    expect("NegTlsSni", "FAIL", "want \"other.example.com\"");
    assert_eq!(
        stdout.lines().last(),
        Some("0 passed, 18 failed, 1 skipped")
    );
    assert_eq!(out.status.code(), Some(1));
}
