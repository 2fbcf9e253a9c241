//! Checking arguments against the tool's `input_schema`, with the coercions a
//! careful reader would apply: `"5"` where an integer is wanted, `"true"` for a
//! boolean, a single value where an array is wanted, a stringified object where an
//! object is wanted, and properties the schema forbids dropped when nothing required
//! is missing. Claude Code rejects a call that does not fit ("Invalid tool
//! parameters") and the turn is lost, so a call is only passed on when it fits.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::JsonType;
use serde_json::Value;

/// A coercion that was applied, for the log and the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coercion {
    Number,
    Boolean,
    ToArray,
    ToString,
    ParsedObject,
    DroppedProperty,
}

/// The first error left after coercion, worded for the model's corrective note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaMismatch(pub String);

/// How many rounds of coercion to try; each round fixes at least one error.
const MAX_ROUNDS: usize = 16;

/// Validate `args` against `schema`, coercing in place. Returns the coercions made,
/// or the first remaining error. A schema the validator cannot compile is not held
/// against the call (the client wrote it; the client will check the call itself).
pub fn fit(schema: &Value, args: &mut Value) -> Result<Vec<Coercion>, SchemaMismatch> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!("tool schema does not compile ({e}); arguments not checked");
            return Ok(Vec::new());
        }
    };
    let mut applied = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let errors: Vec<(String, Fixable, String)> = validator
            .iter_errors(args)
            .map(|e| {
                (
                    e.instance_path().as_str().to_owned(),
                    Fixable::of(e.kind()),
                    describe(&e),
                )
            })
            .collect();
        let Some(first) = errors.first() else {
            return Ok(applied);
        };
        let fixed = errors
            .iter()
            .filter_map(|(path, kind, _)| coerce_at(args, path, kind))
            .collect::<Vec<_>>();
        if fixed.is_empty() {
            return Err(SchemaMismatch(first.2.clone()));
        }
        applied.extend(fixed);
    }
    Err(SchemaMismatch(
        "the arguments still do not fit the schema after coercion".into(),
    ))
}

/// The error's JSON pointer and kind, never the value: jsonschema's own message quotes
/// the instance (a whole file the model meant to write), and this text reaches the
/// log and the 502 body. Pointer and message are capped (keys are the model's too).
fn describe(e: &jsonschema::ValidationError<'_>) -> String {
    let path = crate::sanitize::untrusted(e.instance_path().as_str(), 128);
    let masked = e.masked().to_string();
    let message = crate::sanitize::untrusted(&masked, 200);
    let keyword = e.kind().keyword();
    if path.is_empty() {
        format!("{message} ({keyword})")
    } else {
        format!("{path}: {message} ({keyword})")
    }
}

/// The errors a coercion can fix, copied out of the validator's error.
enum Fixable {
    /// The value has the wrong type; these types are wanted.
    Type(Vec<JsonType>),
    /// The object has properties the schema forbids.
    Extra(Vec<String>),
    Other,
}

impl Fixable {
    fn of(kind: &ValidationErrorKind) -> Fixable {
        match kind {
            ValidationErrorKind::Type { kind } => Fixable::Type(match kind {
                TypeKind::Single(t) => vec![*t],
                TypeKind::Multiple(set) => set.iter().collect(),
            }),
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                Fixable::Extra(unexpected.clone())
            }
            _ => Fixable::Other,
        }
    }
}

/// Apply the one safe coercion for this error, if there is one.
fn coerce_at(args: &mut Value, path: &str, kind: &Fixable) -> Option<Coercion> {
    match kind {
        Fixable::Type(wanted) => coerce_type(args.pointer_mut(path)?, wanted),
        Fixable::Extra(unexpected) => {
            let obj = args.pointer_mut(path)?.as_object_mut()?;
            for key in unexpected {
                obj.shift_remove(key);
            }
            Some(Coercion::DroppedProperty)
        }
        Fixable::Other => None,
    }
}

