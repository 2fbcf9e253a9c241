//! OpenAI chat-completion stream → Anthropic Messages stream, as a pure state machine.
//!
//! [`StreamTranslator::feed`] takes upstream bytes split anywhere (mid-line, mid-UTF-8
//! character) and appends complete Anthropic SSE events to an output buffer. The events
//! come from the one SSE decoder ([`crate::proxy::wire::sse`]), so a split character
//! comes out intact, and the output depends only on the byte sequence, never on how it
//! was cut.
//!
//! Guarantees, whatever the upstream sends:
//! * `message_start` comes first; every delta has its `content_block_start` before it;
//!   block indexes are consecutive from 0; each block is stopped exactly once;
//! * tool arguments are forwarded as `input_json_delta` as they arrive;
//! * the stream ends with `message_delta` + `message_stop` only when the upstream sent
//!   a finish_reason and `[DONE]`; otherwise it ends with `event: error` (a stream that
//!   merely stops must not look like a complete answer);
//! * after the end, further input is ignored.
//!
//! Timing (pings, idle timeouts) is the caller's job: this module has no clock.

mod ending;
mod repairing;

pub use ending::{REPETITION, REPETITION_RUN};

use serde_json::Value;

use super::tool_names::ToolNameMap;
use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::wire::anthropic::{
    Delta, DeltaUsage, MessageDeltaBody, StartBlock, StopReason, StreamEvent, StreamMessage, Usage,
};
use crate::proxy::wire::lines::preview;
use crate::proxy::wire::openai::{error_message, ChatChunk, ChatUsage, ChunkToolCall};
use crate::proxy::wire::sse::{SseDecoder, SseEvent, MAX_EVENT_BYTES};
use axum::http::StatusCode;

/// The most of an unreadable upstream error event quoted in ours.
const ERROR_PREVIEW_BYTES: usize = 1000;

/// Arguments of a tool call whose name has not arrived outgrew [`MAX_EVENT_BYTES`].
fn nameless_too_large() -> ProxyError {
    ProxyError::bad_gateway(format!(
        "the upstream sent more than {} MB of tool call arguments before the tool's name; the answer is abandoned",
        MAX_EVENT_BYTES / (1024 * 1024)
    ))
}

/// A keep-alive event, for the caller to send while the upstream is silent.
pub const PING_EVENT: &[u8] = b"event: ping\ndata: {\"type\":\"ping\"}\n\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Streaming,
    /// `message_stop` or `event: error` was written.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Thinking,
    Text,
    /// Index into `tools`.
    Tool(usize),
}

#[derive(Debug, Clone, Copy)]
struct OpenBlock {
    index: u32,
    kind: BlockKind,
}

/// How the upstream identifies a tool call across fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ToolKey {
    Index(u32),
    /// Ollama-style whole calls without an `index`: one call per fragment.
    Ordinal(usize),
}

#[derive(Debug, Clone)]
struct ToolState {
    key: ToolKey,
    id: Option<String>,
    name: Option<String>,
    /// Arguments that arrived before the name (the block cannot start without it).
    pending_args: String,
    started: bool,
    stopped: bool,
}

/// How a translated stream ended, for the request log and the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    pub usage: Usage,
    /// True when the token figures are estimates (the upstream reported none).
    pub usage_estimated: bool,
    pub stop_reason: Option<StopReason>,
    /// True once `message_stop` was written.
    pub completed: bool,
    /// Short error kind when the stream ended with `event: error`.
    pub error: Option<String>,
}

/// The state machine for one streamed answer.
#[derive(Debug)]
pub struct StreamTranslator {
    message_id: String,
    model: String,
    input_estimate: u64,
    names: ToolNameMap,

    /// The upstream's SSE events (some servers flag errors with `event: error`).
    sse: SseDecoder,

