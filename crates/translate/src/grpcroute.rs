//! GRPCRoute → the HTTPRoute shape the rest of the translator already handles. A gRPC call is
//! an HTTP/2 POST to `/<service>/<method>`, so a method match becomes a path match:
//! service and method → Exact `/<service>/<method>`; service only → PathPrefix `/<service>/`;
//! method only → RegularExpression `/[^/]+/<method>`; type RegularExpression → one path regex.
//! Header matches, header modifiers and mirrors have HTTPRoute's shape already.

use trellis_model::{
    GrpcMethodMatch, GrpcRoute, GrpcRouteFilter, GrpcRouteMatch, HttpBackendRef, HttpPathMatch,
    HttpRoute, HttpRouteFilter, HttpRouteMatch, HttpRouteRule, HttpRouteSpec,
};

/// Which route kind an IR route comes from: it decides the status kind, the ReferenceGrant
/// `from` kind, the listeners it may attach to and the upstream protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    Http,
    Grpc,
    Tls,
    Tcp,
    Udp,
}

impl RouteKind {
    pub fn name(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
            RouteKind::Tls => "TLSRoute",
            RouteKind::Tcp => "TCPRoute",
            RouteKind::Udp => "UDPRoute",
        }
    }

    /// TCPRoute, UDPRoute and TLSRoute: forwarded as bytes, not requests.
    pub fn is_l4(self) -> bool {
        matches!(self, RouteKind::Tls | RouteKind::Tcp | RouteKind::Udp)
    }
}

/// The HTTPRoute equivalent of a GRPCRoute (same metadata, parents and hostnames).
pub fn to_http(route: &GrpcRoute) -> HttpRoute {
    let rules = route
        .spec
        .rules
        .iter()
        .map(|r| HttpRouteRule {
            name: r.name.clone(),
            // No matches: every request (HTTPRoute's default PathPrefix `/`).
            matches: (!r.matches.is_empty()).then(|| r.matches.iter().map(to_http_match).collect()),
            filters: r.filters.iter().map(to_http_filter).collect(),
            backend_refs: r
                .backend_refs
                .iter()
                .map(|b| HttpBackendRef {
                    backend: b.backend.clone(),
                    weight: b.weight,
                    filters: b.filters.iter().map(to_http_filter).collect(),
                })
                .collect(),
            timeouts: None,
            retry: None,
            session_persistence: r.session_persistence.clone(),
        })
        .collect();
    HttpRoute {
        api_version: route.api_version.clone(),
        kind: route.kind.clone(),
        metadata: route.metadata.clone(),
        spec: HttpRouteSpec {
            parent_refs: route.spec.parent_refs.clone(),
            hostnames: route.spec.hostnames.clone(),
            rules,
        },
    }
}

fn to_http_match(m: &GrpcRouteMatch) -> HttpRouteMatch {
    HttpRouteMatch {
        path: m.method.as_ref().map(method_path),
        headers: m.headers.clone(),
        query_params: Vec::new(),
        method: None,
    }
}

/// GRPCRoute precedence of the `mi`-th match of rule `ri` of `route`: characters in the
/// service, then in the method (pattern length for RegularExpression).
pub fn match_chars(route: &GrpcRoute, ri: usize, mi: usize) -> (usize, usize) {
    let m = route
        .spec
        .rules
        .get(ri)
        .and_then(|r| r.matches.get(mi))
        .and_then(|m| m.method.as_ref());
    let len = |s: &Option<String>| s.as_deref().map_or(0, str::len);
    m.map_or((0, 0), |m| (len(&m.service), len(&m.method)))
}

/// The path match of a gRPC method match.
pub fn method_path(m: &GrpcMethodMatch) -> HttpPathMatch {
    let service = m.service.as_deref().filter(|s| !s.is_empty());
    let method = m.method.as_deref().filter(|s| !s.is_empty());
    let (type_, value) = match m.type_.as_deref().unwrap_or("Exact") {
        "Exact" => match (service, method) {
            (Some(s), Some(me)) => ("Exact", format!("/{s}/{me}")),
            (Some(s), None) => ("PathPrefix", format!("/{s}/")),
            (None, Some(me)) => ("RegularExpression", format!("/[^/]+/{}", regex::escape(me))),
            (None, None) => ("PathPrefix", "/".to_string()),
        },
        "RegularExpression" => (
            "RegularExpression",
            format!(
                "/(?:{})/(?:{})",
                service.unwrap_or("[^/]+"),
                method.unwrap_or("[^/]+")
            ),
        ),
        // Left to the rule translation, which reports the unsupported type.
        other => (other, "/".to_string()),
    };
    HttpPathMatch {
        type_: Some(type_.to_string()),
        value: Some(value),
    }
}

fn to_http_filter(f: &GrpcRouteFilter) -> HttpRouteFilter {
    HttpRouteFilter {
        type_: f.type_.clone(),
        request_header_modifier: f.request_header_modifier.clone(),
        response_header_modifier: f.response_header_modifier.clone(),
        request_mirror: f.request_mirror.clone(),
        extension_ref: f.extension_ref.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(type_: Option<&str>, service: Option<&str>, method: Option<&str>) -> (String, String) {
        let p = method_path(&GrpcMethodMatch {
            type_: type_.map(String::from),
            service: service.map(String::from),
            method: method.map(String::from),
        });
        (p.type_.unwrap(), p.value.unwrap())
    }

    #[test]
    fn method_matches_become_path_matches() {
        assert_eq!(
            path(None, Some("pkg.Svc"), Some("Get")),
            ("Exact".into(), "/pkg.Svc/Get".into())
        );
        assert_eq!(
            path(Some("Exact"), Some("pkg.Svc"), None),
            ("PathPrefix".into(), "/pkg.Svc/".into())
        );
        assert_eq!(
            path(None, None, Some("Get")),
            ("RegularExpression".into(), "/[^/]+/Get".into())
        );
        assert_eq!(
            path(Some("RegularExpression"), Some(r"pkg\..*"), None),
            ("RegularExpression".into(), r"/(?:pkg\..*)/(?:[^/]+)".into())
        );
        assert_eq!(
            path(Some("RegularExpression"), None, Some("Get|Put")),
            ("RegularExpression".into(), "/(?:[^/]+)/(?:Get|Put)".into())
        );
    }

    #[test]
    fn method_only_regex_is_anchored_per_segment() {
        let (_, v) = path(None, None, Some("Echo"));
        let re = regex::Regex::new(&format!("^{v}$")).unwrap();
        assert!(re.is_match("/a.B/Echo"));
        assert!(!re.is_match("/a.B/EchoTwo"));
        assert!(!re.is_match("/a/b/Echo"));
    }

    #[test]
    fn rules_without_matches_match_everything() {
        let route: GrpcRoute = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": {"rules": [{"backendRefs": [{"name": "s", "port": 8080, "weight": 3}]},
                               {"matches": [{"headers": [{"name": "v", "value": "1"}]}]}]}
        }))
        .unwrap();
        let http = to_http(&route);
        assert_eq!(http.spec.rules[0].matches, None);
        assert_eq!(http.spec.rules[0].backend_refs[0].weight, Some(3));
        let m = &http.spec.rules[1].matches.as_ref().unwrap()[0];
        assert_eq!(m.path, None);
        assert_eq!(m.headers[0].name, "v");
    }
}