fn coerce_type(target: &mut Value, wanted: &[JsonType]) -> Option<Coercion> {
    let wants = |t: JsonType| wanted.contains(&t);
    let replacement = match &*target {
        Value::String(s) => {
            let s = s.trim();
            if wants(JsonType::Integer) {
                s.parse::<i64>()
                    .ok()
                    .map(|n| (Value::from(n), Coercion::Number))
            } else if wants(JsonType::Number) {
                // `"5000"` stays the integer it reads as, not 5000.0.
                s.parse::<i64>()
                    .ok()
                    .map(serde_json::Number::from)
                    .or_else(|| s.parse::<f64>().ok().and_then(serde_json::Number::from_f64))
                    .map(|n| (Value::Number(n), Coercion::Number))
            } else if wants(JsonType::Boolean) {
                match s {
                    "true" => Some((Value::Bool(true), Coercion::Boolean)),
                    "false" => Some((Value::Bool(false), Coercion::Boolean)),
                    _ => None,
                }
            } else if wants(JsonType::Object) || wants(JsonType::Array) {
                serde_json::from_str::<Value>(s)
                    .ok()
                    .filter(|v| {
                        (v.is_object() && wants(JsonType::Object))
                            || (v.is_array() && wants(JsonType::Array))
                    })
                    .map(|v| (v, Coercion::ParsedObject))
                    .or_else(|| {
                        wants(JsonType::Array)
                            .then(|| (Value::Array(vec![target.clone()]), Coercion::ToArray))
                    })
            } else {
                None
            }
        }
        Value::Number(n) if wants(JsonType::String) => {
            Some((Value::String(n.to_string()), Coercion::ToString))
        }
        Value::Bool(b) if wants(JsonType::String) => {
            Some((Value::String(b.to_string()), Coercion::ToString))
        }
        other if wants(JsonType::Array) && !other.is_array() && !other.is_null() => {
            Some((Value::Array(vec![other.clone()]), Coercion::ToArray))
        }
        _ => None,
    };
    let (value, coercion) = replacement?;
    *target = value;
    Some(coercion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bash_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "command": {"type": "string"},
                "timeout": {"type": "number"},
                "run_in_background": {"type": "boolean"}
            },
            "required": ["command"],
            "additionalProperties": false
        })
    }

    #[test]
    fn safe_coercions_make_a_call_fit() {
        let mut args = json!({"command": "ls", "timeout": "5000", "run_in_background": "false"});
        let applied = fit(&bash_schema(), &mut args).unwrap();
        assert_eq!(
            args,
            json!({"command": "ls", "timeout": 5000, "run_in_background": false})
        );
        assert!(applied.contains(&Coercion::Number) && applied.contains(&Coercion::Boolean));

        let schema = json!({"type": "object", "properties": {
            "paths": {"type": "array", "items": {"type": "string"}},
            "limit": {"type": "integer"},
            "todo": {"type": "object", "properties": {"id": {"type": "string"}}}
        }});
        let mut args = json!({"paths": "src/main.rs", "limit": "20", "todo": "{\"id\": \"1\"}"});
        fit(&schema, &mut args).unwrap();
        assert_eq!(
            args,
            json!({"paths": ["src/main.rs"], "limit": 20, "todo": {"id": "1"}})
        );
    }

    #[test]
    fn extra_properties_are_dropped_but_missing_ones_are_not_invented() {
        let mut args = json!({"command": "ls", "cwd": "/tmp"});
        assert_eq!(
            fit(&bash_schema(), &mut args).unwrap(),
            vec![Coercion::DroppedProperty]
        );
        assert_eq!(args, json!({"command": "ls"}));

        let mut args = json!({"cmd": "ls"});
        let err = fit(&bash_schema(), &mut args).unwrap_err();
        assert!(err.0.contains("command"), "{}", err.0);
        // Not a number, not coerced.
        let mut args = json!({"command": "ls", "timeout": "soon"});
        let err = fit(&bash_schema(), &mut args).unwrap_err();
        assert!(err.0.contains("/timeout"), "{}", err.0);
    }

    #[test]
    fn a_mismatch_names_the_pointer_and_kind_never_the_value() {
        let content = format!("SECRET-FILE {}", "line\n".repeat(60_000));
        let mut args = json!({"command": "ls", "timeout": content});
        let err = fit(&bash_schema(), &mut args).unwrap_err();
        assert!(
            !err.0.contains("SECRET"),
            "{}",
            &err.0[..err.0.len().min(300)]
        );
        assert!(err.0.len() < 400, "{} bytes", err.0.len());
        assert!(err.0.starts_with("/timeout: "), "{}", err.0);
        assert!(err.0.ends_with("(type)"), "{}", err.0);
    }
}
