//! Loading a suite folder: `base.yaml` plus `tests/*/cases.json` (+ `manifests.yaml`).
//! The schema is lenient on purpose (unknown fields are ignored, most fields default) so
//! unseen suites of the same layout load; semantic checks happen when a test runs.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// A whole suite: the shared base manifests and every test, sorted by directory name.
#[derive(Debug, Clone)]
pub struct Suite {
    pub root: PathBuf,
    pub base_yaml: String,
    pub tests: Vec<TestDef>,
}

/// One `tests/<dir>/cases.json` with its manifests text.
#[derive(Debug, Clone, Deserialize)]
pub struct TestDef {
    pub name: String,
    /// Filled from the directory name when the file lacks it.
    #[serde(default)]
    pub dir: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub provisional: bool,
    #[serde(default)]
    pub profiles: Vec<String>,
    #[serde(default)]
    pub gateway: Option<GatewayRef>,
    #[serde(default)]
    pub status_expectations: Vec<Value>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub checks: Option<Value>,
    #[serde(default)]
    pub cases: Vec<Case>,
    #[serde(default)]
    pub skip_if_supported: Vec<String>,
    #[serde(default)]
    pub skip_unless_supported: Vec<String>,
    /// `tests/<dir>/manifests.yaml`, empty when absent.
    #[serde(skip)]
    pub manifests: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GatewayRef {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub port: Option<u16>,
}

fn default_namespace() -> String {
    "default".to_string()
}

/// Object reference used by steps and checks (`namespace` absent for cluster-scoped kinds).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    pub action: String,
    #[serde(default)]
    pub target: Option<ObjectRef>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub change: Option<String>,
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub then: Vec<Value>,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub delay_before_s: Option<f64>,
    #[serde(default)]
    pub subtest: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub subtest: Option<String>,
    #[serde(default)]
    pub gateway: Option<GatewayRef>,
    #[serde(default)]
    pub request: Value,
    #[serde(default)]
    pub response: Value,
    #[serde(default)]
    pub mirrored_to: Vec<MirrorTarget>,
    #[serde(default)]
    pub distribution: Option<Value>,
    #[serde(default)]
    pub backend_set_response_headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub actions_before: Vec<Step>,
    #[serde(default)]
    pub exchange: Vec<Value>,
    #[serde(default)]
    pub repeat: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MirrorTarget {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub percent: Option<f64>,
}

fn read(path: &Path) -> Result<String, SuiteError> {
    std::fs::read_to_string(path).map_err(|source| SuiteError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses one `cases.json` text (the manifests are attached separately).
pub fn parse_test(text: &str, dir: &str) -> Result<TestDef, serde_json::Error> {
    let mut t: TestDef = serde_json::from_str(text)?;
    if t.dir.is_empty() {
        t.dir = dir.to_string();
    }
    Ok(t)
}

impl Suite {
    /// Loads every `tests/*/cases.json` under `root` (index.json is not needed).
    pub fn load(root: &Path) -> Result<Suite, SuiteError> {
        let base_yaml = read(&root.join("base.yaml"))?;
        let tests_dir = root.join("tests");
        let entries = std::fs::read_dir(&tests_dir).map_err(|source| SuiteError::Io {
            path: tests_dir.clone(),
            source,
        })?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("cases.json").is_file())
            .collect();
        dirs.sort();
        let mut tests = Vec::new();
        for dir in dirs {
            let cases_path = dir.join("cases.json");
            let dir_name = dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut t =
                parse_test(&read(&cases_path)?, &dir_name).map_err(|source| SuiteError::Json {
                    path: cases_path.clone(),
                    source,
                })?;
            let mpath = dir.join("manifests.yaml");
            if mpath.is_file() {
                t.manifests = read(&mpath)?;
            }
            // The directory we found it in wins over the file's `dir` field for --only.
            t.dir = dir_name;
            tests.push(t);
        }
        Ok(Suite {
            root: root.to_path_buf(),
            base_yaml,
            tests,
        })
    }

    /// Finds a test by upstream name or directory name (case-insensitive).
    pub fn find(&self, name: &str) -> Option<&TestDef> {
        let name = name.trim_start_matches("tests/").trim_end_matches('/');
        self.tests
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name) || t.dir.eq_ignore_ascii_case(name))
    }
}

/// The default suite: the vendored copy next to this crate.
pub fn default_suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("suite")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendored_cases_json_parses() {
        let suite = Suite::load(&default_suite_dir()).expect("vendored suite loads");
        assert!(suite.tests.len() >= 100, "found {}", suite.tests.len());
        for t in &suite.tests {
            assert!(!t.name.is_empty(), "{} has no name", t.dir);
            assert!(!t.features.is_empty(), "{} has no features", t.dir);
            for c in &t.cases {
                assert!(!c.kind.is_empty(), "{}: case {} has no kind", t.dir, c.name);
            }
        }
        let names: std::collections::BTreeSet<_> = suite.tests.iter().map(|t| &t.name).collect();
        assert_eq!(names.len(), suite.tests.len(), "test names are unique");
    }

    #[test]
    fn every_http_case_has_a_typed_request_and_response() {
        let suite = Suite::load(&default_suite_dir()).unwrap();
        let mut n = 0;
        for t in &suite.tests {
            for c in t.cases.iter().filter(|c| c.kind == "http") {
                crate::cases::HttpRequestSpec::from_value(&c.request)
                    .unwrap_or_else(|e| panic!("{} / {}: request: {e}", t.dir, c.name));
                crate::cases::HttpExpect::from_value(&c.response)
                    .unwrap_or_else(|e| panic!("{} / {}: response: {e}", t.dir, c.name));
                n += 1;
            }
        }
        assert!(n > 250, "only {n} http cases");
    }

    #[test]
    fn find_by_name_or_dir() {
        let suite = Suite::load(&default_suite_dir()).unwrap();
        let a = suite.find("HTTPRouteSimpleSameNamespace").unwrap();
        let b = suite.find("httproute-simple-same-namespace").unwrap();
        assert_eq!(a.dir, b.dir);
        assert!(suite.find("no-such-test").is_none());
    }
}
