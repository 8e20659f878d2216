//! Header helpers: Go's canonical header names (the echo JSON uses them, as upstream's Go echo
//! does) and `X-Echo-Set-Header` parsing.

use std::collections::BTreeMap;

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Go's `textproto.CanonicalMIMEHeaderKey`: `x-echo-set-header` → `X-Echo-Set-Header`. Names
/// with characters outside the token set are returned unchanged, as Go does.
pub(crate) fn canonical_name(name: &str) -> String {
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Request headers as the echo JSON's `headers`: canonical name → values in arrival order.
/// `Host` is left out, as Go's server moves it to `Request.Host`.
pub(crate) fn to_json_map(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name == http::header::HOST {
            continue;
        }
        map.entry(canonical_name(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    map
}

/// The response headers asked for by every `X-Echo-Set-Header: Name:value,Name2:value2`
/// request header. A repeated name gets its values joined with `,`; entries without a usable
/// name or value are skipped.
pub(crate) fn echo_set_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut out: Vec<(HeaderName, String)> = Vec::new();
    for value in headers.get_all("x-echo-set-header") {
        let Ok(list) = value.to_str() else { continue };
        for entry in list.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (name, value) = entry.split_once(':').unwrap_or((entry, ""));
            let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) else {
                continue;
            };
            let value = value.trim();
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, joined)) => {
                    joined.push(',');
                    joined.push_str(value);
                }
                None => out.push((name, value.to_string())),
            }
        }
    }
    out.into_iter()
        .filter_map(|(name, value)| Some((name, HeaderValue::from_str(&value).ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_like_go() {
        assert_eq!(canonical_name("x-echo-set-header"), "X-Echo-Set-Header");
        assert_eq!(canonical_name("CONTENT-TYPE"), "Content-Type");
        assert_eq!(canonical_name("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_name("te"), "Te");
        assert_eq!(canonical_name("bad header"), "bad header");
    }

    #[test]
    fn set_header_parsing() {
        let mut h = HeaderMap::new();
        h.append(
            "x-echo-set-header",
            HeaderValue::from_static("A:1, B: two ,A:3"),
        );
        h.append("x-echo-set-header", HeaderValue::from_static("C:x:y,"));
        h.append("x-echo-set-header", HeaderValue::from_static(""));
        let got: Vec<(String, String)> = echo_set_headers(&h)
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let want = [("a", "1,3"), ("b", "two"), ("c", "x:y")];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn json_map_skips_host_and_groups_values() {
        let mut h = HeaderMap::new();
        h.append("host", HeaderValue::from_static("example.com"));
        h.append("x-multi", HeaderValue::from_static("1"));
        h.append("x-multi", HeaderValue::from_static("2"));
        let map = to_json_map(&h);
        assert_eq!(map.len(), 1);
        assert_eq!(map["X-Multi"], vec!["1", "2"]);
    }
}
