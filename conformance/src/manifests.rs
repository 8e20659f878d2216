//! Manifests: placeholder replacement, YAML <-> JSON values, the per-test config directory
//! (files trellis watches), and the edits steps make (patch / delete / create).

use serde_json::Value;
use std::path::{Path, PathBuf};

pub const GATEWAY_CLASS_NAME: &str = "trellis";
pub const GATEWAY_CONTROLLER_NAME: &str = "trellis.dev/gateway-controller";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("YAML in {file}: {message}")]
    Yaml { file: String, message: String },
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no object {0} in the test's manifests")]
    NotFound(String),
    #[error("unsupported step change: {0}")]
    UnsupportedChange(String),
}

/// The values that replace the suite's placeholders.
#[derive(Debug, Clone)]
pub struct Placeholders {
    pub class_name: String,
    pub controller_name: String,
    pub usable_address: String,
    pub unusable_address: String,
}

impl Default for Placeholders {
    fn default() -> Self {
        Placeholders {
            class_name: GATEWAY_CLASS_NAME.into(),
            controller_name: GATEWAY_CONTROLLER_NAME.into(),
            usable_address: "127.20.0.1".into(),
            unusable_address: "203.0.113.1".into(),
        }
    }
}

impl Placeholders {
    /// Replaces every placeholder in a manifest (or check) text.
    pub fn apply(&self, text: &str) -> String {
        text.replace("{GATEWAY_CLASS_NAME}", &self.class_name)
            .replace("{GATEWAY_CONTROLLER_NAME}", &self.controller_name)
            .replace("PLACEHOLDER_USABLE_ADDRS", &self.usable_address)
            .replace("PLACEHOLDER_UNUSABLE_ADDRS", &self.unusable_address)
    }
}

/// Parses multi-document YAML into JSON values (empty documents dropped).
pub fn parse_yaml(text: &str, file: &str) -> Result<Vec<Value>, ManifestError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Serializes documents as multi-document YAML.
pub fn to_yaml(docs: &[Value]) -> Result<String, ManifestError> {
    serde_saphyr::to_string_multiple(docs).map_err(|e| ManifestError::Yaml {
        file: "<generated>".into(),
        message: e.to_string(),
    })
}

pub fn kind_of(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or("")
}
pub fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}
/// Namespace as written (`None` when absent).
pub fn namespace_of(v: &Value) -> Option<&str> {
    v.pointer("/metadata/namespace").and_then(Value::as_str)
}

/// Does `v` match kind/name/namespace (`namespace` None or absent both count as "default"
/// for namespaced matching, and cluster-scoped refs ignore it)?
pub fn matches(v: &Value, kind: &str, name: &str, namespace: Option<&str>) -> bool {
    kind_of(v) == kind
        && name_of(v) == name
        && namespace.is_none_or(|ns| namespace_of(v).unwrap_or("default") == ns)
}

/// One file in the config dir: its documents, and the verbatim text until first edited.
#[derive(Debug, Clone)]
struct ManifestFile {
    name: String,
    docs: Vec<Value>,
    text: Option<String>,
}

/// The directory `trellis run --config` watches, with the current objects of each file.
#[derive(Debug)]
pub struct ConfigDir {
    pub path: PathBuf,
    files: Vec<ManifestFile>,
}

impl ConfigDir {
    pub fn new(path: &Path) -> ConfigDir {
        ConfigDir {
            path: path.to_path_buf(),
            files: Vec::new(),
        }
    }

    /// Adds a file written from YAML text (kept verbatim).
    pub fn add_text(&mut self, name: &str, text: String) -> Result<(), ManifestError> {
        let docs = parse_yaml(&text, name)?;
        self.files.push(ManifestFile {
            name: name.into(),
            docs,
            text: Some(text),
        });
        Ok(())
    }

    /// Adds a file serialized from values.
    pub fn add_docs(&mut self, name: &str, docs: Vec<Value>) {
        self.files.push(ManifestFile {
            name: name.into(),
            docs,
            text: None,
        });
    }

