//! HTTPRoute filters → IR filters (or a redirect action).

use crate::backends::{self, Clusters, RefError};
use trellis_ir as ir;
use trellis_model::{HttpHeaderFilter, HttpPathModifier, HttpRouteFilter, ResourceSet};

/// A converted filter: most become IR filters, RequestRedirect becomes the route's action.
pub enum Converted {
    Filter(ir::Filter),
    Redirect(ir::Redirect),
}

/// Problems found while converting, kept apart: an invalid value makes the rule answer 500, a
/// bad reference only sets ResolvedRefs=False.
#[derive(Default)]
pub struct Problems {
    pub invalid: Vec<String>,
    pub refs: Vec<RefError>,
}

pub struct Ctx<'a> {
    pub resources: &'a ResourceSet,
    pub route_ns: &'a str,
    pub route_kind: crate::grpcroute::RouteKind,
    /// Whether every match of the rule is a PathPrefix (ReplacePrefixMatch needs it).
    pub prefix_matches_only: bool,
}

/// Header modifier → IR; `None` (recorded in `problems`) when a name or value is not valid HTTP.
fn headers(h: &HttpHeaderFilter, problems: &mut Problems) -> Option<ir::HeaderModifier> {
    use crate::tokens::{is_header_value, is_token};
    let names = h.set.iter().chain(&h.add).map(|h| &h.name).chain(&h.remove);
    if let Some(bad) = names.into_iter().find(|n| !is_token(n)) {
        problems.invalid.push(format!(
            "header name {bad:?} is not a valid HTTP header name"
        ));
        return None;
    }
    if let Some(bad) = h
        .set
        .iter()
        .chain(&h.add)
        .find(|h| !is_header_value(&h.value))
    {
        problems.invalid.push(format!(
            "value of header {:?} is not a valid HTTP header value",
            bad.name
        ));
        return None;
    }
    let conv = |v: &[trellis_model::HttpHeader]| {
        v.iter()
            .map(|h| ir::Header {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect()
    };
    Some(ir::HeaderModifier {
        set: conv(&h.set),
        add: conv(&h.add),
        remove: h.remove.clone(),
    })
}

fn path_modifier(
    ctx: &Ctx,
    p: &HttpPathModifier,
    problems: &mut Problems,
) -> Option<ir::PathModifier> {
    match (
        p.type_.as_str(),
        &p.replace_full_path,
        &p.replace_prefix_match,
    ) {
        ("ReplaceFullPath", Some(v), _) => Some(ir::PathModifier::ReplaceFullPath(v.clone())),
        ("ReplacePrefixMatch", _, Some(v)) if ctx.prefix_matches_only => {
            Some(ir::PathModifier::ReplacePrefixMatch(v.clone()))
        }
        ("ReplacePrefixMatch", _, Some(_)) => {
            problems
                .invalid
                .push("ReplacePrefixMatch requires PathPrefix matches".into());
            None
        }
        (t, _, _) => {
            problems.invalid.push(format!(
                "path modifier {t:?} is missing its value or unsupported"
            ));
            None
        }
    }
}

/// Converts one filter; `None` when it is invalid (recorded in `problems`).
pub fn convert(
    ctx: &Ctx,
    f: &HttpRouteFilter,
    clusters: &mut Clusters,
    problems: &mut Problems,
) -> Option<Converted> {
    let missing = |problems: &mut Problems| {
        problems
            .invalid
            .push(format!("filter {} has no configuration", f.type_));
        None
    };
    match f.type_.as_str() {
        "RequestHeaderModifier" => match &f.request_header_modifier {
            Some(h) => headers(h, problems)
                .map(|h| Converted::Filter(ir::Filter::RequestHeaderModifier(h))),
            None => missing(problems),
        },
        "ResponseHeaderModifier" => match &f.response_header_modifier {
            Some(h) => headers(h, problems)
                .map(|h| Converted::Filter(ir::Filter::ResponseHeaderModifier(h))),
            None => missing(problems),
        },
        "URLRewrite" => {
            let Some(u) = &f.url_rewrite else {
                return missing(problems);
            };
            let path = match &u.path {
                Some(p) => Some(path_modifier(ctx, p, problems)?),
                None => None,
            };
            Some(Converted::Filter(ir::Filter::UrlRewrite(ir::UrlRewrite {
                hostname: u.hostname.clone(),
                path,
            })))
        }
        "RequestRedirect" => {
            let Some(r) = &f.request_redirect else {
                return missing(problems);
            };
            let status_code = r.status_code.unwrap_or(302);
            if ![301, 302, 303, 307, 308].contains(&status_code) {
                problems.invalid.push(format!(
                    "redirect statusCode {status_code} is not supported"
                ));
                return None;
            }
            if let Some(s) = r
                .scheme
                .as_deref()
                .filter(|s| !matches!(*s, "http" | "https"))
            {
                problems
                    .invalid
                    .push(format!("redirect scheme {s:?} is not supported"));
                return None;
            }
            let port = match r.port {
                None => None,
                Some(p) => match u16::try_from(p) {
                    Ok(p) if p > 0 => Some(p),
                    _ => {
                        problems
                            .invalid
                            .push(format!("redirect port {p} is out of range"));
                        return None;
                    }
                },
            };
            let path = match &r.path {
                Some(p) => Some(path_modifier(ctx, p, problems)?),
                None => None,
            };
            Some(Converted::Redirect(ir::Redirect {
                scheme: r.scheme.clone(),
                hostname: r.hostname.clone(),
                port,
                path,
                status_code: status_code as u16,
            }))
        }
        "RequestMirror" => {
            let Some(m) = &f.request_mirror else {
                return missing(problems);
            };
            let fraction = match (&m.fraction, m.percent) {
                (Some(fr), _) => {
                    let den = fr.denominator.unwrap_or(100);
                    if den <= 0 || fr.numerator < 0 || fr.numerator > den {
                        problems.invalid.push(
                            "mirror fraction must satisfy 0 <= numerator <= denominator".into(),
                        );
                        return None;
                    }
                    fr.numerator as f64 / den as f64
                }
                (None, Some(p)) => (p.clamp(0, 100) as f64) / 100.0,
                (None, None) => 1.0,
            };
            let cluster = match backends::resolve(ctx, &m.backend_ref, clusters) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.refs.push(e);
                    None
                }
            };
            Some(Converted::Filter(ir::Filter::RequestMirror(ir::Mirror {
                cluster,
                fraction,
            })))
        }
        "CORS" => {
            let Some(c) = &f.cors else {
                return missing(problems);
            };
            Some(Converted::Filter(ir::Filter::Cors(ir::Cors {
                allow_origins: c.allow_origins.clone(),
                allow_credentials: c.allow_credentials.unwrap_or(false),
                allow_methods: c.allow_methods.clone(),
                allow_headers: c.allow_headers.clone(),
                expose_headers: c.expose_headers.clone(),
                // The CRD defaults maxAge to 5 seconds.
                max_age_seconds: Some(u32::try_from(c.max_age.unwrap_or(5)).unwrap_or(0)),
            })))
        }
        other => {
            problems
                .invalid
                .push(format!("filter type {other:?} is not supported"));
            None
        }
    }
}
