//! Turns one IR [`Config`] into lookup tables, once per apply: per bind the listener list, per
//! listener an exact-host map, wildcard suffixes and a catch-all virtual host; regexes anchored.

use crate::path_index::PathIndex;
use crate::routing::{anchored, HostPattern, PathRule, ValueRule};
use crate::upstream::ClusterRt;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use trellis_ir as ir;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CompileError {
    #[error("route {route}: invalid regex {pattern:?}: {error}")]
    Regex {
        route: String,
        pattern: String,
        error: regex::Error,
    },
    #[error("route {route}: invalid header {what}")]
    Header { route: String, what: String },
    #[error("route {route}: invalid method {method}")]
    Method { route: String, method: String },
    #[error("route {route}: invalid status {status}")]
    Status { route: String, status: u16 },
    #[error("bind {bind}: TLS setup failed: {error}")]
    Tls { bind: String, error: rustls::Error },
}

/// Everything one bind needs to answer requests; swapped whole on apply.
pub(crate) struct BindTable {
    pub name: String,
    pub port: u16,
    pub https: bool,
    pub listeners: Vec<ListenerTable>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLSRoutes sharing this HTTPS socket; set by `Proxy::apply`.
    pub l4_tls: Option<Arc<crate::l4::SharedTls>>,
}

pub(crate) struct ListenerTable {
    pub name: String,
    pub hostname: HostPattern,
    exact: HashMap<String, usize>,
    /// `(suffix with leading dot, index)`, longest suffix first.
    wildcards: Vec<(String, usize)>,
    catch_all: Option<usize>,
    vhosts: Vec<VhostTable>,
}

impl ListenerTable {
    pub(crate) fn vhost(&self, host: &str) -> Option<&VhostTable> {
        let i = self.exact.get(host).copied().or_else(|| {
            self.wildcards
                .iter()
                .find(|(s, _)| host.len() > s.len() && host.ends_with(s.as_str()))
                .map(|(_, i)| *i)
                .or(self.catch_all)
        })?;
        self.vhosts.get(i)
    }
}

pub(crate) struct VhostTable {
    pub routes: Vec<RouteTable>,
    /// Path → candidate routes, for large virtual hosts only (perf). Boxed: most virtual
    /// hosts have none, and the inline index would make every one ~200 bytes larger.
    pub index: Option<Box<PathIndex>>,
}

pub(crate) struct RouteTable {
    pub name: String,
    pub path: PathRule,
    pub method: Option<Method>,
    pub headers: Vec<(HeaderName, ValueRule)>,
    pub query: Vec<(String, ValueRule)>,
    pub filters: Vec<FilterRt>,
    pub action: ActionRt,
    pub timeouts: ir::Timeouts,
    pub retry: Option<ir::Retry>,
}

pub(crate) enum ActionRt {
    Forward {
        backends: Vec<BackendRt>,
        total: u64,
    },
    Redirect(ir::Redirect),
    Direct(StatusCode),
}

pub(crate) struct BackendRt {
    pub weight: u32,
    /// `None`: invalid reference, answered with 500.
    pub cluster: Option<Arc<ClusterRt>>,
    pub filters: Vec<FilterRt>,
}

pub(crate) enum FilterRt {
    RequestHeaders(HeaderMod),
    ResponseHeaders(HeaderMod),
    UrlRewrite(ir::UrlRewrite),
    Mirror {
        cluster: Option<Arc<ClusterRt>>,
        fraction: f64,
    },
    Cors(ir::Cors),
}

