//! Echo backends built from base.yaml and test manifests: instances, ports, EndpointSlices.

use super::*;
use crate::manifests::{parse_yaml, Placeholders};

#[tokio::test]
async fn base_yaml_backends_get_instances_and_slices() {
    let base =
        std::fs::read_to_string(crate::suite::default_suite_dir().join("base.yaml")).unwrap();
    let docs = parse_yaml(&Placeholders::default().apply(&base), "base").unwrap();
    let refs: Vec<&Value> = docs.iter().collect();
    let certs = CertStore::generate().unwrap();
    let (b, slices) = Backends::start(&refs, &certs).await.unwrap();
    // infra-backend-v1 has 2 replicas with ports 3000 and 3001.
    let v1: Vec<_> = b
        .of_deployment("gateway-conformance-infra", "infra-backend-v1")
        .collect();
    assert_eq!(v1.len(), 2);
    assert_eq!(
        v1[0].ports.keys().copied().collect::<Vec<_>>(),
        vec![3000, 3001]
    );
    let re = regex::Regex::new(r"^infra-backend-v1-[a-z0-9]{5}-[a-z0-9]{5}$").unwrap();
    assert!(re.is_match(&v1[0].pod), "{}", v1[0].pod);
    // tcp-backend: 2 TCP echo pods, plain on 3000 and TLS on 8443 (mounted certificate).
    let tcp: Vec<_> = b
        .of_deployment("gateway-conformance-infra", "tcp-backend")
        .collect();
    assert_eq!(tcp.len(), 2);
    assert_eq!(
        tcp[0].l4.keys().copied().collect::<Vec<_>>(),
        vec![3000, 8443]
    );
    assert!(tcp[0].ports.is_empty() && tcp[0].grpc.is_empty());
    let tcp_slice = slices
        .iter()
        .find(|s| {
            s["metadata"]["labels"]["kubernetes.io/service-name"] == "tcp-backend"
                && s["endpoints"][0]["targetRef"]["name"] == tcp[0].pod.as_str()
        })
        .unwrap();
    assert_eq!(tcp_slice["ports"][0]["name"], "echo-tcp-plain");
    assert_eq!(tcp_slice["ports"][0]["port"], tcp[0].l4[&3000]);
    assert_eq!(tcp_slice["ports"][1]["port"], tcp[0].l4[&8443]);
    // coredns: one DNS server on container port 53, sliced as UDP.
    let dns = b
        .of_deployment("gateway-conformance-infra", "coredns")
        .next()
        .unwrap();
    let dns_slice = slices
        .iter()
        .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "coredns")
        .unwrap();
    assert_eq!(dns_slice["ports"][0]["protocol"], "UDP");
    assert_eq!(dns_slice["ports"][0]["port"], dns.l4[&53]);
    // gRPC echo instances on their container port, with slices pointing at them.
    let g: Vec<_> = b
        .of_deployment("gateway-conformance-infra", "grpc-infra-backend-v1")
        .collect();
    assert_eq!(g.len(), 2);
    assert!(g[0].ports.is_empty());
    let grpc_port = g[0]
        .grpc
        .get(&3000)
        .expect("gRPC echo on 3000")
        .local_addr
        .port();
    assert!(slices.iter().any(|s| s["ports"][0]["port"] == grpc_port
        && s["ports"][0]["appProtocol"] == "kubernetes.io/h2c"));
    let s = slices
        .iter()
        .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "infra-backend-v1")
        .unwrap();
    let names: Vec<_> = s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first-port", "second-port", "third-port"]);
    assert_eq!(
        s["ports"][0]["port"], s["ports"][2]["port"],
        "8080 and 8082 share container port 3000"
    );
    assert_eq!(s["endpoints"][0]["addresses"][0], "127.0.0.1");
    // tls-backend in two namespaces, one instance each.
    assert_eq!(
        b.of_deployment("gateway-conformance-app-backend", "tls-backend")
            .count(),
        1
    );
    let manual = serde_json::json!({"kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "m-ip4", "namespace": "gateway-conformance-infra"},
        "ports": [{"name": "first-port", "port": 3000}]});
    let filled = b.populate_slice(&manual, "infra-backend-v1");
    assert_eq!(filled.len(), 2);
    assert_ne!(filled[0]["ports"][0]["port"], 3000);
    assert_eq!(filled[1]["metadata"]["name"], "m-ip4-1");
}

#[tokio::test]
async fn named_target_ports_resolve_to_container_ports() {
    let docs = parse_yaml(
        "kind: Service\nmetadata: {name: s, namespace: ns1}\nspec:\n  selector: {app: web-app}\n  ports:\n  - {name: web, port: 80, targetPort: http}\n---\nkind: Deployment\nmetadata: {name: a, namespace: ns1}\nspec:\n  template:\n    metadata: {labels: {app: web-app}}\n    spec:\n      containers:\n      - name: c\n        image: echo-basic\n        ports: [{name: http, containerPort: 3000}]\n",
        "t",
    )
    .unwrap();
    let refs: Vec<&Value> = docs.iter().collect();
    let certs = CertStore::generate().unwrap();
    let (b, slices) = Backends::start(&refs, &certs).await.unwrap();
    let inst = b.of_deployment("ns1", "a").next().unwrap();
    let echo_port = inst.ports.get(&3000).expect("echo on container port 3000");
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0]["ports"][0]["port"], echo_port.local_addr.port());
    assert_eq!(slices[0]["ports"][0]["name"], "web");
}

#[tokio::test]
async fn udp_echo_deployments_report_their_service_and_pod() {
    let text = std::fs::read_to_string(
        crate::suite::default_suite_dir().join("tests/udproute-weighted-routing/manifests.yaml"),
    )
    .unwrap();
    let docs = parse_yaml(&Placeholders::default().apply(&text), "t").unwrap();
    let refs: Vec<&Value> = docs.iter().collect();
    let certs = CertStore::generate().unwrap();
    let (b, slices) = Backends::start(&refs, &certs).await.unwrap();
    let v2 = b
        .of_deployment("gateway-conformance-infra", "udp-backend-v2")
        .next()
        .unwrap();
    let slice = slices
        .iter()
        .find(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "udp-backend-v2")
        .unwrap();
    assert_eq!(slice["ports"][0]["protocol"], "UDP");
    let port = slice["ports"][0]["port"].as_u64().unwrap() as u16;
    assert_eq!(port, v2.l4[&8080]);
    let reply = trellis_testkit::udp_echo::udp_echo(
        ([127, 0, 0, 1], port).into(),
        b"hi",
        std::time::Duration::from_secs(2),
        1024,
    )
    .await
    .unwrap();
    let r = trellis_testkit::udp_echo::UdpEchoReply::from_datagram(&reply).unwrap();
    assert_eq!(r.service, "udp-backend-v2");
    assert_eq!(r.namespace, "gateway-conformance-infra");
    assert_eq!(r.pod, v2.pod);
    assert_eq!(r.request, "hi");
}
