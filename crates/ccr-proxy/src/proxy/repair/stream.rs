//! What a streamed answer holds back so its tool calls can be repaired: the calls
//! themselves (until the answer ends: Claude Code runs tools only after
//! `message_stop`, so this costs no time), and text only while it may still be a
//! call printed as text. Prose streams as it arrives.

use std::borrow::Cow;

/// Markup that opens a call printed into the text mid-answer (Qwen/Hermes tags,
/// harmony frames). Text from such a marker on is held and classified at the end.
const MID_TEXT_MARKERS: &[&str] = &[
    "<|channel|>",
    "<|start|>",
    "<|message|>",
    "<|tool_call|>",
    "<tool_call>",
    "<function=",
    "<function-name>",
];

/// One tool call being received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingCall {
    pub id: Option<String>,
    pub name: Option<String>,
    pub args: String,
    index: Option<u32>,
}

/// The tool calls of an answer, assembled from their fragments.
#[derive(Debug, Clone, Default)]
pub struct CallBuffer {
    calls: Vec<PendingCall>,
    /// Position in `calls` of each upstream index: an answer of 60,000 calls must not
    /// search the list for every fragment.
    by_index: std::collections::HashMap<u32, usize, foldhash::fast::RandomState>,
    /// Bytes of arguments held, kept as fragments arrive.
    held: usize,
}

