//! Per-virtual-host index from a request path to the routes whose path rule can match it, so
//! first-match lookup costs O(path depth + candidates) instead of O(routes) on large virtual
//! hosts. The answer is exactly the scan's: the lowest-index route whose whole match holds.
//! Regex routes whose every match starts with a literal first segment (`/api/v[0-9]+` →
//! `api`) are grouped by it; the others are tried for every path.

use crate::routing::PathRule;
use std::collections::HashMap;

/// Below this many routes a plain scan is cheaper than the index.
pub(crate) const MIN_ROUTES: usize = 16;
/// From this many regex routes on, they are matched in one pass by a `RegexSet`.
const MIN_REGEX_SET: usize = 8;

pub(crate) struct PathIndex {
    exact: HashMap<Box<str>, Vec<u32>>,
    /// Keyed by the prefix as `PathRule::Prefix` stores it (no trailing slash, `""` for `/`).
    prefix: HashMap<Box<str>, Vec<u32>>,
    /// `prefix_len[n]`: some prefix key has `n` bytes (skips hopeless hash lookups).
    prefix_len: Vec<bool>,
    /// Regex routes by the literal first path segment all their matches start with.
    by_segment: HashMap<Box<str>, Regexes>,
    /// Regex routes that are candidates for every path.
    always: Regexes,
}

/// Regex routes in ascending order, with a `RegexSet` over them when there are many.
#[derive(Default)]
struct Regexes {
    routes: Vec<u32>,
    patterns: Vec<String>,
    set: Option<regex::RegexSet>,
}

impl Regexes {
    fn push(&mut self, i: u32, pattern: &str) {
        self.routes.push(i);
        self.patterns.push(pattern.to_string());
    }

    fn finish(&mut self) {
        if self.routes.len() >= MIN_REGEX_SET {
            // Too big for the set's limits: keep trying them one by one.
            self.set = regex::RegexSet::new(&self.patterns).ok();
        }
        self.patterns = Vec::new();
    }

    fn first_match<T>(
        &self,
        path: &str,
        best: &mut Option<(usize, T)>,
        check: &mut impl FnMut(usize) -> Option<T>,
    ) {
        let Some(set) = &self.set else {
            return scan(&self.routes, best, check);
        };
        // Set matches come in pattern order, i.e. ascending route index.
        for k in set.matches(path).iter() {
            let Some(&i) = self.routes.get(k) else {
                continue;
            };
            let i = i as usize;
            if best.as_ref().is_some_and(|(b, _)| *b <= i) {
                return;
            }
            if let Some(m) = check(i) {
                *best = Some((i, m));
                return;
            }
        }
    }
}

/// The literal first path segment every match of `re` (anchored) starts with, if there is
/// one: each of its literal prefixes must be `/segment/...`, all with the same segment.
fn literal_segment(re: &regex::Regex) -> Option<String> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::Parser::new().parse(re.as_str()).ok()?;
    // The literals are prefixes of a match, not of the path, unless every match starts at
    // the path's start (a pattern can escape `anchored`'s group: `/a)|(?:/b`).
    if !hir
        .properties()
        .look_set_prefix()
        .contains(regex_syntax::hir::Look::Start)
    {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let mut segment: Option<&[u8]> = None;
    for lit in seq.literals()? {
        let rest = lit.as_bytes().strip_prefix(b"/")?;
        let end = rest.iter().position(|&b| b == b'/')?;
        match segment {
            Some(s) if s != &rest[..end] => return None,
            _ => segment = Some(&rest[..end]),
        }
    }
    String::from_utf8(segment?.to_vec()).ok()
}

/// The first segment of `path` (`/a/b` → `a`).
fn first_segment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    Some(rest.split('/').next().unwrap_or(rest))
}

impl PathIndex {
    /// `None` when there are too few routes for the index to pay off.
    pub(crate) fn build<'a>(rules: impl ExactSizeIterator<Item = &'a PathRule>) -> Option<Self> {
        if rules.len() < MIN_ROUTES || rules.len() > u32::MAX as usize {
            return None;
        }
        let mut ix = PathIndex {
            exact: HashMap::new(),
            prefix: HashMap::new(),
            prefix_len: Vec::new(),
            by_segment: HashMap::new(),
            always: Regexes::default(),
        };
        for (i, rule) in rules.enumerate() {
            let i = i as u32;
            match rule {
                PathRule::Exact(p) => ix.exact.entry(p.as_str().into()).or_default().push(i),
                PathRule::Prefix(p) => {
                    if ix.prefix_len.len() <= p.len() {
                        ix.prefix_len.resize(p.len() + 1, false);
                    }
                    ix.prefix_len[p.len()] = true;
                    ix.prefix.entry(p.as_str().into()).or_default().push(i);
                }
                PathRule::Regex(r) => match literal_segment(r) {
                    Some(seg) => ix
                        .by_segment
                        .entry(seg.into())
                        .or_default()
                        .push(i, r.as_str()),
                    None => ix.always.push(i, r.as_str()),
                },
            }
        }
        ix.always.finish();
        for group in ix.by_segment.values_mut() {
            group.finish();
        }
        Some(ix)
    }

    /// The lowest route index `i` among the candidates for `path` with `check(i)` = `Some`.
    pub(crate) fn first_match<T>(
        &self,
        path: &str,
        mut check: impl FnMut(usize) -> Option<T>,
    ) -> Option<(usize, T)> {
        let mut best = None;
        if let Some(list) = self.exact.get(path) {
            scan(list, &mut best, &mut check);
        }
        // A prefix p matches when path == p or path continues with '/' right after p.
        let ends = path
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'/')
            .map(|(i, _)| i)
            .chain(std::iter::once(path.len()));
        for end in ends {
            if !self.prefix_len.get(end).copied().unwrap_or(false) {
                continue;
            }
            if let Some(list) = path.get(..end).and_then(|p| self.prefix.get(p)) {
                scan(list, &mut best, &mut check);
            }
        }
        if let Some(group) = first_segment(path).and_then(|seg| self.by_segment.get(seg)) {
            group.first_match(path, &mut best, &mut check);
        }
        self.always.first_match(path, &mut best, &mut check);
        best
    }
}

