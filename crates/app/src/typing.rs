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
    /// Every object's last version that typed, kept as compact JSON (not as a `Value` tree,
    /// which is ~10x larger): it is only read back when an object stops typing.
    last_good: HashMap<Key, Kept>,
}

#[derive(Debug, Clone)]
struct Kept {
    source: Box<str>,
    json: Box<str>,
}

impl Kept {
    fn new(obj: &SourcedObject) -> Kept {
        Kept {
            source: obj.source.as_str().into(),
            json: obj.value.to_string().into(),
        }
    }

    fn object(&self) -> SourcedObject {
        SourcedObject {
            source: self.source.to_string(),
            // It was serialized from a `Value` above, so it parses back.
            value: serde_json::from_str(&self.json).unwrap_or_default(),
        }
    }
}

impl Typer {
    pub fn type_objects(&mut self, objects: Vec<SourcedObject>) -> (ResourceSet, Vec<Diagnostic>) {
        // Each object's text is taken before typing consumes the objects (no second copy of
        // the whole snapshot as `Value` trees).
        let kept: Vec<(Option<Key>, Kept)> = objects
            .iter()
            .map(|obj| (key(&obj.value), Kept::new(obj)))
            .collect();
        let (set, mut diagnostics) = ResourceSet::from_objects(objects);
        let invalid: HashMap<&str, usize> = diagnostics
            .iter()
            .enumerate()
            .filter(|(_, d)| d.message.starts_with("invalid object"))
            .map(|(i, d)| (d.source.as_str(), i))
            .collect();
        // Objects that stopped typing and have a last good version take that version.
        let mut substituted = Vec::new();
        let replaced: Vec<bool> = kept
            .iter()
            .map(|(k, now)| match (invalid.get(&*now.source), k) {
                (Some(&diag), Some(k)) if self.last_good.contains_key(k) => {
                    substituted.push(diag);
                    true
                }
                _ => false,
            })
            .collect();
        let fallback = !substituted.is_empty();
        let mut next_good = HashMap::with_capacity(kept.len());
        let mut retype = Vec::new();
        for ((k, now), replaced) in kept.into_iter().zip(replaced) {
            let valid = !invalid.contains_key(&*now.source);
            match k {
                Some(k) if replaced => {
                    let good = self.last_good[&k].clone();
                    if fallback {
                        retype.push(good.object());
                    }
                    next_good.insert(k, good);
                }
                k => {
                    if fallback {
                        retype.push(now.object());
                    }
                    if let (Some(k), true) = (k, valid) {
                        next_good.insert(k, now);
                    }
                }
            }
        }
        self.last_good = next_good;
        if !fallback {
            return (set, diagnostics);
        }
        drop(set);
        for i in substituted {
            diagnostics[i].message = diagnostics[i]
                .message
                .replace("; ignored", "; keeping its last good version");
        }
        let (set, retyped) = ResourceSet::from_objects(retype);
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
        // Still broken on the next load: the same last good version, not the broken one.
        let (set, d) = t.type_objects(vec![route(json!("not-a-list"))]);
        assert_eq!(set.http_routes.len(), 1, "{d:?}");
        let r = set.http_routes.values().next().unwrap();
        assert_eq!(r.spec.hostnames, vec!["a.example".to_string()]);
        // Fixed: the new version is the one typed (and the next last good one).
        let (set, d) = t.type_objects(vec![route(json!(["b.example"]))]);
        assert!(d.is_empty(), "{d:?}");
        let r = set.http_routes.values().next().unwrap();
        assert_eq!(r.spec.hostnames, vec!["b.example".to_string()]);
        // Without a previous good version the object is simply left out.
        let mut fresh = Typer::default();
        let (set, d) = fresh.type_objects(vec![route(json!("not-a-list"))]);
        assert!(set.http_routes.is_empty());
        assert!(d[0].message.contains("ignored"));
    }
}
