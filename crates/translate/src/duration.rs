//! Gateway API durations (`1h`, `500ms`, `1h2m3s`): one to four `<number><unit>` pairs with
//! units h, m, s, ms.

/// Milliseconds, or an error message.
pub fn parse_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid duration {text:?}");
    let bytes = text.as_bytes();
    let (mut i, mut total, mut parts) = (0usize, 0u64, 0usize);
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 5 {
            return Err(bad());
        }
        let n: u64 = text[start..i].parse().map_err(|_| bad())?;
        let unit_ms = if text[i..].starts_with("ms") {
            i += 2;
            1
        } else {
            let u = match bytes.get(i) {
                Some(b'h') => 3_600_000,
                Some(b'm') => 60_000,
                Some(b's') => 1_000,
                _ => return Err(bad()),
            };
            i += 1;
            u
        };
        total = total.saturating_add(n.saturating_mul(unit_ms));
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn parses_gateway_api_durations() {
        assert_eq!(parse_ms("1s"), Ok(1000));
        assert_eq!(parse_ms("500ms"), Ok(500));
        assert_eq!(parse_ms("1h2m"), Ok(3_720_000));
        assert_eq!(parse_ms("0s"), Ok(0));
        assert_eq!(parse_ms("1m1ms"), Ok(60_001));
        for bad in [
            "",
            "1",
            "s",
            "1.5s",
            "1d",
            "-1s",
            "123456s",
            "1s1s1s1s1s",
            "1 s",
        ] {
            assert!(parse_ms(bad).is_err(), "{bad}");
        }
    }
}
