//! Canonical JSON and deep merge for the bundle's data document.
//!
//! Canonical form (what the bundle digest covers for data): no whitespace; object members
//! sorted by the UTF-8 bytes of their keys; strings escaped as serde_json escapes them
//! (`"` `\` and control characters, everything else literal UTF-8); numbers as serde_json
//! prints them (integers in decimal, floats in shortest round-trip form). This is the RFC 8785
//! (JCS) shape for the integer-and-string data policies use; floats are not JCS-normalised,
//! which is why data should not use them.

use serde_json::Value;

/// Appends the canonical form of `v` to `out`.
pub(crate) fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(e, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                if let Some(e) = o.get(*k) {
                    write_canonical(e, out);
                }
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // Serialising a &str cannot fail; fall back to an empty string literal defensively.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\"")));
}

/// The canonical form of `v` as a string.
pub(crate) fn to_canonical(v: &Value) -> String {
    let mut s = String::new();
    write_canonical(v, &mut s);
    s
}

/// Deep-merges `overlay` into `base`: objects merge member by member, recursively; any other
/// overlay value (including arrays and `null`) replaces what `base` had at that path.
pub(crate) fn overlay(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => self::overlay(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Merges `add` into `base` refusing to change any value already set: objects merge
/// recursively; two non-object values at the same path are a conflict, reported as the
/// JSON-pointer-like path of the clash.
pub(crate) fn merge_disjoint(base: &mut Value, add: Value, path: &str) -> Result<(), String> {
    match (base, add) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in a {
                let p = format!("{path}/{k}");
                match b.get_mut(&k) {
                    Some(slot) => merge_disjoint(slot, v, &p)?,
                    None => {
                        b.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        _ => Err(if path.is_empty() {
            "/".into()
        } else {
            path.into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_and_drops_whitespace() {
        let v = json!({"b": [1, {"z": null, "a": true}], "a": "x\"y", "é": 1.5});
        assert_eq!(
            to_canonical(&v),
            r#"{"a":"x\"y","b":[1,{"a":true,"z":null}],"é":1.5}"#
        );
    }

    #[test]
    fn overlay_merges_objects_and_replaces_arrays() {
        let mut b = json!({"a": {"x": 1, "y": [1, 2]}, "k": 1});
        overlay(&mut b, json!({"a": {"y": [3], "z": true}}));
        assert_eq!(b, json!({"a": {"x": 1, "y": [3], "z": true}, "k": 1}));
    }

    #[test]
    fn merge_disjoint_reports_clash_path() {
        let mut b = json!({"a": {"x": 1}});
        assert_eq!(
            merge_disjoint(&mut b, json!({"a": {"x": 2}}), ""),
            Err("/a/x".to_string())
        );
        let mut b = json!({"a": {"x": 1}});
        merge_disjoint(&mut b, json!({"a": {"y": 2}}), "").unwrap();
        assert_eq!(b, json!({"a": {"x": 1, "y": 2}}));
    }
}
