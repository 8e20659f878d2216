//! `metadata.generation` and `metadata.creationTimestamp`, as an API server would set them.
//!
//! Generation starts at 1 and increases whenever anything outside `metadata` and `status`
//! changes; the creation time is when the object was first seen and survives edits. Values
//! written in the file win. An object that disappears is forgotten: if it comes back it is new.

use std::collections::HashMap;
use trellis_model::{Diagnostic, SourcedObject};

/// Kinds without a namespace; every other kind defaults to namespace `default`.
const CLUSTER_SCOPED: &[&str] = &["GatewayClass", "Namespace"];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    group: String,
    kind: String,
    namespace: String,
    name: String,
}

#[derive(Debug, Clone)]
struct State {
    /// Hash of everything outside `metadata` and `status` (a hash, not the text: this is kept
    /// for every object, and the text would be as large as the object).
    fingerprint: u64,
    generation: i64,
    created: String,
}

#[derive(Debug, Default)]
pub struct Generations {
    known: HashMap<Key, State>,
}

impl Generations {
    /// Fills the defaulted metadata of every object and remembers what it saw.
    pub fn stamp(
        &mut self,
        objects: Vec<SourcedObject>,
        _diagnostics: &mut Vec<Diagnostic>,
    ) -> Vec<SourcedObject> {
        let now = crate::rfc3339(std::time::SystemTime::now());
        let mut seen: HashMap<Key, State> = HashMap::new();
        let objects = objects
            .into_iter()
            .map(|mut obj| {
                if let Some(key) = prepare(&mut obj.value) {
                    let fingerprint = fingerprint(&obj.value);
                    let state = match (seen.get(&key), self.known.get(&key)) {
                        (Some(s), _) => s.clone(),
                        (None, Some(prev)) if prev.fingerprint == fingerprint => prev.clone(),
                        (None, Some(prev)) => State {
                            fingerprint,
                            generation: prev.generation + 1,
                            created: prev.created.clone(),
                        },
                        (None, None) => State {
                            fingerprint,
                            generation: 1,
                            created: now.clone(),
                        },
                    };
                    let meta = obj.value["metadata"].as_object_mut().expect("prepared");
                    meta.entry("generation")
                        .or_insert_with(|| state.generation.into());
                    meta.entry("creationTimestamp")
                        .or_insert_with(|| state.created.clone().into());
                    seen.entry(key).or_insert(state);
                }
                obj
            })
            .collect();
        self.known = seen;
        objects
    }
}

/// Defaults the namespace and returns the identity, or `None` when the object has no usable
/// kind or name (the model reports those).
fn prepare(value: &mut serde_json::Value) -> Option<Key> {
    let obj = value.as_object_mut()?;
    let kind = obj.get("kind")?.as_str()?.to_string();
    let api_version = obj.get("apiVersion")?.as_str()?.to_string();
    let group = api_version
        .rsplit_once('/')
        .map_or("", |(g, _)| g)
        .to_string();
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| serde_json::Value::Object(Default::default()))
        .as_object_mut()?;
    let name = meta.get("name")?.as_str()?.to_string();
    let namespace = if CLUSTER_SCOPED.contains(&kind.as_str()) {
        String::new()
    } else {
        meta.entry("namespace")
            .or_insert_with(|| "default".into())
            .as_str()?
            .to_string()
    };
    Some(Key {
        group,
        kind,
        namespace,
        name,
    })
}

fn fingerprint(value: &serde_json::Value) -> u64 {
    use std::hash::Hasher;
    /// Feeds serialized JSON straight into the hasher, without building the string.
    struct HashWriter(std::collections::hash_map::DefaultHasher);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Default::default());
    let spec: Vec<_> = match value.as_object() {
        Some(obj) => obj
            .iter()
            .filter(|(k, _)| *k != "metadata" && *k != "status")
            .collect(),
        None => return 0,
    };
    // Serializing plain JSON values cannot fail.
    let _ = serde_json::to_writer(&mut w, &spec);
    w.0.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(spec: serde_json::Value) -> SourcedObject {
        SourcedObject {
            source: "t.yaml#0".into(),
            value: json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                          "metadata": {"name": "g", "labels": {"a": "b"}}, "spec": spec}),
        }
    }

    fn meta(objs: &[SourcedObject]) -> (i64, String, String) {
        let m = &objs[0].value["metadata"];
        (
            m["generation"].as_i64().unwrap(),
            m["creationTimestamp"].as_str().unwrap().to_string(),
            m["namespace"].as_str().unwrap().to_string(),
        )
    }

    #[test]
    fn generation_bumps_on_spec_change_only() {
        let mut g = Generations::default();
        let mut d = Vec::new();
        let first = meta(&g.stamp(vec![obj(json!({"x": 1}))], &mut d));
        assert_eq!(first.0, 1);
        assert_eq!(first.2, "default");
        let same = meta(&g.stamp(vec![obj(json!({"x": 1}))], &mut d));
        assert_eq!(same, first);
        let mut relabelled = obj(json!({"x": 1}));
        relabelled.value["metadata"]["labels"]["a"] = "c".into();
        assert_eq!(meta(&g.stamp(vec![relabelled], &mut d)).0, 1);
        let changed = meta(&g.stamp(vec![obj(json!({"x": 2}))], &mut d));
        assert_eq!(changed.0, 2);
        assert_eq!(changed.1, first.1, "creation time survives edits");
        // Gone, then back: a new object.
        g.stamp(vec![], &mut d);
        assert_eq!(meta(&g.stamp(vec![obj(json!({"x": 2}))], &mut d)).0, 1);
    }

    #[test]
    fn explicit_values_win_and_cluster_scoped_kinds_have_no_namespace() {
        let mut g = Generations::default();
        let mut o = obj(json!({}));
        o.value["metadata"]["generation"] = 7.into();
        assert_eq!(meta(&g.stamp(vec![o], &mut Vec::new())).0, 7);
        let class = SourcedObject {
            source: "c.yaml#0".into(),
            value: json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                          "metadata": {"name": "c"}}),
        };
        let out = g.stamp(vec![class], &mut Vec::new());
        assert!(out[0].value["metadata"].get("namespace").is_none());
        assert_eq!(out[0].value["metadata"]["generation"], 1);
    }
}
