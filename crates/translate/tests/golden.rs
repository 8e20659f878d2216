//! Golden tests: `tests/golden/NAME.in.yaml` → `NAME.out.yaml` (render_yaml output).
//! `TRELLIS_UPDATE_GOLDEN=1 cargo test -p trellis-translate` rewrites the outputs.

use std::path::Path;
use trellis_model::{parse_yaml_documents, ResourceSet, SourcedObject};
use trellis_translate::{render_yaml, translate, Options};

fn render(input: &Path) -> String {
    let text = std::fs::read_to_string(input).unwrap();
    let docs = parse_yaml_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    let objects = docs
        .into_iter()
        .enumerate()
        .map(|(i, value)| SourcedObject {
            source: format!("{}#{i}", input.display()),
            value,
        })
        .collect();
    let (set, diags) = ResourceSet::from_objects(objects);
    let translation = translate(&set, &Options::default());
    translation
        .ir
        .validate()
        .unwrap_or_else(|e| panic!("{}: invalid IR: {e}", input.display()));
    let mut out = String::new();
    for d in diags {
        out.push_str(&format!("# diagnostic: {:?} {}\n", d.object, d.message));
    }
    out.push_str(&render_yaml(&translation));
    out
}

/// First differing line, with context, for a readable failure.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let i = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let lo = i.saturating_sub(3);
    let show = |v: &[&str]| v[lo.min(v.len())..(i + 4).min(v.len())].join("\n");
    format!(
        "first difference at line {}:\n--- expected\n{}\n--- actual\n{}",
        i + 1,
        show(&e),
        show(&a)
    )
}

#[test]
fn golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("TRELLIS_UPDATE_GOLDEN").is_some();
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty());
    let mut failures = Vec::new();
    for input in inputs {
        let output = input.to_string_lossy().replace(".in.yaml", ".out.yaml");
        let actual = render(&input);
        // Rendering twice gives the same text (determinism).
        assert_eq!(actual, render(&input), "{}", input.display());
        if update {
            std::fs::write(&output, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&output).unwrap_or_default();
        if expected != actual {
            failures.push(format!("{}: {}", input.display(), diff(&expected, &actual)));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (rerun with TRELLIS_UPDATE_GOLDEN=1 to accept):\n{}",
        failures.join("\n\n")
    );
}