    /// Every object currently in the directory.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        self.files.iter().flat_map(|f| f.docs.iter())
    }

    pub fn find(&self, kind: &str, name: &str, namespace: Option<&str>) -> Option<&Value> {
        self.objects().find(|v| matches(v, kind, name, namespace))
    }

    /// Writes every file (atomically: temp file + rename, so the watcher never sees half).
    pub fn write_all(&self) -> Result<(), ManifestError> {
        for f in &self.files {
            self.write_file(f)?;
        }
        Ok(())
    }

    fn write_file(&self, f: &ManifestFile) -> Result<(), ManifestError> {
        let text = match &f.text {
            Some(t) => t.clone(),
            None => to_yaml(&f.docs)?,
        };
        let tmp = self.path.join(format!(".{}.tmp", f.name));
        let dst = self.path.join(&f.name);
        let io = |source| ManifestError::Io {
            path: dst.clone(),
            source,
        };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &dst).map_err(io)?;
        Ok(())
    }

    /// Applies `edit` to the object and rewrites its file.
    pub fn edit(
        &mut self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
        edit: impl FnOnce(&mut Value) -> Result<(), ManifestError>,
    ) -> Result<(), ManifestError> {
        let idx = self.locate(kind, name, namespace)?;
        let f = &mut self.files[idx.0];
        edit(&mut f.docs[idx.1])?;
        f.text = None;
        let f = self.files[idx.0].clone();
        self.write_file(&f)
    }

    /// Removes the object and rewrites its file.
    pub fn delete(
        &mut self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<(), ManifestError> {
        let idx = self.locate(kind, name, namespace)?;
        let f = &mut self.files[idx.0];
        f.docs.remove(idx.1);
        f.text = None;
        let f = self.files[idx.0].clone();
        self.write_file(&f)
    }

    /// Appends an object to file `file` (created when missing) and rewrites it.
    pub fn create(&mut self, file: &str, object: Value) -> Result<(), ManifestError> {
        let i = match self.files.iter().position(|f| f.name == file) {
            Some(i) => i,
            None => {
                self.add_docs(file, Vec::new());
                self.files.len() - 1
            }
        };
        self.files[i].docs.push(object);
        self.files[i].text = None;
        let f = self.files[i].clone();
        self.write_file(&f)
    }

    fn locate(
        &self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Result<(usize, usize), ManifestError> {
        // Later files (the test's) win over the base, like upstream applying on top.
        for (fi, f) in self.files.iter().enumerate().rev() {
            if let Some(di) = f
                .docs
                .iter()
                .position(|v| matches(v, kind, name, namespace))
            {
                return Ok((fi, di));
            }
        }
        Err(ManifestError::NotFound(format!(
            "{kind} {}/{name}",
            namespace.unwrap_or("-")
        )))
    }
}

/// Applies a step's prose `change` to an object. Understood forms (the suite's vocabulary):
/// `append listener {k: v, a.b: v}`, `remove the listener named X`, `remove <path>`,
/// `remove the unusable address`, `<path>: old -> new`, `<path> := value (...)`,
/// `restore <path> to the original value`.
pub fn apply_change(obj: &mut Value, change: &str, ph: &Placeholders) -> Result<(), ManifestError> {
    let unsupported = || ManifestError::UnsupportedChange(change.to_string());
    let c = strip_parenthetical(change.trim());
    if let Some(rest) = c.strip_prefix("append listener ") {
        let listener = parse_flow_map(rest).ok_or_else(unsupported)?;
        let list = ensure_array(obj, "/spec/listeners").ok_or_else(unsupported)?;
        list.push(listener);
        return Ok(());
    }
    if let Some(name) = c.strip_prefix("remove the listener named ") {
        let name = name.split_whitespace().next().unwrap_or("");
        let list = ensure_array(obj, "/spec/listeners").ok_or_else(unsupported)?;
        let before = list.len();
        list.retain(|l| l.get("name").and_then(Value::as_str) != Some(name));
        return if list.len() < before {
            Ok(())
        } else {
            Err(unsupported())
        };
    }
    if c.starts_with("remove the unusable address") {
        let list = ensure_array(obj, "/spec/addresses").ok_or_else(unsupported)?;
        let before = list.len();
        list.retain(|a| {
            a.get("value").and_then(Value::as_str) != Some(ph.unusable_address.as_str())
        });
        return if list.len() < before {
            Ok(())
        } else {
            Err(unsupported())
        };
    }
    if let Some(path) = c.strip_prefix("remove ") {
        let path = parse_path(path.trim()).ok_or_else(unsupported)?;
        return remove_path(obj, &path).ok_or_else(unsupported);
    }
    if let Some((path, value)) = c.split_once(":=") {
        let path = parse_path(path.trim()).ok_or_else(unsupported)?;
        let value = parse_scalar_or_flow(value.trim()).ok_or_else(unsupported)?;
        return set_path(obj, &path, value).ok_or_else(unsupported);
    }
    if let Some(rest) = c.strip_prefix("restore ") {
        if let Some((path, value)) = rest.split_once(" to the original ") {
            let path = parse_path(path.trim()).ok_or_else(unsupported)?;
            let value = parse_scalar_or_flow(value.trim()).ok_or_else(unsupported)?;
            return set_path(obj, &path, value).ok_or_else(unsupported);
        }
    }
    if let Some((lhs, new)) = c.split_once(" -> ") {
        if let Some((path, _old)) = lhs.split_once(": ") {
            let path = parse_path(path.trim()).ok_or_else(unsupported)?;
            let value = parse_scalar_or_flow(new.trim()).ok_or_else(unsupported)?;
            return set_path(obj, &path, value).ok_or_else(unsupported);
        }
    }
    Err(unsupported())
}

/// Drops a trailing ` (...)` comment, and a `; ...` remark inside it.
fn strip_parenthetical(s: &str) -> &str {
    if s.ends_with(')') {
        if let Some(i) = s.rfind(" (") {
            return s[..i].trim_end();
        }
    }
    s
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `spec.rules[0].backendRefs[0].name`, `data["ca.crt"]`.
fn parse_path(s: &str) -> Option<Vec<Seg>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]")?;
            out.push(Seg::Key(r[..end].to_string()));
            rest = &r[end + 2..];
            continue;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Seg::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let key = &rest[..end];
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        out.push(Seg::Key(key.to_string()));
        rest = &rest[end..];
    }
    (!out.is_empty()).then_some(out)
}

