//! Debug helper: translate YAML files (conformance placeholders replaced) and print the
//! statuses as JSON. `cargo run -p trellis-translate --example translate_files -- FILE...`

fn main() {
    let mut objects = Vec::new();
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path)
            .expect("readable file")
            .replace("{GATEWAY_CLASS_NAME}", "trellis")
            .replace(
                "{GATEWAY_CONTROLLER_NAME}",
                "trellis.dev/gateway-controller",
            )
            .replace("PLACEHOLDER_USABLE_ADDRS", "127.0.0.42")
            .replace("PLACEHOLDER_UNUSABLE_ADDRS", "192.0.2.1");
        let docs = trellis_model::parse_yaml_documents(&text).expect("valid YAML");
        for (i, value) in docs.into_iter().enumerate() {
            objects.push(trellis_model::SourcedObject {
                source: format!("{path}#{i}"),
                value,
            });
        }
    }
    let (set, diags) = trellis_model::ResourceSet::from_objects(objects);
    let t = trellis_translate::translate(&set, &trellis_translate::Options::default());
    let valid = t.ir.validate().map_err(|e| e.to_string());
    let out = serde_json::json!({"statuses": t.statuses, "diagnostics": diags, "ir": t.ir, "ir_valid": valid.is_ok()});
    println!("{}", serde_json::to_string(&out).expect("serializable"));
}
