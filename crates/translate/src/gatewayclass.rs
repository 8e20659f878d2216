//! GatewayClass: ours iff `spec.controllerName` matches; Accepted unless parametersRef is bad.

use crate::conditions::{Cond, Stamp};
use crate::{ObjectStatus, Options};
use serde_json::json;
use std::collections::BTreeSet;
use trellis_model::{GatewayClass, ResourceSet};

/// Names of our GatewayClasses that are Accepted, plus their statuses.
pub fn translate(
    resources: &ResourceSet,
    options: &Options,
) -> (BTreeSet<String>, Vec<ObjectStatus>) {
    let mut ours = BTreeSet::new();
    let mut statuses = Vec::new();
    for (name, class) in &resources.gateway_classes {
        if class.spec.controller_name != options.controller_name {
            continue;
        }
        let accepted = accepted(resources, class);
        if accepted.status {
            ours.insert(name.clone());
        }
        let stamp = Stamp::of(&class.metadata);
        statuses.push(ObjectStatus {
            api_version: class.api_version.clone(),
            kind: "GatewayClass".into(),
            namespace: None,
            name: name.clone(),
            generation: stamp.generation,
            status: json!({ "conditions": [accepted.stamp(&stamp)] }),
        });
    }
    (ours, statuses)
}

/// Trellis takes no parameters except an existing ConfigMap (kept for future settings).
fn accepted(resources: &ResourceSet, class: &GatewayClass) -> Cond {
    let Some(p) = &class.spec.parameters_ref else {
        return Cond::new(
            "Accepted",
            true,
            "Accepted",
            "GatewayClass is accepted by Trellis",
        );
    };
    if p.group.is_empty() && p.kind == "ConfigMap" {
        let ns = p.namespace.as_deref().unwrap_or("default");
        if resources.config_map(ns, &p.name).is_some() {
            return Cond::new(
                "Accepted",
                true,
                "Accepted",
                "GatewayClass is accepted by Trellis",
            );
        }
        return Cond::new(
            "Accepted",
            false,
            "InvalidParameters",
            format!("ConfigMap {ns}/{} not found", p.name),
        );
    }
    Cond::new(
        "Accepted",
        false,
        "InvalidParameters",
        format!(
            "parametersRef kind {:?} in group {:?} is not supported",
            p.kind, p.group
        ),
    )
}
