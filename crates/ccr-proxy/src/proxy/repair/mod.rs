//! Tool-call repair: a local model's tool call is made to fit the tools the client
//! offered before Claude Code sees it, or it is refused so the attempt can be retried
//! with a corrective note and then fall back.
//!
//! Repairs are made only where one reading is possible (see each submodule). The
//! pipeline for one call is: name ([`names`]) → arguments syntax ([`json`]) → shape
//! (a stringified object, a wrapping `{"arguments": …}`) → the tool's `input_schema`
//! with safe coercions ([`schema`]). An answer whose whole text is a call is turned
//! into a call by [`text_call`].
//!
//! The catalog keeps the client's request body and reads a tool's schema from it
//! only when a call needs checking, so a streamed answer does not hold a copy of
//! 60 KB of schemas while the model thinks.

pub mod json;
pub mod names;
pub mod schema;
pub mod stream;
pub mod text_call;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use names::NameFix;

/// The error kind (log and ledger) of an answer whose tool call no repair could make
/// fit the offered tools; the fallback chain reads it to try the next target.
pub const TOOL_CALL_INVALID: &str = "tool_call_invalid";

/// The tools a request offered: their names, and the body to read schemas from.
#[derive(Debug, Clone, Default)]
pub struct ToolCatalog {
    names: Vec<String>,
    body: Bytes,
}

impl ToolCatalog {
    /// `body` is the client's request as received (its `tools` hold the schemas).
    pub fn new(names: Vec<String>, body: Bytes) -> ToolCatalog {
        ToolCatalog { names, body }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The `input_schema` of an offered tool, parsed from the request body.
    pub fn schema(&self, name: &str) -> Option<Value> {
        #[derive(Deserialize)]
        struct Body<'a> {
            #[serde(borrow, default)]
            tools: Vec<ToolSchema<'a>>,
        }
        #[derive(Deserialize)]
        struct ToolSchema<'a> {
            name: String,
            #[serde(borrow, default)]
            input_schema: Option<&'a RawValue>,
        }
        let body: Body<'_> = serde_json::from_slice(&self.body).ok()?;
        let raw = body
            .tools
            .into_iter()
            .find(|t| t.name == name)?
            .input_schema?;
        serde_json::from_str(raw.get()).ok()
    }
}

/// One repair made to a call, for the log and the ledger's `repairs` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepairKind {
    /// The name was matched to an offered tool.
    Name,
    /// The arguments' JSON syntax was fixed.
    Syntax,
    /// The arguments were unwrapped (a string holding the object, `{"arguments": …}`).
    Shape,
    /// Values were coerced to fit the schema, or forbidden properties dropped.
    Coerced,
    /// The call was printed as text and made a tool call.
    TextCall,
}

impl RepairKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RepairKind::Name => "name",
            RepairKind::Syntax => "syntax",
            RepairKind::Shape => "shape",
            RepairKind::Coerced => "coerced",
            RepairKind::TextCall => "text_call",
        }
    }
}

/// A call that fits an offered tool.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedCall {
    pub name: String,
    pub input: Value,
    /// Empty when the call was fine as sent.
    pub repairs: Vec<RepairKind>,
    /// What was changed, in words, for the log.
    pub detail: Vec<String>,
}

/// A call that cannot be made to fit: the reason is what the corrective note tells
/// the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tool call `{}`: {reason}", crate::sanitize::field(.name))]
pub struct Unfit {
    pub name: String,
    pub reason: String,
}

