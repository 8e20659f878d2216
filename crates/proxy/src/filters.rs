//! Filter logic that produces headers or whole answers: redirects (Location per Gateway API),
//! CORS (preflights answered locally, headers on normal responses) and hop-by-hop stripping.

use crate::routing::replace_prefix;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use trellis_ir as ir;

/// Inputs a redirect needs from the request.
pub(crate) struct RedirectInput<'a> {
    pub scheme: &'a str,
    /// Lower-cased, without port.
    pub host: &'a str,
    pub bind_port: u16,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Bytes of `path` consumed by the route's path match.
    pub matched: usize,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

pub(crate) fn redirect_location(rd: &ir::Redirect, req: &RedirectInput<'_>) -> String {
    let scheme = rd
        .scheme
        .as_deref()
        .unwrap_or(req.scheme)
        .to_ascii_lowercase();
    let host = rd.hostname.as_deref().unwrap_or(req.host);
    let port = match (rd.port, &rd.scheme) {
        (Some(p), _) => p,
        (None, Some(s)) => default_port(&s.to_ascii_lowercase()).unwrap_or(req.bind_port),
        (None, None) => req.bind_port,
    };
    let path = match &rd.path {
        None => req.path.to_string(),
        Some(ir::PathModifier::ReplaceFullPath(p)) => p.clone(),
        Some(ir::PathModifier::ReplacePrefixMatch(p)) => replace_prefix(req.path, req.matched, p),
    };
    let mut out = format!("{scheme}://{host}");
    if default_port(&scheme) != Some(port) {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(&path);
    if let Some(q) = req.query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `*`, exact, or `scheme://*.suffix` (one or more labels).
pub(crate) fn origin_allowed(cors: &ir::Cors, origin: &str) -> bool {
    cors.allow_origins.iter().any(|allowed| {
        if allowed == "*" || allowed.eq_ignore_ascii_case(origin) {
            return true;
        }
        match allowed.split_once('*') {
            Some((prefix, suffix)) => {
                origin.len() > prefix.len() + suffix.len()
                    && origin
                        .get(..prefix.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                    && origin
                        .get(origin.len() - suffix.len()..)
                        .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
            }
            None => false,
        }
    })
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Headers for an allowed preflight. `None` when the origin or method is not allowed.
pub(crate) fn preflight_headers(
    cors: &ir::Cors,
    origin: &str,
    method: &str,
    request_headers: Option<&str>,
) -> Option<HeaderMap> {
    if !origin_allowed(cors, origin) {
        return None;
    }
    let any_method = cors.allow_methods.iter().any(|m| m == "*");
    if !any_method
        && !cors
            .allow_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
    {
        return None;
    }
    let mut h = HeaderMap::new();
    set(&mut h, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    // Echoing the request keeps wildcards valid with credentials.
    let methods = if any_method {
        method.to_string()
    } else {
        cors.allow_methods.join(", ")
    };
    set(&mut h, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
    if cors.allow_headers.iter().any(|x| x == "*") {
        if let Some(req) = request_headers {
            set(&mut h, header::ACCESS_CONTROL_ALLOW_HEADERS, req);
        }
    } else if !cors.allow_headers.is_empty() {
        set(
            &mut h,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            &cors.allow_headers.join(", "),
        );
    }
    common(cors, &mut h);
    if let Some(age) = cors.max_age_seconds {
        set(&mut h, header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
    }
    Some(h)
}

/// Adds CORS headers to a normal response when `origin` is allowed.
pub(crate) fn response_headers(cors: &ir::Cors, origin: &str, headers: &mut HeaderMap) {
    if !origin_allowed(cors, origin) {
        return;
    }
    set(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    common(cors, headers);
}

fn common(cors: &ir::Cors, h: &mut HeaderMap) {
    if cors.allow_credentials {
        set(h, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
    }
    if !cors.expose_headers.is_empty() {
        set(
            h,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            &cors.expose_headers.join(", "),
        );
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Removes hop-by-hop headers (and those named by `Connection`). With `keep_upgrade` the
/// `Connection: upgrade` / `Upgrade` pair survives for WebSocket forwarding.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Constant names: a `&str` key is parsed again on every call (perf).
    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    const CONN: u8 = 1;
    const UPGRADE: u8 = 2;
    const TE: u8 = 4;
    const OTHER: u8 = 8;
    let bit = |n: &HeaderName| {
        if *n == header::CONNECTION {
            CONN
        } else if *n == header::UPGRADE {
            UPGRADE
        } else if *n == header::TE {
            TE
        } else if *n == header::TRAILER
            || *n == header::TRANSFER_ENCODING
            || *n == KEEP_ALIVE
            || *n == PROXY_CONNECTION
        {
            OTHER
        } else {
            0
        }
    };
    // One pass over the names; only headers present are then removed (a miss costs a hash
    // lookup, and responses usually carry `Connection: keep-alive` and nothing else).
    let present = headers.keys().fold(0, |acc, n| acc | bit(n));
    if present == 0 && !keep_upgrade {
        return;
    }
    if present & CONN != 0 {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // These two are removed below anyway.
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("upgrade"))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for n in listed {
            headers.remove(n);
        }
    }
    if present & OTHER != 0 {
        for n in [
            KEEP_ALIVE,
            PROXY_CONNECTION,
            header::TRAILER,
            header::TRANSFER_ENCODING,
        ] {
            headers.remove(n);
        }
    }
    // `te: trailers` is the one TE value HTTP/2 (gRPC) needs.
    if present & TE != 0 && headers.get(header::TE).is_some_and(|v| v != "trailers") {
        headers.remove(header::TE);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        if present & CONN != 0 {
            headers.remove(header::CONNECTION);
        }
        if present & UPGRADE != 0 {
            headers.remove(header::UPGRADE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &str) -> RedirectInput<'_> {
        RedirectInput {
            scheme: "http",
            host: "gw.example",
            bind_port: 80,
            path,
            query: Some("a=b"),
            matched: 0,
        }
    }

    fn rd() -> ir::Redirect {
        ir::Redirect {
            scheme: None,
            hostname: None,
            port: None,
            path: None,
            status_code: 302,
        }
    }

    #[test]
    fn redirect_ports_follow_gateway_api() {
        assert_eq!(
            redirect_location(&rd(), &input("/p")),
            "http://gw.example/p?a=b"
        );
        let r = ir::Redirect {
            scheme: Some("https".into()),
            ..rd()
        };
        assert_eq!(
            redirect_location(&r, &input("/p")),
            "https://gw.example/p?a=b"
        );
        let r = ir::Redirect {
            port: Some(8083),
            hostname: Some("example.org".into()),
            ..rd()
        };
        assert_eq!(
            redirect_location(&r, &input("/p")),
            "http://example.org:8083/p?a=b"
        );
        let r = ir::Redirect {
            port: Some(443),
            scheme: Some("https".into()),
            ..rd()
        };
        assert_eq!(
            redirect_location(&r, &input("/")),
            "https://gw.example/?a=b"
        );
        let mut i = input("/x");
        i.bind_port = 8080;
        assert_eq!(redirect_location(&rd(), &i), "http://gw.example:8080/x?a=b");
        let r = ir::Redirect {
            scheme: Some("http".into()),
            ..rd()
        };
        assert_eq!(redirect_location(&r, &i), "http://gw.example/x?a=b");
    }

    #[test]
    fn redirect_prefix_replacement() {
        let r = ir::Redirect {
            path: Some(ir::PathModifier::ReplacePrefixMatch(
                "/replacement-prefix".into(),
            )),
            ..rd()
        };
        let mut i = input("/original-prefix/lemon");
        i.matched = "/original-prefix".len();
        i.query = None;
        assert_eq!(
            redirect_location(&r, &i),
            "http://gw.example/replacement-prefix/lemon"
        );
    }

    #[test]
    fn cors_origins() {
        let c = ir::Cors {
            allow_origins: vec!["https://www.foo.com".into(), "https://*.bar.com".into()],
            ..Default::default()
        };
        assert!(origin_allowed(&c, "https://www.foo.com"));
        assert!(origin_allowed(&c, "https://www.bar.com"));
        assert!(origin_allowed(&c, "https://xpto.www.bar.com"));
        assert!(!origin_allowed(&c, "https://foobar.com"));
        assert!(!origin_allowed(&c, "https://.bar.com"));
        assert!(!origin_allowed(&c, "http://www.bar.com"));
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("close, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));

        // Listed names go even when nothing else hop-by-hop is present.
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade, x-a"),
        );
        h.append("connection", HeaderValue::from_static("x-b"));
        h.insert("x-a", HeaderValue::from_static("1"));
        h.insert("x-b", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["te", "x-kept"]);

        // Upgrade forwarding keeps the pair and drops the rest.
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade, x-a"));
        h.insert("x-a", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("te", HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("connection").unwrap(), "upgrade");
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.len(), 2);
    }
}
