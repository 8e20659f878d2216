//! Every conformance manifest types without diagnostics other than the expected ones
//! (Deployments and unsupported kinds). Skipped when the data is not on this machine.

use trellis_model::{parse_yaml_documents, ResourceSet, SourcedObject};

const DATA: &str = "/work/shared/conformance";

#[test]
fn conformance_manifests_type_cleanly() {
    let Ok(dirs) = std::fs::read_dir(format!("{DATA}/tests")) else {
        eprintln!("conformance data not found; skipped");
        return;
    };
    let mut files = vec![std::path::PathBuf::from(format!("{DATA}/base.yaml"))];
    files.extend(dirs.flatten().map(|d| d.path().join("manifests.yaml")));
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let docs =
            parse_yaml_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let objects = docs
            .into_iter()
            .enumerate()
            .map(|(i, value)| SourcedObject {
                source: format!("{}#{i}", file.display()),
                value,
            })
            .collect();
        let (_, diags) = ResourceSet::from_objects(objects);
        for d in diags {
            assert!(
                d.message.contains("Deployment") || d.message.contains("not supported"),
                "{d:?}"
            );
        }
        checked += 1;
    }
    assert!(checked > 50);
}