impl CallBuffer {
    /// Add a fragment. A fragment with an `index` belongs to the call with that index;
    /// without one (Ollama-style whole calls), a new id starts a new call and anything
    /// else continues the latest.
    pub fn push(&mut self, index: Option<u32>, id: Option<&str>, name: Option<&str>, args: &str) {
        let slot = match index {
            Some(i) => self.by_index.get(&i).copied(),
            None => match (self.calls.last(), id) {
                (Some(last), None) if last.index.is_none() => Some(self.calls.len() - 1),
                (Some(last), Some(id))
                    if last.index.is_none() && last.id.as_deref() == Some(id) =>
                {
                    Some(self.calls.len() - 1)
                }
                _ => None,
            },
        };
        let slot = slot.unwrap_or_else(|| {
            self.calls.push(PendingCall {
                index,
                ..PendingCall::default()
            });
            if let Some(i) = index {
                self.by_index.insert(i, self.calls.len() - 1);
            }
            self.calls.len() - 1
        });
        let call = &mut self.calls[slot];
        if call.id.is_none() {
            call.id = id.filter(|i| !i.is_empty()).map(str::to_owned);
        }
        if call.name.is_none() {
            call.name = name.filter(|n| !n.is_empty()).map(str::to_owned);
        }
        call.args.push_str(args);
        self.held += args.len();
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Bytes held, for the caller's bound on what one answer may hold.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    pub fn take(&mut self) -> Vec<PendingCall> {
        self.by_index.clear();
        self.held = 0;
        std::mem::take(&mut self.calls)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateMode {
    /// Nothing shown yet, and the text so far could be a call printed as text.
    Undecided,
    /// Prose: shown as it arrives (a `<` may be held until it is known not to open
    /// call markup).
    Passing,
    /// Call markup started mid-answer: everything from it on is held.
    Markup,
}

/// Decides, as text streams, what can be shown now.
#[derive(Debug, Clone)]
pub struct TextGate {
    mode: GateMode,
    held: String,
}

impl Default for TextGate {
    fn default() -> Self {
        TextGate {
            mode: GateMode::Undecided,
            held: String::new(),
        }
    }
}

/// What was held when the answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldText {
    None,
    /// The whole answer's text: may be a printed call.
    Whole(String),
    /// Call markup that started mid-answer.
    Markup(String),
    /// A `<` that turned out to open nothing: plain text.
    Plain(String),
}

impl TextGate {
    /// Take `text`; return what can be shown now. Prose without a `<` (the usual
    /// delta) is passed on as is, without a copy.
    pub fn feed<'t>(&mut self, text: &'t str) -> Cow<'t, str> {
        match self.mode {
            GateMode::Markup => {
                self.held.push_str(text);
                Cow::Borrowed("")
            }
            GateMode::Undecided => {
                self.held.push_str(text);
                if super::text_call::may_be_call(&self.held) {
                    return Cow::Borrowed("");
                }
                self.mode = GateMode::Passing;
                let held = std::mem::take(&mut self.held);
                Cow::Owned(self.pass(&held))
            }
            GateMode::Passing if self.held.is_empty() && !text.contains('<') => Cow::Borrowed(text),
            GateMode::Passing => {
                let mut held = std::mem::take(&mut self.held);
                held.push_str(text);
                Cow::Owned(self.pass(&held))
            }
        }
    }

    /// Show `text` up to a `<` that may open call markup; hold from there.
    fn pass(&mut self, text: &str) -> String {
        let mut shown = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('<') {
            shown.push_str(&rest[..at]);
            let tail = &rest[at..];
            if MID_TEXT_MARKERS.iter().any(|m| tail.starts_with(m)) {
                self.mode = GateMode::Markup;
                self.held = tail.to_owned();
                return shown;
            }
            if MID_TEXT_MARKERS.iter().any(|m| m.starts_with(tail)) {
                // Too short to tell yet.
                self.held = tail.to_owned();
                return shown;
            }
            shown.push('<');
            rest = &tail[1..];
        }
        shown.push_str(rest);
        shown
    }

    /// Bytes of text held, for the caller's bound on what one answer may hold.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// The answer is over: what is still held, and why.
    pub fn finish(&mut self) -> HeldText {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return HeldText::None;
        }
        match self.mode {
            GateMode::Undecided => HeldText::Whole(held),
            GateMode::Markup => HeldText::Markup(held),
            GateMode::Passing => HeldText::Plain(held),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(gate: &mut TextGate, parts: &[&str]) -> String {
        parts.iter().map(|p| gate.feed(p)).collect()
    }

    #[test]
    fn prose_streams_and_calls_wait() {
        let mut g = TextGate::default();
        assert_eq!(
            run(&mut g, &["I'll ", "look at a<b ", "and <c>."]),
            "I'll look at a<b and <c>."
        );
        assert_eq!(g.finish(), HeldText::None);

        // A JSON answer is held whole.
        let mut g = TextGate::default();
        assert_eq!(run(&mut g, &["  {\"name\":", " \"Bash\"}"]), "");
        assert_eq!(g.finish(), HeldText::Whole("  {\"name\": \"Bash\"}".into()));

        // Markup after prose: the prose is shown, the markup held, even when the
        // marker arrives split.
        let mut g = TextGate::default();
        let shown = run(
            &mut g,
            &["Let me check.\n<func", "tion=Bash>\n<parameter=command>ls"],
        );
        assert_eq!(shown, "Let me check.\n");
        assert_eq!(
            g.finish(),
            HeldText::Markup("<function=Bash>\n<parameter=command>ls".into())
        );

        // A trailing `<` at the end is plain text.
        let mut g = TextGate::default();
        assert_eq!(run(&mut g, &["a <"]), "a ");
        assert_eq!(g.finish(), HeldText::Plain("<".into()));
    }

    #[test]
    fn fragments_assemble_into_calls() {
        let mut b = CallBuffer::default();
        b.push(Some(0), Some("c1"), Some("Bash"), "{\"comm");
        b.push(Some(1), Some("c2"), Some("Read"), "{}");
        b.push(Some(0), None, None, "and\":\"ls\"}");
        b.push(None, Some("c3"), Some("Edit"), "{}");
        let calls = b.take();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].args, "{\"command\":\"ls\"}");
        assert_eq!(calls[1].name.as_deref(), Some("Read"));
        assert_eq!(calls[2].id.as_deref(), Some("c3"));
        assert!(b.is_empty());
    }
}
