//! A tool call the model printed as text instead of calling. Three shapes are seen:
//! the whole answer is one JSON object naming a tool (often in a ```json fence);
//! gpt-oss's harmony framing leaked into the text
//! (`<|channel|>commentary to=functions.Bash <|constrain|>json<|message|>{…}<|call|>`)
//! when the server's parser did not catch it; or qwen3-coder's (and qwen3.5's) XML
//! call (`<tool_call><function=Bash><parameter=command>ls</parameter></function>`),
//! which Ollama 0.33–0.34 leaks as text when the model drops the opening `<tool_call>`
//! (ollama#16686, #14834, #18563), often after a line of prose. Each becomes a tool
//! call only when the name is an offered tool and the arguments fit its schema;
//! anything else stays text.

use serde_json::Value;

use super::{fit_call, json, FittedCall, RepairKind, ToolCatalog, Unfit};

/// Texts longer than this are prose, not a printed call (and are not scanned).
const MAX_CALL_TEXT: usize = 64 * 1024;

/// Could `text`, so far, still turn out to be a printed call? Lets a stream hold
/// such text back until it is complete, and pass any other text on at once.
pub fn may_be_call(text_so_far: &str) -> bool {
    let t = text_so_far.trim_start();
    if let Some(fenced) = t.strip_prefix("```") {
        // A fence in another language (```python) is code to show, not a call.
        return match fenced.split_once('\n') {
            Some((lang, _)) => matches!(lang.trim(), "" | "json" | "JSON"),
            None => {
                fenced.len() <= 4 && "json".starts_with(fenced.trim().to_ascii_lowercase().as_str())
            }
        };
    }
    t.is_empty()
        || t.starts_with('{')
        || "```".starts_with(t)
        || "<|".starts_with(t)
        || t.starts_with("<|")
}

/// What an answer's text is, when tools were offered.
#[derive(Debug, Clone, PartialEq)]
pub enum TextVerdict {
    /// Prose (or JSON that is not shaped like a call): passed on as text.
    Prose,
    /// A printed call that fits an offered tool: becomes a tool_use block.
    Call(FittedCall),
    /// Prose, then an XML call that fits: a text block, then a tool_use block.
    ProseThenCall(String, FittedCall),
    /// Tool-call markup or a call-shaped object that cannot be made to fit: the
    /// model tried to call and failed, so the answer is retried, not shown.
    Attempt(Unfit),
}

/// Markup that only appears when a model tried to call a tool and the server's
/// parser did not catch it: harmony frames, Qwen/Hermes tags, Granite's token.
const CALL_MARKUP: &[&str] = &[
    "<|channel|>",
    "<|message|>",
    "<|tool_call|>",
    "<tool_call>",
    "<function=",
    "<parameter=",
    "<function-name>",
    " to=functions.",
];

/// Classify an answer's whole text (the answer is over).
pub fn classify(catalog: &ToolCatalog, text: &str) -> TextVerdict {
    if catalog.is_empty() {
        return TextVerdict::Prose;
    }
    if let Some(call) = find(catalog, text) {
        return TextVerdict::Call(call);
    }
    if let Some(at) = xml_call_start(text).filter(|at| *at > 0) {
        if let Some(call) = find(catalog, &text[at..]) {
            return TextVerdict::ProseThenCall(text[..at].trim_end().to_owned(), call);
        }
    }
    let trimmed = text.trim();
    let attempt = |what: &str| {
        TextVerdict::Attempt(Unfit {
            name: "(printed as text)".into(),
            reason: format!(
                "the call was printed as text ({what}) instead of being made as a tool call"
            ),
        })
    };
    if let Some(marker) = CALL_MARKUP.iter().find(|m| trimmed.contains(**m)) {
        return attempt(&format!("with `{}` markup", marker.trim()));
    }
    let (name, args) = match harmony(trimmed).or_else(|| object(trimmed)) {
        Some(found) => found,
        None if call_shaped_json(trimmed) || names_a_tool_first(trimmed) => {
            return attempt("as a JSON object")
        }
        None => return TextVerdict::Prose,
    };
    match fit_call(catalog, &name, &args, true) {
        Ok(_) => TextVerdict::Prose, // unreachable: `find` would have taken it
        Err(unfit) => TextVerdict::Attempt(unfit),
    }
}

/// A whole-text JSON object or array shaped like a call that `object` could not
/// read: an array of calls, or a JSON-RPC request.
fn call_shaped_json(text: &str) -> bool {
    let inner = json::strip_fence(text).unwrap_or(text);
    let Ok((value, _)) = json::parse_lenient(inner, true) else {
        return false;
    };
    let call_like = |v: &Value| {
        v.as_object().is_some_and(|o| {
            (o.contains_key("name") || o.contains_key("method"))
                && ["arguments", "parameters", "params", "input", "args"]
                    .iter()
                    .any(|k| o.contains_key(*k))
        })
    };
    match &value {
        Value::Array(items) => !items.is_empty() && items.iter().all(call_like),
        other => call_like(other),
    }
}

