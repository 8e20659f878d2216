//! HTTPRoute rules → IR routes (one per match), with backends, filters, timeouts and retry.

use crate::backends::{self, Clusters, RefError};
use crate::duration::parse_ms;
use crate::filters::{self, Converted, Ctx, Problems};
use crate::grpcroute::RouteKind;
use crate::precedence::SortKey;
use trellis_ir as ir;
use trellis_model::{HttpRoute, HttpRouteMatch, HttpRouteRule, HttpValueMatch, ResourceSet};

/// The IR routes of one HTTPRoute (not yet placed in virtual hosts) and what went wrong.
#[derive(Debug, Default)]
pub struct RouteRules {
    pub routes: Vec<(SortKey, ir::Route)>,
    /// First unresolved reference (ResolvedRefs=False).
    pub ref_error: Option<RefError>,
    /// Messages about invalid rules (they answer 500).
    pub invalid: Vec<String>,
    pub invalid_rules: usize,
    pub rule_count: usize,
}

/// Translates every rule of a route; clusters it references are added to `clusters`.
pub fn translate(
    resources: &ResourceSet,
    route: &HttpRoute,
    route_kind: RouteKind,
    clusters: &mut Clusters,
) -> RouteRules {
    let ns = route.metadata.namespace();
    let name = &route.metadata.name;
    let created = route
        .metadata
        .creation_timestamp
        .clone()
        .unwrap_or_default();
    let mut out = RouteRules {
        rule_count: route.spec.rules.len(),
        ..Default::default()
    };
    for (ri, rule) in route.spec.rules.iter().enumerate() {
        let mut problems = Problems::default();
        let matches = matches(rule, &mut problems);
        let prefix_matches_only = matches
            .iter()
            .all(|m| matches!(m.path, ir::PathMatch::Prefix(_)));
        let ctx = Ctx {
            resources,
            route_ns: ns,
            route_kind,
            prefix_matches_only,
        };
        let (action, filters, timeouts, retry) = rule_body(&ctx, rule, clusters, &mut problems);
        if out.ref_error.is_none() {
            out.ref_error = problems.refs.first().cloned();
        }
        let invalid = !problems.invalid.is_empty();
        if invalid {
            out.invalid_rules += 1;
            out.invalid
                .extend(problems.invalid.iter().map(|m| format!("rule {ri}: {m}")));
        }
        for (mi, m) in matches.into_iter().enumerate() {
            let mut route_name = match route_kind {
                // Distinct from an HTTPRoute of the same name.
                RouteKind::Grpc => format!("grpc:{ns}/{name}/{ri}/{mi}"),
                _ => format!("{ns}/{name}/{ri}/{mi}"),
            };
            if let Some(rule_name) = &rule.name {
                route_name = format!("{route_name}/{rule_name}");
            }
            let grpc = (route_kind == RouteKind::Grpc)
                .then(|| resources.grpc_route(ns, name))
                .flatten()
                .map(|g| crate::grpcroute::match_chars(g, ri, mi));
            let key = SortKey::with_grpc(&m, grpc, &created, ns, name, (ri, mi));
            let ir_route = if invalid {
                ir::Route {
                    name: route_name,
                    matches: m,
                    filters: Vec::new(),
                    action: ir::Action::DirectResponse { status: 500 },
                    timeouts: ir::Timeouts::default(),
                    retry: None,
                }
            } else {
                ir::Route {
                    name: route_name,
                    matches: m,
                    filters: filters.clone(),
                    action: action.clone(),
                    timeouts,
                    retry: retry.clone(),
                }
            };
            out.routes.push((key, ir_route));
        }
    }
    out
}

/// Matches of a rule (default: PathPrefix `/`). A match that cannot be expressed (bad regex,
/// relative path) is dropped and makes the rule invalid.
fn matches(rule: &HttpRouteRule, problems: &mut Problems) -> Vec<ir::RouteMatch> {
    let Some(list) = &rule.matches else {
        return vec![ir::RouteMatch::default()];
    };
    if list.is_empty() {
        return vec![ir::RouteMatch::default()];
    }
    list.iter()
        .filter_map(|m| convert_match(m).map_err(|e| problems.invalid.push(e)).ok())
        .collect()
}

fn check_regex(v: &str) -> Result<(), String> {
    regex::Regex::new(v)
        .map(|_| ())
        .map_err(|e| format!("invalid regular expression {v:?}: {e}"))
}

