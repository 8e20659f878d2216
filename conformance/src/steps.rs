//! Test steps (README-extra-families.md "Steps"): `patch`, `create` (with `delay_before_s`),
//! `delete`, `populate_endpointslices`, their `when` ordering around the cases, and the
//! `{configmap:<ns>/<name> <key>}` placeholder. Objects a step creates live in the test's
//! config dir, so they disappear with the test.

use crate::backends::Backends;
use crate::certs::CertStore;
use crate::manifests::{apply_change, kind_of, name_of, parse_yaml, ConfigDir};
use crate::runner::Ctx;
use crate::status::object_key;
use crate::suite::{Step, TestDef};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    BeforeCases,
    AfterCases,
}

/// When each step runs, from its `when` prose: "after cases" (also "after all cases", "after
/// the cases", "after traffic") runs it after the cases, "after the previous step" keeps the
/// previous step's phase, anything else runs before the cases.
pub(crate) fn phases(steps: &[Step]) -> Vec<Phase> {
    let after_cases =
        regex::Regex::new(r"(?i)after (all |the )?(cases|traffic|requests)").expect("static regex");
    let follows = regex::Regex::new(r"(?i)after (the )?previous step").expect("static regex");
    let mut prev = Phase::BeforeCases;
    steps
        .iter()
        .map(|s| {
            let w = s.when.as_deref().unwrap_or("");
            prev = if after_cases.is_match(w) {
                Phase::AfterCases
            } else if follows.is_match(w) {
                prev
            } else {
                Phase::BeforeCases
            };
            prev
        })
        .collect()
}

/// The objects a `create` step adds: one object, a list of them, or YAML text (one or more
/// documents).
fn step_objects(object: &Value) -> Result<Vec<Value>, String> {
    match object {
        Value::Array(items) => Ok(items.clone()),
        Value::String(text) => parse_yaml(text, "step object").map_err(|e| e.to_string()),
        other => Ok(vec![other.clone()]),
    }
}

/// Upstream step `populate_endpointslices`: fill the named manual slices with the pods named
/// in the step (`... of the <deployment> pods ...`). Returns whether anything changed.
pub(crate) fn populate_endpointslices(
    t: &TestDef,
    backends: &Backends,
    docs: &mut Vec<Value>,
) -> Result<bool, String> {
    let re = regex::Regex::new(r"of the ([a-z0-9][a-z0-9-]*) pods").expect("static regex");
    let mut changed = false;
    for step in t
        .steps
        .iter()
        .filter(|s| s.action == "populate_endpointslices")
    {
        let change = step.change.as_deref().unwrap_or("");
        let deployment = re
            .captures(change)
            .map(|c| c[1].to_string())
            .ok_or_else(|| format!("unsupported step change: {change}"))?;
        for target in &step.targets {
            let i = docs
                .iter()
                .position(|d| kind_of(d) == "EndpointSlice" && name_of(d) == target)
                .ok_or_else(|| format!("populate_endpointslices: no EndpointSlice {target}"))?;
            let filled = backends.populate_slice(&docs[i], &deployment);
            docs.splice(i..=i, filled);
            changed = true;
        }
    }
    Ok(changed)
}

/// With `json`, `text` is JSON and each value is inserted JSON-escaped (PEM has newlines).
fn resolve_configmap_refs(text: &str, config: &ConfigDir, certs: &CertStore, json: bool) -> String {
    let re = regex::Regex::new(r"\{configmap:([^/ }]+)/([^ }]+) ([^ }]+)\}").expect("static regex");
    re.replace_all(text, |c: &regex::Captures| {
        let v = config
            .find("ConfigMap", &c[2], Some(&c[1]))
            .and_then(|o| o.get("data")?.get(&c[3])?.as_str().map(str::to_string))
            .or_else(|| certs.lookup("ConfigMap", &format!("{}/{}", &c[1], &c[2]), &c[3]))
            .unwrap_or_default();
        if json {
            let quoted = Value::String(v).to_string();
            quoted[1..quoted.len() - 1].to_string()
        } else {
            v
        }
    })
    .into_owned()
}

