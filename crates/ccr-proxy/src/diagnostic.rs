//! What went wrong and what to do about it, as data. Domain modules build these (they
//! never print); `crate::output` renders them the one way every command shows a
//! failure: `error: …`, then a `caused by: …` line per cause, then `hint: …`.
//!
//! A failure that several commands report (Ollama missing, Ollama too old) is worded
//! once, by a constructor next to the code that detects it, and reused as is by `up`,
//! `doctor` and `serve`.

use std::error::Error as StdError;

/// A failure's message plus the fix, when there is one to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Diagnostic {
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            hint: None,
        }
    }

    /// The same failure with what to do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// The hint, or an empty string (for the step lines that always show one).
    pub fn hint_or_empty(&self) -> &str {
        self.hint.as_deref().unwrap_or_default()
    }
}

/// Errors that know their own fix. The renderer asks every error in a chain, so a
/// typed error deep inside an `anyhow` context still contributes its hint.
pub trait Hint {
    fn hint(&self) -> Option<String>;
}

/// An error and its causes as separate messages, outermost first, each said once: a
/// cause whose text an earlier message already contains is left out.
pub fn messages(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        let text = text.trim();
        if !text.is_empty() && !out.iter().any(|seen| seen.contains(text)) {
            out.push(text.to_owned());
        }
        next = e.source();
    }
    out
}

/// One line for a step or a log: the error and its causes joined with `: `.
pub fn one_line(err: &(dyn StdError + 'static)) -> String {
    messages(err).join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_are_listed_once_each() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(messages(&e), ["outer", "disk on fire"]);
        assert_eq!(one_line(&e), "outer: disk on fire");
        // A message that already says its cause does not get it repeated.
        let d = Diagnostic::new("cannot read x: disk on fire");
        assert_eq!(messages(&d), ["cannot read x: disk on fire"]);
    }
}
