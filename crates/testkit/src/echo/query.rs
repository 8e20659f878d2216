//! Query-string lookup with Go's `url.Values.Get` semantics (first value, `+` is a space).

use std::borrow::Cow;

/// The first value of `key` in `query` (the part after `?`), decoded.
pub(crate) fn get(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(name, _)| decode(name) == key)
        .map(|(_, value)| decode(value).into_owned())
}

fn decode(text: &str) -> Cow<'_, str> {
    if !text.contains(['+', '%']) {
        return Cow::Borrowed(text);
    }
    let spaced = text.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy();
    Cow::Owned(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::get;

    #[test]
    fn finds_first_decoded_value() {
        let q = Some("a=1&uuid=x%2Fy&b&uuid=2&sp=a+b");
        assert_eq!(get(q, "uuid").as_deref(), Some("x/y"));
        assert_eq!(get(q, "a").as_deref(), Some("1"));
        assert_eq!(get(q, "b").as_deref(), Some(""));
        assert_eq!(get(q, "sp").as_deref(), Some("a b"));
        assert_eq!(get(q, "missing"), None);
        assert_eq!(get(None, "a"), None);
    }
}