/// Lists are ascending: stop at the first match or once past the best so far.
fn scan<T>(
    list: &[u32],
    best: &mut Option<(usize, T)>,
    check: &mut impl FnMut(usize) -> Option<T>,
) {
    for &i in list {
        let i = i as usize;
        if best.as_ref().is_some_and(|(b, _)| *b <= i) {
            return;
        }
        if let Some(m) = check(i) {
            *best = Some((i, m));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::anchored;

    #[test]
    fn same_answer_as_a_scan() {
        let mut rules = vec![];
        for i in 0..40 {
            rules.push(match i % 4 {
                0 => PathRule::Exact(format!("/a/{}", i % 5)),
                1 => PathRule::prefix(&format!("/a/{}/", i % 3)),
                2 => PathRule::Regex(anchored(&format!("/a/{}.*", i % 6)).unwrap()),
                _ => PathRule::prefix(if i % 8 == 3 { "/" } else { "/a" }),
            });
        }
        let ix = PathIndex::build(rules.iter()).unwrap();
        // Every third route "fails" its non-path conditions, as a header match would.
        let holds = |i: usize, path: &str| (i % 3 != 1).then(|| rules[i].matches(path)).flatten();
        for path in [
            "/a/0", "/a/1/x", "/a/2", "/a/22", "/a", "/", "/b", "", "/a/4/", "/a/5z",
        ] {
            let scanned = (0..rules.len()).find_map(|i| holds(i, path).map(|m| (i, m)));
            assert_eq!(ix.first_match(path, |i| holds(i, path)), scanned, "{path}");
        }
    }

    #[test]
    fn many_regexes_use_a_set_with_the_same_answer() {
        let mut rules: Vec<PathRule> = (0..30)
            .map(|i| PathRule::Regex(anchored(&format!("/r/{}[a-z]*", i % 7)).unwrap()))
            .collect();
        rules.push(PathRule::prefix("/r"));
        let ix = PathIndex::build(rules.iter()).unwrap();
        assert!(ix.by_segment["r"].set.is_some());
        let holds = |i: usize, path: &str| {
            (!i.is_multiple_of(4))
                .then(|| rules[i].matches(path))
                .flatten()
        };
        for path in ["/r/0", "/r/0abc", "/r/3x", "/r/6", "/r/9", "/r", "/x"] {
            let scanned = (0..rules.len()).find_map(|i| holds(i, path).map(|m| (i, m)));
            assert_eq!(ix.first_match(path, |i| holds(i, path)), scanned, "{path}");
        }
    }

    #[test]
    fn regexes_are_grouped_by_their_literal_first_segment() {
        let re = |p: &str| anchored(p).unwrap();
        assert_eq!(literal_segment(&re("/api/v[0-9]+")).as_deref(), Some("api"));
        assert_eq!(literal_segment(&re("/api/(a|b)")).as_deref(), Some("api"));
        assert_eq!(literal_segment(&re("/(api|web)/x")), None);
        assert_eq!(literal_segment(&re("/api[0-9]/x")), None);
        assert_eq!(literal_segment(&re("/ap.*")), None);
        assert_eq!(literal_segment(&re(".*")), None);
        assert_eq!(literal_segment(&re("/api/x|/web/y")), None);
        assert_eq!(literal_segment(&re("(?i)/api/x")), None);
        // Escapes the anchoring group: its second branch matches anywhere in the path.
        assert_eq!(literal_segment(&re("/api/x)|(?:/api/y")), None);
        assert!(re("/api/x)|(?:/api/y").is_match("/web/api/y"));

        // Grouped, ungrouped and other rules interleaved: still the scan's answer.
        let mut rules = vec![];
        for i in 0..60 {
            rules.push(match i % 5 {
                0 => PathRule::Regex(re(&format!("/g{}/[a-z]+", i % 4))),
                1 => PathRule::Regex(re(&format!("/g{}.*", i % 3))),
                2 => PathRule::prefix(&format!("/g{}", i % 4)),
                3 => PathRule::Regex(re("/(g1|g2)/[0-9]+")),
                _ => PathRule::Exact(format!("/g{}/abc", i % 4)),
            });
        }
        let ix = PathIndex::build(rules.iter()).unwrap();
        assert!(ix.by_segment.contains_key("g0"));
        let holds = |i: usize, path: &str| (i % 7 != 3).then(|| rules[i].matches(path)).flatten();
        for path in [
            "/g0/abc", "/g1/abc", "/g2/12", "/g3/x", "/g1", "/g10/a", "/h/abc", "/", "",
        ] {
            let scanned = (0..rules.len()).find_map(|i| holds(i, path).map(|m| (i, m)));
            assert_eq!(ix.first_match(path, |i| holds(i, path)), scanned, "{path}");
        }
    }

    #[test]
    fn small_tables_are_not_indexed() {
        let rules = [PathRule::prefix("/")];
        assert!(PathIndex::build(rules.iter()).is_none());
    }
}
