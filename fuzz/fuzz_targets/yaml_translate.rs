//! YAML text → documents → `ResourceSet` → `translate` → proxy compilation.
//! Must never panic, and whatever the translator emits must be an IR the proxy accepts
//! (user mistakes are statuses, never a refused configuration).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trellis_model::{parse_yaml_documents, ResourceSet, SourcedObject};
use trellis_translate::{render_yaml, translate, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = parse_yaml_documents(text) else {
        return;
    };
    let objects = docs
        .into_iter()
        .enumerate()
        .map(|(i, value)| SourcedObject {
            source: format!("fuzz.yaml#{i}"),
            value,
        })
        .collect();
    let (set, _diagnostics) = ResourceSet::from_objects(objects);
    let t = translate(&set, &Options::default());
    let _ = render_yaml(&t);
    if let Err(e) = t.ir.validate() {
        panic!("translator emitted an IR that fails validate(): {e}");
    }
    for bind in &t.ir.binds {
        if let Err(e) = trellis_proxy::RouteMatcher::new(bind) {
            panic!("translator emitted a bind the proxy cannot compile: {e}");
        }
    }
});
