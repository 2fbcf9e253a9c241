//! Lenient parsing of tool-call arguments. Each fix is one a reader would make
//! without guessing: a code fence around the object, raw newlines or tabs inside
//! strings, JSON5 syntax (single quotes, trailing commas), and, only when the stream
//! ended inside the object, the closing quotes and brackets it was cut before.
//! Anything else stays an error: a wrong guess would run a command the model never
//! meant.

use serde_json::Value;

/// Which syntax fix made the arguments parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxFix {
    /// Valid JSON as sent.
    None,
    /// A ```json fence around the object.
    Fence,
    /// Raw control characters (newline, tab) inside a string.
    RawControl,
    /// JSON5: single quotes, trailing commas, unquoted keys.
    Json5,
    /// The object was cut off at the end of the answer and has been closed.
    Closed,
}

impl SyntaxFix {
    pub fn as_str(self) -> &'static str {
        match self {
            SyntaxFix::None => "none",
            SyntaxFix::Fence => "fence",
            SyntaxFix::RawControl => "raw_newline",
            SyntaxFix::Json5 => "json5",
            SyntaxFix::Closed => "truncated",
        }
    }
}

/// Parse `raw` as JSON, applying the fixes above in order of how little they change.
/// `at_end` says the text is all there will ever be (the answer is over), which is
/// what makes closing a cut-off object safe.
pub fn parse_lenient(raw: &str, at_end: bool) -> Result<(Value, SyntaxFix), String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok((Value::Object(Default::default()), SyntaxFix::None));
    }
    let first_error = match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => return Ok((v, SyntaxFix::None)),
        Err(e) => e.to_string(),
    };
    let unfenced = strip_fence(trimmed);
    if let Some(inner) = unfenced {
        if let Ok(v) = serde_json::from_str::<Value>(inner) {
            return Ok((v, SyntaxFix::Fence));
        }
    }
    let text = unfenced.unwrap_or(trimmed);
    let escaped = escape_raw_controls(text);
    if let Some(escaped) = escaped.as_deref() {
        if let Ok(v) = serde_json::from_str::<Value>(escaped) {
            return Ok((v, SyntaxFix::RawControl));
        }
    }
    let text = escaped.as_deref().unwrap_or(text);
    if let Ok(v) = json5::from_str::<Value>(text) {
        return Ok((v, SyntaxFix::Json5));
    }
    if at_end {
        if let Some(closed) = close_truncated(text) {
            if let Ok(v) = serde_json::from_str::<Value>(&closed) {
                return Ok((v, SyntaxFix::Closed));
            }
            if let Ok(v) = json5::from_str::<Value>(&closed) {
                return Ok((v, SyntaxFix::Closed));
            }
        }
    }
    Err(first_error)
}

/// The body of a Markdown code fence (```json … ``` or ``` … ```), if `text` is one.
pub fn strip_fence(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("```")?;
    let body_start = rest.find('\n')?;
    let lang = rest[..body_start].trim();
    if !lang.is_empty() && !lang.eq_ignore_ascii_case("json") {
        return None;
    }
    let body = &rest[body_start + 1..];
    let body = body.trim_end();
    Some(body.strip_suffix("```").unwrap_or(body).trim())
}

/// Where a character stands relative to JSON strings, as text is read left to right.
#[derive(Debug, Default)]
struct StringState {
    in_string: bool,
    escaped: bool,
    quote: char,
}

impl StringState {
    /// Take `c`; true when it is inside a string (its quotes excluded). `single`
    /// lets `'` open a string too (JSON5).
    fn step(&mut self, c: char, single: bool) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == self.quote {
                self.in_string = false;
                return false;
            }
            return true;
        }
        if c == '"' || (single && c == '\'') {
            self.in_string = true;
            self.quote = c;
        }
        false
    }
}

/// Escape raw newlines, carriage returns and tabs that sit inside JSON strings.
/// None when there were none.
fn escape_raw_controls(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut state = StringState::default();
    let mut changed = false;
    for c in text.chars() {
        let inside = state.step(c, true);
        match c {
            '\n' | '\r' | '\t' if inside => {
                changed = true;
                out.push_str(match c {
                    '\n' => "\\n",
                    '\r' => "\\r",
                    _ => "\\t",
                });
            }
            _ => out.push(c),
        }
    }
    changed.then_some(out)
}

/// Close an object whose closing brackets were cut off at the end of the stream.
/// Only brackets are added: when the text ends inside a string, a number, or after a
/// key or separator, what was cut is unknowable (`ls -la /ho` is not `ls -la /home`),
/// and None is returned.
fn close_truncated(text: &str) -> Option<String> {
    if !text.starts_with('{') {
        return None;
    }
    let mut stack = Vec::new();
    let mut state = StringState::default();
    for c in text.chars() {
        if state.step(c, false) || c == '"' {
            continue;
        }
        match c {
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            '}' | ']' if stack.pop() != Some(c) => return None,
            _ => {}
        }
    }
    let tail = text.trim_end();
    let ends_with_value = tail.ends_with(['"', '}', ']'])
        || tail.ends_with("true")
        || tail.ends_with("false")
        || tail.ends_with("null");
    if state.in_string || stack.is_empty() || !ends_with_value {
        return None;
    }
    let mut out = tail.to_owned();
    while let Some(closer) = stack.pop() {
        out.push(closer);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(raw: &str, at_end: bool) -> (Value, SyntaxFix) {
        parse_lenient(raw, at_end).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn each_fix_and_only_when_needed() {
        assert_eq!(ok(r#"{"a":1}"#, false), (json!({"a":1}), SyntaxFix::None));
        assert_eq!(ok("  ", false), (json!({}), SyntaxFix::None));
        assert_eq!(
            ok("```json\n{\"a\":1}\n```", false),
            (json!({"a":1}), SyntaxFix::Fence)
        );
        assert_eq!(
            ok("{\"command\": \"echo a\necho b\"}", false),
            (json!({"command": "echo a\necho b"}), SyntaxFix::RawControl)
        );
        assert_eq!(
            ok("{'command': 'ls', 'timeout': 5,}", false),
            (json!({"command": "ls", "timeout": 5}), SyntaxFix::Json5)
        );
        assert_eq!(
            ok(r#"{"command": "ls -la", "description": "list""#, true),
            (
                json!({"command": "ls -la", "description": "list"}),
                SyntaxFix::Closed
            )
        );
        assert_eq!(
            ok(r#"{"edits": [{"old": "a", "new": "b"}"#, true),
            (
                json!({"edits": [{"old": "a", "new": "b"}]}),
                SyntaxFix::Closed
            )
        );
    }

    #[test]
    fn guesses_are_refused() {
        // Cut off, but the stream is not over: more may come.
        assert!(parse_lenient(r#"{"command": "ls"#, false).is_err());
        // Cut after a key or a separator: the value is unknowable.
        assert!(parse_lenient(r#"{"command": "ls", "timeout":"#, true).is_err());
        assert!(parse_lenient(r#"{"command": "ls","#, true).is_err());
        // Cut inside a string or a number: closing it would run something else.
        assert!(parse_lenient(r#"{"command": "ls -la /ho"#, true).is_err());
        assert!(parse_lenient(r#"{"command": "sleep", "timeout": 12"#, true).is_err());
        // Mismatched brackets, prose, a fence in another language.
        assert!(parse_lenient(r#"{"a": [1}"#, true).is_err());
        assert!(parse_lenient("I will run ls now", true).is_err());
        assert!(parse_lenient("```python\nprint(1)\n```", true).is_err());
    }
}