/// A whole-text object whose first key names a tool (`{"name": …`), even when the
/// rest does not parse (unescaped quotes in a file's content, a cut-off answer).
fn names_a_tool_first(text: &str) -> bool {
    let inner = json::strip_fence(text).unwrap_or(text);
    let Some(rest) = inner.strip_prefix('{') else {
        return false;
    };
    let rest = rest.trim_start();
    [
        "\"name\"",
        "\"tool\"",
        "\"tool_name\"",
        "\"function\"",
        "\"tool_calls\"",
    ]
    .iter()
    .any(|key| rest.starts_with(key) && rest[key.len()..].trim_start().starts_with(':'))
}

/// The call printed in `text`, if the whole text is one.
pub fn find(catalog: &ToolCatalog, text: &str) -> Option<FittedCall> {
    let text = text.trim();
    if catalog.is_empty() || text.is_empty() || text.len() > MAX_CALL_TEXT {
        return None;
    }
    let (name, args) = harmony(text)
        .or_else(|| qwen_xml(text))
        .or_else(|| object(text))?;
    let mut call = fit_call(catalog, &name, &args, true).ok()?;
    call.repairs.insert(0, RepairKind::TextCall);
    call.detail.insert(0, "printed as text".into());
    Some(call)
}

/// `…to=functions.NAME …<|message|>ARGS<|call|>` (the end marker may be missing).
fn harmony(text: &str) -> Option<(String, String)> {
    if !text.starts_with("<|") {
        return None;
    }
    let after_to = &text[text.find(" to=")? + 4..];
    let name: String = after_to
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '<')
        .collect();
    let message = &text[text.find("<|message|>")? + "<|message|>".len()..];
    let args = message
        .split("<|call|>")
        .next()
        .unwrap_or(message)
        .split("<|end|>")
        .next()
        .unwrap_or(message);
    (!name.is_empty()).then(|| (name, args.trim().to_owned()))
}

/// Where an XML call (`<tool_call>` or a bare `<function=`) starts in `text`.
pub fn xml_call_start(text: &str) -> Option<usize> {
    match (text.find("<tool_call>"), text.find("<function=")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// qwen3-coder's call, as its chat template writes it:
/// `<tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n</function>\n</tool_call>`.
/// The opening `<tool_call>` is often missing (an orphan `</tool_call>` may follow),
/// and a cut-off answer may lack the closing tags. Values are raw text, one newline
/// trimmed at each end (as vLLM's qwen3coder parser reads them); a JSON array or
/// object is parsed, anything else stays a string for the schema coercions
/// (`"5"` → 5 where an integer is wanted). One call per answer: a second is no match.
fn qwen_xml(text: &str) -> Option<(String, String)> {
    let t = text.trim();
    let t = t.strip_prefix("<tool_call>").unwrap_or(t).trim_start();
    let rest = t.strip_prefix("<function=")?;
    let close = rest.find('>')?;
    let name = rest[..close].trim();
    let mut body = &rest[close + 1..];
    let (end, after) = match body.find("</function>") {
        Some(e) => (e, &body[e + "</function>".len()..]),
        None => (body.len(), ""),
    };
    let tail = after.trim().trim_start_matches("</tool_call>").trim();
    if !tail.is_empty() || name.is_empty() || name.contains(['<', '\n']) {
        return None;
    }
    body = &body[..end];
    let mut args = serde_json::Map::new();
    while let Some(at) = body.find("<parameter=") {
        let after = &body[at + "<parameter=".len()..];
        let close = after.find('>')?;
        let key = after[..close].trim();
        let value = &after[close + 1..];
        let (value, next) = match value.find("</parameter>") {
            Some(e) => (&value[..e], &value[e + "</parameter>".len()..]),
            // No closing tag: up to the next parameter.
            None => {
                let e = value.find("<parameter=").unwrap_or(value.len());
                (&value[..e], &value[e..])
            }
        };
        let value = value.strip_prefix('\n').unwrap_or(value);
        let value = value.strip_suffix('\n').unwrap_or(value);
        let parsed = match value.trim_start().chars().next() {
            Some('[' | '{') => serde_json::from_str(value).ok(),
            _ => None,
        };
        args.insert(
            key.to_owned(),
            parsed.unwrap_or_else(|| Value::String(value.to_owned())),
        );
        body = next;
    }
    Some((name.to_owned(), Value::Object(args).to_string()))
}

/// `{"name": N, "arguments": A}` and its common variants, whole or fenced.
fn object(text: &str) -> Option<(String, String)> {
    let inner = json::strip_fence(text).unwrap_or(text);
    if !inner.starts_with('{') {
        return None;
    }
    let (value, _) = json::parse_lenient(inner, true).ok()?;
    let mut obj = match value {
        Value::Object(o) => o,
        _ => return None,
    };
    if let Some(Value::Array(mut calls)) = obj.remove("tool_calls") {
        if calls.len() != 1 {
            return None;
        }
        obj = match calls.pop()? {
            Value::Object(o) => o,
            _ => return None,
        };
    }
    if let Some(Value::Object(function)) = obj.remove("function") {
        obj = function;
    }
    let name = ["name", "tool", "tool_name", "recipient_name"]
        .iter()
        .find_map(|k| obj.remove(*k).and_then(|v| v.as_str().map(str::to_owned)))?;
    let args = ["arguments", "parameters", "input", "args"]
        .iter()
        .find_map(|k| obj.remove(*k))?;
    if !obj.keys().all(|k| k == "type" || k == "id") {
        return None;
    }
    let args = match args {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Some((name, args))
}
