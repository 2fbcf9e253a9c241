//! The translator's repair mode ([`StreamTranslator::repair_tools`]): tool calls are
//! assembled whole and made to fit the offered tools ([`crate::proxy::repair`])
//! before any of their events go out; text streams unless it may be a call printed
//! as text. A call that cannot fit ends the stream *without* an error event, so the
//! caller can retry or fall back ([`StreamTranslator::unfit`]).

use super::{BlockKind, OpenBlock, Phase, StreamTranslator, ToolKey, ToolState};
use crate::proxy::error::ProxyError;
use crate::proxy::repair::stream::{CallBuffer, HeldText, PendingCall, TextGate};
use crate::proxy::repair::text_call::{self, TextVerdict};
use crate::proxy::repair::{
    fit_call, FittedCall, RepairKind, ToolCatalog, Unfit, TOOL_CALL_INVALID,
};
use crate::proxy::wire::anthropic::{Delta, StartBlock, StreamEvent};
use crate::proxy::wire::openai::ChunkToolCall;
use crate::proxy::wire::sse::MAX_EVENT_BYTES;

/// What repair mode holds for one answer.
#[derive(Debug)]
pub(super) struct StreamRepair {
    catalog: ToolCatalog,
    calls: CallBuffer,
    gate: TextGate,
    pub(super) repairs: Vec<RepairKind>,
    pub(super) unfit: Option<Unfit>,
}

impl StreamTranslator {
    /// Repair the answer's tool calls against `catalog` (the request's offered
    /// tools). Without it, calls stream through as the upstream sends them.
    pub fn repair_tools(mut self, catalog: Option<ToolCatalog>) -> Self {
        self.repair = catalog.map(|catalog| {
            Box::new(StreamRepair {
                catalog,
                calls: CallBuffer::default(),
                gate: TextGate::default(),
                repairs: Vec::new(),
                unfit: None,
            })
        });
        self
    }

    /// The tool call that could not be made to fit, when that ended the stream.
    pub fn unfit(&self) -> Option<&Unfit> {
        self.repair.as_ref()?.unfit.as_ref()
    }

    /// The repairs made so far, sorted and without repeats.
    pub fn repairs(&self) -> Vec<RepairKind> {
        let mut r = self
            .repair
            .as_ref()
            .map(|r| r.repairs.clone())
            .unwrap_or_default();
        r.sort();
        r.dedup();
        r
    }

    /// The next content block index: a retry's answer continues from here.
    pub fn next_block_index(&self) -> u32 {
        self.next_index
    }

    /// Start numbering content blocks at `index` (a retry after blocks were shown).
    pub fn first_block_index(mut self, index: u32) -> Self {
        self.next_index = index;
        self
    }

