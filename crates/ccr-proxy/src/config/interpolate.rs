//! `$VAR` / `${VAR}` interpolation from the environment, as claude-code-router does it.

use serde_json::Value;

/// Replace `$NAME` and `${NAME}` in every string of `value` (keys are left alone).
///
/// `lookup` supplies variables (the process environment in production). Returns the
/// interpolated tree plus `(json_path, variable)` for every variable that was unset;
/// an unset variable is left as written so nothing is silently emptied.
pub fn interpolate(
    value: &Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (Value, Vec<(String, String)>) {
    let mut unset = Vec::new();
    let out = walk(value, "", lookup, &mut unset);
    (out, unset)
}

fn walk(
    value: &Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<(String, String)>,
) -> Value {
    match value {
        Value::String(s) => Value::String(expand(s, path, lookup, unset)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| walk(v, &format!("{path}[{i}]"), lookup, unset))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    (k.clone(), walk(v, &child, lookup, unset))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn expand(
    s: &str,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<(String, String)>,
) -> String {
    if !s.contains('$') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if end > 0 && braced[..end].chars().all(is_name_char) => {
                    (&braced[..end], end + 2)
                }
                _ => ("", 0),
            }
        } else if after.starts_with(is_name_start) {
            let end = after
                .find(|c: char| !is_name_char(c))
                .unwrap_or(after.len());
            (&after[..end], end)
        } else {
            ("", 0)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => {
                unset.push((path.to_owned(), name.to_owned()));
                out.push('$');
                out.push_str(&after[..consumed]);
            }
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-123".into()),
            "HOST_PART" => Some("localhost".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms_and_reports_unset_with_path() {
        let v = json!({"a": "$KEY", "b": ["http://${HOST_PART}:1/x"], "c": {"d": "pre-$MISSING-post"}, "e": "cost $5 and $"});
        let (out, unset) = interpolate(&v, &env);
        assert_eq!(out["a"], "sk-123");
        assert_eq!(out["b"][0], "http://localhost:1/x");
        assert_eq!(out["c"]["d"], "pre-$MISSING-post");
        assert_eq!(out["e"], "cost $5 and $");
        assert_eq!(unset, vec![("c.d".to_string(), "MISSING".to_string())]);
    }
}
