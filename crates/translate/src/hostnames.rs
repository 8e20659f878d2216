//! Hostname matching, intersection (listener ∩ route) and specificity ordering.

use std::cmp::Ordering;

/// Whether `host` (exact or wildcard) is matched by the `pattern` (exact or `*.suffix`).
/// A wildcard matches one or more labels, never the bare suffix.
pub fn wildcard_covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => {
            // `*.a.com` covers `x.a.com`, `x.y.a.com` and `*.x.a.com`, not `a.com` nor `*.a.com`.
            let rest = host.strip_prefix('*').unwrap_or(host).as_bytes();
            rest.len() > suffix.len()
                && rest[rest.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// Effective hostnames of a route on a listener. `None` = no intersection (the route does not
/// attach there). `Some(["*"])` when neither side restricts hosts.
pub fn intersect(listener: Option<&str>, route: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = match (listener, route.is_empty()) {
        (None, true) => vec!["*".to_string()],
        (None, false) => route.iter().map(|h| h.to_ascii_lowercase()).collect(),
        (Some(l), true) => vec![l.to_ascii_lowercase()],
        (Some(l), false) => {
            let l = l.to_ascii_lowercase();
            route
                .iter()
                .map(|r| r.to_ascii_lowercase())
                .filter_map(|r| {
                    if r == l || wildcard_covers(&l, &r) {
                        Some(r)
                    } else if wildcard_covers(&r, &l) {
                        Some(l.clone())
                    } else {
                        None
                    }
                })
                .collect()
        }
    };
    out.sort_by(|a, b| specificity(Some(a), Some(b)));
    out.dedup();
    (!out.is_empty()).then_some(out)
}

/// Most specific first: exact hostnames (alphabetical), then wildcards by descending length,
/// then `*` / no hostname.
pub fn specificity(a: Option<&str>, b: Option<&str>) -> Ordering {
    fn rank(h: Option<&str>) -> (u8, usize) {
        match h {
            None | Some("*") => (2, 0),
            Some(h) if h.starts_with('*') => (1, usize::MAX - h.len()),
            Some(_) => (0, 0),
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcard_covers_one_or_more_labels_only() {
        assert!(wildcard_covers("*.example.com", "foo.example.com"));
        assert!(wildcard_covers("*.example.com", "a.b.example.com"));
        assert!(wildcard_covers("*.example.com", "*.foo.example.com"));
        assert!(!wildcard_covers("*.example.com", "example.com"));
        assert!(!wildcard_covers("*.example.com", "*.example.com"));
        assert!(!wildcard_covers("*.example.com", "fooexample.com"));
        assert!(wildcard_covers("Foo.com", "foo.com"));
    }

    #[test]
    fn intersection_rules() {
        assert_eq!(intersect(None, &[]), Some(hosts(&["*"])));
        assert_eq!(
            intersect(Some("*.example.com"), &[]),
            Some(hosts(&["*.example.com"]))
        );
        assert_eq!(
            intersect(None, &hosts(&["a.com", "*.b.com"])),
            Some(hosts(&["a.com", "*.b.com"]))
        );
        assert_eq!(
            intersect(
                Some("*.example.com"),
                &hosts(&["foo.example.com", "*.bar.example.com", "other.com"])
            ),
            Some(hosts(&["foo.example.com", "*.bar.example.com"]))
        );
        assert_eq!(
            intersect(Some("foo.example.com"), &hosts(&["*.example.com"])),
            Some(hosts(&["foo.example.com"]))
        );
        assert_eq!(
            intersect(Some("*.foo.com"), &hosts(&["*.com"])),
            Some(hosts(&["*.foo.com"]))
        );
        assert_eq!(
            intersect(Some("foo.example.com"), &hosts(&["bar.example.com"])),
            None
        );
        assert_eq!(
            intersect(Some("*.example.com"), &hosts(&["example.com"])),
            None
        );
    }

    #[test]
    fn specificity_order() {
        let mut v = vec![
            None,
            Some("*.a.com"),
            Some("b.com"),
            Some("*.long.a.com"),
            Some("a.com"),
        ];
        v.sort_by(|a, b| specificity(*a, *b));
        assert_eq!(
            v,
            vec![
                Some("a.com"),
                Some("b.com"),
                Some("*.long.a.com"),
                Some("*.a.com"),
                None
            ]
        );
    }
}
