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
        let Some(bind) = ir.binds.iter().find(|b| &b.name == bind_name) else {
            continue;
        };
        for listener in &bind.listeners {
            // Listener names are `namespace/gateway/listener`.
            let mut parts = listener.name.splitn(3, '/');
            let (Some(ns), Some(gw), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(status) = statuses.iter_mut().find(|s| {
                s.kind == "Gateway" && s.namespace.as_deref() == Some(ns) && s.name == gw
            }) else {
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
}
