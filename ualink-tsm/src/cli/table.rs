//! Human-readable rendering of the service's JSON answers: an array of objects becomes a
//! table (one column per key, nested values flattened to compact JSON), an object becomes
//! `key  value` rows with nested objects flattened to dotted keys.

use serde_json::Value;

/// Longest cell before it is cut (the full value is in `--json`).
const MAX_CELL: usize = 72;

fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        // A tagged enum ({"status": "quarantined", "check": ..}): the tag first.
        Value::Object(m) if m.values().all(|x| !x.is_object() && !x.is_array()) => m
            .get("status")
            .into_iter()
            .chain(m.iter().filter(|(k, _)| *k != "status").map(|(_, x)| x))
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    if s.chars().count() > MAX_CELL {
        let cut: String = s.chars().take(MAX_CELL - 1).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// Flattens an object into dotted-key rows.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        other => out.push((prefix.to_string(), cell(other))),
    }
}

/// The rows of a table for `rows` (objects), columns in first-seen key order.
fn grid(rows: &[Value]) -> Vec<Vec<String>> {
    let mut cols: Vec<String> = Vec::new();
    for r in rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let mut out = vec![cols.iter().map(|c| c.to_uppercase()).collect::<Vec<_>>()];
    for r in rows {
        out.push(
            cols.iter()
                .map(|c| cell(r.get(c).unwrap_or(&Value::Null)))
                .collect(),
        );
    }
    out
}

fn aligned(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}

/// Renders `v` for a terminal.
pub(crate) fn render(v: &Value) -> String {
    match v {
        Value::Array(a) if a.is_empty() => "(none)\n".into(),
        Value::Array(a) if a.iter().all(Value::is_object) => aligned(&grid(a)),
        Value::Object(m) => {
            // An object whose single list member is the payload ({"devices": [...]}).
            if m.len() == 1 {
                if let Some(Value::Array(a)) = m.values().next() {
                    if a.iter().all(Value::is_object) {
                        return render(&Value::Array(a.clone()));
                    }
                }
            }
            let mut rows = Vec::new();
            flatten("", v, &mut rows);
            aligned(
                &rows
                    .into_iter()
                    .map(|(k, c)| vec![k, c])
                    .collect::<Vec<_>>(),
            )
        }
        Value::Null => "ok\n".into(),
        other => format!("{}\n", cell(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arrays_of_objects_are_tables() {
        let t = render(&json!([
            {"id": 1, "status": {"status": "attested"}, "rules": ["allow.a", "allow.b"]},
            {"id": 12, "status": {"status": "quarantined", "check": "policy"}, "rules": []}
        ]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  STATUS"), "{t}");
        assert!(lines[1].contains("allow.a,allow.b"), "{t}");
        assert!(lines[2].contains("quarantined policy"), "{t}");
        assert!(lines[2].starts_with("12  "), "{t}");
    }

    #[test]
    fn objects_flatten_to_dotted_keys() {
        let t = render(&json!({"devices": {"attested": 8, "quarantined": 0}, "tenants": 2}));
        assert!(t.contains("devices.attested     8"), "{t}");
        assert!(t.contains("tenants              2"), "{t}");
        assert_eq!(render(&Value::Null), "ok\n");
        assert_eq!(render(&json!([])), "(none)\n");
    }

    #[test]
    fn long_cells_are_cut() {
        let t = render(&json!({"digest": "a".repeat(200)}));
        assert!(t.trim_end().ends_with('…'));
    }
}