    phase: Phase,
    next_index: u32,
    open: Option<OpenBlock>,
    tools: Vec<ToolState>,
    /// Position in `tools` of each upstream index, so a fragment finds its call in
    /// O(1) (60,000 calls took seconds of CPU searching the list).
    tool_by_index: std::collections::HashMap<u32, usize, foldhash::fast::RandomState>,
    finish_reason: Option<String>,
    upstream_usage: Option<ChatUsage>,
    /// Bytes of generated text, for an output estimate when the upstream reports none.
    generated_bytes: u64,
    error: Option<String>,
    /// A text or tool_use block was started: the answer is visible to the user.
    visible: bool,
    /// Keep only the first tool call ([`StreamTranslator::single_tool_call`]).
    single_tool_call: bool,
    dropped_calls: u32,
    /// Repair mode: tool calls (and text that may be a call) are held and repaired.
    repair: Option<Box<repairing::StreamRepair>>,
    /// The run of identical pieces so far (a repetition ending, [`ending`]).
    repeats: ending::Repeats,
}

impl StreamTranslator {
    /// `message_id` and `model` go into `message_start`; `input_estimate` is the input
    /// token count reported there (OpenAI upstreams tell it only at the end).
    pub fn new(
        message_id: impl Into<String>,
        model: impl Into<String>,
        input_estimate: u64,
        names: ToolNameMap,
    ) -> Self {
        StreamTranslator {
            message_id: message_id.into(),
            model: model.into(),
            input_estimate,
            names,
            sse: SseDecoder::default(),
            phase: Phase::NotStarted,
            next_index: 0,
            open: None,
            tools: Vec::new(),
            tool_by_index: Default::default(),
            finish_reason: None,
            upstream_usage: None,
            generated_bytes: 0,
            error: None,
            visible: false,
            single_tool_call: false,
            dropped_calls: 0,
            repair: None,
            repeats: ending::Repeats::default(),
        }
    }