fn convert_match(m: &HttpRouteMatch) -> Result<ir::RouteMatch, String> {
    let path = match &m.path {
        None => ir::PathMatch::default(),
        Some(p) => {
            let value = p.value.clone().unwrap_or_else(|| "/".into());
            match p.type_.as_deref().unwrap_or("PathPrefix") {
                "Exact" | "PathPrefix" if !value.starts_with('/') => {
                    return Err(format!("path {value:?} must start with /"));
                }
                "Exact" => ir::PathMatch::Exact(value),
                "PathPrefix" => {
                    // Matching is element-wise, so a trailing slash changes nothing.
                    let trimmed = value.trim_end_matches('/');
                    ir::PathMatch::Prefix(if trimmed.is_empty() {
                        "/".into()
                    } else {
                        trimmed.into()
                    })
                }
                "RegularExpression" => {
                    check_regex(&value)?;
                    ir::PathMatch::RegularExpression(value)
                }
                t => return Err(format!("path match type {t:?} is not supported")),
            }
        }
    };
    let values = |list: &[HttpValueMatch], lower: bool| -> Result<Vec<ir::ValueMatch>, String> {
        let mut out: Vec<ir::ValueMatch> = Vec::new();
        for v in list {
            let name = if lower {
                v.name.to_ascii_lowercase()
            } else {
                v.name.clone()
            };
            if lower && !crate::tokens::is_token(&name) {
                return Err(format!(
                    "header name {name:?} is not a valid HTTP header name"
                ));
            }
            // Repeated names: the first entry counts (Gateway API).
            if out.iter().any(|o| o.name == name) {
                continue;
            }
            let kind = match v.type_.as_deref().unwrap_or("Exact") {
                "Exact" => ir::ValueMatchKind::Exact,
                "RegularExpression" => {
                    check_regex(&v.value)?;
                    ir::ValueMatchKind::RegularExpression
                }
                t => return Err(format!("match type {t:?} is not supported")),
            };
            out.push(ir::ValueMatch {
                name,
                kind,
                value: v.value.clone(),
            });
        }
        Ok(out)
    };
    Ok(ir::RouteMatch {
        path,
        method: match &m.method {
            Some(method) if !crate::tokens::is_token(method) => {
                return Err(format!("method {method:?} is not a valid HTTP method"))
            }
            other => other.clone(),
        },
        headers: values(&m.headers, true)?,
        query_params: values(&m.query_params, false)?,
    })
}

type Body = (ir::Action, Vec<ir::Filter>, ir::Timeouts, Option<ir::Retry>);

fn rule_body(
    ctx: &Ctx,
    rule: &HttpRouteRule,
    clusters: &mut Clusters,
    problems: &mut Problems,
) -> Body {
    let mut redirect = None;
    let mut rule_filters = Vec::new();
    let mut has_rewrite = false;
    for f in &rule.filters {
        match filters::convert(ctx, f, clusters, problems) {
            Some(Converted::Redirect(r)) => redirect = Some(r),
            Some(Converted::Filter(f)) => {
                has_rewrite |= matches!(f, ir::Filter::UrlRewrite(_));
                rule_filters.push(f);
            }
            None => {}
        }
    }
    if redirect.is_some() && has_rewrite {
        problems
            .invalid
            .push("RequestRedirect and URLRewrite cannot be combined".into());
    }
    let mut weighted = Vec::new();
    for b in &rule.backend_refs {
        let weight = u32::try_from(b.weight.unwrap_or(1)).unwrap_or(0);
        let cluster = match backends::resolve(ctx, &b.backend, clusters) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.refs.push(e);
                None
            }
        };
        let mut backend_filters = Vec::new();
        for f in &b.filters {
            match filters::convert(ctx, f, clusters, problems) {
                Some(Converted::Filter(f)) => backend_filters.push(f),
                Some(Converted::Redirect(_)) => problems
                    .invalid
                    .push("RequestRedirect is not allowed on a backendRef".into()),
                None => {}
            }
        }
        weighted.push(ir::WeightedBackend {
            weight,
            cluster,
            filters: backend_filters,
        });
    }
    let action = match redirect {
        Some(r) => ir::Action::Redirect(r),
        None => ir::Action::Forward(weighted),
    };
    let mut timeouts = ir::Timeouts::default();
    if let Some(t) = &rule.timeouts {
        let mut parse = |v: &Option<String>| -> Option<u64> {
            let ms = parse_ms(v.as_deref()?)
                .map_err(|e| problems.invalid.push(e))
                .ok()?;
            // Zero disables the timeout.
            (ms > 0).then_some(ms)
        };
        timeouts.request_ms = parse(&t.request);
        timeouts.backend_request_ms = parse(&t.backend_request);
        if let (Some(r), Some(b)) = (timeouts.request_ms, timeouts.backend_request_ms) {
            if b > r {
                problems
                    .invalid
                    .push("backendRequest timeout must not exceed request timeout".into());
            }
        }
    }
    let retry = rule.retry.as_ref().and_then(|r| {
        let codes: Result<Vec<u16>, String> = r
            .codes
            .iter()
            .map(|c| {
                u16::try_from(*c)
                    .ok()
                    .filter(|c| (400..=599).contains(c))
                    .ok_or(format!("retry code {c}"))
            })
            .collect();
        let codes = codes
            .map_err(|e| {
                problems
                    .invalid
                    .push(format!("{e} is not between 400 and 599"))
            })
            .ok()?;
        let backoff_ms = match &r.backoff {
            Some(b) => Some(parse_ms(b).map_err(|e| problems.invalid.push(e)).ok()?),
            None => None,
        };
        let attempts = u32::try_from(r.attempts.unwrap_or(1)).unwrap_or(0);
        Some(ir::Retry {
            attempts,
            codes,
            backoff_ms,
        })
    });
    (action, rule_filters, timeouts, retry)
}
