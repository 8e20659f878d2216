//! Typing raw objects with a per-object safety net: an object that no longer types (a field of
//! the wrong shape, say) keeps its last good version, like `kubectl apply` would never have
//! accepted the bad one. Everything else in the snapshot still applies.

use std::collections::HashMap;
use trellis_model::{Diagnostic, ResourceSet, SourcedObject};

/// Identity of a raw object: apiVersion group, kind, namespace, name.
type Key = (String, String, String, String);

fn key(value: &serde_json::Value) -> Option<Key> {
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let api = s(&value["apiVersion"])?;
    let group = api.rsplit_once('/').map_or("", |(g, _)| g).to_string();
    Some((
        group,
        s(&value["kind"])?,
        s(&value["metadata"]["namespace"]).unwrap_or_default(),
        s(&value["metadata"]["name"])?,
    ))
}

#[derive(Debug, Default)]
pub struct Typer {
    last_good: HashMap<Key, SourcedObject>,
}

impl Typer {
    pub fn type_objects(&mut self, objects: Vec<SourcedObject>) -> (ResourceSet, Vec<Diagnostic>) {
        let (set, mut diagnostics) = ResourceSet::from_objects(objects.clone());
        let invalid: HashMap<&str, usize> = diagnostics
            .iter()
            .enumerate()
            .filter(|(_, d)| d.message.starts_with("invalid object"))
            .map(|(i, d)| (d.source.as_str(), i))
            .collect();
        let mut substituted = Vec::new();
        let mut fallback = false;
        let mut next_good = HashMap::new();
        let objects: Vec<SourcedObject> = objects
            .into_iter()
            .map(|obj| {
                let k = key(&obj.value);
                match (invalid.get(obj.source.as_str()), k) {
                    (Some(&diag), Some(k)) => match self.last_good.get(&k) {
                        Some(good) => {
                            fallback = true;
                            substituted.push(diag);
                            next_good.insert(k, good.clone());
                            good.clone()
                        }
                        None => obj,
                    },
                    (None, Some(k)) => {
                        next_good.insert(k, obj.clone());
                        obj
                    }
                    (_, None) => obj,
                }
            })
            .collect();
        self.last_good = next_good;
        if !fallback {
            return (set, diagnostics);
        }
        for i in substituted {
            diagnostics[i].message = diagnostics[i]
                .message
                .replace("; ignored", "; keeping its last good version");
        }
        let (set, retyped) = ResourceSet::from_objects(objects);
        // The substituted objects typed before; anything else is already reported.
        let new: Vec<Diagnostic> = retyped
            .into_iter()
            .filter(|d| !diagnostics.contains(d))
            .collect();
        diagnostics.extend(new);
        (set, diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(hostnames: serde_json::Value) -> SourcedObject {
        SourcedObject {
            source: "r.yaml#0".into(),
            value: json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "r", "namespace": "default"},
                "spec": {"hostnames": hostnames}}),
        }
    }

    #[test]
    fn an_object_that_stops_typing_keeps_its_last_good_version() {
        let mut t = Typer::default();
        let (set, d) = t.type_objects(vec![route(json!(["a.example"]))]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(set.http_routes.len(), 1);
        let (set, d) = t.type_objects(vec![route(json!("not-a-list"))]);
        assert_eq!(set.http_routes.len(), 1, "last good version kept");
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].message.contains("keeping its last good version"),
            "{d:?}"
        );
        // Without a previous good version the object is simply left out.
        let mut fresh = Typer::default();
        let (set, d) = fresh.type_objects(vec![route(json!("not-a-list"))]);
        assert!(set.http_routes.is_empty());
        assert!(d[0].message.contains("ignored"));
    }
}