    /// Text in repair mode: what may be shown now (the rest is held).
    pub(super) fn gate_text<'t>(&mut self, text: &'t str) -> std::borrow::Cow<'t, str> {
        match self.repair.as_mut() {
            Some(r) => r.gate.feed(text),
            None => std::borrow::Cow::Borrowed(text),
        }
    }

    /// Text held by the gate (a call printed as text, or call markup) outgrew
    /// [`MAX_EVENT_BYTES`]: the answer ends with an error event, as for an over-long
    /// stream line, instead of holding text without end.
    pub(super) fn check_held_text(&mut self, out: &mut Vec<u8>) {
        let held = self.repair.as_ref().map_or(0, |r| r.gate.held_len());
        if held > MAX_EVENT_BYTES {
            self.fail(
                "line_too_long",
                ProxyError::bad_gateway(format!(
                    "the upstream sent more than {} MB of text that may be a tool call; the answer is abandoned",
                    MAX_EVENT_BYTES / (1024 * 1024)
                )),
                out,
            );
        }
    }

    /// A tool-call fragment in repair mode: held. False when not in repair mode.
    pub(super) fn hold_fragment(&mut self, call: &ChunkToolCall, out: &mut Vec<u8>) -> bool {
        let Some(r) = self.repair.as_mut() else {
            return false;
        };
        let args = call.function.arguments_text();
        self.generated_bytes += args.len() as u64;
        r.calls.push(
            call.index,
            call.id.as_deref(),
            call.function.name.as_deref(),
            &args,
        );
        if r.calls.held_bytes() > MAX_EVENT_BYTES {
            self.fail(
                "line_too_long",
                ProxyError::bad_gateway("the upstream's tool call arguments exceed 8 MB"),
                out,
            );
        }
        true
    }

    /// Before other content goes out: the calls held so far are complete.
    pub(super) fn flush_calls(&mut self, out: &mut Vec<u8>) {
        let Some(calls) = self.repair.as_mut().map(|r| r.calls.take()) else {
            return;
        };
        for (i, call) in calls.into_iter().enumerate() {
            if self.single_tool_call && (i > 0 || self.has_tool_call()) {
                self.dropped_calls += 1;
                continue;
            }
            match self.fit_pending(&call) {
                Ok(fitted) => self.emit_call(call.id.as_deref(), fitted, out),
                Err(unfit) => return self.end_unfit(unfit, out),
            }
        }
    }

    /// The answer is over: settle held text and calls. Leaves the stream finished
    /// (without an error event) when something could not be made to fit.
    pub(super) fn settle(&mut self, out: &mut Vec<u8>) {
        let Some(r) = self.repair.as_mut() else {
            return;
        };
        let no_calls = r.calls.is_empty() && !self.tools.iter().any(|t| t.started);
        let held = r.gate.finish();
        let text = match held {
            HeldText::None => None,
            HeldText::Plain(t) => Some(t),
            HeldText::Whole(t) | HeldText::Markup(t) if !no_calls => Some(t),
            HeldText::Whole(t) | HeldText::Markup(t) => match text_call::classify(&r.catalog, &t) {
                TextVerdict::Prose => Some(t),
                TextVerdict::Call(call) => {
                    self.emit_call(None, call, out);
                    None
                }
                TextVerdict::ProseThenCall(prose, call) => {
                    let index = self.ensure_block(BlockKind::Text, out);
                    super::write_delta(index, Delta::TextDelta { text: &prose }, out);
                    self.emit_call(None, call, out);
                    None
                }
                TextVerdict::Attempt(unfit) => return self.end_unfit(unfit, out),
            },
        };
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            let index = self.ensure_block(BlockKind::Text, out);
            super::write_delta(index, Delta::TextDelta { text: &text }, out);
        }
        self.flush_calls(out);
    }

    fn fit_pending(&self, call: &PendingCall) -> Result<FittedCall, Unfit> {
        let Some(upstream_name) = call.name.as_deref() else {
            return Err(Unfit {
                name: "(no name)".into(),
                reason: format!("the call has no tool name (arguments: {:?})", call.args),
            });
        };
        let catalog = &self.repair.as_ref().expect("repair mode").catalog;
        fit_call(
            catalog,
            self.names.to_client(upstream_name),
            &call.args,
            true,
        )
    }

    /// One whole, fitting call: start, its input in one delta, stop.
    fn emit_call(&mut self, id: Option<&str>, call: FittedCall, out: &mut Vec<u8>) {
        if !call.repairs.is_empty() {
            tracing::info!(
                "repaired a tool call from {}: {}",
                self.model,
                call.detail.join(", ")
            );
        }
        self.close_open(out);
        let slot = self.tools.len();
        let index = self.next_index;
        self.next_index += 1;
        self.visible = true;
        let fallback_id = format!("toolu_{}_{}", self.message_id, slot);
        StreamEvent::ContentBlockStart {
            index,
            content_block: StartBlock::ToolUse {
                id: id.unwrap_or(&fallback_id),
                name: &call.name,
                input: crate::proxy::wire::anthropic::EmptyObject,
            },
        }
        .write_sse(out);
        let input = call.input.to_string();
        super::write_delta(
            index,
            Delta::InputJsonDelta {
                partial_json: &input,
            },
            out,
        );
        self.tools.push(ToolState {
            key: ToolKey::Ordinal(slot),
            id: id.map(str::to_owned),
            name: Some(call.name),
            pending_args: String::new(),
            started: true,
            stopped: false,
        });
        self.open = Some(OpenBlock {
            index,
            kind: BlockKind::Tool(slot),
        });
        self.close_open(out);
        if let Some(r) = self.repair.as_mut() {
            r.repairs.extend(call.repairs);
        }
    }

    /// End the answer for a retry: the open block (text already shown) is stopped,
    /// so the retry's blocks can follow it.
    fn end_unfit(&mut self, unfit: Unfit, out: &mut Vec<u8>) {
        tracing::warn!(
            "{} sent a tool call that cannot be used: {unfit}",
            self.model
        );
        self.close_open(out);
        if let Some(r) = self.repair.as_mut() {
            r.unfit = Some(unfit);
        }
        self.error = Some(TOOL_CALL_INVALID.to_owned());
        self.phase = Phase::Finished;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::translate::tool_names::ToolNameMap;

    fn run(chunks: &[&str]) -> (String, StreamTranslator) {
        let catalog = crate::proxy::repair::tests::claude_code_catalog();
        let mut t = StreamTranslator::new("msg_1", "gpt-oss:20b", 10, ToolNameMap::default())
            .repair_tools(Some(catalog));
        let mut out = Vec::new();
        for c in chunks {
            t.feed(format!("data: {c}\n\n").as_bytes(), &mut out);
        }
        t.feed(b"data: [DONE]\n\n", &mut out);
        (String::from_utf8(out).unwrap(), t)
    }

    fn text(s: &str) -> String {
        format!(
            r#"{{"choices":[{{"index":0,"delta":{{"content":{}}}}}]}}"#,
            serde_json::to_string(s).unwrap()
        )
    }

    const STOP: &str = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;

    #[test]
    fn a_streamed_call_is_held_whole_and_repaired() {
        let (out, t) = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"functions.Bash","arguments":"{'command': 'l"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"s',}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ]);
        assert_eq!(out.matches("input_json_delta").count(), 1, "{out}");
        assert!(out.contains(r#""name":"Bash""#), "{out}");
        assert!(out.contains(r#"{\"command\":\"ls\"}"#), "{out}");
        assert!(out.contains(r#""stop_reason":"tool_use""#), "{out}");
        assert_eq!(t.repairs(), vec![RepairKind::Name, RepairKind::Syntax]);
    }

    #[test]
    fn prose_streams_at_once_and_a_printed_call_becomes_a_call() {
        let catalog = crate::proxy::repair::tests::claude_code_catalog();
        let mut t =
            StreamTranslator::new("m", "m", 1, ToolNameMap::default()).repair_tools(Some(catalog));
        let mut out = Vec::new();
        t.feed(
            format!("data: {}\n\n", text("Looking now")).as_bytes(),
            &mut out,
        );
        assert!(String::from_utf8_lossy(&out).contains("Looking now"));

        let (out, t) = run(&[
            &text("```json\n{\"name\": \"Read\", "),
            &text("\"arguments\": {\"file_path\": \"/p/a.py\"}}\n```"),
            STOP,
        ]);
        assert!(!out.contains("text_delta"), "{out}");
        assert!(out.contains(r#""name":"Read""#), "{out}");
        assert!(out.contains(r#""stop_reason":"tool_use""#), "{out}");
        assert_eq!(t.repairs(), vec![RepairKind::TextCall]);
    }

    #[test]
    fn an_unusable_call_ends_the_stream_quietly_for_a_retry() {
        // Qwen XML naming a tool that was not offered.
        let (out, t) = run(&[
            &text("I'll check.\n"),
            &text("<function=Deploy>\n<parameter=target>\nprod\n</parameter>\n</function>"),
            STOP,
        ]);
        assert!(out.contains("I'll check."), "{out}");
        assert!(!out.contains("<function"), "{out}");
        assert!(
            !out.contains("event: error") && !out.contains("message_stop"),
            "{out}"
        );
        assert!(t.unfit().is_some());
        assert_eq!(t.error_kind(), Some(TOOL_CALL_INVALID));
        assert_eq!(t.next_block_index(), 1);

        let (_, t) = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"Read","arguments":"{\"path\":\"/p\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ]);
        assert!(t.unfit().unwrap().reason.contains("file_path"));
    }
}