/// Make one call fit. `raw_args` is the arguments text as the model produced it;
/// `at_end` says the answer is over (a cut-off object may then be closed).
pub fn fit_call(
    catalog: &ToolCatalog,
    name: &str,
    raw_args: &str,
    at_end: bool,
) -> Result<FittedCall, Unfit> {
    let unfit = |reason: String| Unfit {
        name: name.to_owned(),
        reason,
    };
    let (offered, name_fix) = names::resolve(name, catalog.names()).ok_or_else(|| {
        unfit(format!(
            "no tool of that name was offered; the tools are: {}",
            catalog.names().join(", ")
        ))
    })?;
    let mut call = FittedCall {
        name: offered.to_owned(),
        input: Value::Null,
        repairs: Vec::new(),
        detail: Vec::new(),
    };
    if name_fix != NameFix::Exact {
        call.repairs.push(RepairKind::Name);
        call.detail.push(format!("name {name:?} → {offered:?}"));
    }
    let (mut args, syntax) = match json::parse_lenient(raw_args, at_end) {
        Ok(parsed) => parsed,
        // `python` takes its code as raw text.
        Err(_) if name_fix == NameFix::Alias => {
            (Value::String(raw_args.to_owned()), json::SyntaxFix::None)
        }
        Err(e) => return Err(unfit(format!("the arguments are not valid JSON ({e})"))),
    };
    if syntax != json::SyntaxFix::None {
        call.repairs.push(RepairKind::Syntax);
        call.detail.push(format!("arguments {}", syntax.as_str()));
    }
    if name_fix == NameFix::Alias {
        args = names::alias_arguments(name, args).ok_or_else(|| {
            unfit(format!(
                "`{name}` is not available; call `{offered}` with its own arguments"
            ))
        })?;
    }
    let schema = catalog.schema(offered);
    if let Some(unwrapped) = unwrap_shape(args.clone(), offered, schema.as_ref()) {
        args = unwrapped;
        call.repairs.push(RepairKind::Shape);
        call.detail.push("arguments unwrapped".into());
    }
    if !args.is_object() {
        return Err(unfit("the arguments must be a JSON object".into()));
    }
    if let Some(schema) = &schema {
        let coerced = schema::fit(schema, &mut args).map_err(|e| unfit(e.0))?;
        if !coerced.is_empty() {
            call.repairs.push(RepairKind::Coerced);
            call.detail.push(format!("coerced {coerced:?}"));
        }
    }
    call.input = args;
    Ok(call)
}

/// The object inside a wrapper the model put around it: a JSON string holding the
/// object, `{"arguments": {…}}` / `{"parameters": …}` / `{"input": …}` when the
/// schema has no such property, or `{"name": <this tool>, "arguments": {…}}`.
fn unwrap_shape(args: Value, tool: &str, schema: Option<&Value>) -> Option<Value> {
    let declared = |key: &str| {
        schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .is_some_and(|p| p.contains_key(key))
    };
    let as_object = |v: Value| -> Option<Value> {
        match v {
            Value::Object(_) => Some(v),
            Value::String(s) => serde_json::from_str::<Value>(&s)
                .ok()
                .filter(Value::is_object),
            _ => None,
        }
    };
    match args {
        Value::String(s) => serde_json::from_str::<Value>(&s)
            .ok()
            .filter(Value::is_object)
            .map(|inner| unwrap_shape(inner.clone(), tool, schema).unwrap_or(inner)),
        Value::Object(mut obj) => {
            let named_self = obj.get("name").and_then(Value::as_str) == Some(tool);
            if named_self && !declared("name") {
                obj.remove("name");
            }
            if obj.len() != 1 {
                return None;
            }
            let (key, _) = obj.iter().next()?;
            if !["arguments", "parameters", "input", "args"].contains(&key.as_str())
                || declared(key)
            {
                return None;
            }
            let (_, inner) = obj.into_iter().next()?;
            as_object(inner)
        }
        _ => None,
    }
}

/// The note sent with the one local retry of an answer whose tool call did not fit.
/// Short, and added after the conversation so the prompt's cached prefix still holds.
pub fn corrective_note(unfit: &Unfit) -> String {
    format!(
        "Your previous answer tried to call a tool but the call was invalid: {unfit}. \
         Answer again. To use a tool, make a proper tool call to one of the offered tools \
         with arguments that match its input schema; do not print the call as text."
    )
}

/// An OpenAI chat request body with the corrective note appended as a last system
/// message (the earlier messages, and so the server's cached prefix, are untouched).
/// None when the body is not a chat request.
pub fn openai_body_with_note(body: &[u8], note: &str) -> Option<Vec<u8>> {
    let mut request: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let Some(Value::Array(messages)) = request.get_mut("messages") else {
        return None;
    };
    messages.push(serde_json::json!({"role": "system", "content": note}));
    serde_json::to_vec(&request).ok()
}

#[cfg(test)]
pub(crate) mod tests;
