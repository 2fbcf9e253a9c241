//! Ollama decodes a tool's JSON Schema into a fixed struct (api.ToolProperty) and drops
//! what does not fit: `format`, bounds, `pattern`, `default`, `oneOf`/`allOf`. It keeps
//! `anyOf` (api/types.go `ToolProperty.AnyOf`, whose members are `ToolProperty`s too).
//! The model then never sees the dropped constraints, and a boolean sub-schema
//! (`"x": true`, also as an `anyOf` member) does not decode at all (a 400). So for
//! Ollama the dropped constraints, inside `anyOf` members too, are written into the
//! tool's description, and boolean sub-schemas become `{}` (any value).

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Keywords Ollama's schema struct has no field for, and that constrain a value.
const DROPPED: &[&str] = &[
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "default",
    "oneOf",
    "allOf",
];

/// The description and schema to send Ollama for one tool; borrowed when nothing
/// needs to change (the usual case, and byte-identical to the other servers).
///
/// The schema is parsed here, for this tool only, and dropped once read: the request
/// keeps schemas as JSON text (see [`crate::proxy::wire::anthropic::Tool::input_schema`]).
pub fn for_ollama<'a>(
    description: Option<&'a str>,
    schema: Cow<'a, RawValue>,
) -> (Option<Cow<'a, str>>, Cow<'a, RawValue>) {
    let Ok(mut parsed) = serde_json::from_str::<Value>(schema.get()) else {
        // Unreachable: a RawValue is valid JSON. Sent as it came, Ollama will say.
        return (description.map(Cow::Borrowed), schema);
    };
    let mut notes = Vec::new();
    collect(&parsed, "", &mut notes);
    let schema = if has_bool_subschema(&parsed) {
        replace_bool_subschemas(&mut parsed);
        match serde_json::value::to_raw_value(&parsed) {
            Ok(raw) => Cow::Owned(raw),
            Err(_) => schema,
        }
    } else {
        schema
    };
    let description = match (description, notes.is_empty()) {
        (d, true) => d.map(Cow::Borrowed),
        (d, false) => Some(Cow::Owned(format!(
            "{}{}Constraints: {}.",
            d.unwrap_or(""),
            if d.is_some_and(|d| !d.is_empty()) {
                "\n\n"
            } else {
                ""
            },
            notes.join("; ")
        ))),
    };
    (description, schema)
}

/// `path: keyword value` for every dropped keyword, depth first, in document order.
fn collect(schema: &Value, path: &str, notes: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    for key in DROPPED {
        if let Some(v) = obj.get(*key) {
            let at = if path.is_empty() { "input" } else { path };
            notes.push(format!("{at}: {key} {}", compact(v)));
        }
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (name, sub) in props {
            let sub_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            collect(sub, &sub_path, notes);
        }
    }
    if let Some(items) = obj.get("items") {
        collect(
            items,
            &format!("{}[]", if path.is_empty() { "input" } else { path }),
            notes,
        );
    }
    // Kept by Ollama, so not a note itself; what its members drop is.
    for (i, member) in obj
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = if path.is_empty() { "input" } else { path };
        collect(member, &format!("{at} (anyOf {i})"), notes);
    }
}

fn compact(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 120 {
        format!("{}…", &text[..text.floor_char_boundary(120)])
    } else {
        text
    }
}

fn properties(obj: &Map<String, Value>) -> impl Iterator<Item = &Value> {
    obj.get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.values())
        .chain(obj.get("items"))
        .chain(
            obj.get("anyOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
}

fn has_bool_subschema(schema: &Value) -> bool {
    schema
        .as_object()
        .is_some_and(|o| properties(o).any(|s| s.is_boolean() || has_bool_subschema(s)))
}

fn replace_bool_subschemas(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for sub in props.values_mut() {
            if sub.is_boolean() {
                *sub = Value::Object(Map::new());
            } else {
                replace_bool_subschemas(sub);
            }
        }
    }
    if let Some(items) = obj.get_mut("items") {
        if items.is_boolean() {
            *items = Value::Object(Map::new());
        } else {
            replace_bool_subschemas(items);
        }
    }
    if let Some(Value::Array(members)) = obj.get_mut("anyOf") {
        for member in members {
            if member.is_boolean() {
                *member = Value::Object(Map::new());
            } else {
                replace_bool_subschemas(member);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    #[test]
    fn dropped_constraints_go_into_the_description() {
        let schema = raw(json!({"type": "object", "properties": {
            "timeout": {"type": "number", "maximum": 600000},
            "path": {"type": "string", "format": "uri"},
            "plain": {"type": "string"}}}));
        let (d, s) = for_ollama(Some("Run a command."), Cow::Borrowed(&*schema));
        assert_eq!(
            d.unwrap(),
            "Run a command.\n\nConstraints: timeout: maximum 600000; path: format \"uri\"."
        );
        assert!(
            matches!(s, Cow::Borrowed(_)),
            "the schema itself is unchanged"
        );
    }

    #[test]
    fn nothing_dropped_leaves_both_borrowed() {
        let schema = raw(
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
        );
        let (d, s) = for_ollama(Some("x"), Cow::Borrowed(&*schema));
        assert!(matches!(d, Some(Cow::Borrowed("x"))));
        assert!(matches!(s, Cow::Borrowed(_)));
    }

    /// Ollama keeps `anyOf` (its members decode as `ToolProperty`): it is no note, what
    /// its members drop is, and a boolean member would be a 400.
    #[test]
    fn any_of_is_kept_and_its_members_are_followed() {
        let schema = raw(json!({"type": "object", "properties": {
            "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "minimum": 0}, true]}}}));
        let (d, s) = for_ollama(None, Cow::Borrowed(&*schema));
        assert_eq!(
            d.unwrap(),
            "Constraints: when (anyOf 0): format \"date-time\"; when (anyOf 1): minimum 0."
        );
        let s: serde_json::Value = serde_json::from_str(s.get()).unwrap();
        assert_eq!(s["properties"]["when"]["anyOf"][2], json!({}));
        assert_eq!(s["properties"]["when"]["anyOf"][0]["format"], "date-time");
    }

    #[test]
    fn boolean_subschemas_become_any_value() {
        let schema = raw(
            json!({"type": "object", "properties": {"x": true, "y": {"type": "array", "items": false}}}),
        );
        let (_, s) = for_ollama(None, Cow::Borrowed(&*schema));
        let s: serde_json::Value = serde_json::from_str(s.get()).unwrap();
        assert_eq!(s["properties"]["x"], json!({}));
        assert_eq!(s["properties"]["y"]["items"], json!({}));
    }
}
