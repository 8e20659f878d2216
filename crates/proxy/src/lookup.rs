//! Request lookup in a compiled [`BindTable`]: listener (isolation, misdirection), virtual
//! host, then the first route whose match holds.

use crate::compile::{BindTable, ListenerTable, RouteTable};
use crate::routing;
use http::Method;

/// Outcome of looking a request up in a [`BindTable`].
pub(crate) enum Lookup<'a> {
    Found {
        listener: &'a ListenerTable,
        route: &'a RouteTable,
        matched: usize,
    },
    /// The Host belongs to another listener than the TLS SNI selected.
    Misdirected,
    NotFound,
}

impl BindTable {
    /// Listener (first whose hostname matches), virtual host, then the first matching route.
    /// `host` is lower-case without port; `sni` is given only on TLS connections.
    pub(crate) fn lookup(
        &self,
        host: &str,
        sni: Option<&str>,
        method: &Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Lookup<'_> {
        let listener = self.listeners.iter().position(|l| l.hostname.matches(host));
        if let Some(sni) = sni {
            if self.listeners.iter().position(|l| l.hostname.matches(sni)) != listener {
                return Lookup::Misdirected;
            }
        }
        let Some(listener) = listener.and_then(|i| self.listeners.get(i)) else {
            return Lookup::NotFound;
        };
        let Some(vhost) = listener.vhost(host) else {
            return Lookup::NotFound;
        };
        let mut params = None;
        let mut check = |i: usize| {
            let route = vhost.routes.get(i)?;
            route.matches(method, uri, headers, &mut params)
        };
        let found = match &vhost.index {
            Some(index) => index.first_match(uri.path(), check),
            None => (0..vhost.routes.len()).find_map(|i| check(i).map(|m| (i, m))),
        };
        match found.and_then(|(i, matched)| Some((vhost.routes.get(i)?, matched))) {
            Some((route, matched)) => Lookup::Found {
                listener,
                route,
                matched,
            },
            None => Lookup::NotFound,
        }
    }
}

impl RouteTable {
    /// On a match, the bytes of the path consumed by the path rule. The query is parsed at
    /// most once per request (`params`).
    fn matches(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        params: &mut Option<Vec<(String, String)>>,
    ) -> Option<usize> {
        let matched = self.path.matches(uri.path())?;
        if self.method.as_ref().is_some_and(|m| m != method) {
            return None;
        }
        for (name, rule) in &self.headers {
            if !routing::header_value(headers, name).is_some_and(|v| rule.matches(&v)) {
                return None;
            }
        }
        if !self.query.is_empty() {
            let params =
                params.get_or_insert_with(|| routing::parse_query(uri.query().unwrap_or("")));
            for (name, rule) in &self.query {
                if !routing::query_value(params, name).is_some_and(|v| rule.matches(v)) {
                    return None;
                }
            }
        }
        Some(matched)
    }
}
