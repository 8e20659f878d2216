use super::*;

fn objects(yaml: &str) -> Vec<SourcedObject> {
    parse_yaml_documents(yaml)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, value)| SourcedObject {
            source: format!("test.yaml#{i}"),
            value,
        })
        .collect()
}

#[test]
fn parses_multi_document_yaml_and_skips_empty_documents() {
    let docs = parse_yaml_documents("---\na: 1\n---\n---\nb: [x]\n").unwrap();
    assert_eq!(
        docs,
        vec![serde_json::json!({"a": 1}), serde_json::json!({"b": ["x"]})]
    );
}

#[test]
fn yaml_errors_carry_a_position() {
    let err = parse_yaml_documents("a: 1\nb: [unclosed\n").unwrap_err();
    assert!(err.contains('2') || err.contains("line"), "{err}");
}

const SAMPLE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: infra, labels: {team: a}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra, generation: 3}
spec:
  gatewayClassName: trellis
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  rules: [{backendRefs: [{name: svc, port: 8080, weight: 2}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {ports: [{port: 8080, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {ports: [{port: 9090}]}
---
apiVersion: v1
kind: Service
metadata: {namespace: x}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: broken}
spec: {listeners: 5}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: dup-listeners}
spec:
  gatewayClassName: trellis
  listeners: [{name: a, port: 80, protocol: HTTP}, {name: a, port: 81, protocol: HTTP}]
---
apiVersion: trellis.dev/v1alpha1
kind: Backend
metadata: {name: legacy}
spec:
  appProtocol: kubernetes.io/h2c
  endpoints: [{address: 127.0.0.1, port: 8080}, {unix: /run/app.sock}]
"#;

#[test]
fn types_objects_and_reports_problems_per_object() {
    let (set, diags) = ResourceSet::from_objects(objects(SAMPLE));
    let gw = set.gateway("infra", "gw").unwrap();
    assert_eq!(gw.metadata.generation(), 3);
    assert_eq!(gw.spec.listeners[0].port, 80);
    let route = set.http_route("default", "r").unwrap();
    assert_eq!(route.spec.rules[0].backend_refs[0].weight, Some(2));
    assert_eq!(route.spec.rules[0].backend_refs[0].backend.port, Some(8080));
    // First Service wins.
    assert_eq!(
        set.service("default", "svc").unwrap().spec.ports[0].port,
        8080
    );
    assert_eq!(
        set.backend("default", "legacy")
            .unwrap()
            .spec
            .endpoints
            .len(),
        2
    );
    let messages: Vec<String> = diags
        .iter()
        .map(|d| format!("{:?} {}", d.object, d.message))
        .collect();
    assert_eq!(diags.len(), 5, "{messages:#?}");
    assert!(
        messages[0].contains("unknown kind \"Deployment\""),
        "{messages:#?}"
    );
    assert!(messages[1].contains("duplicate"), "{messages:#?}");
    assert!(messages[2].contains("no metadata.name"), "{messages:#?}");
    assert!(
        messages[3].contains("Gateway default/broken"),
        "{messages:#?}"
    );
    assert_eq!(diags[3].source, "test.yaml#7");
    assert!(
        messages[4].contains("Gateway default/dup-listeners") && messages[4].contains("used twice"),
        "{messages:#?}"
    );
    assert!(set.gateway("default", "dup-listeners").is_none());
}

#[test]
fn namespaces_get_their_name_label_declared_or_not() {
    let (set, _) = ResourceSet::from_objects(objects(SAMPLE));
    let infra = set.namespace_labels("infra");
    assert_eq!(
        infra.get(NAMESPACE_NAME_LABEL).map(String::as_str),
        Some("infra")
    );
    assert_eq!(infra.get("team").map(String::as_str), Some("a"));
    let default = set.namespace("default").unwrap();
    assert_eq!(
        default
            .metadata
            .labels
            .get(NAMESPACE_NAME_LABEL)
            .map(String::as_str),
        Some("default")
    );
}

#[test]
fn serializes_in_api_server_shape() {
    let (set, _) = ResourceSet::from_objects(objects(SAMPLE));
    let json = serde_json::to_value(set.http_route("default", "r").unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "default"},
            "spec": {
                "parentRefs": [{"name": "gw", "namespace": "infra"}],
                "rules": [{"backendRefs": [{"name": "svc", "port": 8080, "weight": 2}]}]
            }
        })
    );
}

#[test]
fn secret_values_decode_base64_and_prefer_string_data() {
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "aGVs\nbG8=", "bad": "%%%"},
        "stringData": {"tls.key": "plain"}
    }))
    .unwrap();
    assert_eq!(secret.value("tls.crt").unwrap().unwrap(), b"hello");
    assert_eq!(secret.value("tls.key").unwrap().unwrap(), b"plain");
    assert!(secret.value("bad").unwrap().is_err());
    assert!(secret.value("missing").is_none());
}

#[test]
fn label_selector_expressions() {
    let sel: LabelSelector = serde_json::from_value(serde_json::json!({
        "matchLabels": {"a": "1"},
        "matchExpressions": [
            {"key": "b", "operator": "In", "values": ["x", "y"]},
            {"key": "c", "operator": "DoesNotExist"}
        ]
    }))
    .unwrap();
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(sel.matches(&labels(&[("a", "1"), ("b", "y")])));
    assert!(!sel.matches(&labels(&[("a", "1"), ("b", "z")])));
    assert!(!sel.matches(&labels(&[("a", "1"), ("b", "x"), ("c", "")])));
    assert!(!sel.matches(&labels(&[("b", "x")])));
}

#[test]
fn grpc_routes_are_typed_and_round_trip_in_api_server_shape() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  hostnames: [grpc.example.com]
  rules:
  - name: first
    matches:
    - method: {service: pkg.Svc, method: Get}
      headers: [{name: version, value: one}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-a, value: b}]}
    backendRefs:
    - {name: svc, port: 8080, weight: 70}
"#;
    let (set, diags) = ResourceSet::from_objects(objects(yaml));
    assert!(diags.is_empty(), "{diags:?}");
    let route = set.grpc_route("infra", "g").expect("typed");
    let rule = &route.spec.rules[0];
    let method = rule.matches[0].method.as_ref().unwrap();
    assert_eq!(method.service.as_deref(), Some("pkg.Svc"));
    assert_eq!(method.method.as_deref(), Some("Get"));
    assert_eq!(rule.backend_refs[0].weight, Some(70));
    let json = serde_json::to_value(route).unwrap();
    let original = &parse_yaml_documents(yaml).unwrap()[0];
    assert_eq!(json["spec"], original["spec"]);
    assert!(set.unsupported_of("GRPCRoute").next().is_none());
}
