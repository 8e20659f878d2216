//! The IR as JSON with private keys hidden, for anything shown to people (`/config_dump`,
//! `trellis translate`, golden files).

use serde_json::Value;

/// Placeholder for a private key.
pub const REDACTED: &str = "<redacted>";

/// Serializes `config` with every `key_pem` replaced by [`REDACTED`].
pub fn redacted_json(config: &crate::Config) -> Value {
    let mut v = serde_json::to_value(config).unwrap_or(Value::Null);
    redact(&mut v);
    v
}

fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k == "key_pem" {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn keys_are_hidden_and_certificates_kept() {
        let mut config = Config::default();
        let json = serde_json::json!({"binds": [{"name": "b", "address": "127.0.0.1", "port": 443,
            "protocol": "https", "listeners": [{"name": "l", "hostname": null, "virtual_hosts": [],
            "certificates": [{"name": "ns/s", "cert_pem": "CERT", "key_pem": "SECRET"}]}]}],
            "clusters": []});
        config.binds = serde_json::from_value(json["binds"].clone()).unwrap();
        let text = redacted_json(&config).to_string();
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("CERT") && text.contains(REDACTED));
    }
}
