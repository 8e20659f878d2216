//! Deterministic YAML rendering of a [`Translation`] (golden files, `trellis translate`).

use crate::Translation;
use serde::Serialize;

#[derive(Serialize)]
struct View<'a> {
    statuses: &'a [crate::ObjectStatus],
    ir: serde_json::Value,
}

/// Statuses and IR side by side. Private keys are replaced by `<redacted>`.
pub fn render_yaml(translation: &Translation) -> String {
    let mut ir = serde_json::to_value(&translation.ir).unwrap_or(serde_json::Value::Null);
    redact(&mut ir);
    let view = View {
        statuses: &translation.statuses,
        ir,
    };
    serde_saphyr::to_string(&view).unwrap_or_else(|e| format!("# render error: {e}\n"))
}

fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k == "key_pem" {
                    *val = serde_json::Value::String("<redacted>".into());
                } else {
                    redact(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}
