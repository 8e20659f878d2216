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
    let ir = trellis_ir::redacted_json(&translation.ir);
    let view = View {
        statuses: &translation.statuses,
        ir,
    };
    serde_saphyr::to_string(&view).unwrap_or_else(|e| format!("# render error: {e}\n"))
}