#[derive(Default)]
pub(crate) struct HeaderMod {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub add: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl HeaderMod {
    pub(crate) fn apply(&self, headers: &mut http::HeaderMap) {
        for (n, v) in &self.set {
            headers.insert(n.clone(), v.clone());
        }
        for (n, v) in &self.add {
            headers.append(n.clone(), v.clone());
        }
        for n in &self.remove {
            headers.remove(n);
        }
    }
}

pub(crate) fn compile_bind(
    bind: &ir::Bind,
    clusters: &HashMap<String, Arc<ClusterRt>>,
) -> Result<BindTable, CompileError> {
    let listeners = bind
        .listeners
        .iter()
        .map(|l| compile_listener(l, clusters))
        .collect::<Result<Vec<_>, _>>()?;
    let https = bind.protocol == ir::BindProtocol::Https;
    let tls = match https {
        true => Some(
            crate::tls::server_config(bind).map_err(|error| CompileError::Tls {
                bind: bind.name.clone(),
                error,
            })?,
        ),
        false => None,
    };
    Ok(BindTable {
        name: bind.name.clone(),
        port: bind.port,
        https,
        listeners,
        tls,
        l4_tls: None,
    })
}

fn compile_listener(
    l: &ir::HttpListener,
    clusters: &HashMap<String, Arc<ClusterRt>>,
) -> Result<ListenerTable, CompileError> {
    let mut t = ListenerTable {
        name: l.name.clone(),
        hostname: HostPattern::parse(l.hostname.as_deref()),
        exact: HashMap::new(),
        wildcards: Vec::new(),
        catch_all: None,
        vhosts: Vec::with_capacity(l.virtual_hosts.len()),
    };
    for (i, vh) in l.virtual_hosts.iter().enumerate() {
        // Exact capacity: collecting through `Result` starts at 4 slots, and most virtual
        // hosts have one route (this table lives as long as the configuration).
        let mut routes = Vec::with_capacity(vh.routes.len());
        for r in &vh.routes {
            routes.push(compile_route(r, clusters)?);
        }
        let index = PathIndex::build(routes.iter().map(|r| &r.path)).map(Box::new);
        t.vhosts.push(VhostTable { routes, index });
        // The first virtual host for a given hostname wins (input is sorted).
        match HostPattern::parse(Some(&vh.hostname)) {
            HostPattern::Any => {
                t.catch_all.get_or_insert(i);
            }
            HostPattern::Exact(h) => {
                t.exact.entry(h).or_insert(i);
            }
            HostPattern::Wildcard(s) => t.wildcards.push((s, i)),
        }
    }
    t.wildcards.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
    Ok(t)
}

fn compile_route(
    r: &ir::Route,
    clusters: &HashMap<String, Arc<ClusterRt>>,
) -> Result<RouteTable, CompileError> {
    let regex = |pattern: &str| {
        anchored(pattern).map_err(|error| CompileError::Regex {
            route: r.name.clone(),
            pattern: pattern.to_string(),
            error,
        })
    };
    let path = match &r.matches.path {
        ir::PathMatch::Exact(p) => PathRule::Exact(p.clone()),
        ir::PathMatch::Prefix(p) => PathRule::prefix(p),
        ir::PathMatch::RegularExpression(p) => PathRule::Regex(regex(p)?),
    };
    let value = |m: &ir::ValueMatch| -> Result<ValueRule, CompileError> {
        Ok(match m.kind {
            ir::ValueMatchKind::Exact => ValueRule::Exact(m.value.clone()),
            ir::ValueMatchKind::RegularExpression => ValueRule::Regex(regex(&m.value)?),
        })
    };
    let mut headers = Vec::new();
    for m in &r.matches.headers {
        headers.push((header_name(&r.name, &m.name)?, value(m)?));
    }
    let mut query = Vec::new();
    for m in &r.matches.query_params {
        query.push((m.name.clone(), value(m)?));
    }
    let method = match &r.matches.method {
        None => None,
        Some(m) => Some(
            Method::from_bytes(m.as_bytes()).map_err(|_| CompileError::Method {
                route: r.name.clone(),
                method: m.clone(),
            })?,
        ),
    };
    let action = match &r.action {
        ir::Action::Forward(backends) => {
            let backends = backends
                .iter()
                .map(|b| {
                    Ok(BackendRt {
                        weight: b.weight,
                        cluster: b.cluster.as_ref().and_then(|c| clusters.get(c).cloned()),
                        filters: compile_filters(&r.name, &b.filters, clusters)?,
                    })
                })
                .collect::<Result<Vec<_>, CompileError>>()?;
            let total = backends.iter().map(|b| u64::from(b.weight)).sum();
            ActionRt::Forward {
                backends: exact_size(backends),
                total,
            }
        }
        ir::Action::Redirect(rd) => {
            status(&r.name, rd.status_code)?;
            ActionRt::Redirect(rd.clone())
        }
        ir::Action::DirectResponse { status: s } => ActionRt::Direct(status(&r.name, *s)?),
    };
    Ok(RouteTable {
        name: r.name.clone(),
        path,
        method,
        headers: exact_size(headers),
        query,
        filters: compile_filters(&r.name, &r.filters, clusters)?,
        action,
        timeouts: r.timeouts,
        retry: r.retry.clone(),
    })
}

fn status(route: &str, s: u16) -> Result<StatusCode, CompileError> {
    StatusCode::from_u16(s).map_err(|_| CompileError::Status {
        route: route.into(),
        status: s,
    })
}

fn header_name(route: &str, n: &str) -> Result<HeaderName, CompileError> {
    HeaderName::from_bytes(n.as_bytes()).map_err(|_| CompileError::Header {
        route: route.into(),
        what: format!("name {n:?}"),
    })
}

fn header_pairs(
    route: &str,
    hs: &[ir::Header],
) -> Result<Vec<(HeaderName, HeaderValue)>, CompileError> {
    hs.iter()
        .map(|h| {
            let v = HeaderValue::from_str(&h.value).map_err(|_| CompileError::Header {
                route: route.into(),
                what: format!("value for {:?}", h.name),
            })?;
            Ok((header_name(route, &h.name)?, v))
        })
        .collect()
}

fn header_mod(route: &str, m: &ir::HeaderModifier) -> Result<HeaderMod, CompileError> {
    Ok(HeaderMod {
        set: header_pairs(route, &m.set)?,
        add: header_pairs(route, &m.add)?,
        remove: m
            .remove
            .iter()
            .map(|n| header_name(route, n))
            .collect::<Result<_, _>>()?,
    })
}

/// Drops the spare capacity of a table that lives as long as its configuration (collecting
/// through `Result` and pushing start at 4 slots; there is one such table per route).
fn exact_size<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

fn compile_filters(
    route: &str,
    filters: &[ir::Filter],
    clusters: &HashMap<String, Arc<ClusterRt>>,
) -> Result<Vec<FilterRt>, CompileError> {
    filters
        .iter()
        .map(|f| {
            Ok(match f {
                ir::Filter::RequestHeaderModifier(m) => {
                    FilterRt::RequestHeaders(header_mod(route, m)?)
                }
                ir::Filter::ResponseHeaderModifier(m) => {
                    FilterRt::ResponseHeaders(header_mod(route, m)?)
                }
                ir::Filter::UrlRewrite(u) => FilterRt::UrlRewrite(u.clone()),
                ir::Filter::RequestMirror(m) => FilterRt::Mirror {
                    cluster: m.cluster.as_ref().and_then(|c| clusters.get(c).cloned()),
                    fraction: m.fraction.clamp(0.0, 1.0),
                },
                ir::Filter::Cors(c) => FilterRt::Cors(c.clone()),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(exact_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::Lookup;

    fn route(name: &str, path: ir::PathMatch) -> ir::Route {
        ir::Route {
            name: name.into(),
            matches: ir::RouteMatch {
                path,
                ..Default::default()
            },
            filters: vec![],
            action: ir::Action::DirectResponse { status: 200 },
            timeouts: Default::default(),
            retry: None,
        }
    }

    fn vh(host: &str, route_name: &str) -> ir::VirtualHost {
        ir::VirtualHost {
            hostname: host.into(),
            routes: vec![route(route_name, ir::PathMatch::Prefix("/".into()))],
        }
    }

    fn listener(host: Option<&str>, vhosts: Vec<ir::VirtualHost>) -> ir::HttpListener {
        ir::HttpListener {
            name: host.unwrap_or("any").into(),
            hostname: host.map(String::from),
            certificates: vec![],
            virtual_hosts: vhosts,
        }
    }

    fn table(listeners: Vec<ir::HttpListener>) -> BindTable {
        let bind = ir::Bind {
            name: "b".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: 80,
            protocol: ir::BindProtocol::Http,
            client_validation: None,
            listeners,
        };
        compile_bind(&bind, &HashMap::new()).unwrap()
    }

    fn found(t: &BindTable, host: &str, sni: Option<&str>) -> String {
        let uri: http::Uri = "/x".parse().unwrap();
        match t.lookup(host, sni, &Method::GET, &uri, &http::HeaderMap::new()) {
            Lookup::Found { route, .. } => route.name.clone(),
            Lookup::Misdirected => "421".into(),
            Lookup::NotFound => "404".into(),
        }
    }

    #[test]
    fn virtual_host_precedence() {
        let t = table(vec![listener(
            None,
            vec![
                vh("a.b.example", "exact"),
                vh("*.example", "short"),
                vh("*.b.example", "long"),
                vh("*", "any"),
            ],
        )]);
        assert_eq!(found(&t, "a.b.example", None), "exact");
        assert_eq!(found(&t, "x.b.example", None), "long");
        assert_eq!(found(&t, "x.example", None), "short");
        assert_eq!(found(&t, "example", None), "any");
    }

    #[test]
    fn listener_isolation_and_misdirection() {
        let t = table(vec![
            listener(Some("one.example"), vec![vh("one.example", "one")]),
            listener(Some("*.example"), vec![vh("*.example", "wild")]),
            listener(None, vec![vh("other.example", "other")]),
        ]);
        assert_eq!(found(&t, "one.example", None), "one");
        assert_eq!(found(&t, "two.example", None), "wild");
        // The catch-all listener has no virtual host for this name: no fall-through.
        assert_eq!(found(&t, "three.org", None), "404");
        assert_eq!(found(&t, "one.example", Some("two.example")), "421");
        assert_eq!(found(&t, "two.example", Some("three.example")), "wild");
    }

    #[test]
    fn bad_regexes_fail_compilation() {
        let mut l = listener(None, vec![vh("*", "r")]);
        l.virtual_hosts[0]
            .routes
            .push(route("bad", ir::PathMatch::RegularExpression("(".into())));
        let bind = ir::Bind {
            name: "b".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: 80,
            protocol: ir::BindProtocol::Http,
            client_validation: None,
            listeners: vec![l],
        };
        assert!(matches!(
            compile_bind(&bind, &HashMap::new()),
            Err(CompileError::Regex { .. })
        ));
    }
}
