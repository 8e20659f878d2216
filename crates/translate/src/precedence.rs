//! Gateway API route precedence within one virtual host.
//!
//! Exact path > RegularExpression (longer pattern first; Gateway API leaves its place to the
//! implementation, we put it before prefixes so a regex is never shadowed by `PathPrefix /`) >
//! longest PathPrefix > has method > most headers > most query params > oldest route >
//! namespace/name alphabetical > rule order > match order.
//!
//! GRPCRoute matches rank by their own rule (characters of the matching service, then of the
//! method, then headers) in the RegularExpression slot, so a service-only match beats a
//! method-only one although the first is a path prefix and the second a regex.

use std::cmp::Reverse;
use trellis_ir::{PathMatch, RouteMatch};

/// Sort key of one IR route; ascending order = precedence order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey {
    path_rank: u8,
    /// GRPCRoute: (service characters, method characters); (0, 0) for HTTPRoute.
    grpc: Reverse<(usize, usize)>,
    path_len: Reverse<usize>,
    no_method: bool,
    headers: Reverse<usize>,
    query_params: Reverse<usize>,
    /// RFC 3339 sorts lexicographically; absent sorts first.
    created: String,
    namespace: String,
    name: String,
    rule: usize,
    match_index: usize,
}

impl SortKey {
    pub fn new(
        m: &RouteMatch,
        created: &str,
        namespace: &str,
        name: &str,
        rule: usize,
        match_index: usize,
    ) -> Self {
        Self::with_grpc(m, None, created, namespace, name, (rule, match_index))
    }

    /// `grpc`: the (service, method) character counts of a GRPCRoute match.
    pub fn with_grpc(
        m: &RouteMatch,
        grpc: Option<(usize, usize)>,
        created: &str,
        namespace: &str,
        name: &str,
        (rule, match_index): (usize, usize),
    ) -> Self {
        let (path_rank, len) = match &m.path {
            _ if grpc.is_some() => (1, 0),
            PathMatch::Exact(v) => (0, v.len()),
            PathMatch::RegularExpression(v) => (1, v.len()),
            PathMatch::Prefix(v) => (2, v.len()),
        };
        SortKey {
            path_rank,
            grpc: Reverse(grpc.unwrap_or_default()),
            path_len: Reverse(len),
            no_method: m.method.is_none(),
            headers: Reverse(m.headers.len()),
            query_params: Reverse(m.query_params.len()),
            created: timestamp_key(created),
            namespace: namespace.to_string(),
            name: name.to_string(),
            rule,
            match_index,
        }
    }
}

/// RFC 3339 UTC timestamps compare as text only with equal fraction widths: pad the fraction
/// to nine digits (`...00Z` → `...00.000000000`). Other forms are kept as written.
fn timestamp_key(ts: &str) -> String {
    let Some(base) = ts.strip_suffix('Z').or_else(|| ts.strip_suffix('z')) else {
        return ts.to_string();
    };
    let (whole, frac) = base.split_once('.').unwrap_or((base, ""));
    format!("{whole}.{frac:0<9}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_ir::{ValueMatch, ValueMatchKind};

    fn m(path: PathMatch, method: Option<&str>, headers: usize, queries: usize) -> RouteMatch {
        let vm = |i: usize| ValueMatch {
            name: format!("h{i}"),
            kind: ValueMatchKind::Exact,
            value: "v".into(),
        };
        RouteMatch {
            path,
            method: method.map(Into::into),
            headers: (0..headers).map(vm).collect(),
            query_params: (0..queries).map(vm).collect(),
        }
    }

    #[test]
    fn path_then_method_then_headers_then_queries() {
        let p = |s: &str| PathMatch::Prefix(s.into());
        let mut keys = [
            (
                "prefix-short",
                SortKey::new(&m(p("/a"), None, 0, 0), "", "ns", "r", 0, 0),
            ),
            (
                "queries",
                SortKey::new(&m(p("/a"), None, 0, 2), "", "ns", "r", 0, 1),
            ),
            (
                "headers",
                SortKey::new(&m(p("/a"), None, 1, 0), "", "ns", "r", 0, 2),
            ),
            (
                "method",
                SortKey::new(&m(p("/a"), Some("GET"), 0, 0), "", "ns", "r", 0, 3),
            ),
            (
                "prefix-long",
                SortKey::new(&m(p("/a/b"), None, 0, 0), "", "ns", "r", 0, 4),
            ),
            (
                "regex",
                SortKey::new(
                    &m(PathMatch::RegularExpression("/.*".into()), None, 0, 0),
                    "",
                    "ns",
                    "r",
                    0,
                    5,
                ),
            ),
            (
                "exact",
                SortKey::new(
                    &m(PathMatch::Exact("/".into()), None, 0, 0),
                    "",
                    "ns",
                    "r",
                    0,
                    6,
                ),
            ),
        ];
        keys.sort_by(|a, b| a.1.cmp(&b.1));
        let order: Vec<&str> = keys.iter().map(|k| k.0).collect();
        assert_eq!(
            order,
            [
                "exact",
                "regex",
                "prefix-long",
                "method",
                "headers",
                "queries",
                "prefix-short"
            ]
        );
    }

    #[test]
    fn timestamps_compare_across_fraction_widths() {
        assert!(timestamp_key("2026-01-01T00:00:00Z") < timestamp_key("2026-01-01T00:00:00.5Z"));
        assert!(timestamp_key("2026-01-01T00:00:00.25Z") < timestamp_key("2026-01-01T00:00:00.5Z"));
        assert!(timestamp_key("2026-01-01T00:00:00.999Z") < timestamp_key("2026-01-01T00:00:01Z"));
    }

    #[test]
    fn ties_break_on_age_then_name_then_rule_order() {
        let x = m(PathMatch::Prefix("/".into()), None, 0, 0);
        let mut keys = [
            (
                "b-rule1",
                SortKey::new(&x, "2024-01-01T00:00:00Z", "ns", "b", 1, 0),
            ),
            (
                "newer",
                SortKey::new(&x, "2025-01-01T00:00:00Z", "ns", "a", 0, 0),
            ),
            (
                "b-rule0",
                SortKey::new(&x, "2024-01-01T00:00:00Z", "ns", "b", 0, 0),
            ),
            (
                "a",
                SortKey::new(&x, "2024-01-01T00:00:00Z", "ns", "a", 5, 0),
            ),
        ];
        keys.sort_by(|a, b| a.1.cmp(&b.1));
        let order: Vec<&str> = keys.iter().map(|k| k.0).collect();
        assert_eq!(order, ["a", "b-rule0", "b-rule1", "newer"]);
    }

    #[test]
    fn grpc_service_only_beats_method_only() {
        let key = |path: PathMatch, chars| {
            SortKey::with_grpc(&m(path, None, 0, 0), Some(chars), "", "ns", "r", (0, 0))
        };
        let exact = key(PathMatch::Exact("/pkg.Svc/Get".into()), (7, 3));
        let service = key(PathMatch::Prefix("/pkg.Svc/".into()), (7, 0));
        let method = key(PathMatch::RegularExpression("/[^/]+/Get".into()), (0, 3));
        let mut keys = vec![method.clone(), service.clone(), exact.clone()];
        keys.sort();
        assert_eq!(keys, vec![exact, service, method]);
    }
}
