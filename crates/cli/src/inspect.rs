//! `trellis validate` and `trellis translate`: the whole pipeline on files, without serving.

use crate::ConfigArgs;
use std::process::ExitCode;
use trellis_app::admin::{false_conditions, parent_label};
use trellis_app::{load_once, AppOptions};
use trellis_translate::ObjectStatus;

fn load(
    args: &ConfigArgs,
) -> (
    trellis_translate::Translation,
    Vec<trellis_model::Diagnostic>,
) {
    let mut options = AppOptions::new(&args.config);
    options.translate = crate::translate_options(args.address_pool);
    load_once(&options)
}

/// Prints each object's conditions as `kubectl describe` would, then one line per problem.
pub fn validate(args: &ConfigArgs) -> ExitCode {
    let (translation, diagnostics) = load(args);
    for status in &translation.statuses {
        print!("{}", describe(status));
    }
    let mut problems: Vec<String> = translation
        .statuses
        .iter()
        .flat_map(false_conditions)
        .collect();
    let mut warnings = Vec::new();
    for d in &diagnostics {
        let object = d
            .object
            .as_deref()
            .map(|o| format!(" {o}:"))
            .unwrap_or_default();
        let line = format!("{}:{object} {}", d.source, d.message);
        // Kinds Trellis does not handle are ignored by design, not errors.
        if d.message.starts_with("unknown kind") {
            warnings.push(line);
        } else {
            problems.push(line);
        }
    }
    for w in &warnings {
        println!("WARN {w}");
    }
    for p in &problems {
        println!("FAIL {p}");
    }
    println!(
        "{} object(s), {} problem(s), {} warning(s)",
        translation.statuses.len(),
        problems.len(),
        warnings.len()
    );
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints statuses and IR in the golden-file format.
pub fn translate(args: &ConfigArgs) -> ExitCode {
    let (translation, diagnostics) = load(args);
    for d in &diagnostics {
        eprintln!("warning: {}: {}", d.source, d.message);
    }
    print!("{}", trellis_translate::render_yaml(&translation));
    ExitCode::SUCCESS
}

fn describe(status: &ObjectStatus) -> String {
    let name = match &status.namespace {
        Some(ns) => format!("{ns}/{}", status.name),
        None => status.name.clone(),
    };
    let mut out = format!(
        "{} {name} (generation {})\n",
        status.kind, status.generation
    );
    let table = |out: &mut String, indent: &str, conditions: &serde_json::Value| {
        for c in conditions.as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{indent}{:<14} {:<6} {:<28} {}\n",
                c["type"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            ));
        }
    };
    if let Some(addresses) = status.status["addresses"].as_array() {
        let list: Vec<&str> = addresses
            .iter()
            .filter_map(|a| a["value"].as_str())
            .collect();
        out.push_str(&format!("  Addresses: {}\n", list.join(", ")));
    }
    table(&mut out, "  ", &status.status["conditions"]);
    for l in status.status["listeners"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  Listener {} (attached routes: {}):\n",
            l["name"].as_str().unwrap_or("?"),
            l["attachedRoutes"]
        ));
        table(&mut out, "    ", &l["conditions"]);
    }
    for p in status.status["parents"].as_array().into_iter().flatten() {
        out.push_str(&format!("  Parent {}:\n", parent_label(&p["parentRef"])));
        table(&mut out, "    ", &p["conditions"]);
    }
    for a in status.status["ancestors"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  Ancestor {}:\n",
            parent_label(&a["ancestorRef"])
        ));
        table(&mut out, "    ", &a["conditions"]);
    }
    out
}
