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
    /// Spec-changing edits per object, to know its generation independently of trellis.
    edits: std::collections::HashMap<String, i64>,
}

fn identity(v: &Value) -> String {
    format!("{} {:?} {}", kind_of(v), namespace_of(v), name_of(v))
}

/// The object without `metadata` and `status`: what a generation bump depends on.
fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

impl ConfigDir {
    pub fn new(path: &Path) -> ConfigDir {
        ConfigDir {
            path: path.to_path_buf(),
            files: Vec::new(),
            edits: Default::default(),
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
        let before = spec_part(&f.docs[idx.1]);
        edit(&mut f.docs[idx.1])?;
        if spec_part(&f.docs[idx.1]) != before {
            *self.edits.entry(identity(&f.docs[idx.1])).or_insert(0) += 1;
        }
        f.text = None;
        let f = self.files[idx.0].clone();
        self.write_file(&f)
    }

    /// The generation the object must have: `metadata.generation` when the manifest sets it,
    /// otherwise 1 on first sight plus one per spec-changing edit (the provider's contract).
    pub fn expected_generation(
        &self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Option<i64> {
        let v = self.find(kind, name, namespace)?;
        if let Some(g) = v.pointer("/metadata/generation").and_then(Value::as_i64) {
            return Some(g);
        }
        Some(1 + self.edits.get(&identity(v)).copied().unwrap_or(0))
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
/// `append listener {k: v, a.b: v}` (or `add [a] listener`), `remove the listener named X`
/// (or `remove|delete [the] listener [named] X`), `remove <path>`, `remove the unusable
/// address`, `<path>: old -> new`, `change|update <path> from <old> to <new>`,
/// `<path> := value (...)`, `set <path> to <value>`,
/// `restore <path> to the original value`.
pub fn apply_change(obj: &mut Value, change: &str, ph: &Placeholders) -> Result<(), ManifestError> {
    let unsupported = || ManifestError::UnsupportedChange(change.to_string());
    // `<path> := the original value (<text>)`: the text (already substituted) is the value.
    if let Some((path, rest)) = change.trim().split_once(" := the original value (") {
        let value = rest.strip_suffix(')').ok_or_else(unsupported)?;
        let path = parse_path(path.trim()).ok_or_else(unsupported)?;
        return set_path(obj, &path, Value::String(value.to_string())).ok_or_else(unsupported);
    }
    let c = strip_parenthetical(change.trim());
    let listener_to_add = ["append listener ", "add listener ", "add a listener "]
        .iter()
        .find_map(|p| c.strip_prefix(p));
    let listener_to_remove = [
        "remove the listener named ",
        "remove listener ",
        "delete the listener named ",
        "delete listener ",
    ]
    .iter()
    .find_map(|p| c.strip_prefix(p));
    if let Some(rest) = listener_to_add {
        let listener = parse_flow_map(rest).ok_or_else(unsupported)?;
        let list = ensure_array(obj, "/spec/listeners").ok_or_else(unsupported)?;
        list.push(listener);
        return Ok(());
    }
    if let Some(name) = listener_to_remove {
        let name = name
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches('"');
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
    // `change|update <path> from <old> to <new>`: the old value is informational.
    if let Some((path, value)) = ["change ", "update "]
        .iter()
        .find_map(|p| c.strip_prefix(p))
        .and_then(|rest| rest.split_once(" from "))
        .and_then(|(path, rest)| Some((path, rest.split_once(" to ")?.1)))
    {
        let path = parse_path(path.trim()).ok_or_else(unsupported)?;
        let value = parse_scalar_or_flow(value.trim()).ok_or_else(unsupported)?;
        return set_path(obj, &path, value).ok_or_else(unsupported);
    }
    if let Some((path, value)) = c
        .strip_prefix("set ")
        .and_then(|rest| rest.split_once(" to "))
    {
        let path = parse_path(path.trim()).ok_or_else(unsupported)?;
        let value = parse_scalar_or_flow(value.trim()).ok_or_else(unsupported)?;
        return set_path(obj, &path, value).ok_or_else(unsupported);
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
#[path = "manifests_tests.rs"]
mod tests;
