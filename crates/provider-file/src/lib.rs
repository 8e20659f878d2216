//! The file provider: turns a directory of YAML files into raw objects for the translator.
//!
//! [`FileProvider::load`] rescans the directory and returns the current objects; only files whose
//! bytes changed are parsed again. A file that stops parsing keeps the objects it last produced
//! and yields a [`Diagnostic`]. The provider also plays the API server's part for two fields:
//! `metadata.generation` and `metadata.creationTimestamp` (see [`generations`]).
//! [`watch`] reports changes in the directory (editors that save by rename included).

mod generations;
mod timestamp;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use trellis_model::{Diagnostic, SourcedObject};

pub use generations::Generations;
pub use timestamp::rfc3339;
pub use watch::{watch, Watcher};

/// What one load of the directory produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub objects: Vec<SourcedObject>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Default)]
struct FileState {
    bytes: Vec<u8>,
    /// Objects of the last version that parsed.
    objects: Vec<StoredObject>,
    error: Option<Diagnostic>,
}

/// A parsed object kept between scans as compact JSON: a `serde_json::Value` tree is ~15x
/// larger than its text, and turning the text back into a tree costs about what cloning the
/// tree did.
#[derive(Debug)]
struct StoredObject {
    source: String,
    json: Box<str>,
}

impl StoredObject {
    fn new(source: String, value: &serde_json::Value) -> StoredObject {
        StoredObject {
            source,
            json: value.to_string().into(),
        }
    }

    fn object(&self) -> SourcedObject {
        SourcedObject {
            source: self.source.clone(),
            // Serialized from a `Value` by `new`, so it parses back to the same value.
            value: serde_json::from_str(&self.json).unwrap_or_default(),
        }
    }
}

/// Reads `*.yaml` / `*.yml` files under a directory (recursively, in path order).
#[derive(Debug)]
pub struct FileProvider {
    dir: PathBuf,
    files: HashMap<PathBuf, FileState>,
    generations: Generations,
}

impl FileProvider {
    pub fn new(dir: impl Into<PathBuf>) -> FileProvider {
        FileProvider {
            dir: dir.into(),
            files: HashMap::new(),
            generations: Generations::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rescans the directory. Never fails: unreadable files and bad YAML become diagnostics.
    pub fn load(&mut self) -> Snapshot {
        self.scan(true)
            .expect("a forced scan always yields a snapshot")
    }

    /// Like [`load`](Self::load), but `None` when no file was added, removed or changed since
    /// the previous scan, so an idle poll costs one read per file and nothing more.
    pub fn load_if_changed(&mut self) -> Option<Snapshot> {
        self.scan(false)
    }

    fn scan(&mut self, force: bool) -> Option<Snapshot> {
        let mut changed = force;
        let mut diagnostics = Vec::new();
        let mut paths = Vec::new();
        if let Err(e) = collect_yaml_files(&self.dir, &mut paths) {
            diagnostics.push(Diagnostic {
                source: self.dir.display().to_string(),
                object: None,
                message: format!("cannot read config directory: {e}"),
            });
        }
        paths.sort();
        let present: std::collections::HashSet<&PathBuf> = paths.iter().collect();
        let before = self.files.len();
        self.files.retain(|p, _| present.contains(p));
        changed |= self.files.len() != before || !diagnostics.is_empty();

        for path in &paths {
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    changed = true;
                    // Vanished between listing and reading, or unreadable: keep what it had.
                    diagnostics.push(Diagnostic {
                        source: path.display().to_string(),
                        object: None,
                        message: format!("cannot read file: {e}"),
                    });
                    continue;
                }
            };
            let known = self.files.contains_key(path);
            let state = self.files.entry(path.clone()).or_default();
            if !known || state.bytes != bytes {
                changed = true;
                parse_file(path, &bytes, state);
                state.bytes = bytes;
            }
        }
        if !changed {
            return None;
        }
        let mut objects = Vec::new();
        for state in paths.iter().filter_map(|p| self.files.get(p)) {
            if let Some(e) = &state.error {
                diagnostics.push(e.clone());
            }
            objects.extend(state.objects.iter().map(StoredObject::object));
        }
        let objects = self.generations.stamp(objects, &mut diagnostics);
        Some(Snapshot {
            objects,
            diagnostics,
        })
    }
}

fn parse_file(path: &Path, bytes: &[u8], state: &mut FileState) {
    let source = path.display().to_string();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            state.error = Some(Diagnostic {
                source,
                object: None,
                message: format!("file is not UTF-8 ({e}); keeping its last good objects"),
            });
            return;
        }
    };
    match trellis_model::parse_yaml_documents(text) {
        Ok(docs) => {
            state.error = None;
            state.objects = docs
                .into_iter()
                .enumerate()
                .filter(|(_, v)| !v.is_null())
                .map(|(i, value)| StoredObject::new(format!("{source}#{i}"), &value))
                .collect();
        }
        Err(message) => {
            let kept = if state.objects.is_empty() {
                String::new()
            } else {
                format!("; keeping its last good {} object(s)", state.objects.len())
            };
            state.error = Some(Diagnostic {
                source,
                object: None,
                message: format!("invalid YAML: {message}{kept}"),
            });
        }
    }
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Editors' temporary and hidden files are not configuration.
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let file_type = entry.file_type()?;
        if file_type.is_dir() || (file_type.is_symlink() && path.is_dir()) {
            collect_yaml_files(&path, out)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
    Ok(())
}
