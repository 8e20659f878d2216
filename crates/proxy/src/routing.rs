//! Pure matching helpers: host patterns, path matches, header / query matches and the
//! path arithmetic shared by URL rewrites and redirects.

use http::HeaderMap;
use regex::Regex;
use std::borrow::Cow;

/// A listener or virtual-host hostname, pre-lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    Any,
    Exact(String),
    /// The suffix including the leading dot, e.g. `.example.com`.
    Wildcard(String),
}

impl HostPattern {
    pub(crate) fn parse(hostname: Option<&str>) -> HostPattern {
        match hostname {
            None | Some("*") | Some("") => HostPattern::Any,
            Some(h) => {
                let h = h.to_ascii_lowercase();
                match h.strip_prefix('*') {
                    Some(suffix) if suffix.starts_with('.') => HostPattern::Wildcard(suffix.into()),
                    _ => HostPattern::Exact(h),
                }
            }
        }
    }

    /// `host` must already be lower-case without port. Wildcards need at least one label.
    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }
}

/// Compiles `pattern` so that it must match the whole input.
pub(crate) fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

#[derive(Debug, Clone)]
pub(crate) enum PathRule {
    Exact(String),
    /// Stored without trailing slash; `""` is the `/` prefix (matches everything).
    Prefix(String),
    Regex(Regex),
}

impl PathRule {
    pub(crate) fn prefix(p: &str) -> PathRule {
        PathRule::Prefix(p.trim_end_matches('/').to_string())
    }

    /// On a match, returns how many bytes of `path` the rule consumed (used by
    /// `ReplacePrefixMatch`).
    pub(crate) fn matches(&self, path: &str) -> Option<usize> {
        match self {
            PathRule::Exact(p) => (p == path).then_some(path.len()),
            PathRule::Prefix(p) => {
                let rest = path.strip_prefix(p.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some(p.len())
            }
            PathRule::Regex(r) => r.is_match(path).then_some(path.len()),
        }
    }
}

/// Replaces the first `matched` bytes of `path` with `replacement`, joining segment-wise.
pub(crate) fn replace_prefix(path: &str, matched: usize, replacement: &str) -> String {
    let rest = path.get(matched..).unwrap_or("");
    let mut out = replacement.trim_end_matches('/').to_string();
    if !rest.is_empty() && !rest.starts_with('/') {
        out.push('/');
    }
    out.push_str(rest);
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[derive(Debug, Clone)]
pub(crate) enum ValueRule {
    Exact(String),
    Regex(Regex),
}

impl ValueRule {
    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            ValueRule::Exact(v) => v == value,
            ValueRule::Regex(r) => r.is_match(value),
        }
    }
}

/// All values of a header joined with `,`; a single value is borrowed, not copied.
pub(crate) fn header_value<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
) -> Option<Cow<'a, str>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let text = |v: &'a http::HeaderValue| String::from_utf8_lossy(v.as_bytes());
    let mut out = text(first);
    for v in values {
        let joined = out.to_mut();
        joined.push(',');
        joined.push_str(&text(v));
    }
    Some(out)
}

/// Parses a query string into decoded `(name, value)` pairs, in order.
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// The first value of `name` (case-sensitive).
pub(crate) fn query_value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Lower-cased host without port, from a Host header or authority value.
pub(crate) fn normalize_host(raw: &str) -> String {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: keep the brackets, drop the port.
        match rest.find(']') {
            Some(end) => &raw[..end + 2],
            None => raw,
        }
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let w = HostPattern::parse(Some("*.Example.com"));
        assert!(w.matches("a.example.com"));
        assert!(w.matches("a.b.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("aexample.com"));
        assert!(HostPattern::parse(Some("foo.com")).matches("foo.com"));
        assert!(!HostPattern::parse(Some("foo.com")).matches("bar.com"));
        assert!(HostPattern::parse(None).matches("anything"));
    }

    #[test]
    fn prefix_is_segment_wise() {
        let p = PathRule::prefix("/foo");
        assert_eq!(p.matches("/foo"), Some(4));
        assert_eq!(p.matches("/foo/"), Some(4));
        assert_eq!(p.matches("/foo/bar"), Some(4));
        assert_eq!(p.matches("/foobar"), None);
        let slash = PathRule::prefix("/foo/");
        assert!(slash.matches("/foo/bar").is_some());
        assert!(slash.matches("/foo/").is_some());
        assert!(slash.matches("/foobar").is_none());
        assert_eq!(PathRule::prefix("/").matches("/anything"), Some(0));
        assert_eq!(PathRule::Exact("/a".into()).matches("/a/"), None);
        let r = PathRule::Regex(anchored("/v[0-9]+").unwrap());
        assert!(r.matches("/v12").is_some());
        assert!(r.matches("/v12/x").is_none());
    }

    #[test]
    fn prefix_replacement() {
        assert_eq!(replace_prefix("/prefix/one/two", 11, "/one"), "/one/two");
        assert_eq!(replace_prefix("/strip-prefix/three", 13, "/"), "/three");
        assert_eq!(replace_prefix("/strip-prefix", 13, "/"), "/");
        assert_eq!(replace_prefix("/a/b", 2, "/x/"), "/x/b");
        assert_eq!(replace_prefix("/anything", 0, "/x"), "/x/anything");
    }

    #[test]
    fn query_parsing() {
        let q = parse_query("animal=whale&color=blue&animal=dolphin&x&a%20b=c+d");
        assert_eq!(query_value(&q, "animal"), Some("whale"));
        assert_eq!(query_value(&q, "x"), Some(""));
        assert_eq!(query_value(&q, "a b"), Some("c d"));
        assert_eq!(query_value(&q, "ANIMAL"), None);
        assert_eq!(
            parse_query("%zz=%4")[0],
            ("%zz".to_string(), "%4".to_string())
        );
    }

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(normalize_host("Foo.COM:8080"), "foo.com");
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert_eq!(normalize_host("example.org"), "example.org");
    }
}