impl Ctx<'_> {
    pub(crate) async fn run_step(&mut self, step: &Step) -> Result<(), String> {
        if step.action == "populate_endpointslices" {
            return Ok(()); // applied when the config dir was written
        }
        let before: HashMap<String, i64> = self
            .snapshot()
            .await?
            .objects
            .iter()
            .filter_map(|o| {
                o.generation
                    .map(|g| (object_key(&o.kind, o.namespace.as_deref(), &o.name), g))
            })
            .collect();
        if let Some(s) = step.delay_before_s {
            tokio::time::sleep(Duration::from_secs_f64(s.clamp(0.0, 60.0))).await;
        }
        let ph = self.opts.placeholders.clone();
        let target = step.target.as_ref();
        let what = || format!("step {} {:?}", step.action, target.map(|t| &t.name));
        match step.action.as_str() {
            "patch" | "update" | "edit" => {
                let t = target.ok_or_else(|| format!("{}: no target", what()))?;
                let change = resolve_configmap_refs(
                    step.change.as_deref().unwrap_or(""),
                    &self.config,
                    self.certs,
                    false,
                );
                self.config
                    .edit(&t.kind, &t.name, t.namespace.as_deref(), |v| {
                        apply_change(v, &change, &ph)
                    })
                    .map_err(|e| format!("{}: {e}", what()))?;
            }
            "delete" | "remove" => {
                let t = target.ok_or_else(|| format!("{}: no target", what()))?;
                self.config
                    .delete(&t.kind, &t.name, t.namespace.as_deref())
                    .map_err(|e| format!("{}: {e}", what()))?;
            }
            "create" | "apply" => {
                let obj = step
                    .object
                    .as_ref()
                    .ok_or_else(|| format!("{}: no object", what()))?;
                for obj in step_objects(obj).map_err(|e| format!("{}: {e}", what()))? {
                    let text = resolve_configmap_refs(
                        &ph.apply(&obj.to_string()),
                        &self.config,
                        self.certs,
                        true,
                    );
                    let obj: Value =
                        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", what()))?;
                    self.config
                        .create("30-steps.yaml", obj)
                        .map_err(|e| format!("{}: {e}", what()))?;
                }
            }
            other => return Err(format!("unsupported step action {other:?}")),
        }
        self.check_all(&step.then, &before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(when: Option<&str>) -> Step {
        Step {
            action: "patch".into(),
            target: None,
            targets: Vec::new(),
            change: None,
            object: None,
            then: Vec::new(),
            when: when.map(str::to_string),
            delay_before_s: None,
            subtest: None,
        }
    }

    #[test]
    fn create_steps_accept_an_object_a_list_or_yaml_text() {
        let one = serde_json::json!({"kind": "A"});
        assert_eq!(step_objects(&one).unwrap(), vec![one.clone()]);
        let list = serde_json::json!([{"kind": "A"}, {"kind": "B"}]);
        assert_eq!(step_objects(&list).unwrap().len(), 2);
        let yaml = Value::String("kind: A\nmetadata: {name: x}\n---\nkind: B\n".into());
        let objs = step_objects(&yaml).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0]["metadata"]["name"], "x");
        assert!(step_objects(&Value::String("a: [".into())).is_err());
    }

    #[test]
    fn step_phases_follow_the_when_prose() {
        let steps: Vec<Step> = [
            None,
            Some("after status_expectations, before cases"),
            Some("After all cases"),
            Some("after the previous step"),
            Some("before traffic"),
            Some("after previous step"),
            Some("after traffic"),
        ]
        .into_iter()
        .map(step)
        .collect();
        let got = phases(&steps);
        let (b, a) = (Phase::BeforeCases, Phase::AfterCases);
        assert!(got == [b, b, a, a, b, b, a]);
    }
}
