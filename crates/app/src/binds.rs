//! Sockets the proxy could not open show up on the listeners that needed them, as the spec's
//! `Accepted=False / PortUnavailable` and `Programmed=False / Invalid`.

use trellis_ir::Config;
use trellis_translate::ObjectStatus;

/// Rewrites the listener conditions of every Gateway listener served by a failed bind.
pub(crate) fn mark_unbound(
    statuses: &mut [ObjectStatus],
    ir: &Config,
    failed: &[(String, String)],
) {
    for (bind_name, error) in failed {
        let http = ir.binds.iter().find(|b| &b.name == bind_name);
        let l4 = ir.l4_binds.iter().find(|b| &b.name == bind_name);
        let names: Vec<&str> = match (http, l4) {
            // TLSRoute listeners on an HTTPS port share its socket.
            (Some(b), _) => b
                .listeners
                .iter()
                .map(|l| l.name.as_str())
                .chain(
                    ir.l4_binds
                        .iter()
                        .filter(|l4| (l4.address, l4.port) == (b.address, b.port))
                        .filter(|l4| l4.protocol == trellis_ir::L4Protocol::Tls)
                        .flat_map(|l4| l4.listeners.iter().map(String::as_str)),
                )
                .collect(),
            (None, Some(b)) => b.listeners.iter().map(String::as_str).collect(),
            (None, None) => continue,
        };
        for listener_name in names {
            // Listener names are `namespace/gateway/listener`, or
            // `namespace/gateway/set-namespace/set/listener` for a ListenerSet's.
            let parts: Vec<&str> = listener_name.split('/').collect();
            let (kind, ns, owner, name) = match parts[..] {
                [ns, gw, name] => ("Gateway", ns, gw, name),
                [_, _, ns, set, name] => ("ListenerSet", ns, set, name),
                _ => continue,
            };
            let Some(status) = statuses
                .iter_mut()
                .find(|s| s.kind == kind && s.namespace.as_deref() == Some(ns) && s.name == owner)
            else {
                continue;
            };
            let message = format!("cannot listen on {bind_name}: {error}");
            let listeners = status.status["listeners"].as_array_mut();
            for l in listeners
                .into_iter()
                .flatten()
                .filter(|l| l["name"] == name)
            {
                for c in l["conditions"].as_array_mut().into_iter().flatten() {
                    let reason = match c["type"].as_str() {
                        Some("Accepted") => "PortUnavailable",
                        Some("Programmed") => "Invalid",
                        _ => continue,
                    };
                    c["status"] = "False".into();
                    c["reason"] = reason.into();
                    c["message"] = message.clone().into();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failed_bind_marks_its_listeners_only() {
        let ir: Config = serde_json::from_value(json!({
            "binds": [{"name": "127.0.0.1:80", "address": "127.0.0.1", "port": 80, "protocol": "http",
                       "listeners": [{"name": "ns/gw/web", "hostname": null, "virtual_hosts": []}]}],
            "clusters": []
        }))
        .unwrap();
        let cond = |t: &str| json!({"type": t, "status": "True", "reason": t});
        let mut statuses = vec![ObjectStatus {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: "Gateway".into(),
            namespace: Some("ns".into()),
            name: "gw".into(),
            generation: 1,
            status: json!({"listeners": [
                {"name": "web", "conditions": [cond("Accepted"), cond("Programmed"), cond("ResolvedRefs")]},
                {"name": "other", "conditions": [cond("Accepted")]}
            ]}),
        }];
        mark_unbound(
            &mut statuses,
            &ir,
            &[("127.0.0.1:80".into(), "permission denied".into())],
        );
        let l = &statuses[0].status["listeners"];
        assert_eq!(l[0]["conditions"][0]["reason"], "PortUnavailable");
        assert_eq!(l[0]["conditions"][0]["status"], "False");
        assert_eq!(l[0]["conditions"][1]["reason"], "Invalid");
        assert_eq!(l[0]["conditions"][2]["status"], "True");
        assert!(l[0]["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("permission denied"));
        assert_eq!(l[1]["conditions"][0]["status"], "True");
    }

    #[test]
    fn failed_bind_marks_listener_set_listeners() {
        let ir: Config = serde_json::from_value(json!({
            "binds": [{"name": "127.0.0.1:80", "address": "127.0.0.1", "port": 80, "protocol": "http",
                       "listeners": [{"name": "ns/gw/team/set/web", "hostname": "a.example.com", "virtual_hosts": []}]}],
            "clusters": []
        }))
        .unwrap();
        let cond = |t: &str| json!({"type": t, "status": "True", "reason": t});
        let status = |kind: &str, ns: &str, name: &str| ObjectStatus {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: kind.into(),
            namespace: Some(ns.into()),
            name: name.into(),
            generation: 1,
            status: json!({"listeners": [{"name": "web", "conditions": [cond("Accepted")]}]}),
        };
        let mut statuses = vec![
            status("Gateway", "ns", "gw"),
            status("ListenerSet", "team", "set"),
        ];
        mark_unbound(
            &mut statuses,
            &ir,
            &[("127.0.0.1:80".into(), "busy".into())],
        );
        let reason =
            |i: usize| statuses[i].status["listeners"][0]["conditions"][0]["reason"].clone();
        assert_eq!(reason(0), "Accepted");
        assert_eq!(reason(1), "PortUnavailable");
    }

    #[test]
    fn failed_l4_bind_marks_its_listeners() {
        let ir: Config = serde_json::from_value(json!({
            "binds": [],
            "clusters": [],
            "l4_binds": [{"name": "127.0.0.1:53/udp", "address": "127.0.0.1", "port": 53,
                          "protocol": "udp", "listeners": ["ns/gw/dns"], "routes": []}]
        }))
        .unwrap();
        let cond = |t: &str| json!({"type": t, "status": "True", "reason": t});
        let mut statuses = vec![ObjectStatus {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: "Gateway".into(),
            namespace: Some("ns".into()),
            name: "gw".into(),
            generation: 1,
            status: json!({"listeners": [
                {"name": "dns", "conditions": [cond("Accepted"), cond("Programmed")]},
                {"name": "tcp", "conditions": [cond("Accepted")]}
            ]}),
        }];
        mark_unbound(
            &mut statuses,
            &ir,
            &[("127.0.0.1:53/udp".into(), "address in use".into())],
        );
        let l = &statuses[0].status["listeners"];
        assert_eq!(l[0]["conditions"][0]["reason"], "PortUnavailable");
        assert_eq!(l[0]["conditions"][1]["reason"], "Invalid");
        assert_eq!(l[1]["conditions"][0]["reason"], "Accepted");
    }
}