    /// Write `message_start` (once). Called by the first `feed`, or earlier by the
    /// caller so the client sees the answer begin before the upstream's first token.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.phase != Phase::NotStarted {
            return;
        }
        self.phase = Phase::Streaming;
        StreamEvent::MessageStart {
            message: StreamMessage {
                id: &self.message_id,
                kind: "message",
                role: "assistant",
                model: &self.model,
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage: Usage {
                    input_tokens: self.input_estimate,
                    output_tokens: 0,
                    ..Usage::default()
                },
            },
        }
        .write_sse(out);
    }

    /// Keep only the first tool call of the answer: the client disabled parallel tool
    /// use and the upstream (Ollama) ignores `parallel_tool_calls`.
    pub fn single_tool_call(mut self, on: bool) -> Self {
        self.single_tool_call = on;
        self
    }

    /// True once a tool_use block has started.
    pub fn has_tool_call(&self) -> bool {
        self.tools.iter().any(|t| t.started)
    }

    pub fn is_single_tool_call(&self) -> bool {
        self.single_tool_call
    }

    /// True once a text or tool_use block has started (thinking alone is not yet an
    /// answer the user acts on).
    pub fn has_visible_content(&self) -> bool {
        self.visible
    }

    /// The error kind the stream ended with, if it failed.
    pub fn error_kind(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// True once the stream was ended (successfully or with an error event).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Feed upstream bytes, split anywhere.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.start(out);
        // Taken out while its events are handled (they borrow it); no allocation.
        let mut sse = std::mem::take(&mut self.sse);
        while self.phase != Phase::Finished {
            match sse.next(&mut input) {
                None => break,
                Some(Ok(event)) => self.handle_event(event, out),
                Some(Err(e)) => self.fail(e.kind(), ProxyError::oversize_stream(e), out),
            }
        }
        self.sse = sse;
    }

    /// The upstream body ended. Completes a final unterminated event, then writes an
    /// error event unless the stream already ended properly.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        if self.phase == Phase::Finished {
            return;
        }
        let mut sse = std::mem::take(&mut self.sse);
        match sse.finish() {
            Ok(Some(event)) => self.handle_event(event, out),
            Ok(None) => {}
            Err(e) => self.fail(e.kind(), ProxyError::oversize_stream(e), out),
        }
        self.sse = sse;
        if self.phase != Phase::Finished {
            let (kind, error) = self.repeats.unfinished();
            self.fail(kind, error, out);
        }
    }

    /// End the stream with `event: error` (the upstream broke, timed out, …).
    /// `kind` is the short error kind recorded in the ledger.
    pub fn fail(&mut self, kind: &str, error: ProxyError, out: &mut Vec<u8>) {
        self.start(out);
        if self.phase == Phase::Finished {
            return;
        }
        error.write_sse(out);
        self.error = Some(kind.to_owned());
        self.phase = Phase::Finished;
    }

    /// Usage and ending so far.
    pub fn summary(&self) -> StreamSummary {
        let (usage, estimated) = self.final_usage();
        StreamSummary {
            usage,
            usage_estimated: estimated,
            stop_reason: self.stop_reason(),
            completed: self.phase == Phase::Finished && self.error.is_none(),
            error: self.error.clone(),
        }
    }

    fn final_usage(&self) -> (Usage, bool) {
        let (mut usage, estimated) =
            super::response::usage_from_openai(self.upstream_usage.as_ref(), self.input_estimate);
        if estimated {
            // About four bytes per token for English text and code.
            usage.output_tokens = self.generated_bytes.div_ceil(4);
        }
        (usage, estimated)
    }

    fn stop_reason(&self) -> Option<StopReason> {
        let reason = StopReason::from_openai(self.finish_reason.as_deref()?);
        // Some servers say "stop" after tool calls; the client must still run them.
        if reason == StopReason::EndTurn && self.tools.iter().any(|t| t.started) {
            return Some(StopReason::ToolUse);
        }
        Some(reason)
    }

    fn handle_event(&mut self, event: SseEvent<'_>, out: &mut Vec<u8>) {
        // An empty `data:` carries nothing (some servers send it as a keep-alive).
        if self.phase == Phase::Finished || event.data.is_empty() {
            return;
        }
        let data = event.data;
        if event.is_done() {
            self.complete(out);
            return;
        }
        if event.is("error") {
            let message = serde_json::from_slice::<Value>(data)
                .ok()
                .and_then(|v| error_message(&v))
                .unwrap_or_else(|| preview(data, ERROR_PREVIEW_BYTES).into_owned());
            self.fail(
                "upstream_stream_error",
                ProxyError::bad_gateway(format!("the upstream reported an error: {message}")),
                out,
            );
            return;
        }
        let chunk: ChatChunk = match serde_json::from_slice(data) {
            Ok(c) => c,
            Err(e) => {
                self.fail(
                    "stream_invalid",
                    ProxyError::bad_gateway(format!(
                        "the upstream sent a stream event that is not valid JSON ({e})"
                    )),
                    out,
                );
                return;
            }
        };
        if let Some(err) = &chunk.error {
            let message = error_message(err).unwrap_or_else(|| err.to_string());
            self.fail(
                "upstream_stream_error",
                ProxyError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorKind::Api,
                    format!("the upstream reported an error mid-stream: {message}"),
                ),
                out,
            );
            return;
        }
        if let Some(usage) = chunk.usage {
            self.upstream_usage = Some(usage);
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            let delta = &choice.delta;
            let reasoning = delta
                .reasoning_content
                .as_deref()
                .or(delta.reasoning.as_deref());
            let text = delta.content.as_deref().filter(|t| !t.is_empty());
            if reasoning.is_some_and(|r| !r.is_empty()) || text.is_some() {
                // Calls held so far are complete once anything else follows them.
                self.flush_calls(out);
                if self.phase == Phase::Finished {
                    return;
                }
            }
            for piece in [reasoning, text].into_iter().flatten() {
                self.repeats.see(piece);
            }
            if let Some(thinking) = reasoning.filter(|r| !r.is_empty()) {
                let index = self.ensure_block(BlockKind::Thinking, out);
                self.generated_bytes += thinking.len() as u64;
                write_delta(index, Delta::ThinkingDelta { thinking }, out);
            }
            if let Some(text) = text {
                self.generated_bytes += text.len() as u64;
                let shown = self.gate_text(text);
                if !shown.is_empty() {
                    let index = self.ensure_block(BlockKind::Text, out);
                    write_delta(index, Delta::TextDelta { text: &shown }, out);
                }
                self.check_held_text(out);
                if self.phase == Phase::Finished {
                    return;
                }
            }
            for call in delta.tool_calls.iter().flatten() {
                if !self.hold_fragment(call, out) {
                    self.tool_fragment(call, out);
                }
                if self.phase == Phase::Finished {
                    return;
                }
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(reason.to_string());
            }
        }
    }

    fn tool_fragment(&mut self, call: &ChunkToolCall, out: &mut Vec<u8>) {
        let slot = match call.index {
            Some(i) => match self.tool_by_index.get(&i) {
                Some(slot) => *slot,
                None => self.new_tool(ToolKey::Index(i)),
            },
            None => {
                // No index: a fragment with a new id (or the first one) is a new call,
                // anything else continues the latest call.
                let continues_latest = match (self.tools.last(), call.id.as_deref()) {
                    (Some(last), None) => !last.stopped,
                    (Some(last), Some(id)) => last.id.as_deref() == Some(id),
                    (None, _) => false,
                };
                if continues_latest {
                    self.tools.len() - 1
                } else {
                    let ordinal = self.tools.len();
                    self.new_tool(ToolKey::Ordinal(ordinal))
                }
            }
        };
        if self.single_tool_call && slot > 0 {
            return self.drop_extra_call(slot);
        }
        let tool = &mut self.tools[slot];
        if tool.stopped {
            self.fail(
                "stream_interleaved",
                ProxyError::bad_gateway(
                    "the upstream interleaved the arguments of parallel tool calls, which cannot be streamed in order",
                ),
                out,
            );
            return;
        }
        if tool.id.is_none() {
            tool.id = call.id.clone().filter(|id| !id.is_empty());
        }
        if tool.name.is_none() {
            tool.name = call.function.name.clone().filter(|n| !n.is_empty());
        }
        let args = call.function.arguments_text();
        self.generated_bytes += args.len() as u64;

        if !self.tools[slot].started {
            if self.tools[slot].name.is_none() {
                let pending = &mut self.tools[slot].pending_args;
                if pending.len() + args.len() > MAX_EVENT_BYTES {
                    return self.fail("line_too_long", nameless_too_large(), out);
                }
                pending.push_str(&args);
                return;
            }
            self.close_open(out);
            let index = self.next_index;
            self.next_index += 1;
            let fallback_id = format!("toolu_{}_{}", self.message_id, slot);
            self.visible = true;
            let tool = &mut self.tools[slot];
            tool.started = true;
            let upstream_name = tool.name.as_deref().unwrap_or_default();
            StreamEvent::ContentBlockStart {
                index,
                content_block: StartBlock::ToolUse {
                    id: tool.id.as_deref().unwrap_or(&fallback_id),
                    name: self.names.to_client(upstream_name),
                    input: crate::proxy::wire::anthropic::EmptyObject,
                },
            }
            .write_sse(out);
            self.open = Some(OpenBlock {
                index,
                kind: BlockKind::Tool(slot),
            });
            let pending = std::mem::take(&mut self.tools[slot].pending_args);
            if !pending.is_empty() {
                write_delta(
                    index,
                    Delta::InputJsonDelta {
                        partial_json: &pending,
                    },
                    out,
                );
            }
        }
        if args.is_empty() {
            return;
        }
        let index = self.ensure_block(BlockKind::Tool(slot), out);
        write_delta(
            index,
            Delta::InputJsonDelta {
                partial_json: &args,
            },
            out,
        );
    }

    /// A second call while the client allows one per answer: dropped.
    fn drop_extra_call(&mut self, slot: usize) {
        if slot == self.tools.len() - 1 && !self.tools[slot].started {
            if let Some(ToolState {
                key: ToolKey::Index(i),
                ..
            }) = self.tools.pop()
            {
                self.tool_by_index.remove(&i);
            }
        }
        if self.dropped_calls == 0 {
            tracing::info!("kept the first tool call only: the client disabled parallel tool use, which the upstream ignores");
        }
        self.dropped_calls += 1;
    }

    fn new_tool(&mut self, key: ToolKey) -> usize {
        if let ToolKey::Index(i) = key {
            self.tool_by_index.insert(i, self.tools.len());
        }
        self.tools.push(ToolState {
            key,
            id: None,
            name: None,
            pending_args: String::new(),
            started: false,
            stopped: false,
        });
        self.tools.len() - 1
    }

    /// The index of an open block of `kind`, starting one (and stopping the previous)
    /// when needed. A tool block is only ever reopened here while it is still open.
    fn ensure_block(&mut self, kind: BlockKind, out: &mut Vec<u8>) -> u32 {
        if let Some(open) = self.open {
            if open.kind == kind {
                return open.index;
            }
        }
        self.close_open(out);
        let index = self.next_index;
        self.next_index += 1;
        let content_block = match kind {
            BlockKind::Thinking => StartBlock::Thinking {
                thinking: "",
                signature: "",
            },
            BlockKind::Text => {
                self.visible = true;
                StartBlock::Text { text: "" }
            }
            BlockKind::Tool(_) => unreachable!("tool blocks are started by tool_fragment"),
        };
        StreamEvent::ContentBlockStart {
            index,
            content_block,
        }
        .write_sse(out);
        self.open = Some(OpenBlock { index, kind });
        index
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some(open) = self.open.take() {
            if let BlockKind::Tool(slot) = open.kind {
                self.tools[slot].stopped = true;
            }
            StreamEvent::ContentBlockStop { index: open.index }.write_sse(out);
        }
    }

    /// `[DONE]` arrived.
    fn complete(&mut self, out: &mut Vec<u8>) {
        if self.finish_reason.is_none() {
            self.fail(
                "stream_truncated",
                ProxyError::bad_gateway(
                    "the upstream ended the stream without a finish_reason; the answer may be incomplete",
                ),
                out,
            );
            return;
        }
        self.settle(out);
        if self.phase == Phase::Finished {
            return;
        }
        if let Some(nameless) = self.tools.iter().find(|t| !t.started) {
            // The size, not the arguments: they are the model's output, of any length.
            let detail = format!(
                "the upstream sent a tool call without a name ({} bytes of arguments)",
                nameless.pending_args.len()
            );
            self.fail("tool_call_parse", ProxyError::bad_gateway(detail), out);
            return;
        }
        self.close_open(out);
        let (usage, estimated) = self.final_usage();
        StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: self.stop_reason(),
                stop_sequence: None,
            },
            usage: DeltaUsage {
                output_tokens: usage.output_tokens,
                input_tokens: (!estimated).then_some(usage.input_tokens),
                cache_read_input_tokens: usage.cache_read_input_tokens,
            },
        }
        .write_sse(out);
        StreamEvent::MessageStop.write_sse(out);
        self.phase = Phase::Finished;
    }
}

fn write_delta(index: u32, delta: Delta<'_>, out: &mut Vec<u8>) {
    StreamEvent::ContentBlockDelta { index, delta }.write_sse(out);
}

#[cfg(test)]
mod tests;
