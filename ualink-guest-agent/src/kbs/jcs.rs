//! JSON Canonicalization Scheme (RFC 8785) for the documents the KBS binding hashes.
//!
//! Object members are sorted by the UTF-16 code units of their names; strings are escaped as
//! ECMAScript's `JSON.stringify` does (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other
//! controls as `\u00xx` in lowercase hex, everything else literal UTF-8); no whitespace.
//! Numbers: integers (i64/u64) print in their shortest decimal form, which is also their
//! ECMAScript form below 2^53; any other number (fractions, exponents, larger integers) is
//! refused rather than risk a digest the peer computes differently — the KBS binding holds
//! only strings.

use crate::error::{Error, Result};
use serde_json::Value;

/// The canonical bytes of `v`.
pub fn canonicalize(v: &Value) -> Result<String> {
    let mut out = String::new();
    write(v, &mut out)?;
    Ok(out)
}

const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

fn write(v: &Value, out: &mut String) -> Result<()> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let ok = n
                .as_u64()
                .map(|u| u <= MAX_SAFE_INTEGER)
                .or_else(|| n.as_i64().map(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER))
                .unwrap_or(false);
            if !ok {
                return Err(Error::ApiMisuse {
                    reason: format!("JCS: number {n} is not an integer within +-2^53"),
                });
            }
            out.push_str(&n.to_string());
        }
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(e, out)?;
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, e)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(e, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// RFC 8785 section 3.2.3 (sorting by UTF-16 code units), as the RFC prints it.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
           "\u20ac": "Euro Sign",
           "\r": "Carriage Return",
           "\ufb33": "Hebrew Letter Dalet With Dagesh",
           "1": "One",
           "\ud83d\ude00": "Emoji: Grinning Face",
           "\u0080": "Control",
           "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let expected = concat!(
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",",
            "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",",
            "\"\u{1f600}\":\"Emoji: Grinning Face\",",
            "\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        // U+1F600 (surrogates D83D DE00) sorts before U+FB33 by UTF-16 code units, though
        // after it by code points.
        assert_eq!(canonicalize(&v).unwrap(), expected);
    }

    /// RFC 8785 section 3.2.2.2 string example: `"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"`
    /// canonicalizes to `"€$\u000f\nA'B\"\\\\\"/"`.
    #[test]
    fn rfc8785_string_example() {
        let v: Value =
            serde_json::from_str(r#""\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/""#).unwrap();
        assert_eq!(
            canonicalize(&v).unwrap(),
            "\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\""
        );
    }

    /// RFC 8785 section 3.2.2 literals and nesting, without the float members we refuse.
    #[test]
    fn literals_nesting_and_whitespace() {
        let v: Value = serde_json::from_str(
            r#"{ "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
                 "literals": [null, true, false], "numbers": [0, -1, 333, 9007199254740991] }"#,
        )
        .unwrap();
        assert_eq!(
            canonicalize(&v).unwrap(),
            "{\"literals\":[null,true,false],\"numbers\":[0,-1,333,9007199254740991],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }

    #[test]
    fn non_integers_are_refused() {
        assert!(canonicalize(&json!([1.5])).is_err());
        assert!(canonicalize(&json!([9_007_199_254_740_992u64])).is_err());
    }

    #[test]
    fn kbs_runtime_data_shape() {
        let v = json!({"tee-pubkey": {"y": "Y", "x": "X", "kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW"},
                       "nonce": "n", "additional-evidence": ""});
        assert_eq!(
            canonicalize(&v).unwrap(),
            r#"{"additional-evidence":"","nonce":"n","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"X","y":"Y"}}"#
        );
    }
}
