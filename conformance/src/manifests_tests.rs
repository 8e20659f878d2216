use super::*;
use serde_json::json;

#[test]
fn placeholders_are_replaced() {
    let ph = Placeholders::default();
    let out = ph.apply(
        "gatewayClassName: \"{GATEWAY_CLASS_NAME}\"\ncontrollerName: {GATEWAY_CONTROLLER_NAME}\n- value: \"PLACEHOLDER_UNUSABLE_ADDRS\"\n- value: \"PLACEHOLDER_USABLE_ADDRS\"",
    );
    assert!(out.contains("gatewayClassName: \"trellis\""));
    assert!(out.contains("controllerName: trellis.dev/gateway-controller"));
    assert!(out.contains("value: \"203.0.113.1\""));
    assert!(out.contains("value: \"127.20.0.1\""));
    assert!(!out.contains("PLACEHOLDER"));
}

#[test]
fn static_addresses_manifest_gets_one_usable_and_one_unusable_address() {
    let text = std::fs::read_to_string(
        crate::suite::default_suite_dir().join("tests/gateway-static-addresses/manifests.yaml"),
    )
    .unwrap();
    let docs = parse_yaml(&Placeholders::default().apply(&text), "m").unwrap();
    let addrs = docs[0]
        .pointer("/spec/addresses")
        .unwrap()
        .as_array()
        .unwrap();
    let values: Vec<_> = addrs.iter().map(|a| a["value"].as_str().unwrap()).collect();
    assert_eq!(
        values,
        ["fake address teehee!", "203.0.113.1", "127.20.0.1"]
    );
    assert_eq!(docs[0]["spec"]["gatewayClassName"], "trellis");
}

#[test]
fn yaml_round_trips() {
    let docs = vec![
        json!({"kind": "A", "metadata": {"name": "*.wildcard.org"}, "x": "True", "n": 80,
               "tricky": ["y", "on", "no", "123", "1.0", "null", "~", "", "a: b", "- x", "#c", "0x10"]}),
        json!({"kind": "B", "data": {"ca.crt": "-----BEGIN X-----\nabc\n-----END X-----\n"}}),
    ];
    let text = to_yaml(&docs).unwrap();
    assert_eq!(parse_yaml(&text, "t").unwrap(), docs);
}

#[test]
fn step_changes_are_applied() {
    let ph = Placeholders::default();
    let mut gw = json!({"spec": {"listeners": [{"name": "https"}, {"name": "http"}],
        "addresses": [{"type": "x", "value": "y"}, {"value": "203.0.113.1"}, {"value": "127.20.0.1"}]}});
    apply_change(&mut gw, "append listener {name: http2, port: 80, protocol: HTTP, hostname: data.test.com, allowedRoutes.namespaces.from: All}", &ph).unwrap();
    assert_eq!(
        gw["spec"]["listeners"][2],
        json!({"name": "http2", "port": 80, "protocol": "HTTP", "hostname": "data.test.com",
               "allowedRoutes": {"namespaces": {"from": "All"}}})
    );
    apply_change(
        &mut gw,
        "remove the listener named https (keep only http)",
        &ph,
    )
    .unwrap();
    assert_eq!(gw["spec"]["listeners"][0]["name"], "http");
    apply_change(
        &mut gw,
        "remove spec.addresses[0] (type test/fake-invalid-type)",
        &ph,
    )
    .unwrap();
    apply_change(
        &mut gw,
        "remove the unusable address (leaving only the usable one)",
        &ph,
    )
    .unwrap();
    assert_eq!(gw["spec"]["addresses"], json!([{"value": "127.20.0.1"}]));

    let mut gc = json!({"spec": {"description": "old"}});
    apply_change(&mut gc, "spec.description: \"old\" -> \"new\"", &ph).unwrap();
    assert_eq!(gc["spec"]["description"], "new");
    let mut r = json!({"spec": {"rules": [{"backendRefs": [{"name": "infra-backend-v1"}]}]}});
    apply_change(
        &mut r,
        "spec.rules[0].backendRefs[0].name: infra-backend-v1 -> infra-backend-v2",
        &ph,
    )
    .unwrap();
    assert_eq!(
        r["spec"]["rules"][0]["backendRefs"][0]["name"],
        "infra-backend-v2"
    );
    let mut cm = json!({"data": {"ca.crt": "x"}});
    apply_change(&mut cm, "data[\"ca.crt\"] := \"\" (merge patch)", &ph).unwrap();
    assert_eq!(cm["data"]["ca.crt"], "");
    apply_change(
        &mut cm,
        "data[\"ca.crt\"] := the original value (-----BEGIN X-----\nabc\n-----END X-----\n)",
        &ph,
    )
    .unwrap();
    assert_eq!(
        cm["data"]["ca.crt"],
        "-----BEGIN X-----\nabc\n-----END X-----\n"
    );
    assert!(apply_change(&mut cm, "do something clever", &ph).is_err());
    let mut p = json!({"spec": {"validation": {"hostname": "abc.example.com"}}});
    apply_change(
        &mut p,
        "spec.validation.hostname: \"abc.example.com\" -> \"foo.example.com\"",
        &ph,
    )
    .unwrap();
    assert_eq!(p["spec"]["validation"]["hostname"], "foo.example.com");
    apply_change(&mut p, "spec.validation.caCertificateRefs := [{group: \"\", kind: ConfigMap, name: x}] (merge patch; that ConfigMap does not exist yet)", &ph).unwrap();
    assert_eq!(
        p["spec"]["validation"]["caCertificateRefs"],
        json!([{"group": "", "kind": "ConfigMap", "name": "x"}])
    );
    apply_change(&mut p, "restore spec.validation.caCertificateRefs to the original [{group: \"\", kind: ConfigMap, name: orig}] (cleanup, nothing checked)", &ph).unwrap();
    assert_eq!(
        p["spec"]["validation"]["caCertificateRefs"][0]["name"],
        "orig"
    );
}

