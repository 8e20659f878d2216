//! HTTP syntax the data plane must be able to compile: header names and methods are RFC 9110
//! tokens, header values visible ASCII (plus space and tab). Checking here turns a bad value into
//! the rule's status instead of a configuration the proxy would refuse as a whole.

/// An RFC 9110 `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value the proxy can send as is.
pub fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_values() {
        assert!(is_token("X-Custom_Header.1"));
        for bad in ["", "X-a/b", "a b", "a:b", "é"] {
            assert!(!is_token(bad), "{bad:?}");
        }
        assert!(is_header_value("text/html; q=0.9\tx"));
        assert!(is_header_value(""));
        for bad in ["a\r\nb", "nul\0", "é"] {
            assert!(!is_header_value(bad), "{bad:?}");
        }
    }
}