fn ensure_array<'a>(obj: &'a mut Value, pointer: &str) -> Option<&'a mut Vec<Value>> {
    obj.pointer_mut(pointer)?.as_array_mut()
}

fn set_path(obj: &mut Value, path: &[Seg], value: Value) -> Option<()> {
    let (last, parents) = path.split_last()?;
    let mut cur = obj;
    for seg in parents {
        cur = match seg {
            Seg::Key(k) => {
                let m = cur.as_object_mut()?;
                m.entry(k.clone())
                    .or_insert_with(|| Value::Object(Default::default()))
            }
            Seg::Index(i) => cur.as_array_mut()?.get_mut(*i)?,
        };
    }
    match last {
        Seg::Key(k) => {
            cur.as_object_mut()?.insert(k.clone(), value);
        }
        Seg::Index(i) => *cur.as_array_mut()?.get_mut(*i)? = value,
    }
    Some(())
}

fn remove_path(obj: &mut Value, path: &[Seg]) -> Option<()> {
    let (last, parents) = path.split_last()?;
    let mut cur = obj;
    for seg in parents {
        cur = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str())?,
            Seg::Index(i) => cur.get_mut(*i)?,
        };
    }
    match last {
        Seg::Key(k) => cur.as_object_mut()?.remove(k).map(|_| ()),
        Seg::Index(i) => {
            let a = cur.as_array_mut()?;
            (*i < a.len()).then(|| {
                a.remove(*i);
            })
        }
    }
}

/// A YAML scalar or flow collection (`"x"`, `foo`, `80`, `[{a: b}]`).
fn parse_scalar_or_flow(s: &str) -> Option<Value> {
    if s.starts_with('{') {
        return parse_flow_map(s);
    }
    let v: Value = serde_saphyr::from_str(s).ok()?;
    Some(v)
}

/// `{name: http, port: 80, allowedRoutes.namespaces.from: All}`: dotted keys nest.
fn parse_flow_map(s: &str) -> Option<Value> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Value::Object(Default::default());
    for part in split_top_level(inner) {
        let (k, v) = part.split_once(':')?;
        let path: Vec<Seg> = k
            .trim()
            .split('.')
            .map(|s| Seg::Key(s.to_string()))
            .collect();
        let v = parse_scalar_or_flow(v.trim())?;
        set_path(&mut out, &path, v)?;
    }
    Some(out)
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut quoted) = (0i32, 0, false);
    for (i, ch) in s.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        parts.push(s[start..].trim());
    }
    parts
}

#[cfg(test)]
mod tests {
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
            json!({"kind": "A", "metadata": {"name": "*.wildcard.org"}, "x": "True", "n": 80}),
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
        assert!(apply_change(&mut cm, "do something clever", &ph).is_err());
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
}