#[test]
fn config_dir_edits_rewrite_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut cd = ConfigDir::new(dir.path());
    cd.add_text("b.yaml", "kind: Gateway\nmetadata: {name: g, namespace: ns}\nspec: {x: 1}\n---\nkind: Service\nmetadata: {name: s, namespace: ns}\n".into()).unwrap();
    cd.write_all().unwrap();
    cd.edit("Gateway", "g", Some("ns"), |v| {
        v["spec"]["x"] = json!(2);
        Ok(())
    })
    .unwrap();
    assert_eq!(cd.expected_generation("Gateway", "g", Some("ns")), Some(2));
    cd.edit("Gateway", "g", Some("ns"), |v| {
        v["metadata"]["labels"] = json!({"a": "b"});
        Ok(())
    })
    .unwrap();
    assert_eq!(
        cd.expected_generation("Gateway", "g", Some("ns")),
        Some(2),
        "metadata edits keep the generation"
    );
    assert_eq!(cd.expected_generation("Service", "s", Some("ns")), Some(1));
    cd.delete("Service", "s", Some("ns")).unwrap();
    let docs = parse_yaml(
        &std::fs::read_to_string(dir.path().join("b.yaml")).unwrap(),
        "b",
    )
    .unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["spec"]["x"], 2);
    assert!(cd.delete("Service", "s", Some("ns")).is_err());
}

#[test]
fn listener_and_set_phrasings_are_understood() {
    let ph = Placeholders::default();
    let mut gw = json!({"spec": {"listeners": [{"name": "a", "port": 80}]}});
    apply_change(
        &mut gw,
        "add listener {name: b, port: 8081, protocol: HTTP}",
        &ph,
    )
    .unwrap();
    apply_change(
        &mut gw,
        "add a listener {name: c, port: 8082, protocol: HTTP}",
        &ph,
    )
    .unwrap();
    apply_change(&mut gw, "set spec.listeners[1].hostname to b.test", &ph).unwrap();
    assert_eq!(gw["spec"]["listeners"][1]["hostname"], "b.test");
    apply_change(
        &mut gw,
        "change spec.listeners[1].port from 8081 to 9091",
        &ph,
    )
    .unwrap();
    apply_change(
        &mut gw,
        "update spec.listeners[1].hostname from b.test to c.test (rename)",
        &ph,
    )
    .unwrap();
    assert_eq!(gw["spec"]["listeners"][1]["port"], 9091);
    assert_eq!(gw["spec"]["listeners"][1]["hostname"], "c.test");
    apply_change(&mut gw, "delete the listener named a", &ph).unwrap();
    apply_change(&mut gw, "remove listener \"c\" (keep b)", &ph).unwrap();
    let names: Vec<_> = gw["spec"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b"]);
    assert!(apply_change(&mut gw, "delete listener zzz", &ph).is_err());
}
